//! How the NATS backend reaches its stream, how the stream is laid out, and where the local
//! replica lives.

use std::path::PathBuf;
use std::time::Duration;

use chancery_domain::TimelineSlug;

#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// URLs of NATS servers (`nats://127.0.0.1:4222`): one, or several of a cluster.
    pub servers: Vec<String>,
    /// The JetStream stream that holds the log; created when missing.
    pub stream: String,
    /// Events of timeline `t` go to subject `<subject_prefix>.t`. The stream holds
    /// `<subject_prefix>.>` and nothing else, so that its sequence is the log's position.
    pub subject_prefix: String,
    /// Copies of the stream kept by a cluster: 1 on a single server, 3 in a cluster.
    pub replicas: usize,
    /// How long JetStream remembers a `Nats-Msg-Id`: it turns away a publish retried within that
    /// time. Retries after it are answered from the replica, like the sled backend does.
    pub duplicate_window: Duration,
    /// The directory of this server's local replica (a sled log), which serves every read and
    /// subscription. One per Chancery server; rebuilt from the stream when it does not match.
    pub replica_dir: PathBuf,
    /// Recent events kept in memory for live subscribers; slower ones read from the replica.
    pub live_buffer: usize,
    /// How long one request to NATS, or one wait for the replica to catch up, may take.
    pub timeout: Duration,
    /// How long a publish may wait for the stream's acknowledgement before the append tries
    /// again (planning afresh, so a publish that did land is found by its ids). Short, because a
    /// publish in flight when the stream's leader dies is never answered: with a long wait, every
    /// append of the server queued behind it for that long (the fault test measured 24-30 s with
    /// 30 s, while a new leader took about 5 s).
    pub publish_timeout: Duration,
    /// How many times an append that lost a race to another writer is planned again before it
    /// gives up.
    pub max_attempts: u32,
}

impl NatsConfig {
    /// The defaults for a single server: stream `CHANCERY` on subjects `chancery.log.>`, one
    /// copy, a two-minute duplicate window.
    pub fn new(servers: Vec<String>, replica_dir: impl Into<PathBuf>) -> Self {
        Self {
            servers,
            stream: "CHANCERY".into(),
            subject_prefix: "chancery.log".into(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            replica_dir: replica_dir.into(),
            live_buffer: 4096,
            timeout: Duration::from_secs(30),
            publish_timeout: Duration::from_secs(3),
            max_attempts: 64,
        }
    }

    /// The subject of a timeline's events. Slugs are lowercase words joined by hyphens, so they
    /// are always one valid subject token.
    pub fn subject(&self, timeline: &TimelineSlug) -> String {
        self.subject_of(timeline.as_str())
    }

    /// The subject of a timeline named by a slug already checked (a stored record's).
    pub fn subject_of(&self, timeline: &str) -> String {
        format!("{}.{timeline}", self.subject_prefix)
    }

    /// The stream's only subject filter.
    pub fn subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }
}
