//! The server: opens the stores of a data directory, keeps the projections up with the log, and
//! serves the GraphQL API with health, readiness and metrics. It takes a listener and a shutdown
//! signal, so tests can start it on port 0 and stop it when they like.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chancery_domain::{TimelineSlug, Timestamp};
use chancery_graphql::error::{ApiError, Code};
use chancery_graphql::groups::Groups;
use chancery_graphql::http::Endpoint;
use chancery_graphql::ws::Origins;
use chancery_graphql::{Api, Caller, Metrics, Role, Timelines};
use chancery_projections::{CheckpointPolicy, ProjectionError, Projections};
use chancery_store::{EventLog, StoreError};
use chancery_store_nats::{NatsConfig, NatsLog};
use futures_util::StreamExt;

use crate::config::{ServerConfig, StoreChoice};
use crate::data::DataDir;
use crate::datasets::{DatasetImport, DatasetImportError, InputFile};
use crate::demo;
use crate::exchange::{self, ExchangeError};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open the event log at {dir}: {source}")]
    Log { dir: String, source: StoreError },
    #[error("cannot load the demo scenario: {0}")]
    Demo(#[from] ExchangeError),
    #[error(transparent)]
    Projections(#[from] ProjectionError),
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A server ready to serve: its stores are open.
pub struct App {
    pub api: Arc<Api>,
    pub projections: Arc<Projections>,
    pub log: Arc<dyn EventLog>,
    ready: Arc<AtomicBool>,
    origins: Vec<String>,
}

impl App {
    /// Opens the data directory's log and projections; with `demo`, loads the example scenario
    /// into an empty log first.
    pub async fn open(config: &ServerConfig, demo: bool) -> Result<App, ServerError> {
        let data = DataDir::new(&config.data);
        let log: Arc<dyn EventLog> = match &config.store {
            StoreChoice::Sled => Arc::new(data.open_log().map_err(|source| ServerError::Log {
                dir: data.log_dir().display().to_string(),
                source,
            })?),
            StoreChoice::Nats {
                servers,
                stream,
                replicas,
            } => {
                let mut nats = NatsConfig::new(servers.clone(), data.replica_dir());
                nats.stream = stream.clone();
                nats.replicas = *replicas;
                let place = format!("{} (stream {stream})", servers.join(","));
                let log = NatsLog::connect(nats)
                    .await
                    .map_err(|source| ServerError::Log {
                        dir: place.clone(),
                        source,
                    })?;
                // Serve what the stream holds now, not what this server's replica held when it stopped.
                let head = log
                    .catch_up()
                    .await
                    .map_err(|source| ServerError::Log { dir: place, source })?;
                tracing::info!(
                    head = head.position,
                    "the replica caught up with the stream"
                );
                Arc::new(log)
            }
        };
        App::with_log(log, Some(&data), config, demo).await
    }

    /// A server over any log; projections checkpoint in the data directory if one is given.
    pub async fn with_log(
        log: Arc<dyn EventLog>,
        data: Option<&DataDir>,
        config: &ServerConfig,
        demo: bool,
    ) -> Result<App, ServerError> {
        if demo {
            let head = log.head().await.map_err(|source| ServerError::Log {
                dir: "the log".into(),
                source,
            })?;
            if head.position == 0 {
                let summary = demo::load(&*log).await?;
                tracing::info!(events = summary.written, "loaded the demo scenario");
            } else {
                tracing::info!(
                    head = head.position,
                    "the store is not empty: the demo scenario was not loaded"
                );
            }
        }
        let dir = data.map(DataDir::projections_dir);
        let projections = Projections::open(
            Arc::clone(&log),
            dir.as_deref(),
            CheckpointPolicy::default(),
        )
        .await?;
        if !config.access.has_writers() {
            tracing::warn!(
                "no recorder or admin token is configured: the API is read-only (set CHANCERY_TOKENS=role:token,...)"
            );
        }
        let api = Arc::new(Api {
            log: Arc::clone(&log),
            projections: Arc::clone(&projections),
            access: config.access.clone(),
            metrics: Arc::new(Metrics::default()),
            limits: config.limits.clone(),
            introspection: config.introspection,
        });
        Ok(App {
            api,
            projections,
            log,
            ready: Arc::new(AtomicBool::new(false)),
            origins: config.allowed_origins.clone(),
        })
    }

    /// The HTTP routes.
    pub fn router(&self) -> axum::Router {
        let endpoint = Endpoint {
            schemas: chancery_graphql::build(Arc::clone(&self.api)),
            api: Arc::clone(&self.api),
            origins: Origins {
                allowed: self.origins.clone(),
            },
            answers: Arc::default(),
            documents: Arc::default(),
            groups: Arc::new(Groups::new(Arc::clone(&self.api.metrics))),
        };
        let health = Health {
            api: Arc::clone(&self.api),
            ready: Arc::clone(&self.ready),
            groups: Arc::clone(&endpoint.groups),
        };
        let operations = axum::Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .route("/export", get(export))
            .route("/import", axum::routing::post(import))
            .route("/timelines/{slug}/timelinejs.json", get(timelinejs))
            .merge(crate::ui::router())
            .with_state(health);
        let routes = chancery_graphql::http::router(endpoint).merge(operations);
        chancery_graphql::panics::catch_panics(routes).layer(axum::middleware::from_fn(log_request))
    }

    /// Serves until `shutdown` resolves, then stops taking requests, finishes those under way,
    /// and saves a checkpoint of the projections.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let router = self.router();
        let projections = Arc::clone(&self.projections);
        let ready = Arc::clone(&self.ready);
        let follower = tokio::spawn(async move {
            let followed = async {
                let started = Instant::now();
                let caught_up = projections.catch_up(&|_, _| {}).await?;
                ready.store(true, Ordering::SeqCst);
                tracing::info!(
                    events = caught_up,
                    applied = projections.applied(),
                    seconds = started.elapsed().as_secs_f64(),
                    "projections caught up; ready"
                );
                projections.follow().await
            }
            .await;
            if let Err(error) = &followed {
                tracing::error!(%error, "the projections stopped following the log; answers stay as of their last position until a restart");
            }
            followed
        });
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, "listening");
        }
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        follower.abort();
        match tokio::time::timeout(STOP_WAIT, follower).await {
            Ok(_) => {}
            Err(_) => tracing::error!(
                seconds = STOP_WAIT.as_secs(),
                "the projections did not stop in time; stopping without their last checkpoint"
            ),
        }
        // The checkpoint only shortens the next start: one that fails (a full disk) or does not
        // end in time is no reason to fail or hold up the shutdown; the next start catches up
        // from the one before.
        let projections = Arc::clone(&self.projections);
        let closed = tokio::task::spawn_blocking(move || projections.close());
        match tokio::time::timeout(STOP_WAIT, closed).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => {
                tracing::warn!(%error, "the projections' last checkpoint failed; the next start catches up from the one before")
            }
            Ok(Err(error)) => tracing::error!(%error, "the projections' last checkpoint failed"),
            Err(_) => tracing::error!(
                seconds = STOP_WAIT.as_secs(),
                "the projections' last checkpoint did not end in time; the next start catches up from the one before"
            ),
        }
        tracing::info!("stopped");
        served.map_err(ServerError::Io)
    }
}

