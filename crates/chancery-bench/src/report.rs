//! The report: every figure of a run with its baseline and ratio, merged into
//! `docs/benchmarks.json` (one entry per benchmark, replaced when that benchmark runs again) and
//! rendered to `docs/benchmarks.md`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// A megabyte, as the report counts sizes.
pub const MB: f64 = 1e6;

/// One measured figure, compared with a baseline measured in the same run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub baseline_name: Option<String>,
    pub baseline: Option<f64>,
    /// The target, in words ("≥ 0.5 × baseline"), and whether it is met.
    pub target: Option<String>,
    pub met: Option<bool>,
    /// Every run's value, of which `value` is the median.
    pub runs: Vec<f64>,
    pub note: Option<String>,
}

impl Figure {
    /// A figure whose value is the median of `runs`, with no baseline, target or note yet.
    pub fn of_runs(name: impl Into<String>, runs: Vec<f64>, unit: &str) -> Figure {
        Figure {
            name: name.into(),
            value: median(&mut runs.clone()),
            unit: unit.into(),
            baseline_name: None,
            baseline: None,
            target: None,
            met: None,
            runs,
            note: None,
        }
    }

    /// The figure beside the baseline `baseline_name`, whose value is `baseline`.
    pub fn against(mut self, baseline_name: impl Into<String>, baseline: f64) -> Figure {
        self.baseline_name = Some(baseline_name.into());
        self.baseline = Some(baseline);
        self
    }

    /// The figure with its target, in words, and whether it is met (`None`: not at this scale).
    pub fn with_target(mut self, words: impl Into<String>, met: Option<bool>) -> Figure {
        self.target = Some(words.into());
        self.met = met;
        self
    }

    /// The figure with its target, in words, and the test of whether the figure meets it.
    pub fn target(self, words: impl Into<String>, met: impl FnOnce(&Figure) -> bool) -> Figure {
        let met = met(&self);
        self.with_target(words, Some(met))
    }

    /// The figure with a note, printed under its section.
    pub fn noted(mut self, note: impl Into<String>) -> Figure {
        self.note = Some(note.into());
        self
    }

    pub fn ratio(&self) -> Option<f64> {
        match self.baseline {
            Some(b) if b != 0.0 => Some(self.value / b),
            _ => None,
        }
    }
}

/// The results of one benchmark.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Section {
    pub title: String,
    pub command: String,
    pub machine: String,
    pub date: String,
    pub scale: String,
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
}

/// A figure measured in `runs`, beside a baseline measured in `baselines`; medians of both.
pub fn figure(
    name: impl Into<String>,
    runs: &[f64],
    unit: &str,
    baseline_name: impl Into<String>,
    baselines: &[f64],
) -> Figure {
    Figure::of_runs(name, runs.to_vec(), unit).against(baseline_name, med(baselines))
}

/// The median of `values`, which stay as they are.
pub fn med(values: &[f64]) -> f64 {
    median(&mut values.to_vec())
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// What this machine is, from /proc.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or_else(
            || "unknown memory".into(),
            |kb| format!("{:.0} GiB RAM", kb / 1024.0 / 1024.0),
        );
    format!("{cpu}, {cores} cores, {memory}")
}

pub fn today() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        now.month() as u8,
        now.day()
    )
}

/// Rewrites the Markdown from the JSON report in `dir`, and the JSON in its own layout.
pub fn render(dir: &Path) -> anyhow::Result<()> {
    let json_path = dir.join("benchmarks.json");
    let bytes = std::fs::read(&json_path)
        .with_context(|| format!("cannot read {}", json_path.display()))?;
    let all: BTreeMap<String, Section> = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a benchmarks report", json_path.display()))?;
    std::fs::write(&json_path, serde_json::to_vec_pretty(&all)?)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    std::fs::write(dir.join("benchmarks.md"), markdown(&all))
        .context("cannot write benchmarks.md")?;
    Ok(())
}

/// Merges `section` under `key` into the JSON report in `dir`, and rewrites the Markdown.
pub fn write(dir: &Path, key: &str, section: Section) -> anyhow::Result<()> {
    // A benchmark that could not measure must fail, not report a blank: CI's smoke pass relies
    // on it.
    if section.figures.is_empty() {
        anyhow::bail!("benchmark {key} produced no figures");
    }
    if let Some(f) = section.figures.iter().find(|f| !f.value.is_finite()) {
        anyhow::bail!("benchmark {key}: {} is not a number ({})", f.name, f.value);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json_path = dir.join("benchmarks.json");
    let mut all: BTreeMap<String, Section> = match std::fs::read(&json_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) => BTreeMap::new(),
    };
    all.insert(key.to_owned(), section);
    std::fs::write(&json_path, serde_json::to_vec_pretty(&all)?)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    std::fs::write(dir.join("benchmarks.md"), markdown(&all))
        .context("cannot write benchmarks.md")?;
    Ok(())
}

fn number(v: f64) -> String {
    if v.abs() >= 100.0 {
        let s = format!("{v:.0}");
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else {
        format!("{v:.3}")
    }
}

fn markdown(all: &BTreeMap<String, Section>) -> String {
    let mut out = String::from(
        "# Benchmarks\n\nWritten by `chancery-bench` (`crates/chancery-bench`); do not edit by hand. Every figure is the median of \
         its runs, next to a baseline measured in the same run on the same machine; the ratio is what the targets are about, since \
         machines here are shared and noisy. Raw numbers are in `benchmarks.json`.\n",
    );
    for section in all.values() {
        out.push_str(&format!("\n## {}\n\n", section.title));
        out.push_str(&format!(
            "- command: `{}`\n- machine: {}\n- date: {}\n- scale: {}\n\n",
            section.command, section.machine, section.date, section.scale
        ));
        out.push_str("| figure | value | baseline | ratio | target | met |\n| --- | --- | --- | --- | --- | --- |\n");
        for f in &section.figures {
            let baseline = match (&f.baseline_name, f.baseline) {
                (Some(n), Some(b)) => format!("{} {} ({n})", number(b), f.unit),
                _ => "—".into(),
            };
            out.push_str(&format!(
                "| {} | {} {} | {} | {} | {} | {} |\n",
                f.name,
                number(f.value),
                f.unit,
                baseline,
                f.ratio().map_or("—".into(), |r| format!("{r:.2}")),
                f.target.clone().unwrap_or_else(|| "—".into()),
                f.met.map_or("—", |m| if m { "yes" } else { "no" }),
            ));
        }
        let runs: Vec<String> = section
            .figures
            .iter()
            .map(|f| {
                format!(
                    "{}: {}",
                    f.name,
                    f.runs
                        .iter()
                        .map(|r| number(*r))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect();
        out.push_str(&format!("\nRuns: {}.\n", runs.join("; ")));
        for note in section
            .notes
            .iter()
            .chain(section.figures.iter().filter_map(|f| f.note.as_ref()))
        {
            out.push_str(&format!("\n{note}\n"));
        }
    }
    out
}
