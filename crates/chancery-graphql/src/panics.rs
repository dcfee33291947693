//! Panics in a handler, a resolver or a subscription: the request (or the subscription) gets a
//! masked `INTERNAL` error with a reference to quote (as every internal error does), the server
//! log gets the panic's message under that reference, and the server goes on serving. Without
//! this, a panic drops an HTTP connection with no answer at all, and leaves a subscription silent
//! forever.

use std::any::Any;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::masked;

/// `router`, with every panic of its handlers (and the resolvers they run) answered as a
/// `500` with a GraphQL error of code `INTERNAL` instead of a dropped connection. Subscriptions
/// over WebSocket run in tasks of their own, out of this layer's reach: they catch their panics
/// themselves ([`subscription_errors`]).
pub fn catch_panics(router: axum::Router) -> axum::Router {
    router.layer(CatchPanicLayer::custom(answer_panic))
}

/// The answer to a request whose handler panicked: `{"errors": [...]}` with the reference.
fn answer_panic(panic: Box<dyn Any + Send + 'static>) -> Response {
    let error = panic_error("a request handler", &*panic);
    let body = serde_json::json!({ "errors": [error] });
    let mut response = (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// The errors that end a subscription whose execution panicked: one masked `INTERNAL`, logged
/// once however many subscribers share the execution.
pub(crate) fn subscription_errors(panic: &(dyn Any + Send)) -> serde_json::Value {
    serde_json::Value::Array(vec![panic_error("a subscription", panic)])
}

/// The masked error for a panic in `what`, whose message goes to the log under its reference.
fn panic_error(what: &str, panic: &(dyn Any + Send)) -> serde_json::Value {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    masked(&format!("{what} panicked: {message}"))
}
