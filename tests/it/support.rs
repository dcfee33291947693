//! Helpers shared by the black-box tests: the built binary, tools the tests need, paths.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The `chancery` binary: `$CHANCERY_BIN`, or built now with the same profile as these tests.
pub fn chancery_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("CHANCERY_BIN") {
            return PathBuf::from(bin);
        }
        let release = !cfg!(debug_assertions);
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "--quiet", "-p", "chancery", "--bin", "chancery"])
            .current_dir(workspace());
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the chancery binary failed");
        // Tests run from target/<profile>/deps; the binary sits one level up.
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap();
        profile_dir.join("chancery")
    })
}

/// Runs `chancery --data <data> <args>`.
pub fn chancery(data: &Path, args: &[&str]) -> Output {
    Command::new(chancery_bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("chancery runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs chancery and fails the test, with its output, unless it succeeds.
pub fn chancery_ok(data: &Path, args: &[&str]) -> String {
    let out = chancery(data, args);
    assert!(
        out.status.success(),
        "chancery {args:?} failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A tool a test needs. In CI its absence fails the test; elsewhere the test says loudly that it
/// did not run.
pub fn require_tool(name: &str, install_hint: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            !in_ci(),
            "{name} is required in CI but is not on PATH ({install_hint})"
        );
        eprintln!(
            "\n*** NOT RUN: {name} is not installed ({install_hint}); this test checked nothing ***\n"
        );
    }
    found
}

/// The committed demo event file.
pub fn demo_file() -> PathBuf {
    workspace().join("crates/chancery/demo/us-china-trade-2018.ndjson")
}

/// What `chancery verify` says of a store: (events, head hash).
pub fn verified(data: &Path) -> (u64, String) {
    let out = chancery_ok(data, &["verify"]);
    let events = out
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok());
    let hash = out.trim().rsplit(' ').next().map(str::to_owned);
    (
        events.unwrap_or_else(|| panic!("unexpected verify output: {out}")),
        hash.unwrap(),
    )
}

/// A running `chancery serve` on a free loopback port, with a fresh data directory of its own;
/// killed (and its directory removed) when dropped, also when a test panics.
pub struct Server {
    /// `http://127.0.0.1:<port>`, as the server printed it.
    pub url: String,
    child: std::process::Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    /// The fresh data directory, when the server owns one (see [`Server::start_in`]).
    _data: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `chancery --data <fresh dir> serve --listen 127.0.0.1:0 <args>` and waits (60 s at
    /// most) for its `listening on` line. `CHANCERY_*` variables are not passed on, so only
    /// `args` configure it.
    pub fn start(args: &[&str]) -> Server {
        let data = tempfile::tempdir().unwrap();
        let mut server = Server::start_in(data.path(), args);
        server._data = Some(data);
        server
    }

    /// Like [`Server::start`], over a data directory the caller chose (and keeps).
    pub fn start_in(data: &Path, args: &[&str]) -> Server {
        use std::io::{BufRead, BufReader, Read};
        use std::process::Stdio;
        use std::sync::{Arc, Mutex, mpsc};
        use std::time::Duration;

        let mut command = Command::new(chancery_bin());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CHANCERY_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chancery serve starts");
        // The server's log, kept to show when something fails.
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(n @ 1..) = stderr.read(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..n]);
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&text);
            }
        });
        // Standard output is read to its end, so the server never blocks on a full pipe.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("chancery: listening on ") {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
        });
        let mut server = Server {
            url: String::new(),
            child,
            log,
            _data: None,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) if url.starts_with("http://") => server.url = url,
            outcome => {
                let status = server.child.try_wait().ok().flatten();
                panic!(
                    "chancery serve {args:?} did not say it was listening within 60 s \
                     ({outcome:?}; exit status {status:?}); its log:\n{}",
                    server.log()
                );
            }
        }
        server
    }

    /// What the server has logged so far (standard error).
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the server with SIGTERM (a clean shutdown) and waits, two minutes at most, for it
    /// to exit.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not stop on SIGTERM within two minutes; its log:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