/// How long a shutdown waits for the projections to stop and save their last checkpoint.
const STOP_WAIT: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct Health {
    api: Arc<Api>,
    ready: Arc<AtomicBool>,
    groups: Arc<Groups>,
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready once the projections have caught up with the log as it was at start.
async fn readyz(State(h): State<Health>) -> Response {
    let head = h.api.log.head().await.map(|h| h.position).unwrap_or(0);
    let applied = h.api.projections.applied();
    let body = serde_json::json!({ "ready": h.ready.load(Ordering::SeqCst), "head": head, "projected": applied });
    let status = if h.ready.load(Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(h): State<Health>) -> Response {
    let head = h.api.log.head().await.map(|h| h.position).unwrap_or(0);
    let applied = h.api.projections.applied();
    let text = h.api.metrics.render(&[
        ("chancery_log_head", "The log's last position.", head as f64),
        (
            "chancery_projected_position",
            "The last position the projections applied.",
            applied as f64,
        ),
        (
            "chancery_projection_lag",
            "Events the projections are behind the log.",
            head.saturating_sub(applied) as f64,
        ),
        (
            "chancery_subscription_largest_group",
            "Subscribers in the largest subscription group.",
            h.groups.largest() as f64,
        ),
    ]);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Who sends a request to an operations endpoint, if its token is valid and `allowed` lets it in.
fn caller(
    h: &Health,
    headers: &HeaderMap,
    allowed: impl FnOnce(&Caller) -> Result<(), ApiError>,
) -> Result<Caller, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    h.api
        .access
        .identify(authorization, Timestamp::now())
        .and_then(|caller| allowed(&caller).map(|()| caller))
}

/// The answer refusing a caller of an operations endpoint: 401, or 403 for one known but not
/// allowed.
fn refusal(refused: ApiError) -> Response {
    let status = match refused.code {
        Code::Forbidden => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    };
    (status, format!("{}\n", refused.message)).into_response()
}

/// An online backup: the NDJSON export of the log up to its head when the request came (what
/// `chancery export` writes, which cannot run beside the server: the server holds the data
/// directory's lock). Restore it with `chancery import`. Admins only.
async fn export(State(h): State<Health>, headers: HeaderMap) -> Response {
    let allowed = caller(&h, &headers, |caller| {
        h.api.access.check(caller, Role::Admin, "a backup")?;
        // A backup holds every timeline, so a token limited to some may not take one.
        match caller.timelines {
            Timelines::All => Ok(()),
            Timelines::Only(_) => Err(ApiError::new(
                Code::Forbidden,
                "a backup needs an admin token granted every timeline",
            )),
        }
    });
    if let Err(refused) = allowed {
        return refusal(refused);
    }
    let chunks = exchange::export_stream(Arc::clone(&h.api.log)).map(|chunk| {
        // The body is cut short; the client sees fewer records than the header announced.
        chunk.map_err(|e| {
            tracing::error!(error = %e, "a backup stopped");
            std::io::Error::other(e.to_string())
        })
    });
    let mut response = Body::from_stream(chunks).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

/// One timeline as TimelineJS's JSON (what `chancery export --format timelinejs` writes), for
/// any reader granted the timeline; a timeline not granted answers as one that does not exist.
async fn timelinejs(
    State(h): State<Health>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&h, &headers, |caller| h.api.access.check_read(caller)) {
        Ok(caller) => caller,
        Err(refused) => return refusal(refused),
    };
    let not_found = || (StatusCode::NOT_FOUND, format!("no timeline {slug}\n")).into_response();
    let Ok(timeline) = TimelineSlug::new(slug.as_str()) else {
        return not_found();
    };
    if !caller.timelines.allows(timeline.as_str()) {
        return not_found();
    }
    match crate::timelinejs::export(h.api.log.as_ref(), &timeline, &|_| {}).await {
        Ok(published) => {
            let mut response = axum::Json(published.json).into_response();
            let attachment = format!("attachment; filename=\"{timeline}-timelinejs.json\"");
            if let Ok(value) = HeaderValue::from_str(&attachment) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(ExchangeError::UnknownTimeline(_)) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, %timeline, "a TimelineJS export failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the timeline cannot be read now: {e}\n"),
            )
                .into_response()
        }
    }
}

