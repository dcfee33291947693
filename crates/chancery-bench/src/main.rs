//! `chancery-bench`: measures Chancery next to its baselines in one run and writes
//! `docs/benchmarks.md` (and `.json`). Scales are flags with small defaults, so that CI can run a
//! smoke pass of every benchmark.

/// Replay and serving allocate many small objects, which mimalloc allocates faster than the
/// system allocator (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod appends;
mod client;
mod compare;
mod compression;
mod datasets;
mod fanout;
mod ingest;
mod load;
mod nats;
mod reads;
mod replay;
mod report;
mod servers;
mod synthetic;
mod umadb;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "chancery-bench",
    about = "Benchmarks of Chancery against baselines measured in the same run"
)]
struct Cli {
    /// Where the report goes.
    #[arg(long, global = true, default_value = "docs")]
    out: PathBuf,
    /// Measurements per figure (the report gives the median).
    #[arg(long, global = true, default_value_t = 3)]
    runs: usize,
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Every benchmark.
    All {
        #[arg(long, default_value_t = 20_000)]
        events: u64,
    },
    /// Durable appends against the disk's fdatasync loop, raw sled and PostgreSQL.
    Appends {
        /// Appends per single-writer figure (four times as many for the concurrent one).
        #[arg(long, default_value_t = 200)]
        appends: usize,
    },
    /// Replay of a generated log into all projections, against a raw sled scan with decoding.
    Replay {
        #[arg(long, default_value_t = 20_000)]
        events: u64,
        /// Keep the generated log here and reuse it on later runs.
        #[arg(long)]
        keep: Option<PathBuf>,
        /// Another `chancery` binary (an older build): in each run it and this build's
        /// `chancery` (beside this executable, or `$CHANCERY_BIN`) each run `chancery replay` on
        /// the same log, the order alternating, for a ratio from one run.
        #[arg(long)]
        baseline_bin: Option<PathBuf>,
    },
    /// The real `chancery` binary on a generated store: time to ready (first start and restart),
    /// GraphQL reads under 32 keep-alive clients against a bare axum handler answering the same
    /// bytes, server memory, and bytes on disk per byte of canonical event. Needs `chancery`
    /// beside this executable (`cargo build --release -p chancery`) or `$CHANCERY_BIN`.
    Reads {
        #[arg(long, default_value_t = 20_000)]
        events: u64,
        /// Seconds of load per query and target in each run.
        #[arg(long, default_value_t = reads::DEFAULT_SECONDS)]
        seconds: f64,
        /// Keep the generated store here and reuse it on later runs.
        #[arg(long)]
        keep: Option<PathBuf>,
        /// Another `chancery` binary (an older build) whose reads asked afresh are measured on
        /// the same store beside this build's, alternating per run: server CPU per request and
        /// p99, every answer checked to be byte-identical to this build's.
        #[arg(long)]
        baseline_bin: Option<PathBuf>,
    },
    /// Live fan-out: the real `chancery` binary (beside this executable, or `$CHANCERY_BIN`) with
    /// WebSocket subscribers on `events` while mutations record events at a steady rate: delivery
    /// latency from send to receipt, and every position seen once, in order, by every subscriber.
    Fanout {
        #[arg(long, default_value_t = fanout::DEFAULT_SUBSCRIBERS)]
        subscribers: usize,
        /// Events per second recorded.
        #[arg(long, default_value_t = fanout::DEFAULT_RATE)]
        rate: u64,
        #[arg(long, default_value_t = fanout::DEFAULT_SECONDS)]
        seconds: u64,
        /// Keep-alive HTTP connections sending the mutations.
        #[arg(long, default_value_t = fanout::DEFAULT_WRITERS)]
        writers: usize,
        /// Distinct selections the subscribers are spread over (each its own subscription
        /// group on the server).
        #[arg(long, default_value_t = 1)]
        selections: usize,
    },
    /// A bounded load test of the real `chancery` binary (beside this executable, or
    /// `$CHANCERY_BIN`): writers (some racing on expectedVersion), readers and WebSocket
    /// subscribers for `--seconds`, then checks that nothing failed but the conflicts, that every
    /// acknowledged event is in the log once, and that every subscriber saw every position once,
    /// in order; reports the server's peak RSS. Exits non-zero when a check fails.
    Load {
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Writers appending with any version.
        #[arg(long, default_value_t = 4)]
        writers: usize,
        /// Writers appending with the version they last saw, so that they conflict.
        #[arg(long, default_value_t = 2)]
        racers: usize,
        #[arg(long, default_value_t = 4)]
        readers: usize,
        #[arg(long, default_value_t = 8)]
        subscribers: usize,
    },
    /// Appends on NATS JetStream at R1 and R3 through Chancery's backend, against raw JetStream
    /// publishes in the same run (starts its own nats-servers: `$CHANCERY_NATS_SERVER` or PATH).
    Nats {
        /// Appends per measurement.
        #[arg(long, default_value_t = 500)]
        events: u64,
        /// Concurrent writers (and raw publishers) of the concurrent figures.
        #[arg(long, default_value_t = 4)]
        writers: usize,
    },
    /// Chancery's write path and full read against UmaDB in the same run: the real `chancery`
    /// binary (beside this executable, or `$CHANCERY_BIN`) recording events through GraphQL
    /// mutations from 1, 8 and 64 keep-alive writers and in batches of 100, its server CPU per
    /// event, and `GET /export` of a whole store; UmaDB's server (`$CHANCERY_UMADB` or `umadb` on
    /// PATH: `pip install umadb==0.7.8`) appending the same events through its gRPC client, and
    /// reading them all back.
    Ingest {
        /// Events in the store read whole.
        #[arg(long, default_value_t = 20_000)]
        events: u64,
        /// Events of the one-writer phase (8 writers write half as many each, 64 writers a
        /// quarter, batches of 100 a fifth as many requests).
        #[arg(long, default_value_t = 1_000)]
        appends: usize,
        /// Another `chancery` binary (an older build) measured beside this one, alternating per
        /// run, for a before/after comparison.
        #[arg(long)]
        baseline_bin: Option<PathBuf>,
    },
    /// Bulk import of a generated GDELT 2.0 file with `chancery import --format gdelt`, against
    /// raw sled ingest in batches of 1,000, with the importer's memory.
    Datasets {
        #[arg(long, default_value_t = 20_000)]
        rows: u64,
        /// Another `chancery` binary whose import is measured beside this build's, alternately.
        #[arg(long)]
        baseline_bin: Option<PathBuf>,
    },
    /// Writes a realistic GDELT 2.0 event file of any size (for the datasets bench, or to try
    /// an import by hand).
    GdeltFile {
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        #[arg(long, default_value_t = 2018)]
        seed: u64,
        #[arg(long)]
        file: PathBuf,
    },
    /// Rewrites `benchmarks.md` from `benchmarks.json` in the report directory, after a note
    /// was added to a section by hand.
    Render,
    /// Before and after: puts the figures of a report written by an older build (its
    /// `--out` directory) beside this build's, for the benchmarks named.
    Compare {
        /// The older build's report directory (holding its `benchmarks.json`).
        #[arg(long)]
        before: PathBuf,
        /// What the older build is, for the report ("a8de6c2, before the lean log").
        #[arg(long)]
        label: String,
        /// The benchmarks to compare (`replay`, `reads`, ...).
        #[arg(required = true)]
        benchmarks: Vec<String>,
    },
    /// sled's zstd compression, on and off: the trees of a stopped store's sled databases (the
    /// log's index, the projections) copied into fresh databases both ways and compared.
    Compression {
        /// A data directory (as `reads --keep` or `replay --keep` leave one).
        #[arg(long)]
        dir: PathBuf,
    },
    #[command(hide = true)]
    RawScan {
        #[arg(long)]
        dir: PathBuf,
    },
    #[command(hide = true)]
    ReplayChild {
        #[arg(long)]
        dir: PathBuf,
    },
}

