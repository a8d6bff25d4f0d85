//! API keys (admin only) and portal sessions (persons).

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::{Caller, IssuedKey, KeyRecord, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::state::AppState;

/// A key to issue: a `device` key names its device, no other key does.
#[derive(Deserialize)]
pub struct NewKey {
    pub role: Role,
    /// Required for `device` keys: the device this key is bound to.
    pub device_id: Option<String>,
    #[serde(default)]
    pub label: String,
}

/// Issue an API key; the secret is in this response only.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = NewKey,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key, with its secret (shown only here)", body = IssuedKey)))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<NewKey>,
) -> ApiResult<Json<IssuedKey>> {
    caller.require(&[Role::Admin])?;
    if req.role == Role::Device && req.device_id.is_none() {
        return Err(ApiError::bad(
            "设备密钥必须绑定一台设备。",
            "A device key must be bound to one device (device_id).",
        ));
    }
    if req.role != Role::Device && req.device_id.is_some() {
        return Err(ApiError::bad(
            "只有设备密钥可以绑定设备。",
            "Only device keys are bound to a device.",
        ));
    }
    let k = s
        .auth
        .issue(req.role, req.device_id, &req.label)
        .map_err(ApiError::internal)?;
    Ok(Json(k))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub id: String,
    pub role: Role,
    pub device_id: Option<String>,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked: bool,
}

/// `NewKey`'s schema says what `create` checks: a `device` key must name
/// its device, and no other role may.
impl utoipa::PartialSchema for NewKey {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let label = serde_json::json!({"type": "string", "description": "A note for people (default empty)."});
        serde_json::from_value(serde_json::json!({
            "description": "A key to issue: a `device` key names its device (`device_id`), no other key does.",
            "oneOf": [
                {
                    "type": "object",
                    "required": ["role", "device_id"],
                    "properties": {
                        "role": {"type": "string", "enum": ["device"]},
                        "device_id": {"type": "string", "description": "The device this key is bound to."},
                        "label": label,
                    }
                },
                {
                    "type": "object",
                    "required": ["role"],
                    "properties": {
                        "role": {"type": "string", "enum": ["admin", "operator", "auditor"]},
                        "device_id": {"type": "null"},
                        "label": label,
                    }
                }
            ]
        }))
        .expect("NewKey schema")
    }
}

impl utoipa::ToSchema for NewKey {}

impl From<KeyRecord> for KeyView {
    fn from(k: KeyRecord) -> Self {
        KeyView {
            id: k.id,
            role: k.role,
            device_id: k.device_id,
            label: k.label,
            created_at: k.created_at,
            revoked: k.revoked,
        }
    }
}

/// List keys (never their secrets).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every key, revoked ones too", body = Vec<KeyView>)))]
pub async fn list(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<KeyView>>> {
    caller.require(&[Role::Admin])?;
    Ok(Json(s.auth.list().into_iter().map(KeyView::from).collect()))
}

/// Revoke a key at once.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id (the part after `fgk_`)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key", body = crate::ErrorBody)))]
pub async fn revoke(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::http::StatusCode> {
    caller.require(&[Role::Admin])?;
    if s.auth.revoke(&id).map_err(ApiError::internal)? {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("key".into()))
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RedeemCode {
    /// The 8-digit one-time code shown at the kiosk or given by the operator.
    pub code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PortalSession {
    /// Bearer token for the portal; valid 30 minutes.
    pub token: String,
    pub person_id: String,
    pub expires_at: DateTime<Utc>,
}

/// Exchange a one-time portal code for a session (no key needed). Failed
/// codes are counted across all callers, so codes cannot be guessed.
#[utoipa::path(post, path = "/v1/portal/session", tag = "portal", request_body = RedeemCode,
    responses(
        (status = 200, description = "A session for the code's person", body = PortalSession),
        (status = 401, description = "Unknown, used or expired code", body = crate::ErrorBody),
        (status = 429, description = "Too many wrong codes; see `Retry-After`", body = crate::ErrorBody)))]
pub async fn redeem(
    State(s): State<AppState>,
    Json(req): Json<RedeemCode>,
) -> ApiResult<Json<PortalSession>> {
    // 8 digits = 10^8 codes; at most 30 wrong guesses per 15 minutes for the
    // whole server keeps guessing hopeless.
    s.portal_failures.check("portal-code")?;
    match s.auth.redeem_portal_code(&req.code) {
        Some((token, person_id, expires_at)) => Ok(Json(PortalSession {
            token,
            person_id,
            expires_at,
        })),
        None => {
            s.portal_failures.fail("portal-code");
            Err(ApiError::Unauthorized)
        }
    }
}
