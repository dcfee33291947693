//! The `chancery` command: import, export, verify (and, with the server, serve and replay).

/// Turns transparent huge pages off for this process, unless `MIMALLOC_ALLOW_THP` says
/// otherwise. mimalloc asks for huge pages on its arenas, and a page fault in one then zeroes
/// 2 MiB: replaying 1M events spent a tenth of its time there and peaked 60 MB higher
/// (docs/benchmarks.md). The server's heap is a few hundred MB, too small for huge pages to
/// save much on address translation.
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // Where the kernel refuses, the process keeps huge pages: slower, never wrong.
        let _ = rustix::thread::disable_transparent_huge_pages(true);
    }
}

/// Replay and serving allocate many small objects; mimalloc spent a third less time in
/// allocation than the system allocator on the 1M-event replay (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chancery::config::{FileConfig, LogFormat, Overrides, ServerConfig};
use chancery::data::{DEFAULT_DATA_DIR, DataDir};
use chancery::datasets::{DatasetImport, DatasetImportError, DatasetReport, InputFile, RowFormat};
use chancery::exchange::{self, ExportFormat, Progress, Source};
use chancery::server::{App, shutdown_signal};
use chancery_datasets::Format as DatasetFormat;
use chancery_projections::{CheckpointPolicy, Projections};
use chancery_store_sled::SledLog;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(
    name = "chancery",
    version,
    about = "An event-sourced store for diplomatic timelines"
)]
struct Cli {
    /// The data directory (the event log and the projections live inside it) [default: ./data].
    #[arg(long, global = true, env = "CHANCERY_DATA")]
    data: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API (and GraphiQL at /graphiql) over the data directory.
    Serve(Box<ServeArgs>),
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Import an event file (one event per line), restore an export, or import coded event
    /// datasets (GDELT 2.0, ICEWS, POLECAT) into a timeline.
    ///
    /// The whole input is checked first: if any line is bad, nothing is written and the line and
    /// field are reported. Events already recorded are skipped, so an import can be re-run. An
    /// export restores into an empty store with the same positions, times and hashes.
    Import(Box<ImportArgs>),
    /// Export the log up to its current head (NDJSON restores exactly; CSV is for spreadsheets;
    /// TimelineJS publishes one timeline).
    Export {
        /// Write here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Ndjson)]
        format: Format,
        /// The timeline a TimelineJS export shows (its slug).
        #[arg(long, value_name = "SLUG")]
        timeline: Option<String>,
    },
    /// Rebuild every projection from the log, from position 1.
    Replay,
    /// Walk the hash chain and report the first broken position, if any.
    Verify {
        /// Verify this export file instead of the store.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// The address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "CHANCERY_LISTEN")]
    listen: Option<String>,
    /// Load the example scenario first, if the store is empty.
    #[arg(long)]
    demo: bool,
    /// A TOML configuration file (flags and environment override it).
    #[arg(long, env = "CHANCERY_CONFIG")]
    config: Option<PathBuf>,
    /// Access tokens as role:token or role:token:timeline,timeline... (roles: reader, recorder,
    /// admin); repeat, or separate by commas.
    #[arg(
        long = "token",
        env = "CHANCERY_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    tokens: Vec<String>,
    /// Whether reads need no token [default: true].
    #[arg(long, env = "CHANCERY_OPEN_READS")]
    open_reads: Option<bool>,
    /// Browser origins allowed to open WebSockets besides the server's own (`*` for any).
    #[arg(
        long = "allow-origin",
        env = "CHANCERY_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,
    /// Whether introspection and field suggestions are on [default: true].
    #[arg(long, env = "CHANCERY_INTROSPECTION")]
    introspection: Option<bool>,
    /// Seconds a WebSocket may wait before connection_init [default: 3].
    #[arg(long, env = "CHANCERY_WS_INIT_TIMEOUT")]
    ws_init_timeout: Option<u64>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "CHANCERY_LOG_FORMAT")]
    log_format: Option<String>,
    /// Longest a request may take, in milliseconds [default: 30000].
    #[arg(long, env = "CHANCERY_REQUEST_TIMEOUT_MS")]
    request_timeout_ms: Option<u64>,
    /// Longest wait for `atLeast`, in milliseconds [default: 10000].
    #[arg(long, env = "CHANCERY_MAX_WAIT_MS")]
    max_wait_ms: Option<u64>,
    /// Subscriptions one WebSocket may hold [default: 100].
    #[arg(long, env = "CHANCERY_MAX_SUBSCRIPTIONS")]
    max_subscriptions_per_connection: Option<usize>,
    /// WebSocket connections the server holds at once [default: 10000].
    #[arg(long, env = "CHANCERY_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Frames a WebSocket may have queued before a grouped subscriber falls back to reading
    /// alone [default: 1024].
    #[arg(long, env = "CHANCERY_SUBSCRIBER_QUEUE")]
    subscriber_queue: Option<usize>,
    /// Least milliseconds between two writes of a WebSocket's live frames; frames due sooner go
    /// out together (0: every frame at once) [default: 5].
    #[arg(long, env = "CHANCERY_WS_FLUSH_INTERVAL_MS")]
    ws_flush_interval_ms: Option<u64>,
    /// Largest query complexity (fields counted over the selection) [default: 5000].
    #[arg(long, env = "CHANCERY_MAX_COMPLEXITY")]
    max_complexity: Option<usize>,
    /// Deepest query nesting [default: 15].
    #[arg(long, env = "CHANCERY_MAX_DEPTH")]
    max_depth: Option<usize>,
    /// Where the log lives: sled (embedded, in the data directory) or
    /// nats://host:port[,host:port...] (a JetStream stream) [default: sled].
    #[arg(long, env = "CHANCERY_STORE")]
    store: Option<String>,
    /// The JetStream stream of the log [default: CHANCERY].
    #[arg(long, env = "CHANCERY_NATS_STREAM")]
    nats_stream: Option<String>,
    /// Copies of the stream in the cluster: 1, 3 or 5 [default: 1 for one server, 3 for more].
    #[arg(long, env = "CHANCERY_NATS_REPLICAS")]
    nats_replicas: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Ndjson,
    Csv,
    /// One timeline's acts as TimelineJS's JSON (needs --timeline).
    Timelinejs,
    /// One timeline's acts as GDELT 2.0 event rows (needs --timeline).
    Gdelt,
    /// One timeline's acts as POLECAT rows (needs --timeline).
    Polecat,
}

