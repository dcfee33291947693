//! Durable appends: Chancery's sled log against what bounds it, measured in the same run: the
//! disk's own fdatasync loop, raw sled writing the very same keys with one flush and fdatasync
//! per batch, and PostgreSQL (a private cluster on loopback, one transaction per append).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use chancery_domain::{Hash, NewEvent, RecordedEvent, Timestamp};
use chancery_store::{AppendRequest, EventLog, ExpectedVersion};
use chancery_store_sled::{SledConfig, SledLog, keys};

use crate::report::{Figure, Section, machine, med, today};
use crate::synthetic::{Acts, register_timelines};
use chancery_testkit::ci::find_tool;
use chancery_testkit::ports::free_port;

/// One append's worth of events of one timeline.
fn events(timeline: usize, count: usize, seed: u64) -> Vec<NewEvent> {
    let mut acts = Acts::new(seed, timeline);
    (0..count).map(|i| acts.next_act(i as u64)).collect()
}

async fn open_log(dir: &Path, timelines: usize) -> anyhow::Result<SledLog> {
    let log = SledLog::open(dir.join("log"), SledConfig::default())?;
    register_timelines(&log, timelines).await?;
    Ok(log)
}

/// The disk's limit: 300-byte appends to a file, each followed by `fdatasync`.
pub fn disk_loop(dir: &Path, appends: usize) -> anyhow::Result<f64> {
    let mut file = File::create(dir.join("fdatasync-loop"))?;
    let record = [b'x'; 300];
    let started = Instant::now();
    for _ in 0..appends {
        file.write_all(&record)?;
        file.sync_data()?;
    }
    Ok(appends as f64 / started.elapsed().as_secs_f64())
}

/// Chancery, one writer awaiting each acknowledgement, one event per append.
pub async fn one_writer(dir: &Path, appends: usize) -> anyhow::Result<f64> {
    batches(dir, 1, appends).await
}

