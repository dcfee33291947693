//! Chancery's GraphQL API: the schema (queries, mutations, subscriptions) over the event log and
//! the projections, its error codes, limits and access rules, and its transports: GraphQL over
//! HTTP ([`http`]) and over WebSocket ([`ws`], graphql-transport-ws and the legacy graphql-ws).
//! It also serves files built into the binary ([`statics`]), for GraphiQL and for other crates'
//! pages.
//!
//! This is the only crate that knows GraphQL; it never names a storage backend.

pub mod error;
pub mod groups;
pub mod http;
pub mod panics;
pub mod statics;
pub mod ws;

mod answers;
mod api;
mod auth;
mod body;
mod cursor;
mod documents;
mod enum_literals;
mod enums;
mod in_order;
mod inputs;
mod limits;
mod listing;
mod metrics;
mod mutation;
mod objects;
mod query;
mod scalars;
mod schema;
mod subscription;
mod views;

pub use api::{Api, Limits};
pub use auth::{Access, Caller, Grant, Role, Scope, Timelines, TokenDigest};
pub use metrics::Metrics;
pub use schema::{ChanSchema, Schemas, build, sdl};
