//! GraphQL over WebSocket at `/graphql/ws`: the graphql-transport-ws protocol (with its close
//! codes: 4400 invalid message, 4401 subscribe before ack, 4403 bad token, 4408 no
//! `connection_init` in time, 4409 duplicate subscription id, 4429 a second init) and the legacy
//! graphql-ws protocol (subscriptions-transport-ws). The token comes in `connection_init`; the
//! `Origin` is checked at the upgrade. A connection whose token expires is closed at that instant
//! (4403). A subscription whose execution panics ends with an `error` message (a masked
//! `INTERNAL`, as over HTTP), and the connection goes on.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Variables};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chancery_domain::Timestamp;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::auth::Caller;
use crate::error::{self, Code, error_value, errors_value};
use crate::groups::{Answer, Delivered, Feed, GroupKey, Member, Membership, ResumeAfter, Step};
use crate::http::{Endpoint, graphql_request};

const TRANSPORT_WS: &str = "graphql-transport-ws";
const LEGACY_WS: &str = "graphql-ws";

/// Which origins may open a WebSocket from a browser.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// Origins allowed besides the server's own (`*` allows any).
    pub allowed: Vec<String>,
}

impl Origins {
    /// No `Origin` (not a browser), the server's own origin, or a configured one.
    fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        if self
            .allowed
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
        {
            return true;
        }
        let origin_host = origin
            .split_once("://")
            .map_or(origin, |(_, rest)| rest)
            .trim_end_matches('/');
        host.is_some_and(|h| h.eq_ignore_ascii_case(origin_host))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Transport,
    Legacy,
}

/// `GET /graphql/ws`: checks the origin, the number of connections and the subprotocol, then
/// upgrades to a WebSocket.
pub(crate) async fn upgrade(
    State(endpoint): State<Endpoint>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let api = &endpoint.api;
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !endpoint.origins.allows(origin, host) {
        let body = errors_value(Code::Forbidden, "this origin may not open a WebSocket here");
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    if usize::try_from(api.metrics.open_connections()).unwrap_or(0) >= api.limits.max_connections {
        let body = errors_value(Code::Limit, "too many WebSocket connections");
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    let offered: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_owned()))
        .collect();
    let protocol = if offered.iter().any(|p| p == TRANSPORT_WS) {
        Protocol::Transport
    } else if offered.iter().any(|p| p == LEGACY_WS) {
        Protocol::Legacy
    } else {
        return (
            StatusCode::BAD_REQUEST,
            "offer the subprotocol graphql-transport-ws (or the legacy graphql-ws)",
        )
            .into_response();
    };
    let name = if protocol == Protocol::Transport {
        TRANSPORT_WS
    } else {
        LEGACY_WS
    };
    ws.protocols([name])
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| connection(socket, endpoint, protocol))
}

/// The read buffer of a WebSocket. tungstenite fills its whole read buffer with zeros before
/// each read (128 KiB by default), which made it most of an idle connection's memory; clients
/// send small messages, and a longer one still arrives whole, as the buffer grows to a frame's
/// announced length.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// What the connection's writer sends.
enum Outgoing {
    Text(String),
    /// A `next` frame: its head (`{"type":"next","id":...,"payload":`) and a payload shared by
    /// every member of a subscription group.
    Shared(Arc<str>, Arc<str>),
    Close(u16, &'static str),
}

impl Outgoing {
    fn into_message(self) -> Message {
        match self {
            Outgoing::Text(text) => Message::Text(text.into()),
            Outgoing::Shared(head, payload) => Message::Text(next_frame(&head, &payload).into()),
            Outgoing::Close(code, reason) => Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })),
        }
    }
}

/// A `next` frame's text: its head, the payload, and the closing brace.
fn next_frame(head: &str, payload: &str) -> String {
    let mut text = String::with_capacity(head.len() + payload.len() + 1);
    text.push_str(head);
    text.push_str(payload);
    text.push('}');
    text
}

