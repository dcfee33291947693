//! What the benchmarks that spawn `chancery` share: finding the binary, and a small keep-alive
//! HTTP/1.1 client for GraphQL and the operations endpoints.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `chancery` binary: `$CHANCERY_BIN`, or the one beside this executable (same profile).
pub fn chancery_bin() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("CHANCERY_BIN") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("CHANCERY_BIN is {}, which is not a file", path.display());
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().context("cannot find the bench's own executable")?;
    let beside = exe
        .parent()
        .context("the bench's executable has no folder")?
        .join("chancery");
    if !beside.is_file() {
        let profile = if cfg!(debug_assertions) {
            ""
        } else {
            " --release"
        };
        bail!(
            "{} not found: build it with `cargo build{profile} -p chancery` (or set CHANCERY_BIN)",
            beside.display()
        );
    }
    Ok(beside)
}

/// One keep-alive HTTP/1.1 connection: just enough of a client for GraphQL POSTs and /readyz.
pub struct Http {
    stream: tokio::io::BufReader<TcpStream>,
    host: String,
    token: String,
}

impl Http {
    pub async fn connect(address: &str, token: &str) -> anyhow::Result<Http> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(Http {
            stream: tokio::io::BufReader::new(stream),
            host: address.to_owned(),
            token: token.to_owned(),
        })
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nAccept: application/json\r\n",
            self.host, self.token
        );
        if let Some(body) = body {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body.unwrap_or_default());
        self.stream.get_mut().write_all(&request).await?;

        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("not an HTTP status line: {line:?}"))?;
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                bail!("the connection closed in the middle of a response");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line).await?;
                let size = usize::from_str_radix(line.trim_end(), 16)
                    .with_context(|| format!("not a chunk size: {line:?}"))?;
                let start = body.len();
                body.resize(start + size + 2, 0);
                self.stream.read_exact(&mut body[start..]).await?;
                body.truncate(start + size);
                if size == 0 {
                    break;
                }
            }
        } else {
            body.resize(length.context("a response without a length")?, 0);
            self.stream.read_exact(&mut body).await?;
        }
        Ok((status, body))
    }

    /// Posts a GraphQL request; returns the HTTP status and the parsed answer.
    pub async fn graphql(&mut self, query: &str, variables: Value) -> anyhow::Result<(u16, Value)> {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let (status, reply) = self
            .request("POST", "/graphql", Some(body.as_bytes()))
            .await?;
        let reply = serde_json::from_slice(&reply).with_context(|| {
            format!(
                "HTTP {status} without JSON: {}",
                String::from_utf8_lossy(&reply)
            )
        })?;
        Ok((status, reply))
    }

    /// A GraphQL request's `data`; its first error, if any, as the error.
    pub async fn graphql_data(&mut self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let (status, reply) = self.graphql(query, variables).await?;
        if let Some(error) = reply["errors"].get(0) {
            bail!("HTTP {status}: {error}");
        }
        Ok(reply["data"].clone())
    }
}
