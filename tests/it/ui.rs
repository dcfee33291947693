//! The timeline page end to end: starts the built `chancery serve --demo` on a free loopback port
//! and runs `node tests/ui/e2e.mjs <url> <recorder token> <admin token>`, which drives Debian's
//! headless Chromium through playwright-core (pinned in `tests/ui/package-lock.json`) and saves
//! screenshots under `tests/artifacts/ui/`. Without node, Chromium or `tests/ui/node_modules` the test fails in CI
//! and elsewhere says loudly that it did not run (`tools/test` installs them).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use chancery_testkit::ci;
use chancery_testkit::server::Process;

use crate::support::{ADMIN, RECORDER, demo, workspace};

/// The whole browser run; each of its waits has its own 60 s limit.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// What the script needs, or `None` (having failed in CI, or said NOT RUN elsewhere).
fn prerequisites() -> Option<(PathBuf, PathBuf)> {
    let node = ci::require_tool("node", "Node.js 20 or newer", "this test checked nothing")?;
    let script = workspace().join("tests/ui/e2e.mjs");
    let missing = |what: &str, hint: &str| {
        ci::not_run(
            &format!("{what} is missing ({hint})"),
            "this test checked nothing",
        );
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

/// Runs a command to its end within `limit`, answering (success, its output).
fn run_with_limit(command: &Command, limit: Duration) -> (bool, String) {
    let run = Process::spawn("node", command).expect("node starts");
    match run.wait_exit(limit) {
        Ok(code) => (code == Some(0), run.log()),
        Err(e) => (
            false,
            format!("{e}\n--- killed after {} s ---", limit.as_secs()),
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
    let server = demo(&[]);
    let (ok, output) = run_with_limit(
        Command::new(&node)
            .arg(&script)
            .arg(&server.url)
            .arg(RECORDER)
            .arg(ADMIN)
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