/// What `POST /import` is told in its query string: `chancery import --format`'s flags.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ImportQuery {
    format: String,
    timeline: String,
    dyad: Option<String>,
    from: Option<String>,
    to: Option<String>,
    issue: Option<String>,
    #[serde(default)]
    skip_bad: bool,
}

/// A `POST /import` request as an import job, or the message of its first bad parameter.
fn import_job(
    q: &ImportQuery,
    file: std::path::PathBuf,
    recorded_by: String,
) -> Result<DatasetImport, String> {
    let format: chancery_datasets::Format = q.format.parse()?;
    let timeline = TimelineSlug::new(q.timeline.trim()).map_err(|e| format!("timeline: {e}"))?;
    let dyad = match &q.dyad {
        None => None,
        Some(text) => {
            let parts: Vec<&str> = text.split(',').map(str::trim).collect();
            let [a, b] = parts.as_slice() else {
                return Err(format!(
                    "dyad {text:?}: give two party codes separated by a comma, such as USA,CHN"
                ));
            };
            let code =
                |c: &str| chancery_domain::PartyCode::new(c).map_err(|e| format!("dyad: {e}"));
            Some((code(a)?, code(b)?))
        }
    };
    let time = |name: &str, v: &Option<String>| {
        v.as_deref()
            .map(|t| {
                chancery_domain::ValidTime::parse(t.trim()).map_err(|e| format!("{name}: {e}"))
            })
            .transpose()
    };
    let issue = q
        .issue
        .as_deref()
        .map(|i| chancery_domain::IssueSlug::new(i.trim()).map_err(|e| format!("issue: {e}")))
        .transpose()?;
    Ok(DatasetImport {
        format,
        files: vec![InputFile {
            path: file,
            name: "the request body".to_owned(),
        }],
        timeline,
        dyad,
        from: time("from", &q.from)?,
        to: time("to", &q.to)?,
        issue,
        skip_bad: q.skip_bad,
        recorded_by,
    })
}

