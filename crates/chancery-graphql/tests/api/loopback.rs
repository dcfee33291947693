//! The API's own routes served on loopback over a log holding the demo scenario, and a small
//! blocking WebSocket client to talk to `/graphql/ws` as a client does: frames on a socket, not
//! calls into the server.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chancery_domain::NewEvent;
use chancery_graphql::http::{Endpoint, router};
use chancery_graphql::panics::catch_panics;
use chancery_graphql::ws::Origins;
use chancery_graphql::{Access, Api, Limits, Metrics};
use chancery_projections::{CheckpointPolicy, Projections};
use chancery_store::{AppendRequest, EventLog, ExpectedVersion};
use chancery_store_sled::{SledConfig, SledLog};
use serde_json::Value;

pub const DEMO: &str = include_str!("../../../chancery/demo/us-china-trade-2018.ndjson");

/// How long any one frame may take on a loaded machine: a connection that says nothing for that
/// long is stuck.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The demo scenario's events, in order.
pub fn demo_events() -> Vec<NewEvent> {
    DEMO.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Opens a log in `dir` holding the demo scenario.
pub fn demo_log(runtime: &tokio::runtime::Runtime, dir: &Path) -> Arc<SledLog> {
    let log = Arc::new(SledLog::open(dir.join("log"), SledConfig::unsynced()).unwrap());
    let events = demo_events();
    runtime.block_on(async {
        log.append(AppendRequest {
            refers_within: None,
            timeline: events[0].timeline.clone(),
            expected: ExpectedVersion::Any,
            events,
        })
        .await
        .unwrap();
    });
    log
}

/// The API over `log`, served on a loopback port with the router the server uses (catch-panic
/// layer included); answers its address. It serves until the runtime goes.
pub fn serve(runtime: &tokio::runtime::Runtime, log: Arc<dyn EventLog>, access: Access) -> String {
    runtime.block_on(async {
        let projections = Projections::open(Arc::clone(&log), None, CheckpointPolicy::default())
            .await
            .unwrap();
        let api = Arc::new(Api {
            log,
            projections,
            access,
            metrics: Arc::new(Metrics::default()),
            limits: Limits::default(),
            introspection: true,
        });
        let endpoint = Endpoint {
            schemas: chancery_graphql::build(Arc::clone(&api)),
            api: Arc::clone(&api),
            origins: Origins::default(),
            answers: Arc::default(),
            documents: Arc::default(),
            groups: Arc::new(chancery_graphql::groups::Groups::new(Arc::clone(
                &api.metrics,
            ))),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, catch_panics(router(endpoint))).await });
        address
    })
}

/// What the server sent next.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    Json(Value),
    /// A close frame's code and reason (1006 and no reason when the connection ended without one).
    Closed(u16, String),
    /// Nothing within [`PATIENCE`].
    Silent,
}

/// One WebSocket connection to `/graphql/ws`.
pub struct Ws {
    stream: TcpStream,
}

impl Ws {
    /// Opens a connection offering `protocol` (`graphql-transport-ws` or `graphql-ws`).
    pub fn open(address: &str, protocol: &str) -> Ws {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_nodelay(true).unwrap();
        let handshake = format!(
            "GET /graphql/ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
        );
        stream.write_all(handshake.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "no upgrade: {head}");
        Ws { stream }
    }

    /// Opens a connection and sends `connection_init` (with `token` as a bearer token, if any);
    /// answers it once acknowledged.
    pub fn connect(address: &str, protocol: &str, token: Option<&str>) -> Ws {
        let mut ws = Ws::open(address, protocol);
        let payload = token.map_or(
            serde_json::json!({}),
            |t| serde_json::json!({ "authorization": format!("Bearer {t}") }),
        );
        ws.send(&serde_json::json!({ "type": "connection_init", "payload": payload }));
        match ws.hear() {
            Heard::Json(ack) if ack["type"] == "connection_ack" => ws,
            other => panic!("no connection_ack: {other:?}"),
        }
    }

    /// Sends one text frame (masked, as a client's must be).
    pub fn send(&mut self, message: &Value) {
        let payload = message.to_string().into_bytes();
        let mut frame = vec![0x81];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= usize::from(u16::MAX) => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).unwrap();
    }

    /// The next message (pings are answered on the way).
    pub fn hear(&mut self) -> Heard {
        loop {
            let mut header = [0u8; 2];
            match self.stream.read_exact(&mut header) {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Heard::Silent;
                }
                Err(_) => return Heard::Closed(1006, String::new()),
            }
            let opcode = header[0] & 0x0f;
            let mut len = u64::from(header[1] & 0x7f);
            if len == 126 {
                let mut ext = [0u8; 2];
                self.stream.read_exact(&mut ext).unwrap();
                len = u64::from(u16::from_be_bytes(ext));
            } else if len == 127 {
                let mut ext = [0u8; 8];
                self.stream.read_exact(&mut ext).unwrap();
                len = u64::from_be_bytes(ext);
            }
            let mut payload = vec![0u8; usize::try_from(len).unwrap()];
            self.stream.read_exact(&mut payload).unwrap();
            match opcode {
                0x1 => return Heard::Json(serde_json::from_slice(&payload).unwrap()),
                0x8 => {
                    let code = payload
                        .get(..2)
                        .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                    let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or(&[]));
                    return Heard::Closed(code, reason.into_owned());
                }
                0x9 => {
                    let mut pong = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
                    pong.extend_from_slice(&payload);
                    self.stream.write_all(&pong).unwrap();
                }
                _ => {}
            }
        }
    }

    /// The first message in `heard` that satisfies `wanted`, or else the first read from now on
    /// that does (`what` names it for the failure); every message read is kept in `heard`.
    pub fn until(
        &mut self,
        heard: &mut Vec<Value>,
        what: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(message) = heard.iter().find(|m| wanted(m)) {
            return message.clone();
        }
        loop {
            match self.hear() {
                Heard::Json(message) => {
                    heard.push(message.clone());
                    if wanted(&message) {
                        return message;
                    }
                }
                other => panic!("waiting for {what}: {other:?}; heard before: {heard:#?}"),
            }
        }
    }
}

/// Whether `message` is of `kind` for subscription `id`.
pub fn is(message: &Value, kind: &str, id: &str) -> bool {
    message["type"] == kind && message["id"] == id
}
