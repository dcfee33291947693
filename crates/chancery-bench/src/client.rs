//! What the benchmarks that spawn servers share: finding the `chancery` binary, running
//! `chancery serve` on loopback, a free loopback port, a process's CPU time, and a small
//! keep-alive HTTP/1.1 client for GraphQL and the operations endpoints.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};

/// A first start on a large store rebuilds every projection; give it all the time it needs.
const START_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const STOP_TIMEOUT: Duration = Duration::from_secs(120);
const MB: f64 = 1e6;

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
        let mut whole = Vec::new();
        let status = self
            .request_streamed(method, path, body, |bytes| {
                whole.extend_from_slice(bytes);
                Ok(())
            })
            .await?;
        Ok((status, whole))
    }

    /// One value from the server's `/metrics`.
    pub async fn metric(&mut self, name: &str) -> anyhow::Result<f64> {
        let (status, body) = self.request("GET", "/metrics", None).await?;
        if status != 200 {
            bail!("/metrics answered {status}");
        }
        String::from_utf8_lossy(&body)
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .with_context(|| format!("no {name} in /metrics"))
    }

    /// Sends a request and hands the response's body to `sink` as it arrives, piece by piece
    /// (a large body, such as `/export`'s, is never held whole); answers the status.
    pub async fn request_streamed(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        mut sink: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<u16> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        // Without a token no Authorization header is sent: an empty one is a malformed one.
        if !self.token.is_empty() {
            head.push_str(&format!("Authorization: Bearer {}\r\n", self.token));
        }
        head.push_str("Accept: application/json\r\n");
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
        if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line).await?;
                let size = usize::from_str_radix(line.trim_end(), 16)
                    .with_context(|| format!("not a chunk size: {line:?}"))?;
                self.read_into(size, &mut sink).await?;
                // Each chunk ends with CRLF (the last, empty one too, as no trailers are sent).
                let mut crlf = [0u8; 2];
                self.stream.read_exact(&mut crlf).await?;
                if size == 0 {
                    break;
                }
            }
        } else {
            let length = length.context("a response without a length")?;
            self.read_into(length, &mut sink).await?;
        }
        Ok(status)
    }

    /// Reads `length` bytes of the body, handing each buffer's worth to `sink`.
    async fn read_into(
        &mut self,
        mut length: usize,
        sink: &mut impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        while length > 0 {
            let available = self.stream.fill_buf().await?;
            if available.is_empty() {
                bail!("the connection closed in the middle of a body");
            }
            let take = available.len().min(length);
            sink(&available[..take])?;
            self.stream.consume(take);
            length -= take;
        }
        Ok(())
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

/// CPU time process `pid` has used so far, in seconds (user + system, all its threads).
pub fn process_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces, so split after its `)`): state is
    // field 3, utime 14 and stime 15, in clock ticks of 1/100 s (USER_HZ on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("no field {i} in /proc/{pid}/stat"))
    };
    Ok((ticks(14)? + ticks(15)?) / 100.0)
}

/// A running `chancery serve` on a loopback port, killed if dropped before [`Server::stop`].
pub struct Server {
    child: Child,
    pub address: SocketAddr,
    log: PathBuf,
    /// Held so that the server's stdout stays open while it runs.
    _stdout: Lines<BufReader<ChildStdout>>,
}

/// How long a start took: from spawn to the "listening" line, and to `/readyz` answering 200.
pub struct Started {
    pub listening: f64,
    pub ready: f64,
}

