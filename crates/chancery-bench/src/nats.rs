//! Appends on NATS JetStream: Chancery's `NatsLog` on a stream at R1 (one nats-server) and at R3
//! (a three-node cluster on loopback), next to raw JetStream publishes of payloads of the same
//! size to a stream with the same settings, all in one run. The nats-servers are started here,
//! with JetStream on files and `sync_interval: always`, and stopped at the end.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::HeaderMap;
use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};
use bytes::Bytes;
use chancery_store::{AppendRequest, EventLog, ExpectedVersion, ReadRequest};
use chancery_store_nats::{NatsConfig, NatsLog};
use chancery_testkit::nats::Nats;
use tokio::task::JoinSet;

use crate::report::{Figure, Section, machine, med, today};
use crate::synthetic::{Acts, registrations};

/// Streams of one measurement each: fresh names and subjects, so no measurement sees another's.
struct Names(u32);

impl Names {
    fn next(&mut self, what: &str) -> (String, String) {
        self.0 += 1;
        (
            format!("BENCH_{}_{}", what.to_uppercase(), self.0),
            format!("bench{}.{what}", self.0),
        )
    }
}

/// What every measurement of one replica count shares: the servers, the replicas, how many
/// single-event appends each measurement makes, and by how many writers where concurrent.
struct Setup<'a> {
    urls: &'a [String],
    replicas: usize,
    events: u64,
    writers: usize,
}

