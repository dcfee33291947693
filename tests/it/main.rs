//! Chancery from the outside, the way users, clients and operators meet it: the built `chancery`
//! binary's CLI (import, export, verify, replay, data written by version 1), the GraphQL API over
//! HTTP and WebSocket (every query, mutation, error code and limit; the bad-input catalogue;
//! schemathesis fuzzing), real GraphQL clients (Node.js and Python), the timeline page in
//! Chromium, two servers and a three-node cluster on NATS JetStream with nodes and servers
//! SIGKILLed, faults of the disk (a full disk, damaged files, an online backup), crashes of a
//! writer at random moments, and durability under strace.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod access;
mod bad_input;
mod cli;
mod clients;
mod crash;
mod datasets;
mod durability;
mod faults;
mod fixtures;
mod graphql;
mod nats;
mod schemathesis;
mod support;
mod ui;
mod ws;
