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

impl ProjectionError {
    /// Whether the disk is full, so that the projections cannot write what they must: the API
    /// reports it as it reports a full disk of the log's (`STORAGE_FULL`), not as an internal
    /// error.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, ProjectionError::Store(StoreError::StorageFull(_)))
    }
}

/// Turns a sled error into the projections': a full disk is told apart, so that users know
/// what to do.
pub fn storage(e: sled::Error) -> ProjectionError {
    match &e {
        sled::Error::Io(io) if chancery_store::reserve::is_full(io) => ProjectionError::Store(StoreError::StorageFull(
            "no space left on the projections' disk; free some space: the projections keep what \
             they applied and answer again once there is room"
                .into(),
        )),
        _ => ProjectionError::Storage(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_apart_from_other_storage_errors() {
        let enospc = sled::Error::Io(std::io::Error::from_raw_os_error(28));
        // As sled hands its sticky error on to every later call.
        let sticky = sled::Error::Io(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "Os { code: 28, kind: StorageFull, message: \"No space left on device\" }",
        ));
        for e in [enospc, sticky] {
            let error = storage(e);
            assert!(error.is_storage_full(), "{error:?}");
            assert!(error.to_string().contains("projections' disk"), "{error}");
        }
        let other = storage(sled::Error::Io(std::io::Error::other("a bad sector")));
        assert!(!other.is_storage_full(), "{other:?}");
        assert!(!storage(sled::Error::Unsupported("x".into())).is_storage_full());
    }
}
