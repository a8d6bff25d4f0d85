//! Health, metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;

use crate::extract::Json;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` when the store answers.
    pub status: String,
    pub version: String,
}

/// Liveness and readiness.
#[utoipa::path(get, path = "/health", tag = "system",
    responses(
        (status = 200, description = "The store answers", body = Health),
        (status = 503, description = "The store does not answer", body = Health)))]
pub async fn health(State(s): State<AppState>) -> (axum::http::StatusCode, Json<Health>) {
    let ok = s.store.headcount().await.is_ok();
    (
        if ok {
            axum::http::StatusCode::OK
        } else {
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        },
        Json(Health {
            status: if ok { "ok" } else { "store_unavailable" }.into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }),
    )
}

/// Prometheus text-format metrics (no personal data in any label).
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let gauges = crate::api::gauges(&s).await;
    let g: Vec<(&str, &str, f64)> = gauges.iter().map(|(a, b, c)| (*a, *b, *c)).collect();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(&g),
    )
}

/// This API's OpenAPI 3.1 document (also checked in as `crates/server/openapi.json`).
#[utoipa::path(get, path = "/v1/openapi.json", tag = "system",
    responses(
        (status = 200, description = "This OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document(),
    )
}
