//! The state every resolver and handler shares, and how a resolver gets at it.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Context;
use chancery_projections::Projections;
use chancery_store::EventLog;

use crate::auth::{Access, Caller};
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;

/// Limits on what one request or connection may ask. Each, when exceeded, gives a `LIMIT` error.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_page_size: usize,
    pub max_batch: usize,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub max_subscriptions_per_connection: usize,
    pub max_connections: usize,
    /// Frames a WebSocket may have queued for sending; a grouped subscriber whose connection
    /// has this many leaves its group and goes on alone, reading from storage.
    pub subscriber_queue: usize,
    /// The least time between two writes of a WebSocket's live frames (`next`): frames due
    /// sooner wait and go out together, one write for several. A connection that has not written
    /// for this long writes at once. Zero writes every frame as it comes.
    pub ws_flush_interval: Duration,
    /// How long a WebSocket may wait before sending `connection_init`.
    pub init_timeout: Duration,
    /// The longest wait for `atLeast`.
    pub max_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 15,
            // The standard introspection query costs about 1,200 at this depth.
            max_complexity: 5_000,
            max_aliases: 30,
            max_page_size: 500,
            max_batch: 10,
            max_body_bytes: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_subscriptions_per_connection: 100,
            max_connections: 10_000,
            subscriber_queue: 1024,
            // A write per frame cost a third of a microsecond of kernel time per delivery at
            // 1,000 events/s to 1,000 subscribers (docs/benchmarks.md, "Live fan-out"); 5 ms
            // bounds what it adds to a delivery well inside its latency target.
            ws_flush_interval: Duration::from_millis(5),
            init_timeout: Duration::from_secs(3),
            max_wait: Duration::from_secs(10),
        }
    }
}

/// Everything the API serves from.
pub struct Api {
    pub log: Arc<dyn EventLog>,
    pub projections: Arc<Projections>,
    pub access: Access,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    /// Whether introspection and field suggestions are on.
    pub introspection: bool,
}

/// The API state of a request.
pub(crate) fn api<'a>(ctx: &Context<'a>) -> ApiResult<&'a Arc<Api>> {
    ctx.data::<Arc<Api>>()
        .map_err(|_| ApiError::internal("the API state is missing from the request"))
}

/// Who sends a request (anonymous without a token).
pub(crate) fn caller(ctx: &Context<'_>) -> Caller {
    ctx.data_opt::<Caller>()
        .cloned()
        .unwrap_or(Caller::ANONYMOUS)
}

/// The API state of a request whose caller may read; a refusal otherwise.
pub(crate) fn reader<'a>(ctx: &Context<'a>) -> ApiResult<&'a Arc<Api>> {
    let api = api(ctx)?;
    api.access.check_read(&caller(ctx))?;
    Ok(api)
}
