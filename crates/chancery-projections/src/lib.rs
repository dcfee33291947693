//! Projections: what the log means, derived from the log alone. Where each party stands on each
//! issue, where every issue stands between the parties, how relations between two parties move,
//! and the events in valid-time order; all of it as of any valid time and as known at any
//! position or instant of the log.
//!
//! The rules are in [`rules`]; the bitemporal model in [`state`]; the answers in [`query`] and,
//! for the API, in [`facade`]; keeping up with the log and checkpointing in [`engine`] and
//! [`checkpoint`].

pub mod checkpoint;
pub mod engine;
pub mod error;
pub mod facade;
pub mod facts;
pub mod intern;
pub mod lists;
pub mod pages;
pub mod query;
pub mod rules;
pub mod state;
pub mod values;

pub use engine::{CheckpointPolicy, Projections};
pub use error::ProjectionError;
pub use facade::{
    AsOf, ChronologyEntry, ChronologyPage, ChronologyRequest, Content, KnownAt, PositionChange,
    PositionLists, PositionQuery, PositionView, RelationsBucket, RelationsQuery, Side,
    StandoffView, present_time_reads,
};
pub use facts::Stance;
pub use query::{Bucket, BucketTotals};
pub use rules::StandoffStatus;
pub use state::Slot;
