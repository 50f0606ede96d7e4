//! The HTTP edge of ims: it speaks Tencent Cloud API 3.0 on `/` and nothing else knows HTTP.
//!
//! A request goes through, in order: [`call`] (read the body within its limit, parse the TC3 or
//! legacy form), [`auth`] (timestamp window, key, signature, grant), the rate limiter, the
//! [`actions`] table (version, action, parameters checked against the vendored definitions),
//! then the action's handler. Whatever fails, [`envelope`] answers HTTP 200 with the cloud's
//! error envelope; [`error`] is the one table from domain errors to API codes.

pub mod actions;
pub mod analysis;
pub mod answer;
pub mod auth;
pub mod billing;
pub mod call;
pub mod console;
pub mod envelope;
pub mod error;
pub mod faces;
pub mod history;
pub mod keywords;
pub mod libraries;
pub mod memory;
pub mod moderation;
pub mod policies;
pub mod search;
pub mod tasks;
#[cfg(test)]
mod testing;
pub mod tls;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use engine::accounts::AccountRepository;
use engine::billing::{Billing, BillingRepository};
use engine::console::ConsoleRepository;
use engine::history::HistoryRepository;
use engine::keywords::{KeywordMatcher, KeywordRepository};
use engine::library::{LibraryRepository, Matcher};
use engine::policy::PolicyRepository;
use engine::ratelimit::Admission;
use engine::task::TaskRepository;
use inference::analyzer::Backend;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The server's part of the configuration (see `docs/configuration.md`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    pub listen: SocketAddr,
    /// Requests per second per account for the synchronous actions, unless the account has
    /// its own limit.
    pub sync_per_second: u32,
    /// Requests per second per account for `CreateImageModerationAsyncTask`.
    pub async_per_second: u32,
    /// Seconds a client may take to send its request body.
    pub body_timeout_secs: u64,
    /// Seconds an image may take to decode before the request is answered with an error.
    pub decode_timeout_secs: u64,
    /// Images decoded at once; 0 means one per CPU core. Further requests wait their turn.
    pub decode_concurrency: usize,
    /// The most frames of one animated image a synchronous request moderates (`MaxFrames` is
    /// capped here).
    pub max_frames: u32,
    /// Seconds from a synchronous moderation's arrival (download and decode included) after
    /// which it is answered `FailedOperation.Timeout` and its work not yet started is dropped.
    pub request_timeout_secs: u64,
    /// Images being moderated at once, all doors together. A synchronous call beyond it is
    /// refused at once (`RequestLimitExceeded`, "busy"); tasks and batches wait their turn.
    pub max_images_in_flight: usize,
    /// HTTPS (see [`tls::TlsSettings`]).
    pub tls: tls::TlsSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            sync_per_second: 100,
            async_per_second: 20,
            body_timeout_secs: 30,
            decode_timeout_secs: 10,
            decode_concurrency: 0,
            max_frames: 50,
            // The cloud documents a 15 s server-side timeout.
            request_timeout_secs: 15,
            max_images_in_flight: 24,
            tls: tls::TlsSettings::default(),
        }
    }
}

/// How long results are kept, and what is kept of the image (`[history]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySettings {
    /// Days a result is kept; older ones are purged hourly.
    pub retention_days: u32,
    /// Longer side of the thumbnail kept with each result, in pixels; 0 keeps none.
    pub thumbnail_side: u32,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings { retention_days: 30, thumbnail_side: 160 }
    }
}

/// Asynchronous tasks and their callbacks (`[tasks]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskSettings {
    /// Tasks moderated at once.
    pub workers: usize,
    /// Callbacks sent at once.
    pub deliveries: usize,
    /// Seconds after a task's creation during which its callback is retried.
    pub delivery_deadline_secs: i64,
    /// The longest wait between two attempts (the wait doubles from 1 s up to this).
    pub max_backoff_secs: i64,
    /// How long a worker holds a task (renewed every third of it while it works) or a callback
    /// attempt: a task whose node died is taken over by another node, or the restarted one,
    /// this long after the last renewal. Longer than any callback attempt can take.
    pub lease_secs: i64,
}

impl Default for TaskSettings {
    fn default() -> Self {
        TaskSettings {
            workers: 2,
            deliveries: 8,
            delivery_deadline_secs: 86_400,
            max_backoff_secs: 300,
            lease_secs: 30,
        }
    }
}