/// What subscription tasks tell the connection: this id (started as this serial number) ended.
enum Event {
    Done(String, u64),
}

struct Connection {
    endpoint: Endpoint,
    protocol: Protocol,
    out: mpsc::Sender<Outgoing>,
    events: mpsc::Sender<Event>,
    init_seen: bool,
    acked: bool,
    caller: Caller,
    /// Running subscriptions by id, with the serial number each was started as, so that the end
    /// of an old one never removes a newer one that reused its id.
    subscriptions: HashMap<String, (u64, Running)>,
    started: u64,
}

/// How a subscription of this connection runs.
enum Running {
    /// On an execution of its own.
    Alone(AbortHandle),
    /// As a member of a group, until it falls behind and goes on alone.
    Grouped(Membership, Arc<Mutex<OwnExecution>>),
}

/// A grouped subscription's own execution, once it has left its group.
enum OwnExecution {
    NotNeeded,
    Started(AbortHandle),
    /// The subscription was stopped: a member that falls behind now starts nothing.
    Stopped,
}

impl Running {
    fn stop(self, endpoint: &Endpoint) {
        match self {
            Running::Alone(task) => task.abort(),
            Running::Grouped(membership, own) => {
                membership.leave(&endpoint.groups);
                let mut own = own.lock().unwrap_or_else(|e| e.into_inner());
                if let OwnExecution::Started(task) = &*own {
                    task.abort();
                }
                *own = OwnExecution::Stopped;
            }
        }
    }
}

/// Serves one WebSocket: a task writes the frames, this one reads the client's messages.
async fn connection(socket: WebSocket, endpoint: Endpoint, protocol: Protocol) {
    let _open = endpoint.api.metrics.connection_opened();
    let (sink, incoming) = socket.split();
    let (out, outgoing) = mpsc::channel::<Outgoing>(endpoint.api.limits.subscriber_queue);
    let writer = tokio::spawn(write(sink, outgoing, endpoint.api.limits.ws_flush_interval));
    let (events, done) = mpsc::channel::<Event>(256);
    let mut c = Connection {
        endpoint,
        protocol,
        out,
        events,
        init_seen: false,
        acked: false,
        caller: Caller::ANONYMOUS,
        subscriptions: HashMap::new(),
        started: 0,
    };
    c.serve(incoming, done).await;
    for (_, (_, running)) in std::mem::take(&mut c.subscriptions) {
        running.stop(&c.endpoint);
    }
    drop(c);
    let _ = writer.await;
}

/// Writes the connection's frames until it sends a close or the client is gone.
///
/// A subscription group's frame (`next`) due less than `flush_interval` after the last write
/// waits for the rest of the interval, and whatever else comes meanwhile goes out in the same
/// write: at 1,000 events/s a write per frame is a system call per subscriber per event. Any
/// other frame (an acknowledgement, a pong, an error, a close, the frames of a subscriber that
/// reads alone) goes out at once, with what waits before it.
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut outgoing: mpsc::Receiver<Outgoing>,
    flush_interval: Duration,
) {
    let mut last_write: Option<Instant> = None;
    while let Some(first) = outgoing.recv().await {
        if let (Outgoing::Shared(..), Some(at)) = (&first, last_write) {
            let due = at + flush_interval;
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
        }
        if !feed_queued(&mut sink, &mut outgoing, first).await || sink.flush().await.is_err() {
            break;
        }
        last_write = Some(Instant::now());
    }
    // However the writing ended (our close, the client's, or a send that raced the client's
    // close), flushing and closing gets out the frame that is due: ours, or the reply
    // tungstenite queued to the client's close. Leaving without it is an abnormal close
    // (1006) for the client.
    let _ = sink.flush().await;
    let _ = sink.close().await;
}

