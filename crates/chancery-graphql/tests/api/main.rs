//! Tests of the GraphQL API in-process, over an embedded log: what a client's inputs become, and
//! what the API's routes answer on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod input_fuzz;
mod loopback;
mod panics;
