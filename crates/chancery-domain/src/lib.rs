//! Chancery's domain: what parties in a negotiation do and say, as events.
//!
//! This crate knows nothing of storage, networks or GraphQL. It defines the event envelope and
//! the typed payload of every kind ([`event`], [`payload`]), how a coded dataset coded an
//! imported event ([`dataset`]), valid and transaction time
//! ([`time`]), validation with field-level errors ([`validate`]), the registry of parties,
//! actors, issues and timelines ([`registry`]), the CAMEO/PLOVER codes table ([`codes`]), and the
//! canonical encoding and hash chain of recorded events ([`record`]).

pub mod codes;
pub mod currency;
pub mod dataset;
pub mod event;
pub mod ids;
pub mod limits;
pub mod payload;
pub mod record;
pub mod registry;
#[cfg(any(test, feature = "testing"))]
pub mod sample;
mod text_serde;
pub mod time;
pub mod validate;

pub use dataset::{Dataset, DatasetCoding};
pub use event::{Amount, Attribution, Modality, NewEvent, Occurred, Participant, Source};
pub use ids::{ActorSlug, EventId, IdError, IssueSlug, PartyCode, TimelineSlug};
pub use payload::{Kind, Payload};
pub use record::{
    EventView, Hash, Position, PreparedEvent, RecordError, RecordedEvent, SCHEMA_VERSION,
    decode_record, verify_record_hash,
};
pub use registry::{EventRef, References, Registry};
pub use time::{Precision, Timestamp, ValidTime};
pub use validate::{
    FieldError, ValidationErrors, validate, validate_prepared, validate_recorded_by,
    validate_references,
};
