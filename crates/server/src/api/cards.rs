//! Cards and QR codes: a kiosk identifies a resident by one alone
//! (keyboard-wedge input, no resident number first); the console issues,
//! replaces and revokes them. The decisions are `facegate_core::cards`'.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::frontline::{FrontCall, Outcome};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::pipeline;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CardInput {
    pub scenario: Option<String>,
    pub device_id: Option<String>,
    /// `card` (default), `qr`, or (to identify only) `wedge`: what a reader
    /// typed, looked up as each kind the scenario offers.
    #[schema(pattern = "^(card|qr|qr_code|wedge)$")]
    pub kind: Option<String>,
    /// What the reader typed (without the final Enter). 1 to 256 characters.
    #[schema(min_length = 1, max_length = 256, pattern = r"[^\s\u0085]")]
    pub secret: String,
}

fn card_kind(k: &Option<String>) -> ApiResult<&str> {
    match k.as_deref().unwrap_or("card") {
        k @ ("card" | "qr" | "qr_code" | "wedge") => Ok(k),
        _ => Err(ApiError::bad("类型应为 card 或 qr。", "kind is card or qr")),
    }
}

/// Identify by a card or QR code alone and complete the check as that
/// method (R6, R9, R15): `pass` with the person id only (never a name), or
/// `unknown`, both with a signed receipt. Misses are counted in the store
/// per device and per scenario; past the limit the device is locked out.
#[utoipa::path(post, path = "/v1/identify/credential", tag = "recognition", request_body = CardInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`pass` or `unknown`, with its receipt", body = Outcome),
        (status = 400, description = "Not a card or QR code, or an empty one", body = crate::ErrorBody),
        (status = 403, description = "The role may not do this, or the Measures refuse it (`rule` and `article` say which)", body = crate::ErrorBody),
        (status = 404, description = "No such scenario or device", body = crate::ErrorBody),
        (status = 429, description = "Too many unknown cards from this device or scenario; see `Retry-After`", body = crate::ErrorBody)))]
pub async fn identify(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<CardInput>,
) -> ApiResult<Json<Outcome>> {
    let call = FrontCall::of(&s, &caller, &req.device_id, &req.scenario)?;
    let kind = card_kind(&req.kind)?;
    let o = s
        .core
        .identify_by_credential(&call.scenario, call.who(), kind, &req.secret)
        .await?;
    Ok(Json(Outcome::signed(&s, o)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CardView {
    pub id: String,
    /// `card` or `qr`.
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A person's cards and QR codes (never the number: only its keyed hash is
/// stored).
#[utoipa::path(get, path = "/v1/persons/{id}/cards", tag = "persons",
    params(("id" = String, Path, format = Uuid, description = "The person")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Active and revoked, oldest first", body = Vec<CardView>),
        (status = 404, description = "No such person", body = crate::ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<CardView>>> {
    caller.require_operator()?;
    let pid = pipeline::person_id(&id)?;
    let cs = s.core.person_cards(pid).await?;
    Ok(Json(
        cs.into_iter()
            .map(|c| CardView {
                id: c.id.to_string(),
                kind: c.kind.as_str().into(),
                created_at: c.created_at,
                revoked_at: c.revoked_at,
            })
            .collect(),
    ))
}

/// Issue a card or QR code to a person, replacing any active one of the
/// same kind (R15; policy is asked, the issue is a receipt).
#[utoipa::path(post, path = "/v1/persons/{id}/cards", tag = "persons", request_body = CardInput,
    params(("id" = String, Path, format = Uuid, description = "The person")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Issued (any earlier one of the kind revoked), with the receipt", body = Outcome),
        (status = 400, description = "An empty or too long number, or one already issued", body = crate::ErrorBody),
        (status = 403, description = "The role may not do this, or the Measures refuse it (`rule` and `article` say which)", body = crate::ErrorBody),
        (status = 404, description = "No such person or scenario", body = crate::ErrorBody)))]
pub async fn issue(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<CardInput>,
) -> ApiResult<Json<Outcome>> {
    caller.require_operator()?;
    let call = FrontCall::of(&s, &caller, &req.device_id, &req.scenario)?;
    let pid = pipeline::person_id(&id)?;
    let kind = card_kind(&req.kind)?;
    let o = s
        .core
        .issue_card(&call.scenario, pid, call.who(), kind, &req.secret)
        .await?;
    Ok(Json(Outcome::signed(&s, o)))
}

/// Revoke a card or QR code: it stops identifying the person at once.
#[utoipa::path(delete, path = "/v1/persons/{id}/cards/{card}", tag = "persons",
    params(("id" = String, Path, format = Uuid, description = "The person"),
        ("card" = String, Path, format = Uuid, description = "The card")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such person or active card", body = crate::ErrorBody)))]
pub async fn revoke(
    State(s): State<AppState>,
    caller: Caller,
    Path((id, card)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require_operator()?;
    let pid = pipeline::person_id(&id)?;
    let cid = uuid::Uuid::parse_str(card.trim())
        .map_err(|_| ApiError::bad("卡编号无效。", "card id is not a UUID"))?;
    s.core.revoke_card(pid, cid, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}
