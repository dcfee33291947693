//! Real GraphQL clients against the real server: each test starts `chancery serve --demo` and
//! runs one script of `tests/clients/` (Node.js: graphql-ws, graphql-http's audit, raw `ws`;
//! Python: gql), whose exit status is the verdict. `tools/test` installs the scripts' packages
//! (`npm ci --prefix tests/clients`, and a virtualenv exported as `CHANCERY_PYTHON`); without
//! them a test fails in CI and elsewhere says loudly that it did not run.

use std::path::PathBuf;
use std::process::{Command, Output};

use chancery_testkit::ci;

use crate::support::*;

fn clients_dir() -> PathBuf {
    workspace().join("tests/clients")
}

/// A test that cannot run: fails in CI, and elsewhere says so loudly.
fn not_run(why: &str) {
    ci::not_run(why, "this test checked nothing");
}

/// `node`, once the scripts' packages are installed.
fn node() -> Option<PathBuf> {
    let node = ci::require_tool("node", "Node.js 20 or newer", "this test checked nothing")?;
    if !clients_dir()
        .join("node_modules/graphql-ws/package.json")
        .is_file()
    {
        not_run("tests/clients/node_modules is missing (npm ci --prefix tests/clients)");
        return None;
    }
    Some(node)
}

/// The virtualenv's python (`$CHANCERY_PYTHON`, or the one tools/test makes), once gql imports.
fn python() -> Option<PathBuf> {
    let python = std::env::var_os("CHANCERY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/tools/py-clients/bin/python"));
    if !python.is_file() {
        not_run(&format!(
            "no Python virtualenv for the clients at {} (set CHANCERY_PYTHON)",
            python.display()
        ));
        return None;
    }
    let imports = Command::new(&python)
        .args(["-c", "import gql, aiohttp, websockets"])
        .output();
    if !imports.as_ref().is_ok_and(|o| o.status.success()) {
        not_run(&format!(
            "{} cannot import gql, aiohttp and websockets (pip install -r tests/clients/requirements.txt)",
            python.display()
        ));
        return None;
    }
    Some(python)
}

/// Runs a client script, and fails with its output and the server's log unless it succeeds.
fn run_client(server: &Server, program: &PathBuf, script: &str, args: &[&str]) -> String {
    let output: Output = Command::new(program)
        .arg(clients_dir().join(script))
        .arg(&server.url)
        .args(args)
        .current_dir(clients_dir())
        .output()
        .unwrap_or_else(|e| panic!("{} {script} does not start: {e}", program.display()));
    let (out, err) = (stdout(&output), stderr(&output));
    assert!(
        output.status.success(),
        "{script} failed ({}) against {}\n--- its stdout:\n{out}\n--- its stderr:\n{err}\n--- the server's log:\n{}",
        output.status,
        server.url,
        server.log()
    );
    println!("{out}{err}");
    out
}

#[test]
fn graphql_ws_client_resumes_after_its_last_cursor_with_no_gap_or_duplicate() {
    let Some(node) = node() else { return };
    let server = demo(&[]);
    let out = run_client(&server, &node, "resume.mjs", &[RECORDER]);
    assert!(out.contains("resume: ok:"), "no summary line:\n{out}");
}

#[test]
fn graphql_over_http_passes_graphql_http_s_audit_with_no_error_or_warning() {
    let Some(node) = node() else { return };
    let server = demo(&[]);
    let out = run_client(&server, &node, "audit.mjs", &[]);
    assert!(
        out.contains("0 warnings, 0 errors"),
        "no clean summary line:\n{out}"
    );
}

#[test]
fn websocket_protocols_close_with_the_right_codes() {
    let Some(node) = node() else { return };
    let server = demo(&["--ws-init-timeout", "1"]);
    let out = run_client(&server, &node, "close-codes.mjs", &["1"]);
    assert!(out.contains(" 0 failed"), "no clean summary line:\n{out}");
}

#[test]
fn python_gql_queries_mutates_and_subscribes_over_both_websocket_protocols() {
    let Some(python) = python() else { return };
    let server = demo(&[]);
    let out = run_client(&server, &python, "gql_client.py", &[RECORDER]);
    assert!(
        out.contains("gql_client: ok:") && out.contains("graphql-ws:"),
        "no summary lines:\n{out}"
    );
}