/// Feeds `first` and everything already queued after it, to go out in one flush: a commit wakes
/// every subscription of a connection at once, and a flush per message costs a write each. False
/// once the writing is over (a close was fed, or the client is gone).
async fn feed_queued(
    sink: &mut SplitSink<WebSocket, Message>,
    outgoing: &mut mpsc::Receiver<Outgoing>,
    first: Outgoing,
) -> bool {
    let mut next = Some(first);
    while let Some(message) = next.take() {
        let closing = matches!(message, Outgoing::Close(..));
        if sink.feed(message.into_message()).await.is_err() || closing {
            return false;
        }
        next = outgoing.try_recv().ok();
    }
    true
}

impl Connection {
    /// Reads the client's messages until the connection ends: the client closes or goes, a
    /// message ends it, or no `connection_init` comes in time.
    async fn serve(
        &mut self,
        mut incoming: SplitStream<WebSocket>,
        mut done: mpsc::Receiver<Event>,
    ) {
        let deadline = tokio::time::sleep(self.endpoint.api.limits.init_timeout);
        tokio::pin!(deadline);
        // Set once a token with an expiry is accepted; until then it never fires.
        let expiry = tokio::time::sleep(NEVER);
        tokio::pin!(expiry);
        let mut expires = false;
        let mut keepalive = tokio::time::interval(Duration::from_secs(20));
        loop {
            tokio::select! {
                // Ended subscriptions first: their ids must be free before the next message is
                // read.
                biased;
                Some(Event::Done(id, serial)) = done.recv() => {
                    if self.subscriptions.get(&id).is_some_and(|(s, _)| *s == serial) {
                        self.subscriptions.remove(&id);
                    }
                }
                () = &mut deadline, if !self.init_seen => {
                    self.close(4408, "Connection initialisation timeout").await;
                    return;
                }
                () = &mut expiry, if expires => {
                    self.close(4403, "Forbidden: the token expired").await;
                    return;
                }
                _ = keepalive.tick(), if self.protocol == Protocol::Legacy && self.acked => {
                    self.send(json!({ "type": "ka" })).await;
                }
                message = incoming.next() => {
                    if !self.receive(message).await {
                        return;
                    }
                    if !expires {
                        if let Some(at) = self.caller.expires {
                            expiry.as_mut().reset(instant_of(at));
                            expires = true;
                        }
                    }
                }
            }
        }
    }

    /// Handles what the client sent; false ends the connection.
    async fn receive(&mut self, message: Option<Result<Message, axum::Error>>) -> bool {
        match message {
            Some(Ok(Message::Text(text))) => self.handle(text.as_str()).await,
            Some(Ok(Message::Binary(_))) => {
                self.close(4400, "Binary messages are not supported").await;
                false
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => true,
            Some(Ok(Message::Close(frame))) => {
                // Answer a close with a close: the clean end of the handshake.
                let code = frame.map_or(1000, |f| f.code);
                self.close(if code == 1005 { 1000 } else { code }, "").await;
                false
            }
            Some(Err(_)) | None => false,
        }
    }

    async fn send(&self, value: Value) {
        let _ = self.out.send(Outgoing::Text(value.to_string())).await;
    }

    async fn close(&self, code: u16, reason: &'static str) {
        let _ = self.out.send(Outgoing::Close(code, reason)).await;
    }

    /// Handles one message; false ends the connection.
    async fn handle(&mut self, text: &str) -> bool {
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
            self.close(4400, "Invalid message received: not a JSON object")
                .await;
            return false;
        };
        let kind = message
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        match (self.protocol, kind.as_str()) {
            (_, "connection_init") => {
                if self.init_seen {
                    self.close(4429, "Too many initialisation requests").await;
                    return false;
                }
                self.init_seen = true;
                match self.authenticate(message.get("payload")) {
                    Ok(caller) => {
                        self.caller = caller;
                        self.acked = true;
                        self.send(json!({ "type": "connection_ack" })).await;
                        if self.protocol == Protocol::Legacy {
                            self.send(json!({ "type": "ka" })).await;
                        }
                        true
                    }
                    Err(reason) => {
                        if self.protocol == Protocol::Legacy {
                            self.send(json!({ "type": "connection_error", "payload": { "message": reason } })).await;
                        }
                        self.close(4403, "Forbidden").await;
                        false
                    }
                }
            }
            (Protocol::Transport, "ping") => {
                let mut pong = json!({ "type": "pong" });
                if let Some(payload) = message.get("payload") {
                    pong["payload"] = payload.clone();
                }
                self.send(pong).await;
                true
            }
            (Protocol::Transport, "pong") => true,
            (Protocol::Transport, "subscribe") | (Protocol::Legacy, "start") => {
                self.subscribe(&message).await
            }
            (Protocol::Transport, "complete") | (Protocol::Legacy, "stop") => {
                if let Some(id) = message.get("id").and_then(Value::as_str) {
                    if let Some((_, running)) = self.subscriptions.remove(id) {
                        running.stop(&self.endpoint);
                        // The legacy protocol confirms a stop; graphql-transport-ws does not.
                        if self.protocol == Protocol::Legacy {
                            self.send(json!({ "type": "complete", "id": id })).await;
                        }
                    }
                }
                true
            }
            (Protocol::Legacy, "connection_terminate") => {
                self.close(1000, "Normal closure").await;
                false
            }
            _ => {
                self.close(4400, "Invalid message received: unknown type")
                    .await;
                false
            }
        }
    }

