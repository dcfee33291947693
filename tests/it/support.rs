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
