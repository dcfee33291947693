//! Projections from the outside: the demo scenario's expected positions, each rule, the engine's
//! checkpoint guarantees, and property tests of replay and of as-of answers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod demo;
mod engine;
mod replay;
mod rules;
mod support;
