//! GraphQL over HTTP, to the GraphQL-over-HTTP specification: `POST /graphql` with a JSON body
//! (a request or a batch), `GET /graphql` for queries, answers in `application/json` or
//! `application/graphql-response+json` as the `Accept` header asks. Request errors (a document
//! that does not parse or validate) are `400` without `data` for graphql-response+json clients;
//! a mutation over GET is `405`; a body that is not JSON is `415` (so no cross-site form can post
//! one). And GraphiQL, served from the binary.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::OperationType;
use async_graphql::{Name, Request, Value as GraphqlValue, Variables};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::answers::{AnswerCache, Claim, Holds, Question, Stamp};
use crate::api::Api;
use crate::auth::Caller;
use crate::body::{Body, Incoming};
use crate::documents::{DocumentCache, Parsed};
use crate::error::{self, Code};
use crate::schema::Schemas;
use crate::statics::{Asset, Site};
use chancery_domain::Timestamp;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct Endpoint {
    pub schemas: Schemas,
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

/// A response written in `media`, with its `Content-Type`.
fn typed(mut response: Response, media: MediaType) -> Response {
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, media.header());
    response
}

/// A request-level failure: no `data`, one error.
fn error_response(status: StatusCode, media: MediaType, code: Code, message: &str) -> Response {
    let body = axum::Json(error::errors_value(code, message));
    typed((status, body).into_response(), media)
}

/// A request refused whole, before any GraphQL runs.
struct Refusal {
    status: StatusCode,
    media: MediaType,
    code: Code,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, media: MediaType, code: Code, message: impl Into<String>) -> Self {
        Refusal {
            status,
            media,
            code,
            message: message.into(),
        }
    }

    /// The refusal's response, counted.
    fn respond(self, api: &Api) -> Response {
        api.metrics.record_request(self.code.as_str());
        error_response(self.status, self.media, self.code, &self.message)
    }
}

/// The answer's media type, or the `406` refusing the request.
fn negotiated(headers: &HeaderMap) -> Result<MediaType, Refusal> {
    negotiate(headers).ok_or_else(|| {
        Refusal::new(
            StatusCode::NOT_ACCEPTABLE,
            MediaType::Json,
            Code::Validation,
            "answers are application/json or application/graphql-response+json",
        )
    })
}

/// Who sends the request, or the `401` refusing it.
fn identified(api: &Api, headers: &HeaderMap, media: MediaType) -> Result<Caller, Refusal> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    api.access
        .identify(authorization, Timestamp::now())
        .map_err(|e| {
            Refusal::new(
                StatusCode::UNAUTHORIZED,
                media,
                Code::Unauthorized,
                e.message,
            )
        })
}

/// The outcome of one request, ready to be written.
struct Outcome {
    /// The answer, encoded as JSON.
    body: Bytes,
    /// True when the document was refused before execution (no `data`).
    request_error: bool,
    /// What the request is counted as: `ok`, an error code, or [`METHOD`].
    code: String,
}

/// What a mutation sent over GET is counted as; it is answered `405`.
const METHOD: &str = "METHOD";

impl Outcome {
    /// An answer kept from an earlier request.
    fn answered(body: Bytes) -> Outcome {
        Outcome {
            body,
            request_error: false,
            code: "ok".into(),
        }
    }

    /// One error, counted as `counted_as`.
    fn error(code: Code, message: &str, request_error: bool, counted_as: &str) -> Outcome {
        Outcome {
            body: encode(&error::errors_value(code, message)),
            request_error,
            code: counted_as.into(),
        }
    }

    /// A document refused before execution.
    fn refused(code: Code, message: &str) -> Outcome {
        Outcome::error(code, message, true, code.as_str())
    }
}

/// A read query whose answer may be kept, and the state it is asked in.
struct Cacheable {
    question: Question,
    stamp: Stamp,
    /// The projections' reads of the present time before the answer is computed: if none is
    /// made until it is kept, it did not read the present.
    present_time_reads: u64,
}

impl Cacheable {
    /// The request's question and the current stamp, if its answer may be kept now. A document
    /// known to be something other than a query (a mutation, sent again and again by a recorder)
    /// is not looked up.
    async fn of(endpoint: &Endpoint, incoming: &Incoming, caller: &Caller) -> Option<Cacheable> {
        let operation = incoming.operation_name.as_deref();
        let known_not_query = endpoint
            .documents
            .peek(&incoming.query)
            .is_some_and(|p| p.operation_type(operation) != Some(OperationType::Query));
        if known_not_query {
            return None;
        }
        let question = Question::of(
            caller.scope(),
            &incoming.query,
            operation,
            incoming.variables_json(),
        )?;
        let present_time_reads = chancery_projections::present_time_reads();
        let stamp = Stamp::now(&endpoint.api).await?;
        Some(Cacheable {
            question,
            stamp,
            present_time_reads,
        })
    }
}