    fn authenticate(&self, payload: Option<&Value>) -> Result<Caller, String> {
        let token = payload.and_then(|p| {
            ["authorization", "Authorization", "token"]
                .iter()
                .find_map(|k| p.get(*k))
                .and_then(Value::as_str)
        });
        self.endpoint
            .api
            .access
            .identify(token, Timestamp::now())
            .map_err(|e| e.message)
    }

    async fn subscribe(&mut self, message: &serde_json::Map<String, Value>) -> bool {
        if !self.acked {
            return self
                .refuse(
                    message.get("id"),
                    (4401, "Unauthorized"),
                    "send connection_init first",
                )
                .await;
        }
        let id = message.get("id").and_then(Value::as_str).map(str::to_owned);
        let payload = message.get("payload").and_then(Value::as_object);
        let query = payload.and_then(|p| p.get("query")).and_then(Value::as_str);
        let (Some(id), Some(payload), Some(query)) = (id, payload, query) else {
            let close = (
                4400,
                "Invalid message received: subscribe needs id and payload.query",
            );
            return self
                .refuse(message.get("id"), close, "start needs id and payload.query")
                .await;
        };
        if self.subscriptions.contains_key(&id) {
            let close = (4409, "Subscriber for this id already exists");
            let legacy = "a subscription with this id is already running";
            return self.refuse(&id, close, legacy).await;
        }
        let limits = &self.endpoint.api.limits;
        if self.subscriptions.len() >= limits.max_subscriptions_per_connection {
            let message = format!(
                "this connection already has {} subscriptions, the limit",
                limits.max_subscriptions_per_connection
            );
            self.send_error(&id, Code::Limit, &message).await;
            return true;
        }
        let parsed = match self.endpoint.documents.get(query) {
            Ok(parsed) => parsed,
            Err(e) => {
                let message = error::parse_error_message(&e);
                self.send_error(&id, Code::Validation, &message).await;
                return true;
            }
        };
        if parsed.aliases > limits.max_aliases {
            let message = format!("the query has more than {} aliases", limits.max_aliases);
            self.send_error(&id, Code::Limit, &message).await;
            return true;
        }
        let asked = Asked {
            query: query.into(),
            operation: payload
                .get("operationName")
                .and_then(Value::as_str)
                .map(str::to_owned),
            variables: payload.get("variables").filter(|v| v.is_object()).cloned(),
            caller: self.caller.clone(),
            enum_literals: parsed.enum_literals,
        };
        self.started += 1;
        let subscriber = Subscriber {
            endpoint: self.endpoint.clone(),
            protocol: self.protocol,
            id: id.clone(),
            serial: self.started,
            out: self.out.clone(),
            events: self.events.clone(),
        };
        let running = self.start(subscriber, &parsed.document, asked);
        self.subscriptions.insert(id, (self.started, running));
        true
    }

