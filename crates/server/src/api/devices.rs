//! Devices added and revoked by an operator: the manifest is amended and
//! re-deployed by the core (`facegate_core::devices`), which lints it for
//! every caller, so a private place (R19) is refused here as on upload.

use axum::extract::State;
use serde::Deserialize;

use crate::api::console::{scenario_view, ScenarioView};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewDeviceInput {
    /// The scenario's id; the default scenario when absent.
    pub scenario: Option<String>,
    /// The device's id: 1 to 64 letters, digits, `-` or `_`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]+$")]
    pub id: String,
    /// `non_public`, `public_area`, … (R18, R19; private places are refused).
    #[schema(min_length = 1, max_length = 40)]
    pub placement: String,
    /// Where it is, in Chinese (read for private-place terms, R19).
    #[schema(min_length = 1, max_length = 200, pattern = r"[^\s\u0085]")]
    pub location_zh: String,
    /// Where it is, in English.
    #[schema(max_length = 200)]
    pub location_en: Option<String>,
}

/// Add a device: the scenario's manifest gains it and is linted and
/// deployed as a new version (notice, PIA and filing pack list it).
#[utoipa::path(post, path = "/v1/devices", tag = "scenarios", request_body = NewDeviceInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deployed as a new scenario version with the device", body = ScenarioView),
        (status = 400, description = "A bad id, placement or location, or an amended manifest that is not a manifest (a lint error naming no requirement)", body = crate::ErrorBody),
        (status = 403, description = "The role may not do this, or the amended manifest breaks a requirement of the Measures: the deploy's one lint (`facegate_core::deploy::lint_manifest`) refuses it as it refuses any manifest, `rule` and `article` naming the first such requirement and the message every one of them", body = crate::ErrorBody),
        (status = 404, description = "No such scenario", body = crate::ErrorBody),
        (status = 409, description = "The scenario already has a device with this id, or the site is attached to a hub (manifests come from the hub)", body = crate::ErrorBody)))]
pub async fn add(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<NewDeviceInput>,
) -> ApiResult<Json<ScenarioView>> {
    caller.require_operator()?;
    let scenario = s.scenario(req.scenario.as_deref())?.scenario.id.clone();
    let d = s
        .core
        .add_device(
            &scenario,
            facegate_core::devices::NewDevice {
                id: req.id.trim(),
                placement: &req.placement,
                location_zh: &req.location_zh,
                location_en: req.location_en.as_deref(),
            },
        )
        .await?;
    Ok(Json(scenario_view(&d)))
}

/// Revoke a device: inactive in a new manifest version, its API keys
/// revoked in the store (they stop working at once on every instance).
#[utoipa::path(post, path = "/v1/scenarios/{scenario}/devices/{id}/revoke", tag = "scenarios",
    params(("scenario" = String, Path, description = "The scenario's id"),
        ("id" = String, Path, description = "The device's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deployed as a new scenario version with the device inactive", body = ScenarioView),
        (status = 403, description = "The role may not do this, or the amended manifest breaks a requirement of the Measures: the deploy's one lint (`facegate_core::deploy::lint_manifest`) refuses it as it refuses any manifest, `rule` and `article` naming the first such requirement and the message every one of them", body = crate::ErrorBody),
        (status = 404, description = "No such scenario or device", body = crate::ErrorBody),
        (status = 409, description = "Already revoked, or the site is attached to a hub (manifests come from the hub)", body = crate::ErrorBody)))]
pub async fn revoke(
    State(s): State<AppState>,
    caller: Caller,
    Path((scenario, id)): Path<(String, String)>,
) -> ApiResult<Json<ScenarioView>> {
    caller.require_operator()?;
    let d = s
        .core
        .revoke_device(scenario.trim(), id.trim(), &caller.actor())
        .await?;
    Ok(Json(scenario_view(&d)))
}
