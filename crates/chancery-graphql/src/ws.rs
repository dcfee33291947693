//! GraphQL over WebSocket at `/graphql/ws`: the graphql-transport-ws protocol (with its close
//! codes: 4400 invalid message, 4401 subscribe before ack, 4403 bad token, 4408 no
//! `connection_init` in time, 4409 duplicate subscription id, 4429 a second init) and the legacy
//! graphql-ws protocol (subscriptions-transport-ws). The token comes in `connection_init`; the
//! `Origin` is checked at the upgrade.

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::Request;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::auth::Caller;
use crate::error::Code;
use crate::http::Endpoint;
use crate::limits::count_aliases;

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";

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

pub async fn upgrade(
    State(endpoint): State<Endpoint>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let api = &endpoint.api;
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !endpoint.origins.allows(origin, host) {
        return (StatusCode::FORBIDDEN, axum::Json(json!({ "errors": [{ "message": "this origin may not open a WebSocket here", "extensions": { "code": "FORBIDDEN" } }] }))).into_response();
    }
    if usize::try_from(api.metrics.open_connections()).unwrap_or(0) >= api.limits.max_connections {
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({ "errors": [{ "message": "too many WebSocket connections", "extensions": { "code": "LIMIT" } }] }))).into_response();
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
        .on_upgrade(move |socket| connection(socket, endpoint, protocol))
}

/// What the connection's writer sends.
enum Outgoing {
    Text(String),
    Close(u16, &'static str),
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
    subscriptions: HashMap<String, (u64, AbortHandle)>,
    started: u64,
}

async fn connection(socket: WebSocket, endpoint: Endpoint, protocol: Protocol) {
    let _open = endpoint.api.metrics.connection_opened();
    let (mut sink, mut incoming) = socket.split();
    let (out, mut outgoing) = mpsc::channel::<Outgoing>(256);
    let writer = tokio::spawn(async move {
        'writing: while let Some(first) = outgoing.recv().await {
            // Everything already queued goes out in one flush: a commit wakes every subscription
            // of a connection at once, and a flush per message costs a write each.
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    Outgoing::Text(text) => {
                        if sink.feed(Message::Text(text.into())).await.is_err() {
                            break 'writing;
                        }
                        next = outgoing.try_recv().ok();
                    }
                    Outgoing::Close(code, reason) => {
                        let _ = sink
                            .feed(Message::Close(Some(CloseFrame {
                                code,
                                reason: reason.into(),
                            })))
                            .await;
                        break 'writing;
                    }
                }
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
        // However the writing ended (our close, the client's, or a send that raced the client's
        // close), flushing and closing gets out the frame that is due: ours, or the reply
        // tungstenite queued to the client's close. Leaving without it is an abnormal close
        // (1006) for the client.
        let _ = sink.flush().await;
        let _ = sink.close().await;
    });
    let (events, mut done) = mpsc::channel::<Event>(256);
    let init_timeout = endpoint.api.limits.init_timeout;
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
    let deadline = tokio::time::sleep(init_timeout);
    tokio::pin!(deadline);
    let mut keepalive = tokio::time::interval(Duration::from_secs(20));
    loop {
        tokio::select! {
            // Ended subscriptions first: their ids must be free before the next message is read.
            biased;
            Some(Event::Done(id, serial)) = done.recv() => {
                if c.subscriptions.get(&id).is_some_and(|(s, _)| *s == serial) {
                    c.subscriptions.remove(&id);
                }
            }
            () = &mut deadline, if !c.init_seen => {
                c.close(4408, "Connection initialisation timeout").await;
                break;
            }
            _ = keepalive.tick(), if c.protocol == Protocol::Legacy && c.acked => {
                c.send(json!({ "type": "ka" })).await;
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if !c.handle(text.as_str()).await {
                        break;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    c.close(4400, "Binary messages are not supported").await;
                    break;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(frame))) => {
                    // Answer a close with a close: the clean end of the handshake.
                    let code = frame.map_or(1000, |f| f.code);
                    c.close(if code == 1005 { 1000 } else { code }, "").await;
                    break;
                }
                Some(Err(_)) | None => break,
            }
        }
    }
    for (_, (_, task)) in c.subscriptions.drain() {
        task.abort();
    }
    drop(c);
    let _ = writer.await;
}

impl Connection {
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
                    if let Some((_, task)) = self.subscriptions.remove(id) {
                        task.abort();
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
            .identify(token)
            .map_err(|e| e.message)
    }