/// Parses, checks limits, and executes one request. A kept answer is looked up before anything
/// else: only a query that passed every check and answered without an error was kept, for this
/// caller's role.
async fn execute(
    endpoint: &Endpoint,
    incoming: Incoming,
    caller: Caller,
    method: &Method,
) -> Outcome {
    let metrics = &endpoint.api.metrics;
    let cacheable = Cacheable::of(endpoint, &incoming, &caller).await;
    if let Some(body) = cacheable
        .as_ref()
        .and_then(|c| endpoint.answers.get(c.stamp, &c.question))
    {
        metrics.record_answer_lookup(true);
        return Outcome::answered(body);
    }
    let (parsed, operation_type) = match check(endpoint, &incoming, method) {
        Ok(checked) => checked,
        Err(refused) => return refused,
    };
    // Only a query's answer is kept; anything else will not find one.
    let cacheable = cacheable.filter(|_| operation_type == Some(OperationType::Query));
    // Held until the answer is kept (or not): requests asking the same meanwhile wait for it.
    let _computing = match &cacheable {
        None => None,
        Some(c) => match endpoint.answers.claim(c.stamp, &c.question).await {
            Claim::Answer(body) => {
                metrics.record_answer_lookup(true);
                return Outcome::answered(body);
            }
            Claim::Compute(claim) => {
                metrics.record_answer_lookup(false);
                Some(claim)
            }
        },
    };
    let response = match run(endpoint, &parsed, request(incoming, caller, &parsed)).await {
        Ok(response) => response,
        Err(timed_out) => return timed_out,
    };
    finish(endpoint, &response, cacheable).await
}

/// Parses the document (or takes it parsed) and checks what must hold before it runs: its
/// aliases within the limit, no mutation over GET. Gives the document and its operation's type.
fn check(
    endpoint: &Endpoint,
    incoming: &Incoming,
    method: &Method,
) -> Result<(Arc<Parsed>, Option<OperationType>), Outcome> {
    let limits = &endpoint.api.limits;
    let parsed = endpoint
        .documents
        .get(&incoming.query)
        .map_err(|e| Outcome::refused(Code::Validation, &error::parse_error_message(&e)))?;
    let aliases = parsed.aliases;
    if aliases > limits.max_aliases {
        return Err(Outcome::refused(
            Code::Limit,
            &format!(
                "the query has {aliases} aliases; the limit is {}",
                limits.max_aliases
            ),
        ));
    }
    let operation_type = parsed.operation_type(incoming.operation_name.as_deref());
    if method == Method::GET && operation_type == Some(OperationType::Mutation) {
        return Err(Outcome::error(
            Code::Validation,
            "mutations need POST",
            true,
            METHOD,
        ));
    }
    Ok((parsed, operation_type))
}

/// A GraphQL request by `caller`, with its operation name and variables if given.
pub(crate) fn graphql_request(
    query: impl Into<String>,
    caller: Caller,
    operation: Option<String>,
    variables: Option<Variables>,
) -> Request {
    let mut request = Request::new(query).data(caller);
    if let Some(name) = operation {
        request = request.operation_name(name);
    }
    if let Some(variables) = variables {
        request = request.variables(variables);
    }
    request
}

/// The request to execute, with the document parsed once per text rather than once per request.
fn request(incoming: Incoming, caller: Caller, parsed: &Parsed) -> Request {
    let mut request = graphql_request(
        incoming.query,
        caller,
        incoming.operation_name,
        incoming.variables,
    );
    request.set_parsed_query(parsed.document.clone());
    for (name, value) in incoming.extensions.into_iter().flatten() {
        request.extensions.insert(name.to_string(), value);
    }
    request
}

/// Executes `request` (of the document `parsed`) within the request time limit; past it, the
/// outcome is a `LIMIT` error.
async fn run(
    endpoint: &Endpoint,
    parsed: &Parsed,
    request: Request,
) -> Result<async_graphql::Response, Outcome> {
    let timeout = endpoint.api.limits.request_timeout;
    let schema = endpoint.schemas.for_document(parsed.enum_literals);
    tokio::time::timeout(timeout, schema.execute(request))
        .await
        .map_err(|_| {
            let message = format!("the request took longer than {} s", timeout.as_secs());
            Outcome::error(Code::Limit, &message, false, Code::Limit.as_str())
        })
}

