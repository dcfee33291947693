//! `chancery-bench`: measures Chancery next to its baselines in one run and writes
//! `docs/benchmarks.md` (and `.json`). Scales are flags with small defaults, so that CI can run a
//! smoke pass of every benchmark.

/// Replay and serving allocate many small objects; mimalloc spent a third less time in
/// allocation than the system allocator on the 1M-event replay (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod appends;
mod nats;
mod replay;
mod report;
mod synthetic;

use std::path::PathBuf;

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

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!(
        "cargo run --release -p chancery-bench -- {}",
        args.join(" ")
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command = command_line();
    match cli.command {
        Bench::All { events } => {
            appends::run(
                (events / 100).max(50) as usize,
                cli.runs,
                &cli.out,
                &command,
            )
            .await?;
            replay::run(events, cli.runs, None, &cli.out, &command).await?;
        }
        Bench::Appends { appends } => appends::run(appends, cli.runs, &cli.out, &command).await?,
        Bench::Replay { events, keep } => {
            replay::run(events, cli.runs, keep.as_deref(), &cli.out, &command).await?
        }
        Bench::Nats { events, writers } => {
            nats::run(events, writers, cli.runs, &cli.out, &command).await?
        }
        Bench::RawScan { dir } => replay::raw_scan(&dir)?,
        Bench::ReplayChild { dir } => replay::replay(&dir).await?,
    }
    Ok(())
}
