//! Chancery on NATS JetStream, from the outside: two `chancery serve` processes sharing one stream
//! (what is written through one is streamed and read on the other), the fault test (a
//! three-node JetStream cluster at R3 under concurrent writes through two servers, one NATS node
//! and then one Chancery server SIGKILLed and brought back), and the docker-compose file.
//!
//! The tests start their own nats-servers on free loopback ports: `$CHANCERY_NATS_SERVER`, or
//! `nats-server` on PATH (2.12.1+; `tools/test` installs one). Without one they fail in CI and
//! say loudly elsewhere that they did not run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chancery_testkit::http::Client;
use chancery_testkit::nats::{self, Nats};
use chancery_testkit::server::Process;
use chancery_testkit::{PATIENCE, ci, wait};
use serde_json::{Value, json};

use crate::support::*;
use crate::ws;

/// Progress and figures, straight to standard error: the test harness would capture `println!`,
/// and the closing note of the issue quotes these lines from CI's log.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// How long one event may keep failing (a NATS leader election, a Chancery restart) before the
/// fault test calls it lost.
const WRITE_PATIENCE: Duration = Duration::from_secs(90);

/// A statement by the USA on tariffs in the demo's timeline: every write of these tests.
static STATEMENT: LazyLock<String> =
    LazyLock::new(|| statement_mutation("{ firstPosition deduplicated }"));

