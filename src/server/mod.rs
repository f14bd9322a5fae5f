//! The HTTP service (axum): the REST API under `/v1`, `/healthz`, `/readyz`, `/metrics`,
//! `/openapi.json`; and `serve`, which wires the store, the payer directory, the outbox worker
//! and (when no payer is configured) the built-in mock payer together.

pub mod access;
pub mod api;
pub mod bench;
pub mod error;
pub mod fhir;
pub mod metrics;
pub mod openapi;
pub mod principal;
pub mod serve;
pub mod webhooks;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Notify;

use crate::payers::PayerDirectory;
use crate::tracking::Tracker;
use error::ApiError;

/// Settings of the API itself.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// With the approval chain off, a draft is submitted at once (review -> ready on submit).
    pub approval_chain: bool,
    /// The actor of requests that name none (`X-Actor`).
    pub default_actor: String,
    /// The largest body accepted, in bytes.
    pub max_body: usize,
    /// How long `POST /fhir/Claim/$submit` waits for the payer's decision before it answers
    /// A4 pended with the tracking number (the decision then comes by Subscription).
    pub fhir_wait: std::time::Duration,
    /// Every `/v1` and `/fhir` request needs `Authorization: Bearer` (`serve` always turns it
    /// on; off, a request acts as `X-Actor` in the tenant `default`, for tests that build the
    /// state themselves).
    pub auth: bool,
    /// The gateway's public base URL (the audience of SMART assertions is
    /// `{public_url}/oauth/token`); the request's Host when unset.
    pub public_url: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            approval_chain: false,
            default_actor: "api".into(),
            max_body: 8 * 1024 * 1024,
            fhir_wait: std::time::Duration::from_secs(15),
            auth: false,
            public_url: None,
        }
    }
}

/// What every handler shares.
pub struct AppState {
    pub tracker: Arc<Tracker>,
    pub directory: Arc<PayerDirectory>,
    pub config: ApiConfig,
    pub metrics: metrics::Metrics,
    /// Poked after each enqueue so the outbox worker sends without waiting for its next poll.
    pub outbox_wake: Arc<Notify>,
}

/// The router with every route, the body limit, metrics and request logging.
pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.config.max_body;
    Router::new()
        .route("/v1/authorizations", post(api::create).get(api::list))
        .route("/v1/authorizations/{id}", get(api::show).put(api::modify))
        .route("/v1/authorizations/{id}/request", get(api::request_body))
        .route("/v1/authorizations/{id}/review", post(api::review))
        .route("/v1/authorizations/{id}/approve", post(api::approve))
        .route("/v1/authorizations/{id}/deny", post(api::deny))
        .route("/v1/authorizations/{id}/cancel", post(api::cancel))
        .route("/v1/authorizations/{id}/submit", post(api::submit))
        .route(
            "/v1/authorizations/{id}/services",
            post(api::record_service),
        )
        .route("/v1/alerts", get(api::alerts))
        .route("/v1/inbound", post(api::inbound))
        .route("/v1/outbox", get(api::outbox_list))
        .route("/v1/outbox/{id}/retry", post(api::outbox_retry))
        .route("/fhir/metadata", get(fhir::metadata))
        .route("/fhir/Claim/$submit", post(fhir::submit))
        .route("/fhir/Claim/$inquire", post(fhir::inquire))
        .route("/fhir/ClaimResponse", get(fhir::search))
        .route("/fhir/ClaimResponse/{id}", get(fhir::claim_response))
        .route(
            "/fhir/Subscription",
            post(fhir::subscription_create).get(fhir::subscription_search),
        )
        .route(
            "/fhir/Subscription/{id}",
            get(fhir::subscription_read)
                .put(fhir::subscription_update)
                .delete(fhir::subscription_delete),
        )
        .route(
            "/fhir/Subscription/{id}/$status",
            get(fhir::subscription_status),
        )
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/v1/webhooks/{id}", axum::routing::delete(webhooks::delete))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery}/retry",
            post(webhooks::retry),
        )
        .route("/v1/audit", get(access::audit))
        .route("/v1/keys", post(access::create_key).get(access::list_keys))
        .route("/v1/keys/{prefix}/revoke", post(access::revoke_key))
        .route("/oauth/token", post(access::token))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi_json))
        .fallback(no_route)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), access::guard))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Counts and logs each request by its route template; never the body, never a query string.
async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.observe(&method, &route, status, took);
    tracing::info!(
        method = %method,
        route = %route,
        status,
        ms = took.as_secs_f64() * 1000.0,
        "http"
    );
    response
}

async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such endpoint (see /openapi.json)",
    )
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the store answers.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.tracker.store.ping().await {
        Ok(()) => axum::Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("the records store does not answer: {e}"),
        )
        .into_response(),
    }
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    let store = &state.tracker.store;
    let records = store.status_counts().await.unwrap_or_default();
    let outbox = store.outbox_counts().await.unwrap_or_default();
    let deliveries = store.delivery_counts().await.unwrap_or_default();
    let body = state.metrics.render(&[
        (
            "priorauth_records",
            "Authorization records by status.",
            "status",
            records,
        ),
        (
            "priorauth_outbox_messages",
            "Outbox messages by state.",
            "state",
            outbox,
        ),
        (
            "priorauth_notify_deliveries",
            "Webhook and subscription notifications by state.",
            "state",
            deliveries,
        ),
    ]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn openapi_json() -> impl IntoResponse {
    axum::Json(openapi::document())
}