/// Chancery, `writers` concurrent writers each appending one event at a time to its own
/// timeline. Returns events/s and the average commit group size.
pub async fn concurrent_writers(
    dir: &Path,
    writers: usize,
    each: usize,
) -> anyhow::Result<(f64, f64)> {
    let log = Arc::new(open_log(dir, writers).await?);
    let before = log.writer_stats();
    let work: Vec<Vec<NewEvent>> = (0..writers)
        .map(|w| events(w, each, 100 + w as u64))
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for events in work {
        let log = Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            let timeline = events[0].timeline.clone();
            for e in events {
                log.append(AppendRequest {
                    refers_within: None,
                    timeline: timeline.clone(),
                    expected: ExpectedVersion::Any,
                    events: vec![e],
                })
                .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = log.writer_stats();
    let total = (writers * each) as f64;
    Ok((
        total / seconds,
        total / (after.groups - before.groups).max(1) as f64,
    ))
}

/// Chancery, one writer appending batches of `batch` events.
pub async fn batches(dir: &Path, batch: usize, count: usize) -> anyhow::Result<f64> {
    let log = open_log(dir, 1).await?;
    let work: Vec<Vec<NewEvent>> = events(0, batch * count, 21)
        .chunks(batch)
        .map(<[NewEvent]>::to_vec)
        .collect();
    let timeline = work[0][0].timeline.clone();
    let started = Instant::now();
    for events in work {
        log.append(AppendRequest {
            refers_within: None,
            timeline: timeline.clone(),
            expected: ExpectedVersion::Any,
            events,
        })
        .await?;
    }
    Ok((batch * count) as f64 / started.elapsed().as_secs_f64())
}

/// The raw writes of the same events: their stored records framed into an append-only file with
/// one write and one fdatasync per group, their posting lists' blocks inserted into sled and
/// their ids into a map in memory, as Chancery's writer does (records sealed beforehand, off the
/// clock). What is left to Chancery is its own
/// work: the channel, sequencing (validation, versions, idempotency), sealing and bookkeeping.
pub fn raw_sled(dir: &Path, group: usize, total: usize) -> anyhow::Result<f64> {
    let path = dir.join("raw-sled");
    let db = sled::Config::new()
        .path(&path)
        .segment_size(8 * 1024 * 1024)
        .flush_every_ms(None)
        .open()?;
    let tree = db.open_tree("index")?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path.join("records"))?;
    let mut prev = Hash::GENESIS;
    let mut groups: Vec<(Vec<u8>, Vec<RecordedEvent>)> = Vec::new();
    for (i, chunk) in events(0, total, 31).chunks(group).enumerate() {
        let mut frames = Vec::new();
        let mut sealed = Vec::new();
        for (j, e) in chunk.iter().enumerate() {
            let position = (i * group + j + 1) as u64;
            let record = RecordedEvent::seal(
                position,
                position,
                Timestamp::from_unix_micros(1),
                prev,
                e.clone(),
            );
            prev = record.hash();
            let stored = record.stored();
            frames.extend_from_slice(&u32::try_from(stored.len())?.to_le_bytes());
            frames.extend_from_slice(&[0; 5]);
            frames.extend_from_slice(stored);
            sealed.push(record);
        }
        groups.push((frames, sealed));
    }
    let mut file = file;
    let mut postings = chancery_store_sled::postings::Postings::default();
    let mut ids = std::collections::HashMap::new();
    let started = Instant::now();
    for (frames, sealed) in groups {
        file.write_all(&frames)?;
        file.sync_data()?;
        let mut listed = Vec::new();
        for record in &sealed {
            keys::record_postings(record, &record.view()?, &mut listed);
            ids.insert(record.id(), record.position());
        }
        let writes = postings.append(&tree, &listed)?;
        let n = writes.len();
        for (k, v) in writes {
            tree.insert(k, v)?;
        }
        for _ in 0..(n / 32 + 8) {
            // As the writer does (see chancery-store-sled's writer.rs): without it, memory grows.
            crossbeam_epoch::pin().flush();
        }
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// A private PostgreSQL cluster on loopback, stopped when dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    as_user: Option<&'static str>,
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Postgres {
    /// Starts a cluster if `initdb`, `pg_ctl` and `pgbench` are installed; `None` (said on
    /// standard error) if not.
    pub fn start() -> anyhow::Result<Option<Postgres>> {
        if ["initdb", "pg_ctl", "pgbench", "psql"]
            .iter()
            .any(|t| find_tool(t).is_none())
        {
            eprintln!(
                "appends: PostgreSQL (initdb, pg_ctl, pgbench, psql) is not installed: its baseline is left out"
            );
            return Ok(None);
        }
        let dir = tempfile::tempdir()?;
        // PostgreSQL refuses to run as root: run it as the `postgres` user then.
        let as_user = running_as_root().then_some("postgres");
        if let Some(user) = as_user {
            let status = Command::new("chown")
                .args(["-R", &format!("{user}:{user}")])
                .arg(dir.path())
                .status()?;
            if !status.success() {
                bail!("cannot hand {} to {user}", dir.path().display());
            }
        }
        let port = free_port()?;
        let pg = Postgres { dir, port, as_user };
        let data = pg.dir.path().join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "bench",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='{}' -c synchronous_commit=on -c fsync=on -c shared_buffers=128MB -c max_connections=50",
            pg.dir.path().display()
        );
        pg.run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-o",
                &options,
                "-l",
                &pg.dir.path().join("log").to_string_lossy(),
                "-w",
                "start",
            ],
        )?;
        pg.sql("CREATE TABLE events (position bigserial PRIMARY KEY, stream int NOT NULL, version int NOT NULL, payload jsonb NOT NULL, UNIQUE (stream, version))")?;
        Ok(Some(pg))
    }

    fn command(&self, program: &str) -> Command {
        match self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--", program]);
                c
            }
            None => Command::new(program),
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let out = self
            .command(program)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .with_context(|| format!("cannot run {program}"))?;
        if !out.status.success() {
            bail!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs the client `program` connected to the cluster as `bench`, with `args` after the
    /// connection's.
    fn run_client(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let port = self.port.to_string();
        let mut all = vec!["-h", "127.0.0.1", "-p", &port, "-U", "bench"];
        all.extend_from_slice(args);
        self.run(program, &all)
    }

    fn sql(&self, statement: &str) -> anyhow::Result<String> {
        self.run_client(
            "psql",
            &[
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                statement,
            ],
        )
    }

    /// Appends per second with `clients` clients, each appending one event per transaction to
    /// its own stream with the next version (the expected-version check of an event store).
    pub fn appends(&self, clients: usize, seconds: u64) -> anyhow::Result<f64> {
        self.sql("TRUNCATE events")?;
        let payload = format!("{{\"summary\": \"{}\"}}", "x".repeat(270));
        let script = format!(
            "INSERT INTO events (stream, version, payload) VALUES (:client_id, (SELECT coalesce(max(version), 0) + 1 FROM events WHERE stream = :client_id), '{payload}');\n"
        );
        let script_path = self.dir.path().join("append.sql");
        std::fs::write(&script_path, script)?;
        if let Some(user) = self.as_user {
            let _ = Command::new("chown")
                .arg(format!("{user}:{user}"))
                .arg(&script_path)
                .status();
        }
        let out = self.run_client(
            "pgbench",
            &[
                "-n",
                "-c",
                &clients.to_string(),
                "-j",
                &clients.min(2).to_string(),
                "-T",
                &seconds.to_string(),
                "-f",
                &script_path.to_string_lossy(),
                "postgres",
            ],
        )?;
        out.lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("pgbench printed no tps: {out}"))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                &data.to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
    }
}

