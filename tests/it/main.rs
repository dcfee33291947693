//! Chancery from the outside: the built `chancery` binary and the sled store, exercised the way
//! users and operators meet them (the CLI, crashes, the disk).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod cli;
mod clients;
mod crash;
mod durability;
mod fixtures;
mod graphql;
mod nats;
mod support;
mod ui;
