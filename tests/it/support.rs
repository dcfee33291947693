//! Helpers shared by the black-box tests: the built binary and its CLI, a served Chancery and
//! GraphQL over HTTP to it, and the workspace's paths. What is not Chancery's own (HTTP, child
//! processes, the CI policy) comes from `chancery-testkit`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use chancery_testkit::http::{Client, Reply};
use chancery_testkit::server::Process;
use chancery_testkit::{PATIENCE, wait};
use serde_json::{Value, json};

/// How long a server may take to be ready (its projections caught up) on a loaded machine.
pub const READY_PATIENCE: Duration = Duration::from_secs(120);

/// How a server says where it listens, the URL following.
pub const LISTENING: &str = "chancery: listening on ";

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

/// Unpacks the data directory written by version 1 (`tests/fixtures/v1-demo-store.tar.gz`, the
/// demo scenario) into `dir`.
pub fn unpack_v1_store(dir: &Path) {
    unpack_store("v1-demo-store.tar.gz", dir);
}

/// Unpacks a data directory archived in `tests/fixtures` into `dir`.
pub fn unpack_store(fixture: &str, dir: &Path) {
    let archive = workspace().join("tests/fixtures").join(fixture);
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(dir)
        .status()
        .expect("tar runs");
    assert!(status.success(), "tar unpacks {}", archive.display());
}

/// The tokens the tests give their servers, one per role.
pub const RECORDER: &str = "recorder-token-0123456789";
pub const ADMIN: &str = "admin-token-0123456789abc";
pub const READER: &str = "reader-token-0123456789ab";

/// A server's arguments: `--token role:token` for each role, then `args`.
pub fn with_tokens(args: &[&str]) -> Vec<String> {
    [("recorder", RECORDER), ("admin", ADMIN), ("reader", READER)]
        .iter()
        .flat_map(|(role, token)| ["--token".to_owned(), format!("{role}:{token}")])
        .chain(args.iter().map(|a| (*a).to_owned()))
        .collect()
}

/// `chancery serve --demo` with a token of each role and `extra`, once it is ready (its
/// projections caught up with the demo).
pub fn demo(extra: &[&str]) -> Server {
    let server = Server::start(&with_tokens(&[&["--demo"], extra].concat()));
    server.wait_ready();
    server
}

/// `chancery --data <data> serve --listen <listen> <args>`, configured by its arguments alone:
/// the tests' `CHANCERY_*` variables are not passed on.
pub fn serve_command<S: AsRef<OsStr>>(data: &Path, listen: &str, args: &[S]) -> Command {
    let mut command = Command::new(chancery_bin());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CHANCERY_") {
            command.env_remove(name);
        }
    }
    command
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", listen])
        .args(args)
        .env("NO_COLOR", "1");
    command
}

/// A mutation that records a statement by the USA on tariffs in the demo's timeline, with the
/// variables `$id` and `$summary`, answering `selection`.
pub fn statement_mutation(selection: &str) -> String {
    format!(
        r#"mutation($id: ID, $summary: String!) {{
  recordEvent(timeline: "us-china-trade", event: {{
    id: $id,
    occurred: {{ start: "2018-05-05" }},
    actors: [{{ party: "USA" }}], targets: [{{ party: "CHN" }}], issues: ["tariffs"],
    summary: $summary,
    sources: [{{ publication: "Test Wire", attribution: OFFICIAL }}],
    act: {{ statement: {{ claim: "talks were constructive", tone: OPTIMISTIC }} }}
  }}) {selection}
}}"#
    )
}

