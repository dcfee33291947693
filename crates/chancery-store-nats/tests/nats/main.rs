//! The NATS backend: the shared contract suite, and what only it does (several servers on one
//! stream, the local replica), on a nats-server these tests start themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod contract;
mod replica;
mod server;
mod shared;
mod support;
