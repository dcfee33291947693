//! The embedded backend: the shared contract suite, and what only it does (reopening, crash
//! recovery from the segments, durability, sealing against a snapshot).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod contract;
mod durability;
mod ids;
mod plan;
mod segments;
mod support;