    /// Starts a subscription: in the group of those asking the same when it can be grouped, on
    /// an execution of its own otherwise.
    fn start(
        &self,
        subscriber: Subscriber,
        document: &ExecutableDocument,
        asked: Asked,
    ) -> Running {
        let Some(feed) = Feed::of(document, asked.operation.as_deref()) else {
            return Running::Alone(
                tokio::spawn(subscriber.run(asked.enum_literals, asked.request(), None))
                    .abort_handle(),
            );
        };
        let own = Arc::new(Mutex::new(OwnExecution::NotNeeded));
        let key = asked.key();
        let schema = self
            .endpoint
            .schemas
            .for_document(asked.enum_literals)
            .clone();
        let request = asked.request();
        let member = GroupMember {
            head: subscriber.head(),
            subscriber,
            asked,
            feed,
            own: Arc::clone(&own),
        };
        let membership = self
            .endpoint
            .groups
            .join(key, feed, Box::new(member), move |tap| {
                schema.execute_stream(request.data(tap))
            });
        Running::Grouped(membership, own)
    }

    /// Refuses a `subscribe`: graphql-transport-ws closes the connection with `close`; the legacy
    /// protocol answers an `error` saying `legacy` and goes on. False ends the connection.
    async fn refuse(&self, id: impl Serialize, close: (u16, &'static str), legacy: &str) -> bool {
        if self.protocol == Protocol::Transport {
            self.close(close.0, close.1).await;
            return false;
        }
        self.send(json!({ "type": "error", "id": id, "payload": { "message": legacy } }))
            .await;
        true
    }

    /// Sends the `error` message ending subscription `id`, of one error.
    async fn send_error(&self, id: &str, code: Code, message: &str) {
        let errors = Value::Array(vec![error_value(code, message)]);
        self.send(error_frame(self.protocol, id, errors)).await;
    }
}

/// How long "never" is for a timer: a century, well within what `Instant` can hold.
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The monotonic instant of a wall-clock one (now, if it is past): a token's expiry, for a timer
/// that is not fooled by the wall clock's steps in between.
fn instant_of(at: Timestamp) -> Instant {
    let left = at
        .unix_micros()
        .saturating_sub(Timestamp::now().unix_micros());
    let left = Duration::from_micros(u64::try_from(left).unwrap_or(0)).min(NEVER);
    Instant::now() + left
}

/// An `error` message ending subscription `id`: every error for graphql-transport-ws, the first
/// for the legacy protocol.
fn error_frame(protocol: Protocol, id: &str, errors: Value) -> Value {
    let payload = match protocol {
        Protocol::Transport => errors,
        Protocol::Legacy => errors.get(0).cloned().unwrap_or(Value::Null),
    };
    json!({ "type": "error", "id": id, "payload": payload })
}

/// A subscription as it was asked.
struct Asked {
    query: Arc<str>,
    operation: Option<String>,
    variables: Option<Value>,
    caller: Caller,
    /// Whether the document writes an enum value as a string literal (see `schema::Schemas`).
    enum_literals: bool,
}

impl Asked {
    fn request(&self) -> Request {
        graphql_request(
            &*self.query,
            self.caller.clone(),
            self.operation.clone(),
            self.variables.clone().map(Variables::from_json),
        )
    }