#[derive(Args)]
struct ImportArgs {
    /// Who the events are recorded by (`recordedBy`, in their hashed records): a name of 1 to 64
    /// characters [default: the OS user, from $USER or $LOGNAME]. An export's records keep who
    /// recorded them.
    #[arg(long = "as", value_name = "NAME")]
    recorded_by: Option<String>,
    /// What the files are: ndjson (an event file or an export, told apart by its first line), or
    /// a coded event dataset: gdelt (GDELT 2.0 event files), icews, polecat.
    #[arg(long, value_enum, default_value_t = ImportFormat::Ndjson)]
    format: ImportFormat,
    /// The timeline a dataset's events go to (created when missing).
    #[arg(long, value_name = "SLUG")]
    timeline: Option<String>,
    /// Only a dataset's events between two parties, either way round: `--dyad USA,CHN`.
    #[arg(long, value_name = "A,B")]
    dyad: Option<String>,
    /// Only a dataset's events on or after this date (YYYY, YYYY-MM or YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// Only a dataset's events on or before this date (YYYY, YYYY-MM or YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
    /// Tag every imported event with this issue (registered when missing), so that positions
    /// and standoffs are computed on it.
    #[arg(long, value_name = "SLUG")]
    issue: Option<String>,
    /// Import a dataset's good rows and list every malformed one, instead of stopping at the
    /// first with nothing written.
    #[arg(long)]
    skip_bad: bool,
    /// The files (plain, .gz or .zip); `-` reads standard input. An NDJSON import takes one.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ImportFormat {
    Ndjson,
    Gdelt,
    Icews,
    Polecat,
}

