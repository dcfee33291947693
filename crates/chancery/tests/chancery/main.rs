//! Tests of the `chancery` library crate at its boundaries: the NDJSON files `chancery import`
//! reads.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod import_fuzz;