/// Chancery's appends of `events` single-event appends by `writers` tasks spread over
/// `servers` `NatsLog`s (each with its replica, as separate Chancery servers have): events/s,
/// and the mean size of the stored records (what the stream's messages carry).
async fn chancery_appends(
    setup: &Setup<'_>,
    (stream, prefix): (String, String),
    writers: usize,
    servers: usize,
) -> anyhow::Result<(f64, f64)> {
    let (urls, replicas, events) = (setup.urls, setup.replicas, setup.events);
    let dir = tempfile::tempdir()?;
    let mut logs = Vec::new();
    for s in 0..servers {
        let mut config = NatsConfig::new(urls.to_vec(), dir.path().join(format!("replica-{s}")));
        config.stream = stream.clone();
        config.subject_prefix = prefix.clone();
        config.replicas = replicas;
        logs.push(NatsLog::connect(config).await?);
    }
    let registrations = registrations(0);
    let timeline = registrations[0].timeline.clone();
    logs[0]
        .append(AppendRequest {
            refers_within: None,
            timeline,
            expected: ExpectedVersion::NoTimeline,
            events: registrations,
        })
        .await?;
    let registered = logs[0].head().await?.position;
    let per_writer = events / writers as u64;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for w in 0..writers {
        let log = logs[w % servers].clone();
        tasks.spawn(async move {
            let mut acts = Acts::new(0xbe4c + w as u64, 0);
            for i in 0..per_writer {
                let event = acts.next_event(w as u64 * per_writer + i);
                log.append(AppendRequest {
                    refers_within: None,
                    timeline: event.timeline.clone(),
                    expected: ExpectedVersion::Any,
                    events: vec![event],
                })
                .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let written = per_writer * writers as u64;
    // Writes through the other servers reach this one's replica through its follower.
    logs[0].catch_up().await?;
    let records = logs[0]
        .read(ReadRequest::forward(
            registered + 1,
            usize::try_from(written).unwrap_or(usize::MAX),
        ))
        .await?;
    if records.len() as u64 != written {
        bail!("{} records after {written} appends", records.len());
    }
    let mean_size =
        records.iter().map(|r| r.stored().len() as f64).sum::<f64>() / records.len().max(1) as f64;
    // The logs close (their followers stop) before their replicas' directory goes.
    drop(logs);
    drop(dir);
    Ok((written as f64 / seconds, mean_size))
}

/// Raw JetStream publishes: `events` messages of `size` bytes with a `Nats-Msg-Id` each, by
/// `publishers` tasks each awaiting every acknowledgement, to a stream set up as Chancery's is.
async fn raw_publishes(
    setup: &Setup<'_>,
    (stream, prefix): (String, String),
    publishers: usize,
    size: usize,
) -> anyhow::Result<f64> {
    let (urls, replicas, events) = (setup.urls, setup.replicas, setup.events);
    let client = async_nats::ConnectOptions::new()
        .connect(urls.to_vec())
        .await
        .context("cannot connect to NATS")?;
    let jetstream = async_nats::jetstream::new(client);
    jetstream
        .get_or_create_stream(Config {
            name: stream,
            subjects: vec![format!("{prefix}.>")],
            storage: StorageType::File,
            num_replicas: replicas,
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::New,
            duplicate_window: Duration::from_secs(120),
            allow_atomic_publish: true,
            deny_delete: true,
            deny_purge: true,
            ..Config::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the raw stream: {e}"))?;
    let payload = Bytes::from(vec![b'x'; size]);
    let per_publisher = events / publishers as u64;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for p in 0..publishers {
        let jetstream = jetstream.clone();
        let payload = payload.clone();
        let subject = format!("{prefix}.dossier-0");
        tasks.spawn(async move {
            for i in 0..per_publisher {
                let mut headers = HeaderMap::new();
                headers.insert("Nats-Msg-Id", format!("{p}-{i}"));
                jetstream
                    .publish_with_headers(subject.clone(), headers, payload.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("publish: {e}"))?
                    .await
                    .map_err(|e| anyhow::anyhow!("publish acknowledgement: {e}"))?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok((per_publisher * publishers as u64) as f64 / started.elapsed().as_secs_f64())
}

/// The figures of one replica count, each run's value kept.
#[derive(Default)]
struct Measured {
    single: Vec<f64>,
    raw_single: Vec<f64>,
    one_server: Vec<f64>,
    two_servers: Vec<f64>,
    raw_concurrent: Vec<f64>,
    sizes: Vec<f64>,
}

impl Measured {
    /// One run: Chancery's appends with one writer, with `writers` on one server and over two,
    /// and the raw publishes beside them (first on odd runs, last on even ones, so that neither
    /// always finds the disk and the servers warm).
    async fn measure_run(
        &mut self,
        setup: &Setup<'_>,
        names: &mut Names,
        run: usize,
    ) -> anyhow::Result<()> {
        let chancery_first = run % 2 == 0;
        if !chancery_first {
            let size = self.sizes.last().copied().unwrap_or(1024.0) as usize;
            self.measure_raw(setup, names, size).await?;
        }
        let writers = setup.writers;
        let (single, size) = chancery_appends(setup, names.next("log"), 1, 1).await?;
        self.single.push(single);
        self.sizes.push(size);
        let (one, _) = chancery_appends(setup, names.next("log"), writers, 1).await?;
        self.one_server.push(one);
        let (two, _) = chancery_appends(setup, names.next("log"), writers, 2).await?;
        self.two_servers.push(two);
        if chancery_first {
            self.measure_raw(setup, names, size as usize).await?;
        }
        eprintln!(
            "nats R{} run {run}: 1 writer {single:.0}/s (raw {:.0}/s); {writers} \
             writers on 1 server {one:.0}/s, on 2 servers {two:.0}/s (raw {writers} \
             publishers {:.0}/s); records {size:.0} bytes",
            setup.replicas,
            self.raw_single.last().copied().unwrap_or_default(),
            self.raw_concurrent.last().copied().unwrap_or_default(),
        );
        Ok(())
    }

    /// Raw publishes of payloads of `size` bytes: one publisher, then as many as writers.
    async fn measure_raw(
        &mut self,
        setup: &Setup<'_>,
        names: &mut Names,
        size: usize,
    ) -> anyhow::Result<()> {
        let raw_single = raw_publishes(setup, names.next("raw"), 1, size).await?;
        self.raw_single.push(raw_single);
        let raw_concurrent = raw_publishes(setup, names.next("raw"), setup.writers, size).await?;
        self.raw_concurrent.push(raw_concurrent);
        Ok(())
    }

    /// The figures of replica count `replicas` against the raw publishes. The targets
    /// are for R1 on one server and for both replica counts over two.
    fn figures(self, replicas: usize, writers: usize) -> Vec<Figure> {
        let raw_single = med(&self.raw_single);
        let raw_concurrent = med(&self.raw_concurrent);
        let raw_name = format!("raw publish, {writers} concurrent publishers");
        let figure = |name: String, runs: Vec<f64>, baseline_name: &str, baseline: f64| {
            Figure::of_runs(name, runs, "events/s").against(baseline_name, baseline)
        };
        let ratio_target = |figure: Figure| {
            let met = figure.ratio().map(|r| r >= 0.8);
            figure.with_target("≥ 0.8 × baseline", met)
        };
        let on_one_server = figure(
            format!("R{replicas}: appends, {writers} writers on 1 server"),
            self.one_server,
            &raw_name,
            raw_concurrent,
        );
        vec![
            ratio_target(figure(
                format!("R{replicas}: appends, 1 writer awaiting each"),
                self.single,
                "raw JetStream publish, 1 publisher awaiting each ack",
                raw_single,
            )),
            if replicas == 1 {
                ratio_target(on_one_server)
            } else {
                on_one_server
            },
            ratio_target(figure(
                format!("R{replicas}: appends, {writers} writers over 2 servers"),
                self.two_servers,
                &raw_name,
                raw_concurrent,
            )),
        ]
    }
}

/// What `nats-server --version` says, for the report; empty if it says nothing.
fn nats_version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

pub async fn run(
    events: u64,
    writers: usize,
    runs: usize,
    out: &Path,
    command: &str,
) -> anyhow::Result<()> {
    let binary = chancery_testkit::nats::binary()?;
    let version = nats_version(&binary);
    let writers = writers.max(2);
    let mut names = Names(0);
    let mut figures = Vec::new();
    let mut sizes = Vec::new();
    for replicas in [1usize, 3] {
        // One server, or a cluster of three, each with JetStream on files and
        // `sync_interval: always`.
        let servers = Nats::start(&binary, replicas)?;
        let urls = servers.urls();
        let setup = Setup {
            urls: &urls,
            replicas,
            events,
            writers,
        };
        let mut m = Measured::default();
        for run in 0..runs {
            m.measure_run(&setup, &mut names, run).await?;
        }
        drop(servers);
        sizes.extend(m.sizes.iter().copied());
        figures.extend(m.figures(replicas, writers));
    }
    let size = med(&sizes);
    let section = Section {
        title: "Appends on NATS JetStream (R1 and R3)".into(),
        command: command.into(),
        machine: machine(),
        date: today(),
        scale: format!(
            "{events} single-event appends per measurement, {writers} concurrent writers, \
             records of {size:.0} bytes (the raw payloads are as large), {version}, {runs} runs"
        ),
        figures,
        notes: vec![
            "Every server runs on this machine's loopback and disk: R1 is one nats-server, R3 a \
             three-node cluster (three processes, one disk), each with JetStream on files and \
             `sync_interval: always`, started by the benchmark. Each measurement uses a fresh \
             stream with Chancery's settings (file storage, the replica count, a 2-minute \
             duplicate window, atomic batches allowed, deletes and purges denied)."
                .into(),
            "A Chancery append (`NatsLog::append`, one event) goes to its server's appender, \
             which takes every append waiting (up to 1,000 messages), seals the whole group \
             against the local replica with the sequencer (validation, versions, hash chain), \
             publishes it with \
             `Nats-Expected-Last-Sequence` (one message, or an atomic batch) with a `Nats-Msg-Id` \
             per event, and answers each append once the stream acknowledged it (the next group \
             is sealed against the replica with the acknowledged groups it has not applied on \
             top; reads wait for the replica). The raw baseline is \
             one `publish` with a `Nats-Msg-Id` awaiting its ack, from as many publishers. \
             Writers on one server share its groups; writers on two servers (two `NatsLog`s, two \
             replicas) race for the expected sequence, and the loser reads the stream's last \
             sequence, waits for its replica to hold it, and seals again."
                .into(),
        ],
    };
    crate::report::write(out, "nats", section)
}
