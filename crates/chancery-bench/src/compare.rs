//! Before and after: the figures of a report written by an older build (the same benchmarks, run
//! on the same machine in the same session) beside this build's, as a section of the report.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};

use crate::report::{self, Figure, Section};

fn sections_in(dir: &Path) -> anyhow::Result<BTreeMap<String, Section>> {
    let path = dir.join("benchmarks.json");
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not a report", path.display()))
}

/// Writes the section `before-after <keys> (<label>)`: for each benchmark in `keys`, every figure
/// both reports have, this build's value against the older build's. Comparisons of other
/// benchmarks, or against other builds, stay in the report beside it.
pub fn run(
    before: &Path,
    label: &str,
    keys: &[String],
    out: &Path,
    command: &str,
) -> anyhow::Result<()> {
    let old = sections_in(before)?;
    let new = sections_in(out)?;
    let mut figures = Vec::new();
    let mut notes = Vec::new();
    for key in keys {
        let (Some(was), Some(is)) = (old.get(key), new.get(key)) else {
            bail!(
                "benchmark {key} is not in both reports ({} and {})",
                before.display(),
                out.display()
            );
        };
        let mut unmatched = Vec::new();
        for figure in &is.figures {
            match was
                .figures
                .iter()
                .find(|f| f.name == figure.name && f.unit == figure.unit)
            {
                Some(then) => figures.push(Figure {
                    name: format!("{}: {}", is.title, figure.name),
                    value: figure.value,
                    unit: figure.unit.clone(),
                    baseline_name: Some(label.to_owned()),
                    baseline: Some(then.value),
                    target: None,
                    met: None,
                    runs: figure.runs.clone(),
                    note: None,
                }),
                None => unmatched.push(figure.name.as_str()),
            }
        }
        notes.push(format!(
            "{}: before, `{}` ({}, scale: {}); after, `{}` ({}, scale: {}).{}",
            is.title,
            was.command,
            was.date,
            was.scale,
            is.command,
            is.date,
            is.scale,
            if unmatched.is_empty() {
                String::new()
            } else {
                format!(
                    " Figures the older build does not report: {}.",
                    unmatched.join("; ")
                )
            }
        ));
    }
    notes.push(
        "The ratio is after / before: above 1 is better for rates, below 1 for times, memory and bytes."
            .to_owned(),
    );
    report::write(
        out,
        // One section per set of benchmarks and older build: comparing again with the same
        // label replaces its section, another label adds one.
        &format!("before-after {} ({label})", keys.join(" ")),
        Section {
            title: format!("Before and after: {label}"),
            command: command.to_owned(),
            machine: report::machine(),
            date: report::today(),
            scale: format!("the benchmarks {} of both reports", keys.join(", ")),
            figures,
            notes,
        },
    )
}
