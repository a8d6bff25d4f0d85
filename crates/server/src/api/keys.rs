//! API keys (admin only) and portal sessions (persons).

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::{BoundDevice, Caller, IssuedKey, KeyRecord, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::state::AppState;

/// A key to issue: a `device` key names its device, no other key does.
#[derive(Deserialize)]
pub struct NewKey {
    pub role: Role,
    /// Required for `device` keys: the device this key is bound to.
    pub device_id: Option<String>,
    /// For `device` keys: the scenario whose device it is (default: the
    /// server's scenario). The key acts in that scenario only.
    pub scenario: Option<String>,
    #[serde(default)]
    pub label: String,
}

/// Issue an API key; the secret is in this response only.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = NewKey,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key, with its secret (shown only here)", body = IssuedKey),
        (status = 404, description = "No such scenario, or no such device in it", body = crate::ErrorBody)))]
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
    if req.role != Role::Device && (req.device_id.is_some() || req.scenario.is_some()) {
        return Err(ApiError::bad(
            "只有设备密钥可以绑定设备及其场景。",
            "Only device keys are bound to a device and its scenario.",
        ));
    }
    let device = match &req.device_id {
        Some(dv) => {
            // Only a device the scenario declares (its place, its notice,
            // R19): a key for any other name could act nowhere, or as a
            // device that was revoked.
            let d = s.scenario(req.scenario.as_deref())?;
            d.device_id(dv)?;
            Some(BoundDevice::of(&d, dv))
        }
        None => None,
    };
    let k = s
        .auth
        .issue(req.role, device, &req.label, &caller.actor())
        .await?;
    Ok(Json(k))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub id: String,
    pub role: Role,
    pub device_id: Option<String>,
    /// For a device key: the scenario whose device it is (its store id
    /// when that scenario is not deployed here).
    pub scenario: Option<String>,
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
            "description": "A key to issue: a `device` key names its device (`device_id`) and may name its scenario (`scenario`, default the server's), no other key does.",
            "oneOf": [
                {
                    "type": "object",
                    "required": ["role", "device_id"],
                    "properties": {
                        "role": {"type": "string", "enum": ["device"]},
                        "device_id": {"type": "string", "description": "The device this key is bound to."},
                        "scenario": {"type": ["string", "null"], "description": "The scenario whose device it is (default: the server's scenario)."},
                        "label": label,
                    }
                },
                {
                    "type": "object",
                    "required": ["role"],
                    "properties": {
                        "role": {"type": "string", "enum": ["admin", "operator", "auditor"]},
                        "device_id": {"type": "null"},
                        "scenario": {"type": "null"},
                        "label": label,
                    }
                }
            ]
        }))
        .expect("NewKey schema")
    }
}

impl utoipa::ToSchema for NewKey {}