/// Concurrent writers of the concurrent figure.
const WRITERS: usize = 64;

/// Every run's value of each figure.
#[derive(Default)]
struct Measured {
    disk: Vec<f64>,
    one: Vec<f64>,
    concurrent: Vec<f64>,
    /// The mean commit group of the concurrent writers.
    groups: Vec<f64>,
    raw_at_group: Vec<f64>,
    hundred: Vec<f64>,
    raw_hundred: Vec<f64>,
    /// PostgreSQL with 1 and with 8 clients, when it is installed.
    pg1: Vec<f64>,
    pg8: Vec<f64>,
}

impl Measured {
    /// Run `run` of every figure at scale `n`, each in a fresh directory.
    async fn measure_run(
        &mut self,
        run: usize,
        n: usize,
        postgres: Option<&Postgres>,
    ) -> anyhow::Result<()> {
        let scratch = tempfile::tempdir()?;
        let fresh = |name: &str| -> anyhow::Result<std::path::PathBuf> {
            let p = scratch.path().join(format!("{name}-{run}"));
            std::fs::create_dir_all(&p)?;
            Ok(p)
        };
        self.disk.push(disk_loop(&fresh("disk")?, n)?);
        self.one.push(one_writer(&fresh("one")?, n).await?);
        let (rate, group) =
            concurrent_writers(&fresh("concurrent")?, WRITERS, (n * 4 / WRITERS).max(2)).await?;
        self.concurrent.push(rate);
        self.groups.push(group);
        let g = group.round().max(1.0) as usize;
        self.raw_at_group
            .push(raw_sled(&fresh("raw-group")?, g, (n * 4).max(g))?);
        self.hundred
            .push(batches(&fresh("hundred")?, 100, (n / 10).max(1)).await?);
        self.raw_hundred
            .push(raw_sled(&fresh("raw-hundred")?, 100, (n * 10).max(100))?);
        if let Some(pg) = postgres {
            let seconds = (n as u64 / 200).clamp(2, 20);
            self.pg1.push(pg.appends(1, seconds)?);
            self.pg8.push(pg.appends(8, seconds)?);
        }
        eprintln!(
            "appends run {run}: disk {:.0}/s, one writer {:.0}/s, 64 writers {:.0}/s (group {:.1}), raw sled at that group {:.0}/s, batches of 100 {:.0}/s, raw sled batches of 100 {:.0}/s, postgres 1 {:?} 8 {:?}",
            self.disk[run],
            self.one[run],
            self.concurrent[run],
            self.groups[run],
            self.raw_at_group[run],
            self.hundred[run],
            self.raw_hundred[run],
            self.pg1.last(),
            self.pg8.last()
        );
        Ok(())
    }

