//! What can go wrong with the log, typed so that callers (the API, the CLI) can tell a user
//! exactly what happened: bad input, a concurrency conflict, a broken store, or an I/O failure.

use chancery_domain::{EventId, Position, TimelineSlug, ValidationErrors};

use crate::log::ExpectedVersion;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The events are invalid; nothing was written.
    #[error("invalid input: {0}")]
    Invalid(#[from] ValidationErrors),

    /// The timeline is not at the version the append expected; nothing was written.
    #[error("timeline {timeline}: expected {expected}, but {}", describe_actual(.actual))]
    WrongExpectedVersion {
        timeline: TimelineSlug,
        expected: ExpectedVersion,
        actual: Option<u64>,
    },

    /// An event id is already recorded with other content (or the retried batch differs).
    #[error("event {id} is already recorded at position {position}: {reason}")]
    IdConflict {
        id: EventId,
        position: Position,
        reason: String,
    },

    /// A request exceeds a limit (too many events in one append).
    #[error("limit exceeded: {0}")]
    Limit(String),

    /// Restoring recorded events was refused; nothing was written.
    #[error("restore refused: {0}")]
    Restore(String),

    /// The stored data is damaged or inconsistent.
    #[error("the store is corrupt{}: {detail}", .position.map(|p| format!(" at position {p}")).unwrap_or_default())]
    Corrupt {
        position: Option<Position>,
        detail: String,
    },

    /// The disk is full; nothing was written. Reads keep working.
    #[error("storage is full: {0}")]
    StorageFull(String),

    /// The storage's database is being reopened (after a failed write, or to write a snapshot);
    /// nothing was read or written, and the same request succeeds once it is back.
    #[error("{0}")]
    Reopening(String),

    /// The storage failed (I/O, backend unavailable).
    #[error("storage error: {0}")]
    Storage(String),

    /// The log was shut down.
    #[error("the event log is closed")]
    Closed,
}

fn describe_actual(actual: &Option<u64>) -> String {
    match actual {
        None => "the timeline has no events".to_owned(),
        Some(v) => format!("it is at version {v}"),
    }
}

impl StoreError {
    /// Whether the same request may succeed if retried unchanged (the failure was not the
    /// request's fault).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Storage(_) | StoreError::StorageFull(_) | StoreError::Reopening(_)
        )
    }
}
