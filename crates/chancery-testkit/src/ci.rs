//! The policy for tests that need something the machine may lack (a tool, a server, root): in
//! CI (`CI=true`) its absence fails the test; elsewhere the test says loudly that it checked
//! nothing, and returns. A test never skips quietly.

use std::io::Write;
use std::path::PathBuf;

/// Whether the tests run in CI (`CI` is `true` or `1`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The program `name` on PATH, if any.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A test cannot run for `why`, so `unchecked` goes unchecked: fails the test in CI, and says so
/// loudly elsewhere.
///
/// # Panics
///
/// In CI: that is the policy.
pub fn not_run(why: &str, unchecked: &str) {
    assert!(!in_ci(), "required in CI: {why} (tools/test installs it)");
    // Straight to standard error: the test harness would capture `eprintln!` of a passing test.
    let _ = writeln!(std::io::stderr(), "\n*** NOT RUN: {why}; {unchecked} ***\n");
}

/// The program `name` on PATH; without it, [`not_run`] (naming `install_hint`) and `None`.
///
/// # Panics
///
/// In CI, when the program is missing.
pub fn require_tool(name: &str, install_hint: &str, unchecked: &str) -> Option<PathBuf> {
    let found = find_tool(name);
    if found.is_none() {
        not_run(
            &format!("{name} is not installed ({install_hint})"),
            unchecked,
        );
    }
    found
}