impl Server {
    /// Starts `bin` serving `data` on a loopback port it chooses, with `args` after `serve`
    /// (tokens, say); its log goes to `log`. Answers once `/readyz` says 200.
    pub async fn start(
        bin: &Path,
        data: &Path,
        log: PathBuf,
        args: &[&str],
    ) -> anyhow::Result<(Server, Started)> {
        let spawned = Instant::now();
        let mut command = Command::new(bin);
        command
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            // The log is a file that people read and tail: no terminal colour codes in it.
            .env("NO_COLOR", "1");
        let (child, mut lines) = spawn_logged(&mut command, "the server", &log)?;
        let address = await_line(&mut lines, "the server", &log, START_TIMEOUT, |line| {
            let rest = line.strip_prefix("chancery: listening on http://")?;
            let address = rest.split_whitespace().next().unwrap_or_default();
            Some(
                address
                    .parse::<SocketAddr>()
                    .with_context(|| format!("a listening line without address: {line}")),
            )
        })
        .await?;
        let listening = spawned.elapsed().as_secs_f64();
        let mut server = Server {
            child,
            address,
            log,
            _stdout: lines,
        };
        loop {
            if server.ready().await? {
                break;
            }
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "the server exited ({status}) before it was ready; its log:\n{}",
                    tail(&server.log)
                );
            }
            if spawned.elapsed() > START_TIMEOUT {
                bail!("the server was not ready in time");
            }
            // Readiness is polled: the server announces it nowhere else. 2 ms is far below the
            // times measured.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let ready = spawned.elapsed().as_secs_f64();
        Ok((server, Started { listening, ready }))
    }

    async fn ready(&self) -> anyhow::Result<bool> {
        let mut http = Http::connect(&self.address.to_string(), "").await?;
        let (status, _) = http.request("GET", "/readyz", None).await?;
        match status {
            200 => Ok(true),
            503 => Ok(false),
            other => bail!("/readyz answered {other}"),
        }
    }

    /// One value from the server's `/metrics`.
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let mut http = Http::connect(&self.address.to_string(), "").await?;
        http.metric(name).await
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("the server has exited")
    }

    /// VmRSS and VmHWM of the server process, in MB.
    pub fn memory(&self) -> anyhow::Result<(f64, f64)> {
        let pid = self.pid()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> anyhow::Result<f64> {
            let kib: f64 = status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
            Ok(kib * 1024.0 / MB)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// CPU time the server process has used so far, in seconds (user + system).
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        process_cpu_seconds(self.pid()?)
    }

    /// Stops the server gracefully (SIGTERM), as an operator would, so that it saves its
    /// projections' checkpoint.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.pid()?;
        terminate(pid)?;
        let status = tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .with_context(|| {
                format!("the server did not stop within {STOP_TIMEOUT:?} of SIGTERM")
            })??;
        if !status.success() {
            bail!(
                "the server stopped with {status}; its log:\n{}",
                tail(&self.log)
            );
        }
        Ok(())
    }
}

/// Sends SIGTERM to `pid` (with `kill`: the workspace forbids the unsafe `libc::kill`).
pub fn terminate(pid: u32) -> anyhow::Result<()> {
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .context("cannot run kill")?;
    if !sent.success() {
        bail!("kill -TERM {pid} failed");
    }
    Ok(())
}

/// Spawns `command` with its standard error to the file `log` and its standard output piped, to
/// be read line by line for what the process announces; the process is killed if dropped.
pub fn spawn_logged(
    command: &mut Command,
    name: &str,
    log: &Path,
) -> anyhow::Result<(Child, Lines<BufReader<ChildStdout>>)> {
    let stderr =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {name} ({program})"))?;
    let stdout = child
        .stdout
        .take()
        .with_context(|| format!("{name} has no stdout"))?;
    Ok((child, BufReader::new(stdout).lines()))
}

/// Reads `lines` until `announces` recognises one, and answers what it made of it; an error, an
/// end of output or `timeout` fails with the tail of `log`.
pub async fn await_line<T>(
    lines: &mut Lines<BufReader<ChildStdout>>,
    name: &str,
    log: &Path,
    timeout: Duration,
    mut announces: impl FnMut(&str) -> Option<anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let seen = tokio::time::timeout(timeout, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(answer) = announces(&line) {
                return answer;
            }
        }
        bail!("{name} exited before it listened")
    })
    .await;
    match seen {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => bail!("{e}; its log:\n{}", tail(log)),
        Err(_) => bail!(
            "{name} did not listen within {timeout:?}; its log:\n{}",
            tail(log)
        ),
    }
}

/// The last lines of a server's log, for error messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A WebSocket to the server's GraphQL endpoint (graphql-transport-ws), with `connection_init`
/// sent carrying `token`; the caller awaits the `connection_ack` as it sees fit.
pub type GraphqlSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

pub async fn open_graphql_ws(address: &str, token: &str) -> anyhow::Result<GraphqlSocket> {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let mut request = format!("ws://{address}/graphql/ws").into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await?;
    Ok(socket)
}
