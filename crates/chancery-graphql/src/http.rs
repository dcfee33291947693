//! GraphQL over HTTP, to the GraphQL-over-HTTP specification: `POST /graphql` with a JSON body
//! (a request or a batch), `GET /graphql` for queries, answers in `application/json` or
//! `application/graphql-response+json` as the `Accept` header asks. Request errors (a document
//! that does not parse or validate) are `400` without `data` for graphql-response+json clients;
//! a mutation over GET is `405`; a body that is not JSON is `415` (so no cross-site form can post
//! one). And GraphiQL, served from the binary.

use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use async_graphql::{Request, Variables};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::answers::{AnswerCache, Claim, Question, Stamp};
use crate::api::Api;
use crate::auth::Caller;
use crate::documents::DocumentCache;
use crate::error::Code;
use crate::schema::ChanSchema;

pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct Endpoint {
    pub schema: ChanSchema,
    pub api: Arc<Api>,
    pub origins: crate::ws::Origins,
    /// Answers to read queries, for as long as the store and the second do not change.
    pub answers: Arc<AnswerCache>,
    /// Parsed documents, by their text.
    pub documents: Arc<DocumentCache>,
    /// Subscriptions that share an execution.
    pub groups: Arc<crate::groups::Groups>,
}

/// The media type an answer is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaType {
    Json,
    GraphqlResponse,
}

impl MediaType {
    fn header(self) -> HeaderValue {
        match self {
            MediaType::Json => HeaderValue::from_static("application/json; charset=utf-8"),
            MediaType::GraphqlResponse => {
                HeaderValue::from_static("application/graphql-response+json; charset=utf-8")
            }
        }
    }
}

/// Picks the answer's media type from `Accept`; `None` when nothing acceptable is offered.
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    let mut best: Option<(f32, MediaType)> = None;
    for part in accept.split(',') {
        let mut pieces = part.split(';');
        let media = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let quality = pieces
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let kind = match media.as_str() {
            GRAPHQL_RESPONSE_JSON => MediaType::GraphqlResponse,
            "application/json" | "application/*" | "*/*" => MediaType::Json,
            _ => continue,
        };
        // At equal quality the graphql-response type wins: it says more about errors.
        let better = match best {
            None => quality > 0.0,
            Some((q, k)) => {
                quality > q
                    || (quality == q && kind == MediaType::GraphqlResponse && k == MediaType::Json)
            }
        };
        if better {
            best = Some((quality, kind));
        }
    }
    best.map(|(_, kind)| kind)
}

fn error_json(code: Code, message: &str) -> Value {
    json!({ "message": message, "extensions": { "code": code.as_str() } })
}

/// A request-level failure: no `data`, one error.
fn request_error(
    status: StatusCode,
    media: MediaType,
    code: Code,
    message: &str,
    api: &Api,
) -> Response {
    api.metrics.record_request(code.as_str());
    let mut response = (
        status,
        axum::Json(json!({ "errors": [error_json(code, message)] })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, media.header());
    response
}

fn caller(api: &Api, headers: &HeaderMap) -> Result<Caller, String> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    api.access.identify(authorization).map_err(|e| e.message)
}

/// One request as sent: checked for shape before it is parsed as GraphQL.
struct Incoming {
    query: String,
    operation_name: Option<String>,
    variables: Option<Value>,
    extensions: Option<Value>,
}

fn incoming(value: &Value) -> Result<Incoming, String> {
    let Value::Object(map) = value else {
        return Err("a GraphQL request is a JSON object".into());
    };
    let query = match map.get("query") {
        Some(Value::String(q)) => q.clone(),
        Some(_) => return Err("`query` must be a string".into()),
        None => return Err("the request has no `query`".into()),
    };
    let operation_name = match map.get("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("`operationName` must be a string".into()),
    };
    let variables = match map.get("variables") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err("`variables` must be an object".into()),
    };
    let extensions = match map.get("extensions") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err("`extensions` must be an object".into()),
    };
    Ok(Incoming {
        query,
        operation_name,
        variables,
        extensions,
    })
}

/// The outcome of one request, ready to be written.
struct Outcome {
    /// The answer, encoded as JSON.
    body: Bytes,
    /// True when the document was refused before execution (no `data`).
    request_error: bool,
    code: String,
}

