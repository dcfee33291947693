//! Chancery's GraphQL API: the schema (queries, mutations, subscriptions) over the event log and
//! the projections, its error codes, limits and access rules, and its transports: GraphQL over
//! HTTP ([`http`]) and over WebSocket ([`ws`], graphql-transport-ws and the legacy graphql-ws).
//!
//! This is the only crate that knows GraphQL; it never names a storage backend.

pub mod answers;
pub mod api;
pub mod auth;
pub mod cursor;
pub mod documents;
pub mod enums;
pub mod error;
pub mod groups;
pub mod http;
pub mod inputs;
pub mod limits;
pub mod listing;
pub mod metrics;
pub mod mutation;
pub mod objects;
pub mod query;
pub mod scalars;
pub mod schema;
pub mod subscription;
pub mod views;
pub mod ws;

pub use api::{Api, Limits};
pub use auth::{Access, Role};
pub use metrics::Metrics;
pub use schema::{ChanSchema, build, sdl};
