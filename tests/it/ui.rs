//! The timeline page end to end: starts the built `chancery serve --demo` on a free loopback port
//! and runs `node tests/ui/e2e.mjs <url> <token>`, which drives Debian's headless Chromium through
//! playwright-core (pinned in `tests/ui/package-lock.json`) and saves screenshots under
//! `tests/artifacts/ui/`. Without node, Chromium or `tests/ui/node_modules` the test fails in CI
//! and elsewhere says loudly that it did not run (`tools/test` installs them).

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{chancery_bin, in_ci, require_tool, workspace};

/// The recorder token the test gives the server, and the script uses to record events.
const TOKEN: &str = "0123456789abcdef0123";
/// The whole browser run; each of its waits has its own 60 s limit.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// A `chancery serve` child, killed when dropped.
struct Server {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `chancery serve --demo` on 127.0.0.1:0 and waits for its "listening on" line.
fn serve_demo() -> Server {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(chancery_bin())
        .arg("--data")
        .arg(data.path())
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--token"])
        .arg(format!("recorder:{TOKEN}"))
        .env_remove("CHANCERY_CONFIG")
        .env_remove("CHANCERY_TOKENS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chancery serve starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("chancery: listening on ") {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(url);
            }
        }
    });
    let url = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => url,
        Err(_) => {
            let status = child.try_wait().ok().flatten();
            let _ = child.kill();
            panic!(
                "chancery serve did not say it was listening within 60 s (exit status: {status:?})"
            );
        }
    };
    Server {
        child,
        url,
        _data: data,
    }
}

/// What the script needs, or `None` (having failed in CI, or said NOT RUN elsewhere).
fn prerequisites() -> Option<(PathBuf, PathBuf)> {
    let node = require_tool("node", "Node.js 20 or newer")?;
    let script = workspace().join("tests/ui/e2e.mjs");
    let missing = |what: &str, hint: &str| {
        assert!(!in_ci(), "{what} is required in CI but is missing ({hint})");
        eprintln!("\n*** NOT RUN: {what} is missing ({hint}); this test checked nothing ***\n");
    };
    let chromium = std::env::var_os("CHANCERY_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.is_file() {
        missing(
            &format!("Chromium ({})", chromium.display()),
            "apt-get install chromium, or run tools/test",
        );
        return None;
    }
    let playwright = workspace().join("tests/ui/node_modules/playwright-core/package.json");
    if !playwright.is_file() {
        missing(
            "tests/ui/node_modules (playwright-core)",
            "npm ci --prefix tests/ui, or run tools/test",
        );
        return None;
    }
    Some((node, script))
}

/// Runs a command to its end within `limit`, answering (success, stdout and stderr together).
fn run_with_limit(command: &mut Command, limit: Duration) -> (bool, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut text = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !err.trim().is_empty() {
        text.push_str("\n--- stderr ---\n");
        text.push_str(&err);
    }
    match status {
        Some(status) => (status.success(), text),
        None => (
            false,
            format!("{text}\n--- killed after {} s ---", limit.as_secs()),
        ),
    }
}

#[test]
fn the_timeline_page_shows_replays_and_follows_the_demo_in_chromium() {
    let Some((node, script)) = prerequisites() else {
        return;
    };
    // Screenshots of an earlier run must not pass for this one's.
    let shots = std::env::var_os("CHANCERY_UI_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("tests/artifacts/ui"));
    let names = ["timeline-1280x800.png", "timeline-narrow-390x844.png"];
    for name in names {
        let _ = std::fs::remove_file(shots.join(name));
    }
    let server = serve_demo();
    let (ok, output) = run_with_limit(
        Command::new(&node)
            .arg(&script)
            .arg(&server.url)
            .arg(TOKEN)
            .current_dir(workspace()),
        RUN_LIMIT,
    );
    println!("{output}");
    assert!(
        ok,
        "the timeline page's end-to-end test failed against {}:\n{output}",
        server.url
    );
    for name in names {
        assert!(
            shots.join(name).is_file(),
            "the screenshot {name} was not saved in {}",
            shots.display()
        );
    }
}
