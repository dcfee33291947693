//! A panic in a handler, or in a resolver it runs, answered over HTTP on loopback: `500` with a
//! masked `INTERNAL` error and its reference, and the same server answers the next request. The
//! panics are the test's own handlers and resolvers, wrapped by the router function the server
//! uses (`chancery_graphql::panics::catch_panics`); nothing in the product panics on purpose.
//!
//! Over WebSocket, on the API's own routes, a subscription whose execution panics (the test's log
//! has a bug in one feed) ends with an `error` message of the same kind, for every subscriber
//! sharing the execution, and the connection and its other subscriptions go on. On the same
//! routes, a connection whose token expires is closed at that instant.
use std::sync::Arc;

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use axum::extract::State;
use axum::routing::{get, post};
use chancery_domain::{EventId, NewEvent, Position, Timestamp};
use chancery_graphql::panics::catch_panics;
use chancery_graphql::{Access, Grant, Role, TokenDigest};
use chancery_store::{
    AppendOutcome, AppendRequest, EventFilter, EventLog, EventStream, ExpectedVersion, Head,
    ReadRequest, RestoreOutcome, StoreError,
};
use chancery_store_sled::SledLog;
use chancery_testkit::http::{Client, Reply};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use crate::loopback::{self, Heard, Ws, is};

struct Root;

#[Object]
impl Root {
    /// A resolver with a bug.
    async fn broken(&self) -> i32 {
        bug("a resolver's bug")
    }

    async fn fine(&self) -> i32 {
        7
    }
}

/// Panics with `message`, as a bug would (the compiler cannot tell that it never returns).
fn bug<T: Default>(message: &str) -> T {
    if std::hint::black_box(true) {
        panic!("{message}");
    }
    T::default()
}

type TestSchema = Schema<Root, EmptyMutation, EmptySubscription>;

/// Runs the request's query on the schema, in the handler's task as the API's handler does.
async fn graphql(State(schema): State<TestSchema>, body: String) -> axum::Json<Value> {
    let request: Value = serde_json::from_str(&body).unwrap();
    let query = request["query"].as_str().unwrap().to_owned();
    let response = schema.execute(query).await;
    axum::Json(serde_json::to_value(response).unwrap())
}

/// Asserts the answer to a panic: `500`, JSON, one `INTERNAL` error whose message gives the
/// reference that `extensions.reference` holds, and nothing of the panic's own message.
fn assert_masked(reply: &Reply) -> String {
    assert_eq!(reply.status, 500, "{}", reply.text());
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        reply.header("content-type")
    );
    let body = reply.json().unwrap();
    assert!(body.get("data").is_none(), "{body}");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body}");
    masked_reference(&errors[0])
}

