//! UmaDB, the baseline of the ingest bench: finding its server (`$CHANCERY_UMADB`, or `umadb` on
//! PATH, as PyPI's `umadb` package installs it), running it on a free loopback port, and driving
//! it with its own Rust gRPC client (`umadb-client`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use chancery_domain::NewEvent;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use umadb_client::AsyncUmaDbClient;
use umadb_dcb::{DcbEvent, DcbEventStoreAsync};

use crate::client::{await_line, process_cpu_seconds, spawn_logged, tail, terminate};
use chancery_testkit::ci::find_tool;
use chancery_testkit::ports::free_port;

/// The version the harness is written against: the one `tools/test` installs.
pub const VERSION: &str = "0.7.8";
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// The UmaDB server executable: `$CHANCERY_UMADB` (which must then exist), or `umadb` on PATH;
/// `None` if neither.
pub fn umadb_bin() -> anyhow::Result<Option<PathBuf>> {
    if let Some(path) = std::env::var_os("CHANCERY_UMADB") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("CHANCERY_UMADB is {}, which is not a file", path.display());
        }
        return Ok(Some(path));
    }
    Ok(find_tool("umadb"))
}

/// What `umadb --version` says, for the report.
pub fn version(bin: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {} --version", bin.display()))?;
    if !out.status.success() {
        bail!("{} --version failed ({})", bin.display(), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A running UmaDB server, killed if dropped before [`UmaDb::stop`].
pub struct UmaDb {
    child: Child,
    /// `http://127.0.0.1:PORT`, as its client wants it.
    pub url: String,
    log: PathBuf,
}

impl UmaDb {
    /// Starts `bin` over the database in directory `db` (created if empty) on a free loopback
    /// port, its output to `log`; answers once it has said it listens and the port accepts a
    /// connection.
    pub async fn start(bin: &Path, db: &Path, log: PathBuf) -> anyhow::Result<UmaDb> {
        // UmaDB takes port 0 but then says it listens on port 0: it is given a port instead.
        let address = format!("127.0.0.1:{}", free_port()?);
        let mut command = Command::new(bin);
        command
            .arg("--listen")
            .arg(&address)
            .arg("--db-path")
            .arg(db.join("uma.db"));
        let (child, mut lines) = spawn_logged(&mut command, "UmaDB", &log)?;
        // UmaDB binds its port before it prints this line (in umadb-server's
        // `start_server_with_options`).
        await_line(&mut lines, "UmaDB", &log, START_TIMEOUT, |line| {
            line.starts_with("UmaDB is listening on").then_some(Ok(()))
        })
        .await?;
        TcpStream::connect(&address)
            .await
            .with_context(|| format!("UmaDB said it listens but {address} refuses connections"))?;
        // The rest of its standard output (nothing more while it runs, a line at shutdown) is
        // drained so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(UmaDb {
            child,
            url: format!("http://{address}"),
            log,
        })
    }

    /// A client of its own: a gRPC channel, so one HTTP/2 connection.
    pub async fn connect(&self) -> anyhow::Result<AsyncUmaDbClient> {
        AsyncUmaDbClient::connect(self.url.clone(), None, None, None)
            .await
            .with_context(|| format!("cannot connect to UmaDB at {}", self.url))
    }

    /// CPU time the server process has used so far, in seconds (user + system).
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        process_cpu_seconds(self.child.id().context("UmaDB has exited")?)
    }

    /// Stops the server with SIGTERM, which it handles by shutting down.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        terminate(self.child.id().context("UmaDB has exited")?)?;
        let status = tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .with_context(|| format!("UmaDB did not stop within {STOP_TIMEOUT:?} of SIGTERM"))??;
        if !status.success() {
            bail!("UmaDB stopped with {status}; its log:\n{}", tail(&self.log));
        }
        Ok(())
    }
}

/// The UmaDB event for a Chancery event: its canonical JSON as data (the bytes Chancery records
/// of it), its kind as type, its id, and a tag per timeline, party and issue (what an event
/// store would let a reader select it by).
pub fn event(e: &NewEvent) -> DcbEvent {
    let mut tags = vec![format!("timeline:{}", e.timeline)];
    for party in e.parties() {
        tags.push(format!("party:{party}"));
    }
    for issue in &e.issues {
        tags.push(format!("issue:{issue}"));
    }
    DcbEvent::default()
        .event_type(e.kind().name())
        .tags(tags)
        .data(e.to_canonical_json())
        .uuid(*e.id.as_uuid())
}

/// Appends `events` in one request, unconditionally; answers once UmaDB acknowledged it.
pub async fn append(client: &AsyncUmaDbClient, events: Vec<DcbEvent>) -> anyhow::Result<u64> {
    client
        .append(events, None, None)
        .await
        .context("an UmaDB append failed")
}

/// Reads every event from the start through the read stream: answers how many, and the bytes
/// of their data.
pub async fn read_all(client: &AsyncUmaDbClient) -> anyhow::Result<(u64, u64)> {
    let mut stream = client
        .read(None, None, false, None)
        .await
        .context("UmaDB refused the read")?;
    let (mut events, mut bytes) = (0u64, 0u64);
    loop {
        let batch = stream.next_batch().await.context("UmaDB's read stream")?;
        if batch.is_empty() {
            break;
        }
        events += batch.len() as u64;
        bytes += batch.iter().map(|e| e.event.data.len() as u64).sum::<u64>();
    }
    Ok((events, bytes))
}
