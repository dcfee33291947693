//! The event-log contract: one trait ([`EventLog`]) that every storage backend implements, its
//! errors, the rules of appending that every backend applies ([`sequencer`]), the filters and
//! live subscriptions shared by backends, the reopening and reserve files of embedded databases
//! shared by the sled backend and the projections, and (feature `testing`) the
//! contract test suite that every backend must pass unchanged.

pub mod error;
pub mod filter;
pub mod live;
pub mod log;
pub mod reopen;
pub mod reserve;
pub mod sequencer;

#[cfg(feature = "testing")]
pub mod contract;

pub use error::StoreError;
pub use filter::EventFilter;
pub use live::{ForwardReader, LiveFeed};
pub use log::{
    AppendOutcome, AppendRequest, Appended, Direction, EventLog, EventStream, ExpectedVersion,
    Head, ReadRequest, RestoreOutcome,
};
pub use reopen::open_released;
pub use reserve::Reserve;
