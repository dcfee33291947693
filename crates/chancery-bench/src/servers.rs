//! The `chancery` servers the benchmarks measure, all started through the one launcher,
//! [`Server::start`]: where their logs go, the demo server of the live benchmarks (fan-out and
//! load), and the peak memory they report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::Server;
use crate::report::MB;

/// Bytes in a MiB: the live benchmarks report memory in MiB.
const MIB: f64 = 1024.0 * 1024.0;

/// Where the logs of a benchmark's servers go: a file of its own for each start.
pub struct Logs {
    dir: tempfile::TempDir,
    started: usize,
}

impl Logs {
    /// Logs in a fresh temporary directory named after `prefix`.
    pub fn new(prefix: &str) -> anyhow::Result<Logs> {
        Ok(Logs {
            dir: tempfile::Builder::new().prefix(prefix).tempdir()?,
            started: 0,
        })
    }

    /// The log file of the next start, of `what`.
    pub fn next(&mut self, what: &str) -> PathBuf {
        self.started += 1;
        self.dir.path().join(format!("{what}-{}.log", self.started))
    }
}

/// Starts `chancery serve --demo` (the demo timeline loaded, as the live benchmarks need it)
/// over `data`, where `token` is a recorder's token; its log goes to `log`. Answers once
/// `/readyz` says 200.
pub async fn start_demo(
    bin: &Path,
    data: &Path,
    log: PathBuf,
    token: &str,
) -> anyhow::Result<Server> {
    let recorder = format!("recorder:{token}");
    let (server, _) = Server::start(bin, data, log, &["--demo", "--token", &recorder]).await?;
    Ok(server)
}

/// The server's peak resident memory (VmHWM), in MiB.
pub fn peak_rss_mib(server: &Server) -> anyhow::Result<f64> {
    let (_, peak_mb) = server.memory()?;
    Ok(peak_mb * MB / MIB)
}

/// Spawns `count` subscriber tasks, `spawn(i, subscribed)` each, and waits until every one has
/// said on `subscribed` that it subscribed, or why it could not; answers their tasks.
pub async fn spawn_subscribers<T>(
    count: usize,
    patience: Duration,
    spawn: impl Fn(usize, mpsc::Sender<anyhow::Result<()>>) -> JoinHandle<T>,
) -> anyhow::Result<Vec<JoinHandle<T>>> {
    let (subscribed_tx, mut subscribed_rx) = mpsc::channel(count.max(1));
    let tasks = (0..count)
        .map(|i| spawn(i, subscribed_tx.clone()))
        .collect();
    drop(subscribed_tx);
    for _ in 0..count {
        tokio::time::timeout(patience, subscribed_rx.recv())
            .await
            .context("the subscribers did not all subscribe in time")?
            .context("a subscriber task ended before it subscribed")??;
    }
    Ok(tasks)
}