    async fn subscribe(&mut self, message: &serde_json::Map<String, Value>) -> bool {
        if !self.acked {
            if self.protocol == Protocol::Transport {
                self.close(4401, "Unauthorized").await;
                return false;
            }
            self.send(json!({ "type": "error", "id": message.get("id"), "payload": { "message": "send connection_init first" } })).await;
            return true;
        }
        let id = message.get("id").and_then(Value::as_str).map(str::to_owned);
        let payload = message.get("payload").and_then(Value::as_object);
        let query = payload.and_then(|p| p.get("query")).and_then(Value::as_str);
        let (Some(id), Some(payload), Some(query)) = (id, payload, query) else {
            if self.protocol == Protocol::Transport {
                self.close(
                    4400,
                    "Invalid message received: subscribe needs id and payload.query",
                )
                .await;
                return false;
            }
            self.send(json!({ "type": "error", "id": message.get("id"), "payload": { "message": "start needs id and payload.query" } })).await;
            return true;
        };
        if self.subscriptions.contains_key(&id) {
            if self.protocol == Protocol::Transport {
                self.close(4409, "Subscriber for this id already exists")
                    .await;
                return false;
            }
            self.send(json!({ "type": "error", "id": id, "payload": { "message": "a subscription with this id is already running" } })).await;
            return true;
        }
        let limits = &self.endpoint.api.limits;
        if self.subscriptions.len() >= limits.max_subscriptions_per_connection {
            let error = json!({ "message": format!("this connection already has {} subscriptions, the limit", limits.max_subscriptions_per_connection), "extensions": { "code": "LIMIT" } });
            self.send(self.error_message(&id, vec![error])).await;
            return true;
        }
        match async_graphql::parser::parse_query(query) {
            Ok(document) if count_aliases(&document) > limits.max_aliases => {
                let error = json!({ "message": format!("the query has more than {} aliases", limits.max_aliases), "extensions": { "code": Code::Limit.as_str() } });
                self.send(self.error_message(&id, vec![error])).await;
                return true;
            }
            Ok(_) => {}
            Err(e) => {
                let message = crate::error::parse_error_message(&e);
                let error = json!({ "message": message, "extensions": { "code": Code::Validation.as_str() } });
                self.send(self.error_message(&id, vec![error])).await;
                return true;
            }
        }
        let mut request = Request::new(query).data(self.caller);
        if let Some(name) = payload.get("operationName").and_then(Value::as_str) {
            request = request.operation_name(name);
        }
        if let Some(variables) = payload.get("variables").filter(|v| v.is_object()) {
            request = request.variables(async_graphql::Variables::from_json(variables.clone()));
        }
        self.started += 1;
        let serial = self.started;
        let task = tokio::spawn(run_subscription(
            self.endpoint.clone(),
            self.protocol,
            (id.clone(), serial),
            request,
            self.out.clone(),
            self.events.clone(),
        ));
        self.subscriptions.insert(id, (serial, task.abort_handle()));
        true
    }

    fn error_message(&self, id: &str, errors: Vec<Value>) -> Value {
        match self.protocol {
            Protocol::Transport => json!({ "type": "error", "id": id, "payload": errors }),
            Protocol::Legacy => {
                json!({ "type": "error", "id": id, "payload": errors.into_iter().next().unwrap_or(Value::Null) })
            }
        }
    }
}

/// Adds `extensions.code` to errors that lack one (async-graphql's own).
fn with_codes(mut body: Value) -> Value {
    crate::error::add_missing_codes(&mut body);
    body
}

async fn run_subscription(
    endpoint: Endpoint,
    protocol: Protocol,
    (id, serial): (String, u64),
    request: Request,
    out: mpsc::Sender<Outgoing>,
    events: mpsc::Sender<Event>,
) {
    let send = |value: Value| {
        let out = out.clone();
        async move { out.send(Outgoing::Text(value.to_string())).await.is_ok() }
    };
    let mut stream = endpoint.schema.execute_stream(request);
    let mut first = true;
    // The last message (`complete`, or `error` for a refused operation) goes out only after the
    // connection has been told the id is free: a client may reuse an id as soon as it has it.
    let mut last = Some(json!({ "type": "complete", "id": id }));
    while let Some(response) = stream.next().await {
        let request_error = first
            && response.data == async_graphql::Value::Null
            && !response.errors.is_empty()
            && response.errors.iter().all(|e| e.path.is_empty());
        first = false;
        let kind = if protocol == Protocol::Transport {
            "next"
        } else {
            "data"
        };
        // An answer without errors is written straight into its frame: with a thousand
        // subscribers, building a `Value` per delivery and printing it was a fifth of the work.
        if response.errors.is_empty() {
            if let (Ok(id_json), Ok(payload)) =
                (serde_json::to_string(&id), serde_json::to_string(&response))
            {
                let frame = format!(r#"{{"type":"{kind}","id":{id_json},"payload":{payload}}}"#);
                if out.send(Outgoing::Text(frame)).await.is_err() {
                    last = None;
                    break;
                }
                continue;
            }
        }
        let body = with_codes(serde_json::to_value(&response).unwrap_or_else(
            |_| json!({ "errors": [{ "message": "the response could not be encoded" }] }),
        ));
        if request_error {
            let errors = body.get("errors").cloned().unwrap_or(Value::Array(vec![]));
            last = Some(match protocol {
                Protocol::Transport => json!({ "type": "error", "id": id, "payload": errors }),
                Protocol::Legacy => {
                    json!({ "type": "error", "id": id, "payload": errors.get(0).cloned().unwrap_or(Value::Null) })
                }
            });
            break;
        }
        if !send(json!({ "type": kind, "id": id, "payload": body })).await {
            last = None;
            break;
        }
    }
    let _ = events.send(Event::Done(id.clone(), serial)).await;
    if let Some(message) = last {
        send(message).await;
    }
}