impl KeyView {
    fn of(s: &AppState, k: KeyRecord) -> Self {
        KeyView {
            scenario: k.scenario_id.map(|id| {
                s.core
                    .scenario_by_store_id(id)
                    .map_or_else(|| id.to_string(), |d| d.scenario.id.clone())
            }),
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
    Ok(Json(
        s.auth
            .list()
            .await?
            .into_iter()
            .map(|k| KeyView::of(&s, k))
            .collect(),
    ))
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
    if s.auth.revoke(&id, &caller.actor()).await? {
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

/// Exchange a one-time portal code for a session (no key needed). Wrong
/// codes are limited per source and per code space (see
/// [`redeem_limits`]), counted in the store before the code is checked.
#[utoipa::path(post, path = "/v1/portal/session", tag = "portal", request_body = RedeemCode,
    responses(
        (status = 200, description = "A session for the code's person", body = PortalSession),
        (status = 401, description = "Unknown, used or expired code", body = crate::ErrorBody),
        (status = 429, description = "Too many wrong codes; see `Retry-After`", body = crate::ErrorBody)))]
pub async fn redeem(
    State(s): State<AppState>,
    peer: Option<axum::extract::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: axum::http::HeaderMap,
    Json(req): Json<RedeemCode>,
) -> ApiResult<Json<PortalSession>> {
    let source = source_of(&headers, peer.map(|p| p.0 .0.ip()));
    redeem_limits(&s, &source).await?;
    match s.auth.redeem_portal_code(&req.code).await? {
        Some((token, person_id, expires_at)) => {
            s.store
                .attempt_succeeded(&format!("portal:src:{source}"))
                .await?;
            Ok(Json(PortalSession {
                token,
                person_id,
                expires_at,
            }))
        }
        None => Err(ApiError::Unauthorized),
    }
}

/// Wrong portal codes allowed per source per 15 minutes.
pub const PORTAL_FAILURES_PER_SOURCE: i64 = 10;
/// Wrong portal codes allowed per 15 minutes across the whole code space
/// (10^8 codes): beyond it, only sources with no failure of their own may
/// still try, so a guessing campaign cannot lock everyone out.
pub const PORTAL_FAILURES_CODE_SPACE: i64 = 1000;

/// The caller's source: the peer address; when the peer is a reverse proxy
/// on this host (loopback), the hop it appended to `X-Forwarded-For` (the
/// last one; earlier hops are whatever the client wrote), else `X-Real-IP`.
fn source_of(headers: &axum::http::HeaderMap, peer: Option<std::net::IpAddr>) -> String {
    if let Some(ip) = peer.filter(|ip| !ip.is_loopback()) {
        return ip.to_string();
    }
    let h = |n: &str, last: bool| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let mut hops = v.split(',').map(str::trim).filter(|x| !x.is_empty());
                if last {
                    hops.next_back()
                } else {
                    hops.next()
                }
            })
            .filter(|v| v.len() <= 64)
            .map(str::to_string)
    };
    h("x-forwarded-for", true)
        .or_else(|| h("x-real-ip", false))
        .or_else(|| peer.map(|ip| ip.to_string()))
        .unwrap_or_else(|| "direct".into())
}

/// Count one redemption attempt per source and in the code space before the
/// code is looked at (a success clears the source's count).
async fn redeem_limits(s: &AppState, source: &str) -> Result<(), ApiError> {
    use facegate_store::{Attempt, AttemptPolicy};
    let now = Utc::now();
    let src_key = format!("portal:src:{source}");
    let locked = |until: DateTime<Utc>| ApiError::RateLimited {
        retry_after_s: (until - Utc::now()).num_seconds().max(1) as u64,
    };
    if let Attempt::Locked { until } = s
        .store
        .reserve_attempt(
            &src_key,
            AttemptPolicy::per_15_minutes(PORTAL_FAILURES_PER_SOURCE),
            now,
        )
        .await?
    {
        return Err(locked(until));
    }
    let space = AttemptPolicy {
        lock: chrono::Duration::minutes(1),
        max_lock: chrono::Duration::minutes(15),
        ..AttemptPolicy::per_15_minutes(PORTAL_FAILURES_CODE_SPACE)
    };
    if let Attempt::Locked { until } = s.store.reserve_attempt("portal:space", space, now).await? {
        // The code space is under a guessing campaign: a source that has
        // not failed yet (this attempt is its first) still gets its try.
        if s.store.attempt_failures(&src_key).await? > 1 {
            return Err(locked(until));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::source_of;

    #[test]
    fn a_client_cannot_choose_its_source_by_header() {
        let mut h = axum::http::HeaderMap::new();
        h.insert("x-forwarded-for", "1.2.3.4, 203.0.113.7".parse().unwrap());
        // Directly exposed: the peer address counts, not the header.
        let peer: std::net::IpAddr = "198.51.100.9".parse().unwrap();
        assert_eq!(source_of(&h, Some(peer)), "198.51.100.9");
        // Behind a proxy on this host: the hop the proxy appended.
        let proxy: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(source_of(&h, Some(proxy)), "203.0.113.7");
        assert_eq!(
            source_of(&axum::http::HeaderMap::new(), Some(proxy)),
            "127.0.0.1"
        );
    }
}
