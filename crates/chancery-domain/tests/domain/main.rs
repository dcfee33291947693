//! Behaviour of the domain at its boundaries: the JSON form users write, validation errors, the
//! codes table, and the canonical encoding and hash of records.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod codes;
mod dataset;
mod decoding_fuzz;
mod encoding;
mod recorded_by;
mod validation;

/// Asserts that every `tampered` copy of a record's canonical JSON `line` differs from it and
/// fails its hash.
fn assert_tampering_fails_the_hash(line: &str, tampered: &[String]) {
    for t in tampered {
        assert_ne!(t, line);
        assert!(
            matches!(
                chancery_domain::verify_record_hash(t.as_bytes()),
                Err(chancery_domain::RecordError::HashMismatch { .. })
            ),
            "{t}"
        );
    }
}
