//! Behaviour of the domain at its boundaries: the JSON form users write, validation errors, the
//! codes table, and the canonical encoding and hash of records.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod codes;
mod dataset;
mod decoding_fuzz;
mod encoding;
mod recorded_by;
mod validation;
