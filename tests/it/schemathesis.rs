//! API fuzzing: schemathesis generates queries and mutations from the GraphQL schema (its custom
//! scalars from `tests/clients/schemathesis_hooks.py`) and sends them to `chancery serve --demo`
//! with an admin token. Whatever it sends, the server must answer below 500, every error must
//! carry one of the API's codes, none may be `INTERNAL` (an internal error is a bug; if one
//! happens its details must stay masked), and the server must log no panic.
//!
//! schemathesis itself counts every GraphQL error as a failure (its "GraphQL server error"
//! check), although refusing bad input is what the API should do, so its exit status is not
//! the verdict: the test reads the requests and responses it recorded (a HAR file) instead.
//! Examples per operation: `CHANCERY_SCHEMATHESIS_EXAMPLES` (default 20); the seed is random
//! unless `CHANCERY_SCHEMATHESIS_SEED` is set, and printed either way.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use chancery_testkit::api::ERROR_CODES;
use chancery_testkit::ci;
use serde_json::Value;

use crate::support::*;

/// schemathesis from `$CHANCERY_SCHEMATHESIS` or the virtualenv tools/test makes.
fn schemathesis() -> Option<PathBuf> {
    let program = std::env::var_os("CHANCERY_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/tools/py-fuzz/bin/schemathesis"));
    let runs = Command::new(&program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        let why = format!(
            "schemathesis is not at {} (pip install -r tests/clients/requirements-fuzz.txt, \
             or run tools/test; or set CHANCERY_SCHEMATHESIS)",
            program.display()
        );
        ci::not_run(&why, "the API fuzzing test checked nothing");
        return None;
    }
    Some(program)
}

/// What one recorded exchange broke, if anything.
fn problems_of(entry: &Value) -> Vec<String> {
    let request = entry["request"]["postData"]["text"]
        .as_str()
        .unwrap_or("<no body>");
    let status = entry["response"]["status"].as_u64().unwrap_or(0);
    let text = entry["response"]["content"]["text"].as_str().unwrap_or("");
    let mut problems = Vec::new();
    if status >= 500 || status == 0 {
        problems.push(format!("status {status} for {request}: {text}"));
    }
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        problems.push(format!("a body that is not JSON for {request}: {text}"));
        return problems;
    };
    for error in body["errors"].as_array().into_iter().flatten() {
        let code = error["extensions"]["code"].as_str().unwrap_or("<none>");
        let message = error["message"].as_str().unwrap_or("");
        if !ERROR_CODES.contains(&code) {
            problems.push(format!(
                "an error without a known code ({code}) for {request}: {error}"
            ));
        } else if code == "INTERNAL" {
            let masked = message.starts_with("internal error (reference ")
                && message.ends_with("); the server log has the details");
            let what = if masked { "a masked" } else { "an UNMASKED" };
            problems.push(format!("{what} internal error for {request}: {error}"));
        }
    }
    problems
}

#[test]
fn generated_queries_and_mutations_never_break_the_server() {
    let Some(schemathesis) = schemathesis() else {
        return;
    };
    let examples = std::env::var("CHANCERY_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "20".into());
    let server = demo(&[]);

    let reports = tempfile::tempdir().unwrap();
    let har = reports.path().join("run.har");
    let mut command = Command::new(&schemathesis);
    command
        .arg("run")
        .arg(format!("{}/graphql", server.url))
        .args(["--max-examples", &examples])
        .args(["--continue-on-failure", "--no-shrink", "--no-color"])
        .args(["--workers", "1", "--generation-database", "none"])
        .args(["--request-timeout", "60"])
        .args(["--header", &format!("Authorization: Bearer {ADMIN}")])
        .args(["--report", "har", "--report-har-path"])
        .arg(&har)
        .env(
            "SCHEMATHESIS_HOOKS",
            workspace().join("tests/clients/schemathesis_hooks.py"),
        )
        .current_dir(reports.path());
    if let Ok(seed) = std::env::var("CHANCERY_SCHEMATHESIS_SEED") {
        command.args(["--seed", &seed]);
    }
    let output = command.output().expect("schemathesis runs");
    let said = format!("{}{}", stdout(&output), stderr(&output));
    let summary = said
        .lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .collect::<Vec<_>>()
        .join("\n");
    eprintln!("schemathesis (exit {:?}):\n{summary}", output.status.code());

    // Every operation was fuzzed: none was skipped for a scalar it cannot generate.
    let count_after = |label: &str| {
        said.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.trim().split('/').next()?.parse::<u32>().ok())
    };
    let (selected, tested) = (count_after("Selected:"), count_after("Tested:"));
    assert!(
        selected.is_some() && selected == tested && !said.contains("Errored:"),
        "schemathesis did not test every operation (selected {selected:?}, tested {tested:?}):\n{said}"
    );

    let report: Value = serde_json::from_slice(
        &std::fs::read(&har).unwrap_or_else(|e| panic!("no HAR report ({e}):\n{said}")),
    )
    .unwrap();
    let entries = report["log"]["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut by_status: BTreeMap<u64, usize> = BTreeMap::new();
    let mut by_code: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for entry in &entries {
        *by_status
            .entry(entry["response"]["status"].as_u64().unwrap_or(0))
            .or_default() += 1;
        let text = entry["response"]["content"]["text"].as_str().unwrap_or("");
        if let Ok(body) = serde_json::from_str::<Value>(text) {
            for error in body["errors"].as_array().into_iter().flatten() {
                let code = error["extensions"]["code"].as_str().unwrap_or("<none>");
                *by_code.entry(code.to_owned()).or_default() += 1;
            }
        }
        problems.extend(problems_of(entry));
    }
    eprintln!(
        "API fuzzing: {} requests, statuses {by_status:?}, error codes {by_code:?}",
        entries.len()
    );
    assert!(
        entries.len() >= tested.unwrap_or(0) as usize,
        "fewer requests than operations:\n{said}"
    );
    assert!(
        problems.is_empty(),
        "{} bad answers:\n{}\nserver log:\n{}",
        problems.len(),
        problems.join("\n"),
        server.log()
    );
    let log = server.log();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    assert_eq!(
        server.http().status("/healthz"),
        Some(200),
        "the server is not healthy after the run; its log:\n{log}"
    );
}
