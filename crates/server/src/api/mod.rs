//! Handlers, one small async function per route, grouped by area.

pub mod cards;
pub mod console;
pub mod desk;
pub mod devices;
pub mod documents;
pub mod frontline;
pub mod keys;
pub mod liveness;
pub mod people;
pub mod receipts;
pub mod system;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Every authenticated handler takes a `Caller`: a bearer token resolved to an
/// API key with a role, or to a portal session of one person. Each caller is
/// also rate-limited here.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
        let caller = state.auth.authenticate(token).await?.ok_or_else(|| {
            state.metrics.inc("facegate_auth_failures_total", &[]);
            ApiError::Unauthorized
        })?;
        let bucket = match &caller {
            Caller::Key { key_id, .. } => format!("key:{key_id}"),
            Caller::Person { person_id } => format!("person:{person_id}"),
        };
        state.per_key.check(&bucket)?;
        Ok(caller)
    }
}

/// Gauges for `/metrics` computed from the store (headcount and the like).
pub async fn gauges(s: &AppState) -> Vec<(&'static str, &'static str, f64)> {
    let mut g = vec![];
    if let Ok(h) = s.store.headcount().await {
        g.push((
            "facegate_headcount",
            "Distinct persons with stored face information (R21)",
            h.count as f64,
        ));
    }
    let templates: usize = s.galleries.read().unwrap().values().map(|g| g.len()).sum();
    g.push((
        "facegate_gallery_templates",
        "Templates held in memory for matching",
        templates as f64,
    ));
    g
}

/// Before every API request: the deployed scenarios in step with the store
/// (another instance may have deployed since), so every handler decides
/// under the manifest in force. Not before the web UI's static pages and
/// assets, which decide nothing.
pub async fn sync_scenarios(
    axum::extract::State(s): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Err(e) = s.core.sync_scenarios().await {
        return crate::ApiError::from(e).into_response();
    }
    next.run(req).await
}

/// Count every response by matched route and status (never by raw path, so
/// no id ends up in a label).
pub async fn count_requests(
    axum::extract::State(s): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let resp = next.run(req).await;
    s.metrics.inc(
        "facegate_http_requests_total",
        &[
            ("method", &method),
            ("route", &route),
            ("status", resp.status().as_str()),
        ],
    );
    resp
}