/// Parses, checks limits, and executes one request.
async fn execute(
    endpoint: &Endpoint,
    incoming: Incoming,
    caller: Caller,
    method: &Method,
) -> Outcome {
    let api = &endpoint.api;
    let refused = |code: Code, message: String| Outcome {
        body: encode(&json!({ "errors": [error_json(code, &message)] })),
        request_error: true,
        code: code.as_str().into(),
    };
    // A kept answer is looked up before anything else: only a query that passed every check
    // below and answered without an error was kept, for this caller's role. A document known to
    // be something else (a mutation, sent again and again by a recorder) skips the lookup.
    let known_not_query = endpoint.documents.peek(&incoming.query).is_some_and(|p| {
        p.operation_type(incoming.operation_name.as_deref()) != Some(OperationType::Query)
    });
    let question = if known_not_query {
        None
    } else {
        Question::of(
            caller.role,
            &incoming.query,
            incoming.operation_name.as_deref(),
            incoming.variables.as_ref(),
        )
    };
    let stamp = match &question {
        Some(_) => Stamp::now(api).await,
        None => None,
    };
    if let (Some(question), Some(stamp)) = (&question, stamp) {
        if let Some(body) = endpoint.answers.get(stamp, question) {
            api.metrics.record_answer_lookup(true);
            return Outcome {
                body,
                request_error: false,
                code: "ok".into(),
            };
        }
    }
    let parsed = match endpoint.documents.get(&incoming.query) {
        Ok(parsed) => parsed,
        Err(e) => return refused(Code::Validation, crate::error::parse_error_message(&e)),
    };
    let aliases = parsed.aliases;
    if aliases > api.limits.max_aliases {
        return refused(
            Code::Limit,
            format!(
                "the query has {aliases} aliases; the limit is {}",
                api.limits.max_aliases
            ),
        );
    }
    let operation_type = parsed.operation_type(incoming.operation_name.as_deref());
    if method == Method::GET && operation_type == Some(OperationType::Mutation) {
        return Outcome {
            body: encode(
                &json!({ "errors": [error_json(Code::Validation, "mutations need POST")] }),
            ),
            request_error: true,
            code: "METHOD".into(),
        };
    }
    // Only a query's answer is kept; anything else will not find one.
    let question = question.filter(|_| operation_type == Some(OperationType::Query));
    // Held until the answer is kept (or not): requests asking the same meanwhile wait for it.
    let mut _computing = None;
    if let (Some(question), Some(stamp)) = (&question, stamp) {
        match endpoint.answers.claim(stamp, question).await {
            Claim::Answer(body) => {
                api.metrics.record_answer_lookup(true);
                return Outcome {
                    body,
                    request_error: false,
                    code: "ok".into(),
                };
            }
            Claim::Compute(claim) => {
                api.metrics.record_answer_lookup(false);
                _computing = Some(claim);
            }
        }
    }
    let mut request = Request::new(incoming.query).data(caller);
    // Parsed once per document text, not once per request.
    request.set_parsed_query(parsed.document.clone());
    if let Some(name) = incoming.operation_name {
        request = request.operation_name(name);
    }
    if let Some(v) = incoming.variables {
        request = request.variables(Variables::from_json(v));
    }
    if let Some(Value::Object(ext)) = incoming.extensions {
        for (k, v) in ext {
            if let Ok(value) = async_graphql::Value::from_json(v) {
                request.extensions.insert(k, value);
            }
        }
    }
    let response = match tokio::time::timeout(
        api.limits.request_timeout,
        endpoint.schema.execute(request),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => {
            return Outcome {
                body: encode(
                    &json!({ "errors": [error_json(Code::Limit, &format!("the request took longer than {} s", api.limits.request_timeout.as_secs()))] }),
                ),
                request_error: false,
                code: Code::Limit.as_str().into(),
            };
        }
    };
    // Errors before execution (validation) have no path; a field error always has one.
    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let code = response
        .errors
        .first()
        .map(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .and_then(|c| {
                    if let async_graphql::Value::String(s) = c {
                        Some(s.clone())
                    } else {
                        None
                    }
                })
                .unwrap_or_else(|| {
                    crate::error::code_for_library_error(&e.message)
                        .as_str()
                        .into()
                })
        })
        .unwrap_or_else(|| "ok".into());
    let unencodable =
        || json!({ "errors": [error_json(Code::Internal, "the response could not be encoded")] });
    // An answer without errors is written as it is; only errors need their codes completed.
    let body = if response.errors.is_empty() {
        match serde_json::to_vec(&response) {
            Ok(body) => {
                let body = Bytes::from(body);
                // Kept only if the store and the second did not move while it was computed.
                if let (Some(question), Some(stamp)) = (question, stamp) {
                    if Stamp::now(api).await == Some(stamp) {
                        endpoint.answers.put(stamp, question, body.clone());
                    }
                }
                body
            }
            Err(_) => encode(&unencodable()),
        }
    } else {
        let mut body = serde_json::to_value(&response).unwrap_or_else(|_| unencodable());
        crate::error::add_missing_codes(&mut body);
        if let Value::Object(map) = &mut body {
            if request_error {
                map.remove("data");
            }
        }
        encode(&body)
    };
    Outcome {
        body,
        request_error,
        code,
    }
}