    /// The report's figures: medians of the runs against their baselines.
    fn figures(&self) -> Vec<Figure> {
        let (disk, raw_at_group, raw_hundred) = (
            med(&self.disk),
            med(&self.raw_at_group),
            med(&self.raw_hundred),
        );
        let group = med(&self.groups);
        let mut figures = vec![
            Figure::of_runs(
                "durable appends, one writer awaiting each ack",
                self.one.clone(),
                "events/s",
            )
            .against("the disk's fdatasync loop (300-byte appends)", disk)
            .target("≥ 0.8 × baseline", |f| f.value >= 0.8 * disk),
            Figure::of_runs(
                format!(
                    "durable appends, {WRITERS} writers, one event each, {WRITERS} timelines (ANY)"
                ),
                self.concurrent.clone(),
                "events/s",
            )
            .against(
                format!("raw sled, same keys, batches of {group:.0} events (the mean group)"),
                raw_at_group,
            )
            .target("≥ 0.6 × raw sled at the same group size", |f| {
                f.value >= 0.6 * raw_at_group
            })
            .noted(format!(
                "Mean commit group of the {WRITERS}-writer run: {group:.1} events (runs: {:?}).",
                self.groups
            )),
            Figure::of_runs(
                "durable appends in batches of 100",
                self.hundred.clone(),
                "events/s",
            )
            .against(
                "raw sled, same keys, batch of 100 + flush + fdatasync",
                raw_hundred,
            )
            .target("≥ 0.8 × baseline", |f| f.value >= 0.8 * raw_hundred),
        ];
        if !self.pg8.is_empty() {
            let pg8 = med(&self.pg8);
            figures.push(
                Figure::of_runs(
                    format!("durable appends, {WRITERS} writers (as above), against PostgreSQL"),
                    self.concurrent.clone(),
                    "events/s",
                )
                .against("PostgreSQL, 8 clients, one transaction per append", pg8)
                .target("≥ 10 × baseline", |f| f.value >= 10.0 * pg8)
                .noted(format!(
                    "PostgreSQL with 1 client: {:.0} appends/s (runs {:?}); with 8: runs {:?}.",
                    med(&self.pg1),
                    self.pg1,
                    self.pg8
                )),
            );
        }
        figures
    }
}

/// Runs every append benchmark `runs` times at scale `n` (appends per figure).
pub async fn run(n: usize, runs: usize, out: &Path, command: &str) -> anyhow::Result<()> {
    let postgres = Postgres::start()?;
    let mut measured = Measured::default();
    for run in 0..runs {
        measured.measure_run(run, n, postgres.as_ref()).await?;
    }
    let mut notes = vec![
        "Every Chancery figure is durable: an append is acknowledged once its commit group's lines are in the write-ahead log and the log is fdatasynced (one fdatasync per group; sled itself is flushed and fdatasynced at checkpoints, every second; see the strace test). Raw sled writes the same keys as Chancery's writer for the same events, sealed beforehand off the clock, so the ratio is Chancery's own cost (validation, encoding, hashing, the writer's channel and bookkeeping). PostgreSQL runs in a private cluster on loopback with synchronous_commit and fsync on, an `events` table with a bigserial position, UNIQUE(stream, version) and a jsonb payload, one INSERT per transaction computing the next version of the client's stream.".to_owned(),
    ];
    if postgres.is_none() {
        notes.push(
            "PostgreSQL was not installed on this machine: its baseline is missing from this run."
                .into(),
        );
    }
    let section = Section {
        title: "Durable appends".into(),
        command: command.into(),
        machine: machine(),
        date: today(),
        scale: format!(
            "{n} appends per single-writer figure, {} per concurrent figure, {runs} runs",
            n * 4
        ),
        figures: measured.figures(),
        notes,
    };
    crate::report::write(out, "appends", section)
}