/// The command that ran, as a shell would take it again: an argument holding a space or a
/// quote is quoted.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).map(|a| shell_word(&a)).collect();
    format!(
        "cargo run --release -p chancery-bench -- {}",
        args.join(" ")
    )
}

fn shell_word(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command = command_line();
    cli.command.run(cli.runs, &cli.out, &command).await
}

impl Bench {
    /// Runs this benchmark `runs` times, its report going to `out`; `command` is how it was run.
    async fn run(self, runs: usize, out: &Path, command: &str) -> anyhow::Result<()> {
        match self {
            Bench::All { events } => all(events, runs, out, command).await,
            Bench::Compare {
                before,
                label,
                benchmarks,
            } => compare::run(&before, &label, &benchmarks, out, command),
            Bench::Render => report::render(out),
            Bench::Compression { dir } => compression::run(&dir, runs, out, command),
            Bench::Datasets { rows, baseline_bin } => {
                datasets::run(rows, baseline_bin.as_deref(), runs, out, command)
            }
            Bench::GdeltFile { rows, seed, file } => datasets::write_gdelt_file(&file, rows, seed),
            Bench::Appends { appends } => appends::run(appends, runs, out, command).await,
            Bench::Replay {
                events,
                keep,
                baseline_bin,
            } => {
                replay::run(
                    events,
                    runs,
                    keep.as_deref(),
                    baseline_bin.as_deref(),
                    out,
                    command,
                )
                .await
            }
            Bench::Reads {
                events,
                seconds,
                keep,
                baseline_bin,
            } => {
                let scale = reads::Scale {
                    events,
                    seconds,
                    keep,
                    baseline_bin,
                };
                reads::run(&scale, runs, out, command).await
            }
            Bench::Fanout {
                subscribers,
                rate,
                seconds,
                writers,
                selections,
            } => {
                let scale = fanout::Scale {
                    subscribers,
                    rate,
                    seconds,
                    writers,
                    selections: selections.max(1),
                };
                fanout::run(scale, runs, out, command).await
            }
            Bench::Load {
                seconds,
                writers,
                racers,
                readers,
                subscribers,
            } => {
                let scale = load::Scale {
                    seconds,
                    writers,
                    racers,
                    readers,
                    subscribers,
                };
                load::run(scale).await
            }
            Bench::Nats { events, writers } => nats::run(events, writers, runs, out, command).await,
            Bench::Ingest {
                events,
                appends,
                baseline_bin,
            } => {
                let scale = ingest::Scale {
                    events,
                    appends,
                    baseline_bin,
                };
                ingest::run(scale, runs, out, command).await
            }
            Bench::RawScan { dir } => replay::raw_scan(&dir),
            Bench::ReplayChild { dir } => replay::replay(&dir).await,
        }
    }
}

/// What `all` runs: appends, replay, fan-out, reads and ingest, scaled from `events`.
async fn all(events: u64, runs: usize, out: &Path, command: &str) -> anyhow::Result<()> {
    appends::run((events / 100).max(50) as usize, runs, out, command).await?;
    replay::run(events, runs, None, None, out, command).await?;
    fanout::run(fanout::Scale::default(), runs, out, command).await?;
    let scale = reads::Scale {
        events,
        seconds: reads::DEFAULT_SECONDS,
        keep: None,
        baseline_bin: None,
    };
    reads::run(&scale, runs, out, command).await?;
    let scale = ingest::Scale {
        events,
        appends: ingest::appends_for_all(events),
        baseline_bin: None,
    };
    ingest::run(scale, runs, out, command).await
}