/// A runtime for the WebSocket clients of one test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A running `chancery serve` on a free loopback port, with a fresh data directory of its own;
/// killed (and its directory removed) when dropped, also when a test panics.
pub struct Server {
    /// `http://127.0.0.1:<port>`, as the server printed it.
    pub url: String,
    process: Process,
    /// The fresh data directory, when the server owns one (see [`Server::start_in`]).
    _data: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `chancery --data <fresh dir> serve --listen 127.0.0.1:0 <args>` and waits (60 s at
    /// most) for its `listening on` line. `CHANCERY_*` variables are not passed on, so only
    /// `args` configure it.
    pub fn start<S: AsRef<OsStr>>(args: &[S]) -> Server {
        let data = tempfile::tempdir().unwrap();
        let mut server = Server::start_in(data.path(), args);
        server._data = Some(data);
        server
    }

    /// Like [`Server::start`], over a data directory the caller chose (and keeps).
    pub fn start_in<S: AsRef<OsStr>>(data: &Path, args: &[S]) -> Server {
        let command = serve_command(data, "127.0.0.1:0", args);
        let process = Process::spawn("chancery serve", &command).expect("chancery serve starts");
        let url = process
            .wait_address(LISTENING, PATIENCE)
            .unwrap_or_else(|e| panic!("chancery serve did not say it was listening: {e}"));
        assert!(
            url.starts_with("http://"),
            "chancery serve listens on {url}; its log:\n{}",
            process.log()
        );
        Server {
            url,
            process,
            _data: None,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// An HTTP client of the server that waits as long as a loaded machine may need.
    pub fn http(&self) -> Client {
        Client::new(&self.url).with_timeout(READY_PATIENCE)
    }

    /// Waits until `/readyz` answers 200: the projections caught up with the log.
    pub fn wait_ready(&self) {
        let http = self.http();
        wait::until("the server to be ready", READY_PATIENCE, || {
            http.status("/readyz") == Some(200)
        })
        .unwrap_or_else(|e| panic!("{e}; its log:\n{}", self.log()));
    }

    /// What the server has logged so far (standard output and error).
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Waits until the server's log holds `line`, and answers the log.
    pub fn wait_for_log(&self, line: &str) -> String {
        self.process
            .wait_line(&format!("{line:?}"), READY_PATIENCE, |l| l.contains(line))
            .unwrap_or_else(|e| panic!("{e}"));
        self.log()
    }

    /// Stops the server with SIGTERM (a clean shutdown) and waits, two minutes at most, for it
    /// to exit.
    pub fn stop(&mut self) {
        if let Err(e) = self.process.terminate(Duration::from_secs(120)) {
            panic!(
                "the server did not stop on SIGTERM ({e}); its log:\n{}",
                self.log()
            );
        }
    }

    /// Fails the test, with the server's log, when nothing answered.
    fn answered(&self, what: &str, reply: chancery_testkit::Result<Reply>) -> Reply {
        reply.unwrap_or_else(|e| panic!("{what}: {e}; the server's log:\n{}", self.log()))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Reply {
        self.answered(path, self.http().get(path))
    }

    /// `POST /graphql` with `headers` and `body` exactly as given.
    pub fn post_graphql(&self, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let reply = self.http().request("POST", "/graphql", headers, Some(body));
        self.answered("POST /graphql", reply)
    }

    /// POSTs a GraphQL request as JSON, optionally with a token.
    pub fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Reply {
        self.answered(query, self.http().graphql(token, query, &variables))
    }

    /// A query that must answer without errors: its data.
    pub fn query(&self, query: &str) -> Value {
        let body = self.anonymous(query);
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// The JSON answer to `query` asked without a token or variables, errors and all.
    pub fn anonymous(&self, query: &str) -> Value {
        self.graphql(None, query, json!({})).json_body()
    }

    /// The value of a counter or gauge in `/metrics`.
    pub fn metric(&self, name: &str) -> u64 {
        let metrics = self.get("/metrics").text();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
    }

    /// The position of the log's head.
    pub fn head(&self) -> u64 {
        self.query("{ head { position } }")["head"]["position"]
            .as_u64()
            .unwrap()
    }
}

/// What the tests read of an HTTP answer.
pub trait ReplyExt {
    /// The body as JSON; fails the test, showing the body, when it is not.
    fn json_body(&self) -> Value;
}

impl ReplyExt for Reply {
    fn json_body(&self) -> Value {
        self.json()
            .unwrap_or_else(|e| panic!("not JSON ({e}, status {}): {}", self.status, self.text()))
    }
}