/// A UUID v7 for event `seq` of writer `writer`: the time prefix of this run, then the two
/// numbers, so every id of a test is distinct and readable in a failure message.
fn event_id(epoch_ms: u64, writer: usize, seq: u64) -> String {
    format!(
        "{:08x}-{:04x}-7{:03x}-8000-{:012x}",
        epoch_ms >> 16,
        epoch_ms & 0xffff,
        writer,
        seq
    )
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Polls `done` every 50 ms until it holds; fails after 60 s.
fn wait_until(what: &str, done: impl FnMut() -> bool) {
    wait::until(what, PATIENCE, done).unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------------------------
// Chancery servers

/// A `chancery serve` on the NATS store, with a data directory that outlives its process, so
/// that it can be SIGKILLed and started again on the same directory and port.
struct Chancery {
    name: &'static str,
    data: PathBuf,
    args: Vec<String>,
    address: String,
    process: Option<Process>,
}

impl Chancery {
    fn start(name: &'static str, data: PathBuf, args: &[&str]) -> Chancery {
        let mut server = Chancery {
            name,
            data,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            address: "127.0.0.1:0".into(),
            process: None,
        };
        server.launch();
        server
    }

    /// Starts the process on `self.address` (port 0 the first time, the same port after) and
    /// waits for its `listening on` line.
    fn launch(&mut self) {
        let mut args = with_tokens(&["--log-format", "json"]);
        args.extend(self.args.iter().cloned());
        let command = serve_command(&self.data, &self.address, &args);
        let process = Process::spawn(&format!("chancery {}", self.name), &command).unwrap();
        let url = process
            .wait_address(LISTENING, PATIENCE)
            .unwrap_or_else(|e| panic!("{e}"));
        self.address = url.trim_start_matches("http://").to_owned();
        self.process = Some(process);
    }

    /// Waits until `/readyz` answers 200: the projections caught up with the log.
    fn wait_ready(&self) {
        let http = Client::new(&self.address);
        wait_until(&format!("chancery {} to be ready", self.name), || {
            http.status("/readyz") == Some(200)
        });
    }

    fn kill9(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill9().unwrap();
        }
    }

    /// From the server's JSON log: how many events its projections applied to catch up, and the
    /// position they reached (so the checkpoint they started from is the difference).
    fn caught_up(&self) -> (u64, u64) {
        let line = self
            .process
            .as_ref()
            .unwrap()
            .wait_line("\"projections caught up\"", PATIENCE, |l| {
                l.contains("projections caught up")
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let entry: Value = serde_json::from_str(&line).unwrap();
        (
            entry["fields"]["events"].as_u64().unwrap(),
            entry["fields"]["applied"].as_u64().unwrap(),
        )
    }

    fn log(&self) -> String {
        self.process
            .as_ref()
            .map_or_else(|| "(not running)".into(), Process::tail)
    }
}

// ---------------------------------------------------------------------------------------------
// GraphQL

/// A GraphQL request over HTTP: its data, or why it failed (`CODE: message` for a GraphQL
/// error, `transport: ...` when the server could not be reached or answered no JSON).
fn graphql(
    address: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Result<Value, String> {
    let reply = Client::new(address)
        .graphql(token, query, &variables)
        .map_err(|e| format!("transport: {e}"))?;
    let body: Value = serde_json::from_slice(&reply.body).map_err(|_| {
        format!(
            "transport: HTTP {} without JSON: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        )
    })?;
    if let Some(error) = body["errors"].get(0) {
        return Err(format!(
            "{}: {}",
            error["extensions"]["code"].as_str().unwrap_or("NO_CODE"),
            error["message"].as_str().unwrap_or("")
        ));
    }
    Ok(body["data"].clone())
}

fn query(address: &str, query: &str, variables: Value) -> Value {
    graphql(address, None, query, variables)
        .unwrap_or_else(|e| panic!("query on {address} failed: {e}\n{query}"))
}

/// Records a statement with this id and summary: its position and whether it was a retry.
fn record(address: &str, id: &str, summary: &str) -> Result<(u64, bool), String> {
    let data = graphql(
        address,
        Some(RECORDER),
        &STATEMENT,
        json!({ "id": id, "summary": summary }),
    )?;
    let result = &data["recordEvent"];
    match (
        result["firstPosition"].as_u64(),
        result["deduplicated"].as_bool(),
    ) {
        (Some(position), Some(deduplicated)) => Ok((position, deduplicated)),
        _ => Err(format!("unexpected answer: {data}")),
    }
}

fn head(address: &str) -> (u64, String) {
    let data = query(address, "{ head { position hash } }", json!({}));
    (
        data["head"]["position"].as_u64().unwrap(),
        data["head"]["hash"].as_str().unwrap().to_owned(),
    )
}

/// One event of the log, as the `events` query lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    position: u64,
    id: String,
    hash: String,
    prev_hash: String,
}

/// The whole log as a server lists it, page by page, once its projections reached `head`.
fn log_of(address: &str, head: u64) -> Vec<Entry> {
    const PAGE: &str = "query($after: String, $head: Long) {
      events(first: 500, after: $after, atLeast: $head) {
        edges { node { position id hash prevHash } }
        pageInfo { hasNextPage endCursor }
      }
    }";
    let mut entries = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let data = query(address, PAGE, json!({ "after": after, "head": head }));
        let events = &data["events"];
        for edge in events["edges"].as_array().unwrap() {
            let node = &edge["node"];
            entries.push(Entry {
                position: node["position"].as_u64().unwrap(),
                id: node["id"].as_str().unwrap().to_owned(),
                hash: node["hash"].as_str().unwrap().to_owned(),
                prev_hash: node["prevHash"].as_str().unwrap().to_owned(),
            });
        }
        if events["pageInfo"]["hasNextPage"] != true {
            return entries;
        }
        after = events["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}

// ---------------------------------------------------------------------------------------------
// WebSocket subscriptions

mod live {
    //! `events` subscriptions over graphql-transport-ws that follow a server through its
    //! restarts: after a lost connection they resume after the last cursor they saw.

    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use serde_json::{Value, json};
    use tokio::sync::watch;

    use crate::ws::{self, Heard, Socket};

    /// The next JSON message (pings answered on the way), or `None` once the connection is
    /// gone or has said nothing for a minute.
    pub async fn next(socket: &mut Socket) -> Option<Value> {
        loop {
            let Heard::Json(message) = ws::hear(socket).await else {
                return None;
            };
            if message["type"] != "ping" {
                return Some(message);
            }
            ws::send(socket, &json!({ "type": "pong" })).await.ok()?;
        }
    }

    /// What a follower has seen: every (position, id) in the order it came, how many times it
    /// had to reconnect, and the first thing that went wrong, if any.
    #[derive(Default)]
    pub struct Seen {
        pub events: Vec<(u64, String)>,
        pub reconnects: u64,
        pub failure: Option<String>,
    }

    /// Follows `events(after: <last cursor>)` on `address` from the start of the log until
    /// `stop` turns true, reconnecting whenever the connection is lost.
    pub async fn follow(address: String, seen: Arc<Mutex<Seen>>, mut stop: watch::Receiver<bool>) {
        let mut cursor: Option<String> = None;
        let mut connected_before = false;
        while !*stop.borrow() {
            let mut socket = match ws::connect(&address, None, None).await {
                Ok(socket) => socket,
                Err(_) => {
                    // The server is down (restarting): try again shortly, until it listens.
                    tokio::select! {
                        _ = stop.changed() => {}
                        () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                    continue;
                }
            };
            if connected_before {
                seen.lock().unwrap().reconnects += 1;
            }
            connected_before = true;
            let query =
                "subscription($after: String) { events(after: $after) { position id cursor } }";
            let variables = json!({ "after": cursor });
            if ws::subscribe(&mut socket, "log", query, Some(&variables))
                .await
                .is_err()
            {
                continue;
            }
            loop {
                let message = tokio::select! {
                    _ = stop.changed() => return,
                    message = next(&mut socket) => message,
                };
                let Some(message) = message else { break };
                if message["type"] != "next" {
                    seen.lock()
                        .unwrap()
                        .failure
                        .get_or_insert(format!("unexpected {message}"));
                    return;
                }
                let event = &message["payload"]["data"]["events"];
                let (Some(position), Some(id), Some(next_cursor)) = (
                    event["position"].as_u64(),
                    event["id"].as_str(),
                    event["cursor"].as_str(),
                ) else {
                    seen.lock()
                        .unwrap()
                        .failure
                        .get_or_insert(format!("unexpected {message}"));
                    return;
                };
                cursor = Some(next_cursor.to_owned());
                seen.lock().unwrap().events.push((position, id.to_owned()));
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    chancery_testkit::runtime(2)
}

// ---------------------------------------------------------------------------------------------
// Two servers on one JetStream

#[test]
fn a_write_through_one_server_is_streamed_and_read_on_another() {
    let Some(binary) = nats::require("this test checked nothing") else {
        return;
    };
    let nats = Nats::start(&binary, 1).unwrap();
    let store = nats.store();
    let servers = [
        Server::start(&with_tokens(&["--store", &store, "--demo"])),
        Server::start(&with_tokens(&["--store", &store])),
    ];
    // A server listens before its projections have caught up; lists answer as of what they hold.
    for server in &servers {
        server.wait_ready();
    }
    let [a, b] = servers.each_ref().map(|s| s.address().to_owned());

    // B resumes after the last event it holds: the demo, which A loaded before it listened.
    let last = query(
        &b,
        "{ events(last: 1) { edges { node { position cursor } } } }",
        json!({}),
    );
    let last = &last["events"]["edges"][0]["node"];
    assert_eq!(last["position"], 28, "B holds the demo: {last}");
    let cursor = last["cursor"].as_str().unwrap().to_owned();

    runtime().block_on(async {
        let mut socket = ws::connect(&b, None, None).await.unwrap();
        let query = "subscription($after: String) { events(after: $after) { position id kind } }";
        ws::subscribe(&mut socket, "b", query, Some(&json!({ "after": cursor })))
            .await
            .unwrap();

        let id = event_id(epoch_ms(), 0, 1);
        let (position, deduplicated) =
            record(&a, &id, "The US calls the talks constructive.").unwrap();
        assert_eq!((position, deduplicated), (29, false));

        let streamed = live::next(&mut socket).await.expect("B streams the event");
        let event = &streamed["payload"]["data"]["events"];
        assert_eq!(
            (
                event["position"].as_u64(),
                event["id"].as_str(),
                event["kind"].as_str()
            ),
            (Some(position), Some(id.as_str()), Some("STATEMENT")),
            "{streamed}"
        );
    });

    // Read your writes on the other server: its projections wait for the position A returned.
    let positions = query(
        &b,
        r#"query($p: Long) { positions(timeline: "us-china-trade", parties: ["USA"], issues: ["tariffs"], atLeast: $p) { stance } }"#,
        json!({ "p": 29 }),
    );
    assert_eq!(
        positions["positions"][0]["stance"], "STATEMENT",
        "{positions}"
    );
    assert_eq!(head(&a), head(&b), "both servers hold the same log");
}

// ---------------------------------------------------------------------------------------------
// The fault test

/// An event a writer got acknowledged.
#[derive(Debug, Clone)]
struct Ack {
    writer: usize,
    seq: u64,
    id: String,
    position: u64,
    at: Instant,
}

/// What the writers share with the test: the acknowledged events and the counts of what failed.
#[derive(Default)]
struct Ledger {
    acks: Vec<Ack>,
    attempts: u64,
    failed_attempts: u64,
    failures_by_kind: BTreeMap<String, u64>,
    /// Events whose first attempt failed, then a retry answered `deduplicated` (it had landed)
    /// or wrote it.
    retried_landed: u64,
    retried_written: u64,
    /// Acknowledged events sent again to the other server: each must answer `deduplicated`
    /// with the same position.
    resent: u64,
    /// The first broken promise a writer saw.
    broken: Option<String>,
}

struct Writers {
    ledger: Mutex<Ledger>,
    changed: Condvar,
    stop: AtomicBool,
    /// The test failed: give up on the event at hand too (the servers are going away).
    abandon: AtomicBool,
    /// The two servers' addresses (a restarted server comes back on the same one).
    servers: [String; 2],
}

impl Writers {
    fn server(&self, i: usize) -> &str {
        &self.servers[i % 2]
    }

    /// One writer: statements one after the other, each retried (alternating servers) until
    /// acknowledged; every tenth acknowledged one is sent again to the other server.
    fn run(&self, writer: usize, home: usize, epoch: u64) {
        let mut seq = 0;
        while !self.stop.load(Ordering::SeqCst) {
            seq += 1;
            let id = event_id(epoch, writer, seq);
            let summary = format!("Writer {writer} says the talks are constructive ({seq}).");
            let started = Instant::now();
            let mut attempt = 0;
            let (position, deduplicated) = loop {
                let outcome = record(self.server(home + attempt), &id, &summary);
                let mut ledger = self.ledger.lock().unwrap();
                ledger.attempts += 1;
                match outcome {
                    Ok(answer) => break answer,
                    Err(e) => {
                        ledger.failed_attempts += 1;
                        let kind = e.split(':').next().unwrap_or("").to_owned();
                        *ledger.failures_by_kind.entry(kind).or_default() += 1;
                        if self.abandon.load(Ordering::SeqCst) {
                            return;
                        }
                        if started.elapsed() > WRITE_PATIENCE {
                            ledger.broken.get_or_insert(format!(
                                "writer {writer}: event {id} was not acknowledged within \
                                 {WRITE_PATIENCE:?}; last error: {e}"
                            ));
                            self.changed.notify_all();
                            return;
                        }
                    }
                }
                drop(ledger);
                attempt += 1;
                // Both servers failed in a row: give a leader election or a restart a moment.
                if attempt % 2 == 0 {
                    std::thread::sleep(Duration::from_millis(100));
                }
            };
            let mut ledger = self.ledger.lock().unwrap();
            match (attempt, deduplicated) {
                (0, true) => {
                    ledger.broken.get_or_insert(format!(
                        "writer {writer}: the first attempt of the new event {id} answered \
                         deduplicated"
                    ));
                }
                (0, false) => {}
                (_, true) => ledger.retried_landed += 1,
                (_, false) => ledger.retried_written += 1,
            }
            ledger.acks.push(Ack {
                writer,
                seq,
                id: id.clone(),
                position,
                at: Instant::now(),
            });
            self.changed.notify_all();
            drop(ledger);

            if seq % 10 == 0 {
                // The same id and content again, through the other server: the original answer.
                // During an outage it may fail, which proves nothing either way.
                if let Ok(again) = record(self.server(home + 1), &id, &summary) {
                    let mut ledger = self.ledger.lock().unwrap();
                    ledger.resent += 1;
                    if again != (position, true) {
                        ledger.broken.get_or_insert(format!(
                            "writer {writer}: event {id}, acknowledged at {position}, answered \
                             {again:?} when sent again"
                        ));
                        self.changed.notify_all();
                    }
                }
            }
        }
    }

    /// Waits until `count` events are acknowledged in all.
    fn wait_acks(&self, count: usize, what: &str) -> usize {
        let deadline = Instant::now() + WRITE_PATIENCE;
        let mut ledger = self.ledger.lock().unwrap();
        loop {
            if let Some(broken) = &ledger.broken {
                panic!("{broken}");
            }
            if ledger.acks.len() >= count {
                return ledger.acks.len();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{what}: only {} of {count} events acknowledged after {WRITE_PATIENCE:?} \
                 (failures: {:?})",
                ledger.acks.len(),
                ledger.failures_by_kind
            );
            ledger = self.changed.wait_timeout(ledger, left).unwrap().0;
        }
    }

    fn acked(&self) -> usize {
        self.ledger.lock().unwrap().acks.len()
    }
}

/// The longest time between two acknowledgements after `from` (how long writes stalled).
fn longest_gap(acks: &[Ack], from: Instant) -> Duration {
    let mut times: Vec<Instant> = acks.iter().map(|a| a.at).filter(|t| *t >= from).collect();
    times.sort();
    times.insert(0, from);
    times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

#[test]
fn acknowledged_events_survive_a_nats_node_and_a_chancery_server_killed_under_load() {
    let Some(binary) = nats::require("this test checked nothing") else {
        return;
    };
    // Built first (when not built yet), so that the figures below time the test alone.
    chancery_bin();
    let started = Instant::now();
    const WRITERS_PER_SERVER: usize = 2;
    const STEP: usize = 60;

    let dir = tempfile::Builder::new()
        .prefix("chancery-fault-")
        .tempdir()
        .unwrap();
    let mut nats = Nats::start(&binary, 3).unwrap();
    let store = nats.store();
    let nats_args = ["--store", store.as_str(), "--nats-replicas", "3"];
    let a = Chancery::start(
        "A",
        dir.path().join("a"),
        &[&nats_args[..], &["--demo"]].concat(),
    );
    let mut b = Chancery::start("B", dir.path().join("b"), &nats_args);
    a.wait_ready();
    b.wait_ready();
    say!(
        "fault test: 3 NATS nodes and 2 Chancery servers up after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Live subscribers on both servers, from the start of the log.
    let rt = runtime();
    let (stop_live, stop_rx) = tokio::sync::watch::channel(false);
    let seen: Vec<Arc<Mutex<live::Seen>>> = (0..2).map(|_| Arc::default()).collect();
    let followers: Vec<_> = [&a, &b]
        .iter()
        .zip(&seen)
        .map(|(server, seen)| {
            rt.spawn(live::follow(
                server.address.clone(),
                Arc::clone(seen),
                stop_rx.clone(),
            ))
        })
        .collect();

    // Writers through both servers at once.
    let writers = Arc::new(Writers {
        ledger: Mutex::default(),
        changed: Condvar::new(),
        stop: AtomicBool::new(false),
        abandon: AtomicBool::new(false),
        servers: [a.address.clone(), b.address.clone()],
    });
    let epoch = epoch_ms();
    let threads: Vec<_> = (0..2 * WRITERS_PER_SERVER)
        .map(|w| {
            let writers = Arc::clone(&writers);
            std::thread::spawn(move || writers.run(w, w % 2, epoch))
        })
        .collect();
    // If the test fails below, the writers stop at once, even with an event unacknowledged.
    struct StopWriters(Arc<Writers>);
    impl Drop for StopWriters {
        fn drop(&mut self) {
            self.0.abandon.store(true, Ordering::SeqCst);
            self.0.stop.store(true, Ordering::SeqCst);
        }
    }
    let _stop_writers = StopWriters(Arc::clone(&writers));

    // Mid-load, SIGKILL the node that leads the stream, and bring it back on the same store.
    writers.wait_acks(STEP, "before the NATS node was killed");
    let leader = nats.stream_leader("CHANCERY").unwrap();
    let leader_name = nats.name(leader).to_owned();
    let killed_at = writers.acked();
    let killed = Instant::now();
    nats.kill9(leader).unwrap();
    say!(
        "fault test: SIGKILLed NATS node {leader_name} (the stream leader) after {killed_at} acknowledged events"
    );
    writers.wait_acks(killed_at + STEP, "with a NATS node down");
    let down_for = killed.elapsed();
    let acked_while_down = writers.acked() - killed_at;
    nats.restart(leader).unwrap();
    let new_leader = nats
        .name(nats.stream_leader("CHANCERY").unwrap())
        .to_owned();
    say!(
        "fault test: {acked_while_down} events acknowledged while {leader_name} was down \
         ({:.1} s); it is back and current; the stream leader is now {new_leader}",
        down_for.as_secs_f64()
    );
    let after_nats = writers.wait_acks(writers.acked() + STEP, "after the NATS node came back");

    // Then SIGKILL Chancery server B: its writers move to A; it restarts on the same data
    // directory and port, and catches up from its checkpoint.
    b.kill9();
    let b_killed = Instant::now();
    say!("fault test: SIGKILLed Chancery server B after {after_nats} acknowledged events");
    let b_down_acks = writers.wait_acks(after_nats + STEP / 2, "with Chancery server B down");
    b.launch();
    b.wait_ready();
    let (caught_up, applied) = b.caught_up();
    let checkpoint = applied - caught_up;
    say!(
        "fault test: B restarted and ready {:.1} s after its SIGKILL ({} events acknowledged \
         meanwhile through A): projections resumed from the checkpoint at position {checkpoint} \
         and applied {caught_up} events to reach {applied}",
        b_killed.elapsed().as_secs_f64(),
        b_down_acks - after_nats
    );
    // Its first start checkpointed the demo at least, and following checkpoints every 2 s.
    assert!(
        checkpoint >= 28 && caught_up < applied,
        "B's projections did not resume from a checkpoint; its log:\n{}",
        b.log()
    );
    writers.wait_acks(writers.acked() + STEP / 2, "after B came back");

    // Stop writing, then check everything.
    writers.stop.store(true, Ordering::SeqCst);
    for thread in threads {
        thread.join().unwrap();
    }
    let ledger = std::mem::take(&mut *writers.ledger.lock().unwrap());
    if let Some(broken) = &ledger.broken {
        panic!("{broken}");
    }
    let (head_a, hash_a) = head(&a.address);
    let log_a = log_of(&a.address, head_a);
    let log_b = log_of(&b.address, head_a);
    assert_eq!(head(&b.address), (head_a, hash_a), "B's head equals A's");
    assert_eq!(log_a.len() as u64, head_a, "A lists every position");
    for (i, entry) in log_a.iter().enumerate() {
        assert_eq!(entry.position, i as u64 + 1, "positions are gapless from 1");
        if i > 0 {
            assert_eq!(
                entry.prev_hash,
                log_a[i - 1].hash,
                "the chain breaks at position {}",
                entry.position
            );
        }
    }
    assert!(log_a == log_b, "B's log differs from A's");

    // Every acknowledged event is there once, at the position it was acknowledged with, and
    // each writer's events are in the order it wrote them; nothing else was written.
    let mut at: HashMap<&str, u64> = HashMap::new();
    for entry in &log_a {
        assert!(
            at.insert(&entry.id, entry.position).is_none(),
            "event {} appears twice",
            entry.id
        );
    }
    let mut last_of_writer: HashMap<usize, (u64, u64)> = HashMap::new();
    for ack in &ledger.acks {
        assert_eq!(
            at.get(ack.id.as_str()),
            Some(&ack.position),
            "acknowledged event {} (writer {}, #{}) is not at position {}",
            ack.id,
            ack.writer,
            ack.seq,
            ack.position
        );
        if let Some((seq, position)) = last_of_writer.insert(ack.writer, (ack.seq, ack.position)) {
            assert!(
                seq < ack.seq && position < ack.position,
                "writer {}: event #{} at {} after #{seq} at {position}",
                ack.writer,
                ack.seq,
                ack.position
            );
        }
    }
    let acked: HashSet<&str> = ledger.acks.iter().map(|a| a.id.as_str()).collect();
    let demo = 28;
    assert_eq!(
        acked.len(),
        ledger.acks.len(),
        "an event was acknowledged twice"
    );
    assert_eq!(
        log_a.len() - demo,
        acked.len(),
        "the log holds events no writer had acknowledged"
    );

    // Each NATS node holds the whole stream, the restarted one included.
    for i in 0..nats.node_count() {
        wait_until(
            &format!("{} to hold {head_a} messages", nats.name(i)),
            || {
                nats.stream_detail(i, "CHANCERY").is_some_and(|s| {
                    s["state"]["messages"] == head_a
                        && s["state"]["first_seq"] == 1
                        && s["state"]["last_seq"] == head_a
                })
            },
        );
    }

    // Both subscribers saw every position once, in order, with the log's ids.
    for (name, seen) in ["A", "B"].iter().zip(&seen) {
        wait_until(
            &format!("the subscriber on {name} to reach {head_a}"),
            || {
                let seen = seen.lock().unwrap();
                seen.failure.is_some() || seen.events.len() as u64 >= head_a
            },
        );
    }
    let _ = rt.block_on(async {
        let _ = stop_live.send(true);
        futures_util::future::join_all(followers).await
    });
    let mut reconnects = Vec::new();
    for (name, seen) in ["A", "B"].iter().zip(&seen) {
        let seen = seen.lock().unwrap();
        assert!(
            seen.failure.is_none(),
            "subscriber on {name}: {:?}",
            seen.failure
        );
        let expected: Vec<(u64, String)> =
            log_a.iter().map(|e| (e.position, e.id.clone())).collect();
        assert!(
            seen.events == expected,
            "the subscriber on {name} saw {} events, not each of the {head_a} positions once \
             in order (first difference at index {:?})",
            seen.events.len(),
            seen.events.iter().zip(&expected).position(|(s, e)| s != e)
        );
        reconnects.push(seen.reconnects);
    }

    let stalled = longest_gap(&ledger.acks, killed);
    say!(
        "fault test summary:\n\
         - writers: {} (through 2 Chancery servers), {} attempts, {} events acknowledged, \
         {} failed attempts {:?}\n\
         - retries after a failure: {} found their event already written (deduplicated), {} wrote it\n\
         - acknowledged events sent again to the other server: {}, all deduplicated at their position\n\
         - NATS nodes SIGKILLed: 1 ({leader_name}, the stream leader, at {killed_at} acks; \
         {acked_while_down} acks while it was down; longest stall of writes after the kill {:.1} s); \
         Chancery servers SIGKILLed: 1 (B, resumed from its checkpoint at {checkpoint})\n\
         - checked: positions 1..={head_a} on A and on B (ids, hashes, prevHash chain, identical), \
         {} acknowledged ids at their positions, stream state on n1, n2, n3 = {head_a} messages, \
         subscriber on A saw {head_a} positions once ({} reconnects), subscriber on B saw \
         {head_a} positions once ({} reconnects)\n\
         - time: {:.1} s",
        2 * WRITERS_PER_SERVER,
        ledger.attempts,
        ledger.acks.len(),
        ledger.failed_attempts,
        ledger.failures_by_kind,
        ledger.retried_landed,
        ledger.retried_written,
        ledger.resent,
        stalled.as_secs_f64(),
        ledger.acks.len(),
        reconnects[0],
        reconnects[1],
        started.elapsed().as_secs_f64(),
    );
}

// ---------------------------------------------------------------------------------------------
// docker-compose

#[test]
fn the_compose_file_and_its_nats_configuration_are_valid() {
    let root = workspace();
    let Some(compose) = ci::require_tool(
        "docker-compose",
        "apt-get install docker-compose",
        "the compose file was not checked",
    ) else {
        return;
    };
    // The file requires the tokens from the environment; any will do to check it.
    let out = Command::new(compose)
        .args(["-f", "docker-compose.yml", "config"])
        .current_dir(&root)
        .env(
            "CHANCERY_TOKENS",
            "admin:compose-check-admin-token,recorder:compose-check-recorder",
        )
        .output()
        .unwrap();
    let resolved = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "docker-compose config failed:\n{}\n{resolved}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every file the services mount is in the repository: bind mounts are the volumes whose
    // source is a path (`- /abs/path:/in/container:ro` from docker-compose 1, `source: /abs/path`
    // from 2).
    let mounts: Vec<&str> = resolved
        .lines()
        .map(str::trim)
        .filter_map(|l| {
            l.strip_prefix("- ")
                .filter(|s| s.contains(':'))
                .or_else(|| l.strip_prefix("source: "))
        })
        .filter(|s| s.starts_with('/'))
        .map(|s| s.split(':').next().unwrap_or(s))
        .collect();
    assert!(!mounts.is_empty(), "no mounted file in:\n{resolved}");
    for mount in mounts {
        assert!(Path::new(mount).exists(), "{mount} is mounted but missing");
    }
    for needed in ["Dockerfile", ".dockerignore"] {
        assert!(root.join(needed).is_file(), "{needed} is missing");
    }

    // nats-server itself accepts the cluster's configuration.
    let Some(binary) = nats::require("the NATS configuration was not checked") else {
        return;
    };
    for node in ["nats-1", "nats-2", "nats-3"] {
        let out = Command::new(&binary)
            .args(["-t", "-c", "deploy/nats/nats-server.conf"])
            .env("NATS_SERVER_NAME", node)
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nats-server rejects deploy/nats/nats-server.conf for {node}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
