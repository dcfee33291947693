//! Replay: rebuilding every projection from a generated log, against a raw scan of the same
//! segment files decoding what replay decodes (each record's header, terms and payload). Each
//! measurement runs in a child process of its own, so that its peak memory (VmHWM) is its own.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use chancery_domain::RecordedEvent;
use chancery_projections::{CheckpointPolicy, Projections};
use chancery_store::{AppendRequest, EventLog, ExpectedVersion};
use chancery_store_sled::{SledConfig, SledLog};

use crate::report::{Figure, Section, machine, med, today};
use crate::synthetic::{Acts, TIMELINES, register_timelines};

/// Events per append while generating.
const BATCH: usize = 1_000;

/// Generates `events` acts into a fresh log in `dir/log`.
pub async fn generate(dir: &Path, events: u64) -> anyhow::Result<()> {
    let log = SledLog::open(dir.join("log"), SledConfig::default())?;
    register_timelines(&log, TIMELINES).await?;
    let mut generators: Vec<Acts> = (0..TIMELINES)
        .map(|t| Acts::new(0x5eed + t as u64, t))
        .collect();
    let mut written = 0u64;
    let started = Instant::now();
    while written < events {
        let t = usize::try_from(written / BATCH as u64).unwrap_or(0) % TIMELINES;
        let n = (events - written).min(BATCH as u64);
        let batch: Vec<_> = (0..n)
            .map(|i| generators[t].next_event(written + i))
            .collect();
        let timeline = batch[0].timeline.clone();
        log.append(AppendRequest {
            refers_within: None,
            timeline,
            expected: ExpectedVersion::Any,
            events: batch,
        })
        .await?;
        written += n;
        if written % 100_000 == 0 {
            eprintln!(
                "generated {written} events ({:.0} events/s)",
                written as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Generates `events` events into `dir/log` unless a log is there already (kept from an
/// earlier run), saying so on standard error for `bench`. Answers the seconds generating took,
/// or `None` where the log was kept.
pub async fn generate_unless_kept(
    dir: &Path,
    events: u64,
    bench: &str,
) -> anyhow::Result<Option<f64>> {
    if dir.join("log").exists() {
        return Ok(None);
    }
    eprintln!("{bench}: generating {events} events in {}", dir.display());
    let started = Instant::now();
    generate(dir, events).await?;
    Ok(Some(started.elapsed().as_secs_f64()))
}

/// The child's report: events handled, seconds, peak resident memory in KiB.
pub fn print_result(events: u64, seconds: f64) {
    println!("RESULT {events} {seconds} {}", peak_rss_kib());
}

pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Child: reads the log's segment files from start to end, checks each frame's checksum, and
/// decodes each record as far as replay must (its header, its terms and its payload).
pub fn raw_scan(dir: &Path) -> anyhow::Result<()> {
    let records = dir.join("log").join("records");
    let mut segments: Vec<std::path::PathBuf> = std::fs::read_dir(&records)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    let started = Instant::now();
    let mut events = 0u64;
    let mut buf = Vec::new();
    for path in segments {
        let mut file = std::fs::File::open(&path)?;
        buf.clear();
        std::io::Read::read_to_end(&mut file, &mut buf)?;
        let mut at = 0;
        while at + 9 <= buf.len() {
            let length = u32::from_le_bytes(buf[at..at + 4].try_into()?) as usize;
            let crc = u32::from_le_bytes(buf[at + 4..at + 8].try_into()?);
            let end = at + 9 + length;
            let frame = buf.get(at + 8..end).context("a frame is cut short")?;
            if crc32fast::hash(frame) != crc {
                bail!("{}: a frame's checksum does not match", path.display());
            }
            let record = RecordedEvent::from_stored(&frame[1..])?;
            let view = record.view()?;
            std::hint::black_box(view.payload()?);
            std::hint::black_box(view.actors().count() + view.issues().count());
            events += 1;
            at = end;
        }
    }
    print_result(events, started.elapsed().as_secs_f64());
    Ok(())
}

/// Child: rebuilds every projection from position 1, checkpoint included.
pub async fn replay(dir: &Path) -> anyhow::Result<()> {
    let log: Arc<dyn EventLog> = Arc::new(SledLog::open(dir.join("log"), SledConfig::default())?);
    let checkpoints = dir.join("projections");
    Projections::reset(&checkpoints)?;
    let projections = Projections::open(
        Arc::clone(&log),
        Some(&checkpoints),
        CheckpointPolicy::default(),
    )
    .await?;
    let started = Instant::now();
    let events = projections.catch_up(&|_, _| {}).await?;
    projections.close()?;
    print_result(events, started.elapsed().as_secs_f64());
    Ok(())
}

struct Measured {
    events: u64,
    seconds: f64,
    rss_kib: u64,
}

fn child(dir: &Path, which: &str) -> anyhow::Result<Measured> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command.arg(which).arg("--dir").arg(dir);
    // The server runs without transparent huge pages (`without_huge_pages` in its main); so do
    // the children, by mimalloc's own switch, unless the caller chose otherwise.
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        command.env("MIMALLOC_ALLOW_THP", "0");
    }
    let out = command.output().context("cannot run the benchmark child")?;
    if !out.status.success() {
        bail!("{which} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .context("the child printed no result")?;
    let parts: Vec<&str> = line.split_whitespace().collect();
    Ok(Measured {
        events: parts[0].parse()?,
        seconds: parts[1].parse()?,
        rss_kib: parts[2].parse()?,
    })
}

/// `chancery replay --data dir` by the binary `bin`: the events it replayed and the seconds from
/// spawn to exit (opening the log and resetting the projections included, as for any build).
fn chancery_replay(bin: &Path, dir: &Path) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let out = Command::new(bin)
        .arg("replay")
        .arg("--data")
        .arg(dir)
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "{} replay failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // "replayed N events into the projections in S s (R events/s)"
    let text = String::from_utf8_lossy(&out.stdout);
    let events = text
        .lines()
        .find_map(|l| l.strip_prefix("replayed "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("{} replay printed no count: {text}", bin.display()))?;
    Ok((events, seconds))
}

/// This build's `chancery replay` against the baseline build's, one of each per run, the order
/// alternating; each must replay every event of the log.
struct SideBySide<'a> {
    baseline: &'a Path,
    this_rate: Vec<f64>,
    baseline_rate: Vec<f64>,
}

impl SideBySide<'_> {
    fn measure(&mut self, run: usize, dir: &Path, events: u64) -> anyhow::Result<()> {
        let this = crate::client::chancery_bin()?;
        let mut order = [(this.as_path(), false), (self.baseline, true)];
        if run % 2 == 1 {
            order.reverse();
        }
        for (bin, is_baseline) in order {
            let (replayed, seconds) = chancery_replay(bin, dir)?;
            if replayed != events {
                bail!(
                    "{} replayed {replayed} events of the log's {events}",
                    bin.display()
                );
            }
            eprintln!(
                "replay run {run}: `chancery replay` by {} in {seconds:.3} s",
                bin.display()
            );
            let rate = replayed as f64 / seconds;
            if is_baseline {
                self.baseline_rate.push(rate);
            } else {
                self.this_rate.push(rate);
            }
        }
        Ok(())
    }

    fn figure(&self) -> Figure {
        Figure::of_runs(
            "`chancery replay` (spawn to exit): this build against the baseline build",
            self.this_rate.clone(),
            "events/s",
        )
        .against(
            format!("baseline build {}", self.baseline.display()),
            med(&self.baseline_rate),
        )
    }

    fn note(&self) -> String {
        let list = |rates: &[f64]| {
            rates
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "Against the baseline build `{}`: in each run, this build's `chancery` (the one beside the bench) and the baseline's each run `chancery replay --data` on the same log, one after the other, the order alternating between runs; timed from spawn to exit, so opening the log and resetting the projections count for both. Runs, this build: {}; the baseline build: {}.",
            self.baseline.display(),
            list(&self.this_rate),
            list(&self.baseline_rate)
        )
    }
}

pub async fn run(
    events: u64,
    runs: usize,
    keep: Option<&Path>,
    baseline_bin: Option<&Path>,
    out: &Path,
    command: &str,
) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = keep.unwrap_or(temp.path());
    generate_unless_kept(dir, events, "replay").await?;
    let mut replay_rate = Vec::new();
    let mut scan_rate = Vec::new();
    let mut replay_rss = Vec::new();
    let mut scan_rss = Vec::new();
    let mut total = 0;
    let mut side_by_side = baseline_bin.map(|baseline| SideBySide {
        baseline,
        this_rate: Vec::new(),
        baseline_rate: Vec::new(),
    });
    for run in 0..runs {
        // Alternate the order, so neither always finds a warm page cache.
        let order: [&str; 2] = if run % 2 == 0 {
            ["raw-scan", "replay-child"]
        } else {
            ["replay-child", "raw-scan"]
        };
        for which in order {
            let m = child(dir, which)?;
            eprintln!(
                "replay run {run}: {which} {} events in {:.3} s, peak RSS {} MiB",
                m.events,
                m.seconds,
                m.rss_kib / 1024
            );
            let rate = m.events as f64 / m.seconds;
            if which == "raw-scan" {
                scan_rate.push(rate);
                scan_rss.push(m.rss_kib as f64 / 1024.0);
                total = m.events;
            } else {
                replay_rate.push(rate);
                replay_rss.push(m.rss_kib as f64 / 1024.0);
            }
        }
        if let Some(side_by_side) = side_by_side.as_mut() {
            side_by_side.measure(run, dir, total)?;
        }
    }
    let scan_median = med(&scan_rate);
    let mut figures = vec![
        Figure::of_runs("replay into all projections", replay_rate, "events/s")
            .against("raw sled scan + decode", scan_median)
            .target("≥ 1,000,000 events/s and ≥ 0.5 × baseline", |f| {
                f.value >= 1_000_000.0 && f.value >= 0.5 * scan_median
            }),
        Figure::of_runs("peak RSS of the replay process", replay_rss, "MiB")
            .against("peak RSS of the raw scan process", med(&scan_rss)),
    ];
    let mut notes = vec![
        "Each measurement runs in its own child process (`raw-scan`, `replay-child`) so its peak RSS is its own; the order alternates between runs. Replay includes reading the log through the `EventLog` trait, decoding, applying to every projection and writing the final checkpoint.".into(),
    ];
    if let Some(side_by_side) = &side_by_side {
        figures.push(side_by_side.figure());
        notes.push(side_by_side.note());
    }
    let section = Section {
        title: "Replay of a generated log".into(),
        command: command.into(),
        machine: machine(),
        date: today(),
        scale: format!(
            "{total} events in the log ({TIMELINES} timelines, 20 parties, 40 issues, ~1% retractions and corrections, 2% late reports), {runs} runs"
        ),
        figures,
        notes,
    };
    crate::report::write(out, "replay", section)
}
