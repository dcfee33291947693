//! A raw HTTP/1.1 client for loopback servers: one request per connection (`Connection: close`),
//! its answer read to the end and de-chunked. Raw on purpose: tests send what client libraries
//! would refuse to (broken headers, bodies past the limits) and see every status as it comes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{Error, PATIENCE, Result};

/// An HTTP answer: its status, its headers (names in lower case) and its body, de-chunked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// Reads an answer from its raw bytes.
    pub fn parse(raw: &[u8]) -> Result<Reply> {
        let not_http = || Error::NotHttp(String::from_utf8_lossy(raw).chars().take(300).collect());
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(not_http)?;
        let head = String::from_utf8_lossy(&raw[..split]);
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(not_http)?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            })
            .collect();
        let mut reply = Reply {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        };
        if reply
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            reply.body = dechunk(&reply.body).ok_or_else(not_http)?;
        }
        Ok(reply)
    }

    /// The first header called `name` (in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Result<Value> {
        serde_json::from_slice(&self.body)
    }
}

/// The content of a chunked body; `None` unless it is whole and well-formed.
pub fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = body.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(String::from_utf8_lossy(&body[..end]).trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(end + 2..end + 2 + size)?);
        body = body.get(end + 2 + size + 2..)?;
    }
}

/// Reads an answer to its end. A connection that breaks after the answer began (a server that
/// answers and closes before it has read the whole request) still gives what it said.
pub fn read_reply(stream: &mut impl Read) -> Result<Reply> {
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Err(e) if !raw.windows(4).any(|w| w == b"\r\n\r\n") => Err(e.into()),
        _ => Reply::parse(&raw),
    }
}

/// Requests to one server.
#[derive(Debug, Clone)]
pub struct Client {
    address: String,
    timeout: Duration,
}

impl Client {
    /// A client of the server at `address`: `host:port`, or a URL such as `http://host:port/`.
    /// Reads and writes give up after [`PATIENCE`].
    pub fn new(address: &str) -> Client {
        let host = address.strip_prefix("http://").unwrap_or(address);
        Client {
            address: host.split('/').next().unwrap_or(host).to_owned(),
            timeout: PATIENCE,
        }
    }

    /// The same client, giving up on a read or a write after `timeout`.
    pub fn with_timeout(self, timeout: Duration) -> Client {
        Client { timeout, ..self }
    }

    /// `host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Connects and sends a request; its answer is to be read from the stream (see
    /// [`read_reply`]). A failed write is not an error: a server may answer (413) and close
    /// before it takes a large body, and what it answered is still to be read.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<TcpStream> {
        let mut stream = TcpStream::connect(&self.address)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.address
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let _ = stream.write_all(head.as_bytes());
        if let Some(body) = body {
            let _ = stream.write_all(body);
        }
        Ok(stream)
    }

    /// One request on a fresh connection, its answer read to the end.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Reply> {
        read_reply(&mut self.send(method, path, headers, body)?)
    }

    pub fn get(&self, path: &str) -> Result<Reply> {
        self.request("GET", path, &[], None)
    }

    /// The status `GET path` answers; `None` when nothing (or no HTTP) answers.
    pub fn status(&self, path: &str) -> Option<u16> {
        self.get(path).ok().map(|r| r.status)
    }

    /// A GraphQL request as JSON on `POST /graphql`, with a bearer token or none.
    pub fn graphql(&self, token: Option<&str>, query: &str, variables: &Value) -> Result<Reply> {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth));
        }
        let body = json!({ "query": query, "variables": variables }).to_string();
        self.request("POST", "/graphql", &headers, Some(body.as_bytes()))
    }
}
