//! What Chancery's tests (and its benchmark harness) share, so that each helper is written once:
//! free loopback ports, a raw HTTP/1.1 client, supervised child processes that are killed with
//! their owner, nats-servers and JetStream clusters, the CI policy for missing tools, copies of
//! data directories, a tokio runtime for synchronous tests, and (with the `fuzz` feature) proptest strategies.
//!
//! Library functions return [`Result`] and never panic on what the machine can make fail, so a
//! binary can use them with `?`; the exceptions are the CI policy ([`ci`], [`nats::require`]),
//! whose whole point is to fail a test.

use std::time::Duration;

pub mod api;
pub mod ci;
pub mod disk;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod http;
pub mod nats;
pub mod ports;
mod runtime;
pub mod server;
pub mod wait;

pub use runtime::{SharedFixture, runtime};

/// How long anything may take on a loaded machine before a helper gives up on it.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// What can go wrong in the kit's helpers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A program the caller needs is not installed.
    #[error("{program} not found ({hint})")]
    NotFound { program: String, hint: String },
    /// An environment variable names a program that is not there.
    #[error("{variable} is {path}, which is not a file")]
    NotAFile { variable: String, path: String },
    /// A child process ended, or time ran out, before it said what it was waited for.
    #[error("{name} never showed {what} ({why}); its output:\n{output}")]
    NotSeen {
        name: String,
        what: String,
        why: String,
        output: String,
    },
    /// A condition polled for did not come true in time.
    #[error("waited {patience:?} for {what}")]
    TimedOut { what: String, patience: Duration },
    /// Bytes that are not an HTTP/1.1 answer.
    #[error("not an HTTP answer: {0}")]
    NotHttp(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