    /// What the answers depend on besides the store: subscriptions with equal keys share a
    /// group.
    fn key(&self) -> GroupKey {
        GroupKey {
            query: Arc::clone(&self.query),
            operation: self.operation.clone(),
            variables: self
                .variables
                .as_ref()
                .map_or_else(String::new, Value::to_string),
            scope: self.caller.scope(),
        }
    }
}

/// One subscription of a connection: where its frames go and how it tells the connection that
/// its id is free.
#[derive(Clone)]
struct Subscriber {
    endpoint: Endpoint,
    protocol: Protocol,
    id: String,
    serial: u64,
    out: mpsc::Sender<Outgoing>,
    events: mpsc::Sender<Event>,
}

impl Subscriber {
    /// The start of each `next` frame, up to its payload.
    fn head(&self) -> Arc<str> {
        let kind = match self.protocol {
            Protocol::Transport => "next",
            Protocol::Legacy => "data",
        };
        let id = serde_json::to_string(&self.id).unwrap_or_else(|_| "null".to_owned());
        format!(r#"{{"type":"{kind}","id":{id},"payload":"#).into()
    }

    /// Runs the subscription on an execution of its own, on the schema for its document
    /// (`enum_literals`: see `schema::Schemas`). `skip` is an answer the subscriber has already
    /// had: the first answer is dropped if it is the same. An execution that panics ends the
    /// subscription with a masked `INTERNAL` error.
    async fn run(self, enum_literals: bool, request: Request, mut skip: Option<Arc<str>>) {
        let head = self.head();
        let schema = self.endpoint.schemas.for_document(enum_literals);
        let mut stream = AssertUnwindSafe(schema.execute_stream(request)).catch_unwind();
        let mut first = true;
        let mut refused = None;
        while let Some(response) = stream.next().await {
            let response = match response {
                Ok(response) => response,
                Err(panic) => {
                    refused = Some(crate::panics::subscription_errors(&*panic));
                    break;
                }
            };
            match Step::of(&response, first) {
                Step::Answer(payload) => {
                    if skip.take().is_some_and(|had| *had == *payload) {
                        first = false;
                        continue;
                    }
                    // A subscriber reading alone (catching up, or on a stream of its own) is
                    // not a group's live delivery: its frames go out at once, not after the
                    // flush interval, or a catch-up would move a queue's worth per interval.
                    let frame = Outgoing::Text(next_frame(&head, &payload));
                    if self.out.send(frame).await.is_err() {
                        return;
                    }
                }
                Step::Refused(errors) => {
                    refused = Some(errors);
                    break;
                }
            }
            first = false;
        }
        self.finish(refused).await;
    }

    /// Frees the id, then sends the last message: `complete`, or `error` for an operation that
    /// was refused or whose execution panicked. The connection hears of the end first since a
    /// client may reuse an id as soon as it has that message.
    async fn finish(self, refused: Option<Value>) {
        let _ = self
            .events
            .send(Event::Done(self.id.clone(), self.serial))
            .await;
        let last = match refused {
            None => json!({ "type": "complete", "id": self.id }),
            Some(errors) => error_frame(self.protocol, &self.id, errors),
        };
        let _ = self.out.send(Outgoing::Text(last.to_string())).await;
    }
}

/// A subscription of this connection in a subscription group.
struct GroupMember {
    subscriber: Subscriber,
    head: Arc<str>,
    asked: Asked,
    feed: Feed,
    own: Arc<Mutex<OwnExecution>>,
}

impl Member for GroupMember {
    fn deliver(&mut self, answer: &Answer) -> Delivered {
        let frame = Outgoing::Shared(Arc::clone(&self.head), Arc::clone(&answer.payload));
        match self.subscriber.out.try_send(frame) {
            Ok(()) => Delivered::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => Delivered::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Delivered::Gone,
        }
    }

    fn detach(self: Box<Self>, last: Option<Answer>) {
        let mut own = self.own.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*own, OwnExecution::Stopped) {
            return;
        }
        let mut request = self.asked.request();
        let mut skip = None;
        if let Some(last) = last {
            match self.feed {
                // The log is the feed: go on after the last event given.
                Feed::Events => request = request.data(ResumeAfter(last.position)),
                // A feed of changes starts with the current state, which may be the last given.
                Feed::Changes => skip = Some(last.payload),
            }
        }
        let task = tokio::spawn(self.subscriber.clone().run(
            self.asked.enum_literals,
            request,
            skip,
        ));
        *own = OwnExecution::Started(task.abort_handle());
    }

    fn end(self: Box<Self>, refused: Option<Value>) {
        tokio::spawn(self.subscriber.finish(refused));
    }
}
