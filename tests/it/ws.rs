//! GraphQL over WebSocket (graphql-transport-ws) as the black-box tests speak it: open a
//! connection to `/graphql/ws`, initialise it, subscribe, and hear what the server says next.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long any one message may take on a loaded machine: a live subscription that says nothing
/// for that long is stuck.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// What the server sent next.
#[derive(Debug)]
pub enum Heard {
    Json(Value),
    /// A text frame that is not JSON.
    Text(String),
    /// The close frame's code: 1005 when it had none, 1006 when the connection ended without one.
    Closed(u16),
    /// Nothing within [`PATIENCE`].
    Silent,
}

/// Opens a connection to `ws://<address>/graphql/ws` with the graphql-transport-ws subprotocol,
/// not yet initialised. `receive_buffer` shrinks the socket's receive buffer, so that a client
/// that does not read falls behind after a few frames.
pub async fn open(
    address: &str,
    receive_buffer: Option<u32>,
) -> Result<Socket, tungstenite::Error> {
    let mut request = format!("ws://{address}/graphql/ws").into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let tcp = tokio::net::TcpSocket::new_v4()?;
    if let Some(size) = receive_buffer {
        tcp.set_recv_buffer_size(size)?;
    }
    let stream = tcp.connect(address.parse().unwrap()).await?;
    let (socket, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await?;
    Ok(socket)
}

/// An initialised connection: opened, and its `connection_init` (with a bearer token or none)
/// acknowledged. Fails with why not: the handshake's error, or what the server said instead.
pub async fn connect(
    address: &str,
    token: Option<&str>,
    receive_buffer: Option<u32>,
) -> Result<Socket, String> {
    let mut socket = open(address, receive_buffer)
        .await
        .map_err(|e| e.to_string())?;
    let payload = token.map_or(
        json!({}),
        |t| json!({ "authorization": format!("Bearer {t}") }),
    );
    send(
        &mut socket,
        &json!({ "type": "connection_init", "payload": payload }),
    )
    .await
    .map_err(|e| e.to_string())?;
    match hear(&mut socket).await {
        Heard::Json(ack) if ack["type"] == "connection_ack" => Ok(socket),
        other => Err(format!("no connection_ack: {other:?}")),
    }
}

pub async fn send(socket: &mut Socket, message: &Value) -> Result<(), tungstenite::Error> {
    socket.send(Message::text(message.to_string())).await
}

/// Sends a `subscribe` message with `query` and, when given, its variables.
pub async fn subscribe(
    socket: &mut Socket,
    id: &str,
    query: &str,
    variables: Option<&Value>,
) -> Result<(), tungstenite::Error> {
    let mut payload = json!({ "query": query });
    if let Some(variables) = variables {
        payload["variables"] = variables.clone();
    }
    send(
        socket,
        &json!({ "type": "subscribe", "id": id, "payload": payload }),
    )
    .await
}

/// What the server says next (frames other than text and close are passed over).
pub async fn hear(socket: &mut Socket) -> Heard {
    loop {
        let Ok(message) = tokio::time::timeout(PATIENCE, socket.next()).await else {
            return Heard::Silent;
        };
        match message {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str())
                    .map_or_else(|_| Heard::Text(text.as_str().to_owned()), Heard::Json);
            }
            Some(Ok(Message::Close(frame))) => {
                return Heard::Closed(frame.map_or(1005, |f| u16::from(f.code)));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Heard::Closed(1006),
        }
    }
}

/// The next JSON message; fails the test on anything else.
pub async fn next_json(socket: &mut Socket) -> Value {
    match hear(socket).await {
        Heard::Json(message) => message,
        other => panic!("a JSON message was due, not {other:?}"),
    }
}

/// Every JSON message up to and including the first that `last` accepts, or the first error
/// message (so that a refusal shows at once instead of after [`PATIENCE`]); fails the test on
/// anything else.
pub async fn json_until(socket: &mut Socket, mut last: impl FnMut(&Value) -> bool) -> Vec<Value> {
    let mut heard = Vec::new();
    loop {
        let message = next_json(socket).await;
        let done = message["type"] == "error" || last(&message);
        heard.push(message);
        if done {
            return heard;
        }
    }
}

/// What the server sent before it answered a ping sent now: what it had to say so far, its
/// pong left out.
pub async fn said_so_far(socket: &mut Socket) -> Vec<Value> {
    let marker = json!({ "said": "so far" });
    send(socket, &json!({ "type": "ping", "payload": marker }))
        .await
        .unwrap();
    let mut heard = Vec::new();
    loop {
        let message = next_json(socket).await;
        if message["type"] == "pong" && message["payload"] == marker {
            return heard;
        }
        heard.push(message);
    }
}