/// Reports whether the server's dependencies (the database) answer, for `/readyz`.
pub type HealthCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;
/// Renders the Prometheus exposition text for `/metrics`.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<ServerSettings>,
    pub accounts: Arc<dyn AccountRepository>,
    /// Rate limits: in memory on one node, in the shared database for a cluster.
    pub limiter: Arc<dyn Admission>,
    pub fetcher: Arc<media::fetch::Fetcher>,
    pub policies: Arc<dyn PolicyRepository>,
    pub libraries: Arc<dyn LibraryRepository>,
    pub history: Arc<dyn HistoryRepository>,
    pub tasks: Arc<dyn TaskRepository>,
    pub billing: Arc<dyn BillingRepository>,
    /// The price lists and the settlement calendar.
    pub prices: Arc<Billing>,
    pub keywords: Arc<dyn KeywordRepository>,
    /// Every keyword library in one automaton, rebuilt when they change.
    pub keyword_matcher: Arc<KeywordMatcher>,
    /// The libraries' samples, indexed in memory.
    pub matcher: Arc<Matcher>,
    /// The models (a fake in unit tests).
    pub analyzer: Arc<dyn Backend>,
    pub history_settings: Arc<HistorySettings>,
    pub faces: Arc<dyn engine::faces::FaceRepository>,
    /// The face libraries' people, indexed in memory.
    pub face_matcher: Arc<engine::faces::FaceMatcher>,
    pub face_settings: Arc<inference::analyzer::FaceSettings>,
    /// Image search's groups and pictures (tiia).
    pub groups: Arc<dyn engine::search::GroupRepository>,
    /// The groups' pictures, indexed in memory.
    pub group_index: Arc<engine::search::GroupIndex>,
    pub task_settings: Arc<TaskSettings>,
    /// Wakes the task workers when a task is queued.
    pub task_queued: Arc<tokio::sync::Notify>,
    /// Permits to decode an image; bounds the memory and CPU that decoding takes at once.
    pub decode_slots: Arc<tokio::sync::Semaphore>,
    /// Permits to moderate an image (`server.max_images_in_flight`): the end-to-end bound.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    pub health: HealthCheck,
    pub metrics: MetricsRender,
    /// The console's sessions, passwords and failed sign-ins.
    pub console: Arc<dyn ConsoleRepository>,
    pub console_settings: Arc<console::ConsoleSettings>,
    /// Chart.js as the setup installed it (`<artifacts>/console/`), served at
    /// `/console/chart.js`; `None` where it is missing (the overview then shows tables only).
    pub console_chart: Option<bytes::Bytes>,
}

impl AppState {
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.settings.body_timeout_secs)
    }

    /// The decode permits for these settings.
    pub fn decode_slots(settings: &ServerSettings) -> Arc<tokio::sync::Semaphore> {
        let n = match settings.decode_concurrency {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Arc::new(tokio::sync::Semaphore::new(n))
    }

    /// The in-flight permits for these settings.
    pub fn in_flight(settings: &ServerSettings) -> Arc<tokio::sync::Semaphore> {
        Arc::new(tokio::sync::Semaphore::new(settings.max_images_in_flight.max(1)))
    }
}

pub fn router(state: AppState) -> Router {
    let routes = Router::new();
    let routes = if state.console_settings.enabled { routes.merge(console::router()) } else { routes };
    routes
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(api)
        .with_state(state)
}

/// Every path other than the two operational ones is the API: the handler itself answers
/// other paths and methods with the API's error envelope, never a bare 404 or 405.
async fn api(State(state): State<AppState>, request: Request) -> Response {
    actions::handle(state, request).await
}

fn json_response(status: axum::http::StatusCode, body: serde_json::Value) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Liveness: the process answers. Nothing else is checked, so that a database outage does not
/// get every node restarted; `/readyz` says whether it can serve.
async fn healthz() -> Response {
    json_response(axum::http::StatusCode::OK, serde_json::json!({"status": "ok"}))
}

/// Readiness: the database answers, and the models are loaded (they are before the server
/// listens, so the answer lists them). A load balancer sends traffic only where this is 200.
async fn readyz(State(state): State<AppState>) -> Response {
    let health = state.health.clone();
    let result = tokio::task::spawn_blocking(move || health()).await.unwrap_or_else(|e| Err(e.to_string()));
    let models = state.analyzer.models();
    match result {
        Ok(()) => json_response(
            axum::http::StatusCode::OK,
            serde_json::json!({"status": "ready", "database": "ok", "models": models}),
        ),
        Err(reason) => {
            tracing::error!(%reason, "not ready: the database does not answer");
            json_response(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"status": "unavailable", "database": "unreachable", "models": models}),
            )
        }
    }
}

/// Rendering reads the billing gauges from the database: on the blocking pool.
async fn metrics_text(State(state): State<AppState>) -> Response {
    let render = state.metrics.clone();
    let text = tokio::task::spawn_blocking(move || render()).await.unwrap_or_default();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Serves until `shutdown` resolves, then lets requests in flight finish; over TLS when `tls` is
/// given (see [`tls`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<tls::ServerConfig>,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown).await,
        Some(config) => {
            // `tap_io` (doing nothing) because axum gives the client's address to the handlers
            // for any listener wrapped so.
            let listener = axum::serve::ListenerExt::tap_io(tls::TlsListener::new(listener, config), |_| {});
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
    }
}
