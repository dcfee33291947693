//! Panics in a handler or a resolver: the request gets a masked `INTERNAL` error with a
//! reference to quote (as every internal error does), the server log gets the panic's message
//! under that reference, and the server goes on serving. Without this, a panic drops the
//! connection with no answer at all.

use std::any::Any;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::masked;

/// `router`, with every panic of its handlers (and the resolvers they run) answered as a
/// `500` with a GraphQL error of code `INTERNAL` instead of a dropped connection.
pub fn catch_panics(router: axum::Router) -> axum::Router {
    router.layer(CatchPanicLayer::custom(answer_panic))
}

/// The answer to a request whose handler panicked: `{"errors": [...]}` with the reference.
fn answer_panic(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    let error = masked(&format!("a request handler panicked: {what}"));
    let body = serde_json::json!({ "errors": [error] });
    let mut response = (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}