/// Asserts that `error` is a masked `INTERNAL` whose message gives the reference that
/// `extensions.reference` holds, and nothing of the panic's own message; answers the reference.
fn masked_reference(error: &Value) -> String {
    assert_eq!(error["extensions"]["code"], "INTERNAL", "{error}");
    let reference = error["extensions"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(uuid_shaped(&reference), "{reference}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("reference {reference}")),
        "{message}"
    );
    assert!(
        !message.contains("bug"),
        "the detail stays in the log: {message}"
    );
    reference
}

fn uuid_shaped(text: &str) -> bool {
    let groups: Vec<usize> = text.split('-').map(str::len).collect();
    groups == [8, 4, 4, 4, 12] && text.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[test]
fn a_panic_answers_internal_with_a_reference_and_the_server_goes_on() {
    let rt = chancery_testkit::runtime(2);
    let schema = Schema::new(Root, EmptyMutation, EmptySubscription);
    let router = catch_panics(
        axum::Router::new()
            .route("/graphql", post(graphql))
            .route("/handler", get(|| async { bug::<&str>("a handler's bug") }))
            .route("/healthz", get(|| async { "ok\n" }))
            .with_state(schema),
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let server = rt.spawn(async move { axum::serve(listener, router).await });
    let client = Client::new(&address);

    let first = assert_masked(&client.graphql(None, "{ broken }", &json!({})).unwrap());
    // The same server answers the next request, a good one, on a new connection.
    let fine = client.graphql(None, "{ fine }", &json!({})).unwrap();
    assert_eq!(fine.status, 200, "{}", fine.text());
    assert_eq!(fine.json().unwrap(), json!({ "data": { "fine": 7 } }));

    // A panic in a handler itself, and again: each gets its own reference.
    let second = assert_masked(&client.get("/handler").unwrap());
    let third = assert_masked(&client.graphql(None, "{ broken }", &json!({})).unwrap());
    assert!(first != second && second != third && first != third);
    assert_eq!(client.status("/healthz"), Some(200));
    assert!(!server.is_finished(), "the server still serves");
    server.abort();
}

/// The issue whose feed has the bug.
const BUGGY_ISSUE: &str = "tariffs";

/// The log, with a bug in one feed: a subscription to [`BUGGY_ISSUE`] panics at the first event
/// past `bug_after`, as it is polled (in the subscription's execution).
struct BuggyLog {
    log: Arc<SledLog>,
    bug_after: Position,
}

impl EventLog for BuggyLog {
    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<AppendOutcome, StoreError>> {
        self.log.append(request)
    }

    fn restore(&self, records: Vec<Vec<u8>>) -> BoxFuture<'_, Result<RestoreOutcome, StoreError>> {
        self.log.restore(records)
    }

    fn head(&self) -> BoxFuture<'_, Result<Head, StoreError>> {
        self.log.head()
    }

    fn read(
        &self,
        request: ReadRequest,
    ) -> BoxFuture<'_, Result<Vec<chancery_domain::RecordedEvent>, StoreError>> {
        self.log.read(request)
    }

    fn read_timeline(
        &self,
        timeline: chancery_domain::TimelineSlug,
        from_version: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<chancery_domain::RecordedEvent>, StoreError>> {
        self.log.read_timeline(timeline, from_version, limit)
    }

    fn event(
        &self,
        id: EventId,
    ) -> BoxFuture<'_, Result<Option<chancery_domain::RecordedEvent>, StoreError>> {
        self.log.event(id)
    }

    fn timeline_version(
        &self,
        timeline: chancery_domain::TimelineSlug,
    ) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        self.log.timeline_version(timeline)
    }

    fn registry(&self) -> BoxFuture<'_, Result<Arc<chancery_domain::Registry>, StoreError>> {
        self.log.registry()
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> EventStream {
        let buggy = filter.issues.iter().any(|i| i.as_str() == BUGGY_ISSUE);
        let stream = self.log.subscribe(after, filter);
        if !buggy {
            return stream;
        }
        let bug_after = self.bug_after;
        stream
            .map(move |item| {
                if let Ok(record) = &item {
                    if record.position() > bug_after {
                        panic!("a feed's bug at position {}", record.position());
                    }
                }
                item
            })
            .boxed()
    }
}

/// A demo event on [`BUGGY_ISSUE`] again, under a new id.
fn on_the_buggy_issue() -> NewEvent {
    let mut event = loopback::demo_events()
        .into_iter()
        .find(|e| e.kind().is_diplomatic() && e.issues.iter().any(|i| i.as_str() == BUGGY_ISSUE))
        .unwrap();
    event.id = EventId::new_v7();
    event
}

/// Appends `event` to `log`; answers its position.
fn append(rt: &tokio::runtime::Runtime, log: &SledLog, event: NewEvent) -> Position {
    let outcome = rt
        .block_on(log.append(AppendRequest {
            refers_within: None,
            timeline: event.timeline.clone(),
            expected: ExpectedVersion::Any,
            events: vec![event],
        }))
        .unwrap();
    outcome.last_position()
}

const ALL: &str = "subscription { events { position } }";
/// Grouped: one root field, no directive.
const BUGGY: &str = r#"subscription { events(filter: { issues: ["tariffs"] }) { position } }"#;
/// On an execution of its own: a directive keeps it out of groups.
const BUGGY_ALONE: &str =
    r#"subscription { events(filter: { issues: ["tariffs"] }) @include(if: true) { position } }"#;

fn subscribe(ws: &mut Ws, id: &str, query: &str) {
    ws.send(&json!({ "type": "subscribe", "id": id, "payload": { "query": query } }));
}

/// A `next` of subscription `id` for the event at `position`.
fn next_at(message: &Value, id: &str, position: Position) -> bool {
    is(message, "next", id) && message["payload"]["data"]["events"]["position"] == position
}

