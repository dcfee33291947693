//! The sled backend: the shared contract suite, and what only sled does (reopening, durability,
//! plans).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod contract;
mod durability;
mod plan;
