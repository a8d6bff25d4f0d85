//! Every route of the server, top to bottom, in one place. The API's
//! operations are listed once, in [`api`]: the router and the OpenAPI
//! document (`crate::openapi`) are both made from that list, so the two
//! cannot disagree.

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{
    cards, console, desk, devices, documents, frontline, keys, liveness, people, receipts, system,
};
use crate::state::AppState;
use crate::{assets, extract};

/// The API: every operation with its path and method, taken from its
/// `#[utoipa::path]` annotation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        // operations
        .routes(routes!(system::health))
        .routes(routes!(system::metrics))
        .routes(routes!(system::openapi))
        // API keys (admin) and portal sessions (persons, with a one-time code)
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::revoke))
        .routes(routes!(keys::redeem, desk::logout))
        // the front line: notice → consent or decline → enrol / verify / identify
        .routes(routes!(frontline::notice))
        .routes(routes!(frontline::give_consent))
        .routes(routes!(frontline::decline_face))
        .routes(routes!(frontline::opt_in_face))
        .routes(routes!(liveness::issue))
        .routes(routes!(frontline::enrol))
        .routes(routes!(frontline::verify))
        .routes(routes!(frontline::identify))
        .routes(routes!(frontline::add_credential))
        .routes(routes!(frontline::verify_credential))
        .routes(routes!(frontline::portal_code))
        // cards and QR codes: identify by one alone; issue, replace, revoke
        .routes(routes!(cards::identify))
        .routes(routes!(cards::list, cards::issue))
        .routes(routes!(cards::revoke))
        // the front desk: keypad numbers, the guard's check (人工核验)
        .routes(routes!(desk::lookup))
        .routes(routes!(desk::pending_checks, desk::request_check))
        .routes(routes!(desk::get_check))
        .routes(routes!(desk::cancel_check))
        .routes(routes!(desk::decide_check))
        // signed receipts: public key, public check, QR
        .routes(routes!(receipts::public_key))
        .routes(routes!(receipts::verify))
        .routes(routes!(receipts::qr))
        .routes(routes!(receipts::evidence))
        // persons and their rights
        .routes(routes!(desk::find, people::create))
        .routes(routes!(people::get, desk::correct))
        .routes(routes!(people::consents))
        .routes(routes!(people::export))
        .routes(routes!(people::erase))
        .routes(routes!(people::withdraw))
        .routes(routes!(console::complaints, people::complain))
        .routes(routes!(desk::resolve_complaint))
        .routes(routes!(people::me))
        // operator and auditor
        .routes(routes!(console::dashboard))
        .routes(routes!(console::filing))
        .routes(routes!(console::filing_pack))
        .routes(routes!(console::pia))
        // official documents (one language each, printable) and signage photos
        .routes(routes!(documents::pia))
        .routes(routes!(documents::filing_pack))
        .routes(routes!(documents::upload_signage))
        .routes(routes!(console::scenarios, console::upload_scenario))
        .routes(routes!(console::devices, devices::add))
        .routes(routes!(devices::revoke))
        .routes(routes!(console::requests))
        .routes(routes!(desk::close_request))
        .routes(routes!(desk::headcount))
        .routes(routes!(desk::checks))
        .routes(routes!(console::audit))
        .routes(routes!(console::audit_verify))
        .routes(routes!(console::audit_export))
}

pub fn router(state: AppState) -> Router {
    let max_body = state.config.limits.max_body_bytes;
    let (api, _) = api().split_for_parts();
    let api = api.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::api::sync_scenarios,
    ));
    Router::new()
        // web UI, embedded
        .route("/", get(assets::index))
        .route("/kiosk", get(assets::kiosk))
        .route("/portal", get(assets::portal))
        .route("/console", get(assets::console))
        .route("/receipt", get(assets::receipt))
        .route("/assets/{name}", get(assets::file))
        .merge(api)
        .fallback(extract::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::api::count_requests,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(extract::json_errors))
        .with_state(state)
}
