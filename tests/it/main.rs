//! Chancery from the outside: the built `chancery` binary and the sled store, exercised the way
//! users and operators meet them (the CLI, crashes, the disk).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod bad_input;
mod cli;
mod clients;
mod crash;
mod durability;
mod faults;
mod fixtures;
mod graphql;
mod nats;
mod schemathesis;
mod support;
mod ui;