fn main() -> ExitCode {
    without_huge_pages();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    // A task that does not end (a write sled never finishes on a failing disk) must not keep
    // the process from exiting once its work is done.
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            // A reader that stops early (`chancery export | head`) is not an error.
            let broken_pipe = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A progress bar on standard error, drawn only when it is a terminal.
fn progress_bar() -> (ProgressBar, impl Fn(Progress) + Sync) {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {percent:>3}% {elapsed_precise} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let handle = bar.clone();
    let update = move |p: Progress| {
        if let Some(total) = p.total {
            handle.set_length(total);
        }
        handle.set_message(p.phase);
        handle.set_position(p.done);
    };
    (bar, update)
}

/// A progress display counted in rows, with their rate: a dataset's size in rows is not known
/// until it has been read once.
fn rows_progress() -> (ProgressBar, impl Fn(Progress) + Sync) {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} {human_pos} rows ({per_sec}) {elapsed_precise}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let handle = bar.clone();
    let update = move |p: Progress| {
        handle.set_message(p.phase);
        handle.set_position(p.done);
    };
    (bar, update)
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHANCERY_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(args: ServeArgs, data: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let overrides = Overrides {
        listen: args.listen,
        data,
        tokens: args.tokens,
        open_reads: args.open_reads,
        allowed_origins: args.allowed_origins,
        introspection: args.introspection,
        ws_init_timeout_seconds: args.ws_init_timeout,
        log_format: args.log_format,
        request_timeout_ms: args.request_timeout_ms,
        max_wait_ms: args.max_wait_ms,
        max_subscriptions_per_connection: args.max_subscriptions_per_connection,
        max_connections: args.max_connections,
        subscriber_queue: args.subscriber_queue,
        ws_flush_interval_ms: args.ws_flush_interval_ms,
        max_complexity: args.max_complexity,
        max_depth: args.max_depth,
        store: args.store,
        nats_stream: args.nats_stream,
        nats_replicas: args.nats_replicas,
    };
    let config = ServerConfig::resolve(file, overrides)?;
    init_logging(config.log_format, "info");
    tracing::info!(?config, "starting");
    provide_open_files(config.limits.max_connections);
    let app = App::open(&config, args.demo).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    println!("chancery: listening on http://{address} (GraphiQL at http://{address}/graphiql)");
    std::io::stdout().flush()?;
    app.serve(listener, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Files a server holds besides its WebSockets: sled's, the listener, the runtime's.
const FILES_BESIDES_CONNECTIONS: u64 = 512;

/// Raises this process's soft open-file limit to what `max_connections` WebSockets need, as far
/// as the hard limit allows, and warns when that is not enough: past the limit the listener
/// cannot accept, and a new connection waits until another closes.
fn provide_open_files(max_connections: usize) {
    let needed = max_connections as u64 + FILES_BESIDES_CONNECTIONS;
    match rlimit::increase_nofile_limit(needed) {
        Ok(limit) if limit >= needed => {}
        Ok(limit) => tracing::warn!(
            limit,
            needed,
            "the open-file limit ({limit}) is below the {needed} files that --max-connections \
             {max_connections} needs: raise the hard limit (ulimit -Hn, or LimitNOFILE= under \
             systemd) or lower --max-connections"
        ),
        Err(e) => tracing::warn!(
            needed,
            "cannot raise the open-file limit to the {needed} files that --max-connections \
             {max_connections} needs ({e}): raise it (ulimit -n, or LimitNOFILE= under systemd) \
             or lower --max-connections"
        ),
    }
}

/// Runs one command over the data directory.
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let data = DataDir::new(
        cli.data
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
    );
    match cli.command {
        Command::Serve(args) => serve(*args, cli.data).await,
        Command::Schema => {
            print!("{}", chancery_graphql::sdl());
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(args) => match args.format {
            ImportFormat::Ndjson => import(&data, *args).await,
            ImportFormat::Gdelt => import_dataset(&data, *args, DatasetFormat::Gdelt).await,
            ImportFormat::Icews => import_dataset(&data, *args, DatasetFormat::Icews).await,
            ImportFormat::Polecat => import_dataset(&data, *args, DatasetFormat::Polecat).await,
        },
        Command::Export {
            out,
            format,
            timeline,
        } => match (format, timeline) {
            (Format::Timelinejs, timeline) => {
                export_timelinejs(&data, out.as_deref(), timeline).await
            }
            (Format::Gdelt, timeline) => {
                export_rows(&data, out.as_deref(), timeline, RowFormat::Gdelt).await
            }
            (Format::Polecat, timeline) => {
                export_rows(&data, out.as_deref(), timeline, RowFormat::Polecat).await
            }
            (_, Some(_)) => anyhow::bail!(
                "--timeline chooses the timeline of --format timelinejs, gdelt or polecat; NDJSON \
                 and CSV exports hold the whole log"
            ),
            (Format::Ndjson, None) => export(&data, out.as_deref(), ExportFormat::Ndjson).await,
            (Format::Csv, None) => export(&data, out.as_deref(), ExportFormat::Csv).await,
        },
        Command::Replay => replay(&data).await,
        Command::Verify { file } => verify(&data, file.as_deref()).await,
    }
}

/// Opens the embedded log of the data directory, saying which directory failed.
fn open_log(data: &DataDir) -> anyhow::Result<SledLog> {
    data.open_log()
        .with_context(|| format!("cannot open the store in {}", data.root().display()))
}

/// Events (or records, for a restore) per second over `seconds`, never dividing by zero.
fn rate(count: u64, seconds: f64) -> f64 {
    count as f64 / seconds.max(1e-9)
}

/// Who `chancery import` records events by when `--as` does not say: the OS user, or
/// `unknown` when the environment does not name one.
fn os_user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(std::env::var_os)
        .map(|name| name.to_string_lossy().trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The name to record imported events by: `--as`, else the OS user; checked before the store is
/// opened, as a token's name is (trimmed, 1 to 64 characters, no control characters).
fn importer_name(recorded_by: Option<String>) -> anyhow::Result<String> {
    let recorded_by = recorded_by.unwrap_or_else(os_user).trim().to_owned();
    chancery_domain::validate_recorded_by(&recorded_by).map_err(|e| {
        anyhow::anyhow!(
            "--as {recorded_by:?}: {e} (give the name to record events by with --as NAME)"
        )
    })?;
    Ok(recorded_by)
}

/// `chancery import`: imports an event file or restores an export, then reports what was written.
async fn import(data: &DataDir, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let dataset_only = [
        ("--timeline", args.timeline.is_some()),
        ("--dyad", args.dyad.is_some()),
        ("--from", args.from.is_some()),
        ("--to", args.to.is_some()),
        ("--issue", args.issue.is_some()),
        ("--skip-bad", args.skip_bad),
    ];
    if let Some((flag, _)) = dataset_only.iter().find(|(_, set)| *set) {
        anyhow::bail!(
            "{flag} is for coded datasets (--format gdelt, icews or polecat); an NDJSON file names its own timelines"
        );
    }
    let [file] = args.files.as_slice() else {
        anyhow::bail!(
            "an NDJSON import reads one file; give one, or import them one after the other"
        );
    };
    let recorded_by = importer_name(args.recorded_by)?;
    let log = open_log(data)?;
    let (bar, update) = progress_bar();
    let started = std::time::Instant::now();
    let source = Source::File(file.to_path_buf());
    let result = exchange::import(&log, &source, &recorded_by, &update).await;
    bar.finish_and_clear();
    let summary = result.with_context(|| format!("{} was not imported", file.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let (verb, unit) = if summary.restored {
        ("restored", "records")
    } else {
        ("imported", "events")
    };
    println!(
        "{verb} {} {unit} ({} already present) from {}; head at position {} ({:.0} {unit}/s)",
        summary.written,
        summary.already_present,
        file.display(),
        summary.head,
        rate(summary.read, seconds)
    );
    Ok(ExitCode::SUCCESS)
}

/// Parses a flag's value with the domain's own parser, naming the flag when it fails.
fn flag<T, E: std::fmt::Display>(
    name: &str,
    value: Option<&str>,
    parse: impl Fn(&str) -> Result<T, E>,
) -> anyhow::Result<Option<T>> {
    value
        .map(|v| parse(v.trim()).map_err(|e| anyhow::anyhow!("{name} {v:?}: {e}")))
        .transpose()
}

/// `chancery import --format gdelt|icews|polecat`: imports coded event datasets into a timeline
/// and reports rows read, imported, already there and skipped (by reason).
async fn import_dataset(
    data: &DataDir,
    args: ImportArgs,
    format: DatasetFormat,
) -> anyhow::Result<ExitCode> {
    let recorded_by = importer_name(args.recorded_by)?;
    let Some(timeline) = flag("--timeline", args.timeline.as_deref(), |s| {
        chancery_domain::TimelineSlug::new(s)
    })?
    else {
        anyhow::bail!(
            "--format {format} imports into one timeline: name it with --timeline SLUG (created when missing)"
        );
    };
    let dyad = match args.dyad.as_deref() {
        None => None,
        Some(text) => {
            let parts: Vec<&str> = text.split(',').map(str::trim).collect();
            let [a, b] = parts.as_slice() else {
                anyhow::bail!(
                    "--dyad {text:?}: give two party codes separated by a comma, such as USA,CHN"
                );
            };
            let code = |c: &str| {
                chancery_domain::PartyCode::new(c)
                    .map_err(|e| anyhow::anyhow!("--dyad {text:?}: {e}"))
            };
            Some((code(a)?, code(b)?))
        }
    };
    let from = flag(
        "--from",
        args.from.as_deref(),
        chancery_domain::ValidTime::parse,
    )?;
    let to = flag(
        "--to",
        args.to.as_deref(),
        chancery_domain::ValidTime::parse,
    )?;
    if let (Some(f), Some(t)) = (&from, &to) {
        if t.end_exclusive() <= f.earliest() {
            anyhow::bail!("--to {t} is before --from {f}");
        }
    }
    let issue = flag("--issue", args.issue.as_deref(), |s| {
        chancery_domain::IssueSlug::new(s)
    })?;
    if args.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        anyhow::bail!("standard input (-) can be read once");
    }
    for file in args.files.iter().filter(|f| f.as_os_str() != "-") {
        if !file.is_file() {
            anyhow::bail!("{} is not a file", file.display());
        }
    }
    let log = open_log(data)?;
    // Standard input is read twice like any file: kept in the data directory meanwhile.
    let spool = if args.files.iter().any(|f| f.as_os_str() == "-") {
        let path = data
            .root()
            .join(format!(".import-stdin-{}", std::process::id()));
        let mut file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        std::io::copy(&mut std::io::stdin().lock(), &mut file)
            .context("cannot read standard input")?;
        Some(path)
    } else {
        None
    };
    let files: Vec<InputFile> = args
        .files
        .iter()
        .map(|f| match &spool {
            Some(path) if f.as_os_str() == "-" => InputFile {
                path: path.clone(),
                name: "standard input".to_owned(),
            },
            _ => InputFile::at(f.clone()),
        })
        .collect();
    let job = DatasetImport {
        format,
        files,
        timeline,
        dyad,
        from,
        to,
        issue,
        skip_bad: args.skip_bad,
        recorded_by,
    };
    let (bar, update) = rows_progress();
    let started = std::time::Instant::now();
    let result = chancery::datasets::import(&log, &job, &update).await;
    bar.finish_and_clear();
    if let Some(path) = &spool {
        let _ = std::fs::remove_file(path);
    }
    let report = match result {
        Err(e @ DatasetImportError::Malformed { .. }) => {
            anyhow::bail!("{e} (--skip-bad imports the good rows and lists every bad one)")
        }
        other => other?,
    };
    let seconds = started.elapsed().as_secs_f64();
    print_report(&job, &report, seconds);
    Ok(ExitCode::SUCCESS)
}

/// What a dataset import did, as a user reads it: the totals on standard output, every
/// malformed row and examples of the rest on standard error.
fn print_report(job: &DatasetImport, r: &DatasetReport, seconds: f64) {
    for row in &r.malformed {
        eprintln!("skipped {}, line {}: {}", row.file, row.line, row.why);
    }
    for row in &r.unmapped_examples {
        eprintln!("no event from {}, line {}: {}", row.file, row.line, row.why);
    }
    let mut registered = Vec::new();
    if r.timeline_registered {
        registered.push(format!("the timeline {}", job.timeline));
    }
    if r.issue_registered {
        if let Some(issue) = &job.issue {
            registered.push(format!("the issue {issue}"));
        }
    }
    if !r.parties_registered.is_empty() {
        registered.push(format!(
            "{} parties ({})",
            r.parties_registered.len(),
            r.parties_registered.join(", ")
        ));
    }
    println!(
        "{} rows read from {} file(s): {} imported into {}, {} already imported, {} skipped",
        r.rows,
        job.files.len(),
        r.imported,
        job.timeline,
        r.already_imported,
        r.skipped()
    );
    if r.filtered_out > 0 {
        println!("  {} outside --dyad/--from/--to", r.filtered_out);
    }
    if !r.malformed.is_empty() {
        println!("  {} malformed (listed above)", r.malformed.len());
    }
    for (why, count) in &r.unmapped {
        println!("  {count} with {why}");
    }
    if !registered.is_empty() {
        println!("registered {}", registered.join(", "));
    }
    println!(
        "head at position {} ({:.0} rows/s)",
        r.head,
        rate(r.rows, seconds)
    );
}

/// `chancery export --format gdelt|polecat`: one timeline's acts as dataset rows.
async fn export_rows(
    data: &DataDir,
    out: Option<&Path>,
    timeline: Option<String>,
    format: RowFormat,
) -> anyhow::Result<ExitCode> {
    let name = if format == RowFormat::Gdelt {
        "gdelt"
    } else {
        "polecat"
    };
    let slug = timeline_to_export(name, timeline)?;
    let log = open_log(data)?;
    let (bar, update) = progress_bar();
    let mut bytes = Vec::new();
    let result = chancery::datasets::export(&log, &slug, format, &mut bytes, &update).await;
    bar.finish_and_clear();
    let written = result?;
    write_whole(out, &bytes)?;
    eprintln!("exported {written} events of {slug} as {name} rows");
    Ok(ExitCode::SUCCESS)
}

/// The timeline an export of one timeline writes, from `--timeline`.
fn timeline_to_export(
    format: &str,
    timeline: Option<String>,
) -> anyhow::Result<chancery_domain::TimelineSlug> {
    let Some(timeline) = timeline else {
        anyhow::bail!("--format {format} writes one timeline: name it with --timeline SLUG");
    };
    chancery_domain::TimelineSlug::new(timeline.trim())
        .map_err(|e| anyhow::anyhow!("--timeline {timeline:?}: {e}"))
}

/// Writes an export made whole in memory to `out` (synced to disk) or to standard output: a file
/// is created only once the export was read in full.
fn write_whole(out: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match out {
        Some(path) => std::fs::write(path, bytes)
            .and_then(|()| std::fs::File::open(path)?.sync_all())
            .with_context(|| format!("cannot write {}", path.display())),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(bytes)
                .and_then(|()| stdout.flush())
                .context("cannot write to standard output")
        }
    }
}

/// `chancery export`: writes the log to a file (synced to disk) or to standard output.
async fn export(
    data: &DataDir,
    out: Option<&Path>,
    format: ExportFormat,
) -> anyhow::Result<ExitCode> {
    let log = open_log(data)?;
    let (bar, update) = progress_bar();
    let written = match out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            let n = exchange::export(&log, format, &mut writer, &update).await?;
            writer
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot finish {}", path.display()))?;
            n
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            let n = exchange::export(&log, format, &mut lock, &update).await?;
            lock.flush().context("cannot write to standard output")?;
            n
        }
    };
    bar.finish_and_clear();
    eprintln!("exported {written} events");
    Ok(ExitCode::SUCCESS)
}

/// `chancery export --format timelinejs`: one timeline's acts as TimelineJS's JSON, written whole
/// (a file is created only once the timeline was found and read).
async fn export_timelinejs(
    data: &DataDir,
    out: Option<&Path>,
    timeline: Option<String>,
) -> anyhow::Result<ExitCode> {
    let slug = timeline_to_export("timelinejs", timeline)?;
    let log = open_log(data)?;
    let (bar, update) = progress_bar();
    let result = chancery::timelinejs::export(&log, &slug, &update).await;
    bar.finish_and_clear();
    let published = result?;
    let mut bytes = serde_json::to_vec_pretty(&published.json)?;
    bytes.push(b'\n');
    write_whole(out, &bytes)?;
    let undated = match published.undated {
        0 => String::new(),
        n => format!("; {n} without a valid time left out"),
    };
    eprintln!(
        "exported {} events of {slug} for TimelineJS{undated}",
        published.slides
    );
    Ok(ExitCode::SUCCESS)
}

/// `chancery replay`: deletes the projections and rebuilds them from position 1.
async fn replay(data: &DataDir) -> anyhow::Result<ExitCode> {
    let log = open_log(data)?;
    let dir = data.projections_dir();
    Projections::reset(&dir).with_context(|| format!("cannot reset {}", dir.display()))?;
    let projections =
        Projections::open(Arc::new(log), Some(&dir), CheckpointPolicy::default()).await?;
    let (bar, update) = progress_bar();
    let started = std::time::Instant::now();
    let replayed = projections
        .catch_up(&|done, total| {
            update(Progress {
                phase: "replaying",
                done,
                total: Some(total),
            })
        })
        .await;
    bar.finish_and_clear();
    let replayed = replayed?;
    projections.close()?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "replayed {replayed} events into the projections in {seconds:.2} s ({:.0} events/s)",
        rate(replayed, seconds)
    );
    Ok(ExitCode::SUCCESS)
}

/// `chancery verify`: walks the hash chain of an export file or of the store; exits with 2 when
/// the chain is broken.
async fn verify(data: &DataDir, file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (bar, update) = progress_bar();
    let (what, verification) = match file {
        Some(path) => (
            path.display().to_string(),
            exchange::verify_export(path, &update)?,
        ),
        None => {
            let log = open_log(data)?;
            (
                data.root().display().to_string(),
                exchange::verify_log(&log, &update).await?,
            )
        }
    };
    bar.finish_and_clear();
    match verification.broken {
        None => {
            println!(
                "{what}: {} events, chain intact, head hash {}",
                verification.records, verification.head_hash
            );
            Ok(ExitCode::SUCCESS)
        }
        Some((position, why)) => {
            println!(
                "{what}: the chain is broken at position {position}: {why} ({} events before it verify)",
                verification.records
            );
            Ok(ExitCode::from(2))
        }
    }
}