/// Encodes an executed request's answer, keeping it for `cacheable` when it has no error.
async fn finish(
    endpoint: &Endpoint,
    response: &async_graphql::Response,
    cacheable: Option<Cacheable>,
) -> Outcome {
    let request_error = error::is_request_error(response);
    let code = counted_as(response);
    // An answer without errors is written as it is; only errors need their codes completed.
    let body = if response.errors.is_empty() {
        match serde_json::to_vec(response) {
            Ok(body) => {
                let body = Bytes::from(body);
                if let Some(cacheable) = cacheable {
                    keep(endpoint, cacheable, body.clone()).await;
                }
                body
            }
            Err(_) => encode(&unencodable()),
        }
    } else {
        encode_errors(response, request_error)
    };
    Outcome {
        body,
        request_error,
        code,
    }
}

/// Keeps an answer, only if what it depends on did not move while it was computed: the store,
/// and the second if the present time was read meanwhile.
async fn keep(endpoint: &Endpoint, cacheable: Cacheable, body: Bytes) {
    let holds = if chancery_projections::present_time_reads() == cacheable.present_time_reads {
        Holds::WhileStoreUnmoved
    } else {
        Holds::ThisSecond
    };
    let Some(now) = Stamp::now(&endpoint.api).await else {
        return;
    };
    if cacheable.stamp.still_holds(now, holds) {
        endpoint
            .answers
            .put(cacheable.stamp, cacheable.question, body, holds);
    }
}

/// What a response is counted as: `ok`, or its first error's code.
fn counted_as(response: &async_graphql::Response) -> String {
    let Some(first) = response.errors.first() else {
        return "ok".into();
    };
    match first.extensions.as_ref().and_then(|x| x.get("code")) {
        Some(async_graphql::Value::String(code)) => code.clone(),
        _ => error::code_for_library_error(&first.message)
            .as_str()
            .into(),
    }
}

/// A response with errors, every error with its code; without `data` for a request error.
fn encode_errors(response: &async_graphql::Response, request_error: bool) -> Bytes {
    let mut body = serde_json::to_value(response).unwrap_or_else(|_| unencodable());
    error::add_missing_codes(&mut body);
    if let Value::Object(map) = &mut body {
        if request_error {
            map.remove("data");
        }
    }
    encode(&body)
}

/// The answer written when a response cannot be encoded.
fn unencodable() -> Value {
    error::errors_value(Code::Internal, "the response could not be encoded")
}