fn respond(endpoint: &Endpoint, media: MediaType, outcomes: Vec<Outcome>, batch: bool) -> Response {
    for o in &outcomes {
        endpoint
            .api
            .metrics
            .record_request(if o.code == "ok" { "ok" } else { &o.code });
    }
    if !batch {
        if let Some(o) = outcomes.first() {
            if o.code == "METHOD" {
                let mut response = (StatusCode::METHOD_NOT_ALLOWED, o.body.clone()).into_response();
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, media.header());
                return response;
            }
        }
    }
    let all_request_errors = outcomes.iter().all(|o| o.request_error);
    let status = if media == MediaType::GraphqlResponse && all_request_errors {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = if batch {
        let mut body =
            Vec::with_capacity(outcomes.iter().map(|o| o.body.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, o) in outcomes.into_iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&o.body);
        }
        body.push(b']');
        Bytes::from(body)
    } else {
        outcomes
            .into_iter()
            .next()
            .map_or_else(|| Bytes::from_static(b"null"), |o| o.body)
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, media.header());
    response
}

fn encode(body: &Value) -> Bytes {
    // A `Value` always encodes: its keys are strings and its numbers finite.
    serde_json::to_vec(body).map_or_else(|_| Bytes::from_static(b"null"), Bytes::from)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            matches!(
                m.trim().to_ascii_lowercase().as_str(),
                "application/json" | GRAPHQL_RESPONSE_JSON
            )
        })
}

pub async fn post(State(endpoint): State<Endpoint>, headers: HeaderMap, body: Bytes) -> Response {
    let api = &endpoint.api;
    let Some(media) = negotiate(&headers) else {
        return request_error(
            StatusCode::NOT_ACCEPTABLE,
            MediaType::Json,
            Code::Validation,
            "answers are application/json or application/graphql-response+json",
            api,
        );
    };
    if !is_json(&headers) {
        return request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            Code::Validation,
            "the body must be application/json",
            api,
        );
    }
    let caller = match caller(api, &headers) {
        Ok(c) => c,
        Err(message) => {
            return request_error(
                StatusCode::UNAUTHORIZED,
                media,
                Code::Unauthorized,
                &message,
                api,
            );
        }
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                media,
                Code::Validation,
                &format!("the body is not JSON: {e}"),
                api,
            );
        }
    };
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return request_error(
                    StatusCode::BAD_REQUEST,
                    media,
                    Code::Validation,
                    "an empty batch",
                    api,
                );
            }
            if items.len() > api.limits.max_batch {
                let message = format!(
                    "the batch has {} requests; the limit is {}",
                    items.len(),
                    api.limits.max_batch
                );
                return request_error(StatusCode::BAD_REQUEST, media, Code::Limit, &message, api);
            }
            let mut outcomes = Vec::with_capacity(items.len());
            for item in &items {
                match incoming(item) {
                    Ok(i) => outcomes.push(execute(&endpoint, i, caller, &Method::POST).await),
                    Err(message) => outcomes.push(Outcome {
                        body: encode(
                            &json!({ "errors": [error_json(Code::Validation, &message)] }),
                        ),
                        request_error: true,
                        code: "VALIDATION".into(),
                    }),
                }
            }
            respond(&endpoint, media, outcomes, true)
        }
        value => match incoming(&value) {
            Ok(i) => {
                let outcome = execute(&endpoint, i, caller, &Method::POST).await;
                respond(&endpoint, media, vec![outcome], false)
            }
            Err(message) => request_error(
                StatusCode::BAD_REQUEST,
                media,
                Code::Validation,
                &message,
                api,
            ),
        },
    }
}

