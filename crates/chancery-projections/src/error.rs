//! What can go wrong with projections, typed for callers.

use chancery_domain::Position;
use chancery_store::StoreError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),

    /// The checkpoint is past the end of the log: the log was replaced by a shorter one.
    #[error(
        "the projections are ahead of the log (checkpoint at position {checkpoint}, log head at {head}): the log was replaced; run `chancery replay` to rebuild them"
    )]
    AheadOfLog {
        checkpoint: Position,
        head: Position,
    },

    /// The checkpoint's last event is not the log's event at that position.
    #[error(
        "the projections were built from another log (they differ at position {position}); run `chancery replay` to rebuild them"
    )]
    Diverged { position: Position },

    /// An event came out of order; the engine feeds positions one after another.
    #[error("projection expected position {expected} but got {got}")]
    OutOfOrder { expected: Position, got: Position },

    /// Waiting for a position took longer than allowed.
    #[error("the projections reached position {applied}, not {wanted}, within {waited_ms} ms")]
    NotYet {
        wanted: Position,
        applied: Position,
        waited_ms: u64,
    },

    /// The checkpoint directory has too little room for a checkpoint: nothing was written, and
    /// the changes wait in memory for the next one.
    #[error(
        "no room for the projections' checkpoint: {dir} has {free} bytes free and a checkpoint needs {needed}; free some space (the projections keep answering and save once there is room)"
    )]
    NoRoom { dir: String, free: u64, needed: u64 },

    #[error("projection storage error: {0}")]
    Storage(String),

    #[error("projection data is corrupt: {0}")]
    Corrupt(String),
}

pub fn storage(e: sled::Error) -> ProjectionError {
    ProjectionError::Storage(e.to_string())
}