/// Writes the outcomes, counted: one answer, or a batch's answers in a JSON array.
fn respond(endpoint: &Endpoint, media: MediaType, outcomes: Vec<Outcome>, batch: bool) -> Response {
    for o in &outcomes {
        endpoint.api.metrics.record_request(&o.code);
    }
    if !batch {
        if let Some(o) = outcomes.first().filter(|o| o.code == METHOD) {
            let mut response = (StatusCode::METHOD_NOT_ALLOWED, o.body.clone()).into_response();
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return typed(response, media);
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
    typed((status, body).into_response(), media)
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

/// `POST /graphql`: one request or a batch, in a JSON body.
async fn post(State(endpoint): State<Endpoint>, headers: HeaderMap, body: Bytes) -> Response {
    answer_post(&endpoint, &headers, &body)
        .await
        .unwrap_or_else(|refusal| refusal.respond(&endpoint.api))
}

/// The answer to a `POST`, or (`Err`) why it is refused whole.
async fn answer_post(
    endpoint: &Endpoint,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Refusal> {
    let api = &endpoint.api;
    let media = negotiated(headers)?;
    if !is_json(headers) {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            Code::Validation,
            "the body must be application/json",
        ));
    }
    let caller = identified(api, headers, media)?;
    let refuse =
        |code: Code, message: String| Refusal::new(StatusCode::BAD_REQUEST, media, code, message);
    let items = match Body::parse(body)
        .map_err(|e| refuse(Code::Validation, format!("the body is not JSON: {e}")))?
    {
        Body::One(one) => {
            let incoming = one.map_err(|message| refuse(Code::Validation, message))?;
            let outcome = execute(endpoint, incoming, caller, &Method::POST).await;
            return Ok(respond(endpoint, media, vec![outcome], false));
        }
        Body::Batch(items) => items,
    };
    if items.is_empty() {
        return Err(refuse(Code::Validation, "an empty batch".into()));
    }
    if items.len() > api.limits.max_batch {
        let message = format!(
            "the batch has {} requests; the limit is {}",
            items.len(),
            api.limits.max_batch
        );
        return Err(refuse(Code::Limit, message));
    }
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        outcomes.push(match item {
            Ok(i) => execute(endpoint, i, caller.clone(), &Method::POST).await,
            Err(message) => Outcome::refused(Code::Validation, &message),
        });
    }
    Ok(respond(endpoint, media, outcomes, true))
}

/// `GET /graphql`: one query in the URL's parameters.
async fn get(
    State(endpoint): State<Endpoint>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    answer_get(&endpoint, &headers, &params)
        .await
        .unwrap_or_else(|refusal| refusal.respond(&endpoint.api))
}

/// The answer to a `GET`, or (`Err`) why it is refused.
async fn answer_get(
    endpoint: &Endpoint,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<Response, Refusal> {
    let api = &endpoint.api;
    let media = negotiated(headers)?;
    let caller = identified(api, headers, media)?;
    let refuse =
        |message: String| Refusal::new(StatusCode::BAD_REQUEST, media, Code::Validation, message);
    let query = params
        .get("query")
        .cloned()
        .ok_or_else(|| refuse("the request has no `query` parameter".into()))?;
    // An object, or nothing (absent, empty or `null`).
    let parse = |name: &str| -> Result<Option<IndexMap<Name, GraphqlValue>>, String> {
        match params.get(name) {
            None => Ok(None),
            Some(text) if text.is_empty() => Ok(None),
            Some(text) => match serde_json::from_str::<GraphqlValue>(text) {
                Ok(GraphqlValue::Object(map)) => Ok(Some(map)),
                Ok(GraphqlValue::Null) => Ok(None),
                _ => Err(format!("`{name}` must be a JSON object")),
            },
        }
    };
    let (variables, extensions) = match (parse("variables"), parse("extensions")) {
        (Ok(v), Ok(e)) => (v, e),
        (Err(m), _) | (_, Err(m)) => return Err(refuse(m)),
    };
    let incoming = Incoming {
        query,
        operation_name: params
            .get("operationName")
            .filter(|s| !s.is_empty())
            .cloned(),
        variables: variables.map(|map| Variables::from_value(GraphqlValue::Object(map))),
        extensions,
    };
    let outcome = execute(endpoint, incoming, caller, &Method::GET).await;
    Ok(respond(endpoint, media, vec![outcome], false))
}

/// Turns the body-limit layer's bare `413` into a GraphQL error with code `LIMIT`.
async fn explain_body_limit(response: Response) -> Response {
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        MediaType::Json,
        Code::Limit,
        "the request body is larger than the limit",
    )
}

const JS: &str = "text/javascript; charset=utf-8";

/// GraphiQL's page.
static GRAPHIQL_INDEX: Asset = crate::static_asset!(
    "../assets/graphiql/",
    "index.html",
    "text/html; charset=utf-8"
);

/// Everything `/graphiql/assets/{name}` serves; any other name is a 404.
static GRAPHIQL_ASSETS: [Asset; 6] = [
    crate::static_asset!("../assets/graphiql/", "chancery-graphiql.js", JS),
    crate::static_asset!("../assets/graphiql/", "graphiql.min.js", JS),
    crate::static_asset!(
        "../assets/graphiql/",
        "graphiql.min.css",
        "text/css; charset=utf-8"
    ),
    crate::static_asset!("../assets/graphiql/", "react.production.min.js", JS),
    crate::static_asset!("../assets/graphiql/", "react-dom.production.min.js", JS),
    crate::static_asset!(
        "../assets/graphiql/",
        "LICENSES.txt",
        "text/plain; charset=utf-8"
    ),
];

/// GraphiQL's files, all from this server; it sets inline styles, and its fonts and images are
/// data URLs.
const GRAPHIQL: Site = Site {
    csp: "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    referrer_policy: None,
    missing: "no such asset",
};

async fn graphiql(headers: HeaderMap) -> Response {
    GRAPHIQL.serve(&GRAPHIQL_INDEX, &headers)
}

async fn graphiql_asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    GRAPHIQL.serve_named(&GRAPHIQL_ASSETS, &name, &headers)
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