pub async fn get(
    State(endpoint): State<Endpoint>,
    headers: HeaderMap,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let api = &endpoint.api;
    let Some(media) = negotiate(&headers) else {
        return request_error(
            StatusCode::NOT_ACCEPTABLE,
            MediaType::Json,
            Code::Validation,
            "answers are application/json or application/graphql-response+json",
            api,
        );
    };
    let caller = match caller(api, &headers) {
        Ok(c) => c,
        Err(message) => {
            return request_error(
                StatusCode::UNAUTHORIZED,
                media,
                Code::Unauthorized,
                &message,
                api,
            );
        }
    };
    let Some(query) = params.get("query").cloned() else {
        return request_error(
            StatusCode::BAD_REQUEST,
            media,
            Code::Validation,
            "the request has no `query` parameter",
            api,
        );
    };
    let parse = |name: &str| -> Result<Option<Value>, String> {
        match params.get(name) {
            None => Ok(None),
            Some(text) if text.is_empty() => Ok(None),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(v @ (Value::Object(_) | Value::Null)) => Ok(Some(v)),
                _ => Err(format!("`{name}` must be a JSON object")),
            },
        }
    };
    let (variables, extensions) = match (parse("variables"), parse("extensions")) {
        (Ok(v), Ok(e)) => (v, e),
        (Err(m), _) | (_, Err(m)) => {
            return request_error(StatusCode::BAD_REQUEST, media, Code::Validation, &m, api);
        }
    };
    let incoming = Incoming {
        query,
        operation_name: params
            .get("operationName")
            .filter(|s| !s.is_empty())
            .cloned(),
        variables,
        extensions,
    };
    let outcome = execute(&endpoint, incoming, caller, &Method::GET).await;
    respond(&endpoint, media, vec![outcome], false)
}

/// Turns the body-limit layer's bare `413` into a GraphQL error with code `LIMIT`.
pub async fn explain_body_limit(response: Response) -> Response {
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    let mut explained = (
        StatusCode::PAYLOAD_TOO_LARGE,
        axum::Json(json!({ "errors": [error_json(Code::Limit, "the request body is larger than the limit")] })),
    )
        .into_response();
    explained
        .headers_mut()
        .insert(header::CONTENT_TYPE, MediaType::Json.header());
    explained
}

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const GRAPHIQL_INDEX: &[u8] = include_bytes!("../assets/graphiql/index.html");

const ASSETS: &[Asset] = &[
    Asset {
        name: "chancery-graphiql.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/chancery-graphiql.js"),
    },
    Asset {
        name: "graphiql.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/graphiql.min.js"),
    },
    Asset {
        name: "graphiql.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/graphiql.min.css"),
    },
    Asset {
        name: "react.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/react.production.min.js"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    },
    Asset {
        name: "LICENSES.txt",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/LICENSES.txt"),
    },
];

const GRAPHIQL_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset_response(content_type: &'static str, bytes: &'static [u8]) -> Response {
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(GRAPHIQL_CSP),
    );
    // Names carry no version: browsers revalidate, by the build's version and the file's size.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&format!(
        "\"{}-{}\"",
        env!("CARGO_PKG_VERSION"),
        bytes.len()
    )) {
        h.insert(header::ETAG, etag);
    }
    response
}

pub async fn graphiql() -> Response {
    asset_response("text/html; charset=utf-8", GRAPHIQL_INDEX)
}

pub async fn graphiql_asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => asset_response(a.content_type, a.bytes),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// The API's routes: `/graphql` (GET, POST), `/graphql/ws`, `/graphiql` and its assets.
pub fn router(endpoint: Endpoint) -> axum::Router {
    use axum::routing::get;
    let body_limit = endpoint.api.limits.max_body_bytes;
    axum::Router::new()
        .route(
            "/graphql",
            get(self::get)
                .post(post)
                .layer(tower_http::limit::RequestBodyLimitLayer::new(body_limit))
                .layer(axum::middleware::map_response(explain_body_limit)),
        )
        .route("/graphql/ws", get(crate::ws::upgrade))
        .route("/graphiql", get(graphiql))
        .route("/graphiql/assets/{name}", get(graphiql_asset))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(endpoint)
}