/// `POST /import?format=gdelt&timeline=SLUG` (and `dyad`, `from`, `to`, `issue`, `skipBad`): the
/// dataset import of `chancery import --format`, for admins granted the timeline, over a file
/// sent as the request's body (plain, gzip or zip). The body is kept in a temporary file while
/// it is read twice; the answer is the import's report as JSON, or 400 naming the first
/// malformed row (nothing written).
async fn import(
    State(h): State<Health>,
    axum::extract::Query(query): axum::extract::Query<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let allowed = caller(&h, &headers, |caller| {
        h.api.access.check(caller, Role::Admin, "an import")?;
        if caller.timelines.allows(query.timeline.trim()) {
            Ok(())
        } else {
            Err(ApiError::new(
                Code::Forbidden,
                format!(
                    "this token may not write to the timeline {}",
                    query.timeline.trim()
                ),
            ))
        }
    });
    let caller = match allowed {
        Ok(caller) => caller,
        Err(refused) => return refusal(refused),
    };
    let bad_request =
        |message: String| (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response();
    let spool = std::env::temp_dir().join(format!(
        "chancery-import-{}",
        chancery_domain::EventId::new_v7()
    ));
    let recorded_by = caller.name.as_deref().unwrap_or("import").to_owned();
    let job = match import_job(&query, spool.clone(), recorded_by) {
        Ok(job) => job,
        Err(message) => return bad_request(message),
    };
    if let Err(e) = spool_body(body, &spool).await {
        let _ = tokio::fs::remove_file(&spool).await;
        return bad_request(format!("the file could not be received: {e}"));
    }
    // The import reads its file with blocking I/O: it runs on a blocking thread.
    let log = Arc::clone(&h.api.log);
    let runtime = tokio::runtime::Handle::current();
    let result = tokio::task::spawn_blocking(move || {
        runtime.block_on(crate::datasets::import(log.as_ref(), &job, &|_| {}))
    })
    .await;
    let _ = tokio::fs::remove_file(&spool).await;
    match result {
        Ok(Ok(report)) => axum::Json(report).into_response(),
        Ok(Err(e @ DatasetImportError::Malformed { .. })) => bad_request(format!(
            "{e} (skipBad=true imports the good rows and lists every bad one)"
        )),
        Ok(Err(e @ (DatasetImportError::Empty { .. } | DatasetImportError::Read(_)))) => {
            bad_request(e.to_string())
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "an import failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the import failed: {e}\n"),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "an import stopped");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the import stopped; the server log has the details\n",
            )
                .into_response()
        }
    }
}

/// Writes a request's body to `path` as it arrives.
async fn spool_body(body: Body, path: &std::path::Path) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path).await?;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(std::io::Error::other)?;
        file.write_all(&chunk).await?;
    }
    file.flush().await
}

async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), micros = started.elapsed().as_micros() as u64, "request");
    response
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled: the server answers `/readyz` before its shutdown future runs, and a
/// SIGTERM in between would otherwise kill it instead of stopping it gracefully.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
                match s {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            let (interrupt, terminate) = signals;
            tokio::select! {
                () = wait(interrupt) => {}
                () = wait(terminate) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down");
    }
}
