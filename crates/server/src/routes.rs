//! Every route of the server, top to bottom, in one place.

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;

use crate::api::{console, frontline, keys, people, system};
use crate::assets;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let max_body = state.config.limits.max_body_bytes;
    let v1 = Router::new()
        .route("/openapi.json", get(system::openapi))
        // API keys (admin) and portal sessions (persons, with a one-time code)
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{id}", delete(keys::revoke))
        .route("/portal/session", post(keys::redeem))
        // the front line: notice → consent or decline → enrol / verify / identify
        .route("/notice", get(frontline::notice))
        .route("/consents", post(frontline::give_consent))
        .route("/decline-face", post(frontline::decline_face))
        .route("/opt-in-face", post(frontline::opt_in_face))
        .route("/enrol", post(frontline::enrol))
        .route("/verify", post(frontline::verify))
        .route("/identify", post(frontline::identify))
        .route("/credentials", post(frontline::add_credential))
        .route("/verify/credential", post(frontline::verify_credential))
        .route("/persons/{id}/portal-code", post(frontline::portal_code))
        // persons and their rights
        .route("/persons", post(people::create))
        .route("/persons/{id}", get(people::get))
        .route("/persons/{id}/consents", get(people::consents))
        .route("/persons/{id}/export", get(people::export))
        .route("/persons/{id}/erase", post(people::erase))
        .route("/consents/{id}/withdraw", post(people::withdraw))
        .route(
            "/complaints",
            get(console::complaints).post(people::complain),
        )
        .route("/me", get(people::me))
        // operator and auditor
        .route("/dashboard", get(console::dashboard))
        .route("/filing", get(console::filing))
        .route("/filing/pack", get(console::filing_pack))
        .route("/pia", get(console::pia))
        .route(
            "/scenarios",
            get(console::scenarios).post(console::upload_scenario),
        )
        .route("/devices", get(console::devices))
        .route("/requests", get(console::requests))
        .route("/audit", get(console::audit))
        .route("/audit/verify", get(console::audit_verify))
        .route("/audit/export", get(console::audit_export));

    Router::new()
        // web UI, embedded
        .route("/", get(assets::index))
        .route("/kiosk", get(assets::kiosk))
        .route("/portal", get(assets::portal))
        .route("/console", get(assets::console))
        .route("/assets/{name}", get(assets::file))
        // operations
        .route("/health", get(system::health))
        .route("/metrics", get(system::metrics))
        .nest("/v1", v1)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::api::count_requests,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}