#[test]
fn a_panicking_subscription_ends_with_internal_for_each_subscriber_and_the_connection_goes_on() {
    let rt = chancery_testkit::runtime(2);
    let dir = tempfile::tempdir().unwrap();
    let log = loopback::demo_log(&rt, dir.path());
    let demo_head = rt.block_on(log.head()).unwrap().position;
    let buggy = BuggyLog {
        log: Arc::clone(&log),
        bug_after: demo_head,
    };
    let address = loopback::serve(&rt, Arc::new(buggy), Access::new([], true));

    let mut ws = Ws::connect(&address, "graphql-transport-ws", None);
    let mut heard = Vec::new();
    subscribe(&mut ws, "calm", ALL);
    ws.until(&mut heard, "the history", |m| next_at(m, "calm", demo_head));
    // Two members of one group, and one on its own: all have had their history before the bug
    // is reached, so each is running.
    subscribe(&mut ws, "member-1", BUGGY);
    subscribe(&mut ws, "member-2", BUGGY);
    subscribe(&mut ws, "alone", BUGGY_ALONE);
    for id in ["member-1", "member-2", "alone"] {
        ws.until(&mut heard, id, |m| is(m, "next", id));
    }
    // The legacy protocol's subscriber meets the same bug.
    let mut legacy = Ws::connect(&address, "graphql-ws", None);
    let mut legacy_heard = Vec::new();
    legacy.send(&json!({ "type": "start", "id": "old", "payload": { "query": BUGGY } }));
    legacy.until(&mut legacy_heard, "the legacy history", |m| {
        is(m, "data", "old")
    });

    let bug = append(&rt, &log, on_the_buggy_issue());
    let mut references = Vec::new();
    for id in ["member-1", "member-2", "alone"] {
        let error = ws.until(&mut heard, id, |m| is(m, "error", id));
        let errors = error["payload"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{error}");
        references.push(masked_reference(&errors[0]));
    }
    // One execution, one panic, one reference for the group; another for the one alone.
    assert_eq!(references[0], references[1], "{references:?}");
    assert_ne!(references[0], references[2], "{references:?}");
    let old = legacy.until(&mut legacy_heard, "the legacy error", |m| {
        is(m, "error", "old")
    });
    masked_reference(&old["payload"]);

    // The other subscription goes on, and the ids are free again.
    ws.until(&mut heard, "the event past the bug", |m| {
        next_at(m, "calm", bug)
    });
    subscribe(&mut ws, "member-1", ALL);
    ws.until(&mut heard, "a reused id", |m| next_at(m, "member-1", bug));
    let after = append(&rt, &log, on_the_buggy_issue());
    ws.until(&mut heard, "the next event", |m| next_at(m, "calm", after));
    ws.until(&mut heard, "the next event", |m| {
        next_at(m, "member-1", after)
    });
    ws.send(&json!({ "type": "ping" }));
    ws.until(&mut heard, "a pong", |m| m["type"] == "pong");
    for id in ["member-1", "member-2", "alone"] {
        let ends = heard
            .iter()
            .filter(|m| m["id"] == id && (m["type"] == "error" || m["type"] == "complete"))
            .count();
        assert_eq!(ends, 1, "one end for {id}: {heard:#?}");
    }
    legacy.send(&json!({ "type": "start", "id": "old", "payload": { "query": ALL } }));
    legacy.until(&mut legacy_heard, "a reused legacy id", |m| {
        is(m, "data", "old") && m["payload"]["data"]["events"]["position"] == after
    });
}

#[test]
fn a_websocket_is_closed_when_its_token_expires() {
    let rt = chancery_testkit::runtime(2);
    let dir = tempfile::tempdir().unwrap();
    let log = loopback::demo_log(&rt, dir.path());
    let demo_head = rt.block_on(log.head()).unwrap().position;
    let token = "the-token-0123456789";
    let expires = Timestamp::from_unix_micros(Timestamp::now().unix_micros() + 4_000_000);
    let mut grant = Grant::new(Role::Reader, TokenDigest::of(token));
    grant.expires = Some(expires);
    let address = loopback::serve(&rt, log, Access::new([grant], false));

    let mut ws = Ws::connect(&address, "graphql-transport-ws", Some(token));
    let mut heard = Vec::new();
    subscribe(&mut ws, "feed", ALL);
    ws.until(&mut heard, "the history", |m| next_at(m, "feed", demo_head));
    let closed = loop {
        match ws.hear() {
            Heard::Json(message) => heard.push(message),
            other => break other,
        }
    };
    assert_eq!(
        closed,
        Heard::Closed(4403, "Forbidden: the token expired".into()),
        "{heard:#?}"
    );
    let now = Timestamp::now();
    assert!(
        now >= expires,
        "closed at {now}, before the expiry at {expires}"
    );
}
