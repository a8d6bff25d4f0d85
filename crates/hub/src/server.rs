//! The hub's HTTP API (axum, served over rustls by [`crate::tls_http`]).
//!
//! Sites call one signed endpoint, `POST /v1/sync`; the operator's endpoints
//! take the admin bearer token. Every error is the JSON error body
//! `{error, message_zh, message_en}`. Handlers keep no state: everything is
//! in PostgreSQL, so any instance answers any call.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::{DeviceRow, HubDb, Raised};
use crate::keys::{self, PseudonymKey};
use crate::proto::SyncRequest;
use crate::HubError;

/// What a hub instance needs; nothing here changes at run time.
pub struct HubConfig {
    pub db: HubDb,
    /// SHA-256 (hex) of the operator's admin token.
    pub admin_token_sha256: String,
    pub pseudonym_key: PseudonymKey,
    pub processor_name: String,
    /// Append every request body received here (diagnostics and the
    /// no-biometrics test); off by default.
    pub body_log: Option<PathBuf>,
    /// The key manifests pushed to sites are signed with (none: manifests
    /// cannot be uploaded here).
    pub manifest_key: Option<crate::manifests::ManifestKey>,
}

pub type HubState = Arc<HubConfig>;

impl IntoResponse for HubError {
    fn into_response(self) -> Response {
        if let HubError::Refused { rule, zh, en } = &self {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(
                    json!({ "error": "refused", "rule": rule, "message_zh": zh, "message_en": en }),
                ),
            )
                .into_response();
        }
        let (status, code, zh) = match &self {
            HubError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "身份验证失败"),
            HubError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "未找到"),
            HubError::Bad(_) => (StatusCode::BAD_REQUEST, "bad_request", "请求无效"),
            HubError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "冲突"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "内部错误"),
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("{self}");
        }
        (
            status,
            Json(json!({ "error": code, "message_zh": zh, "message_en": self.to_string() })),
        )
            .into_response()
    }
}

type R<T> = std::result::Result<T, HubError>;

/// The router of one hub instance.
pub fn router(state: HubState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/sync", post(sync))
        .route("/v1/sites", post(add_site).get(list_sites))
        .route("/v1/headcount", get(headcount))
        .route("/v1/requests", post(add_request))
        .route("/v1/requests/{id}", get(get_request))
        .route("/v1/pending", get(pending))
        .route("/v1/anchors", get(anchors))
        .route("/v1/dossier", get(dossier))
        .merge(crate::manifests::routes())
        .merge(crate::portal::routes())
        .fallback(|| async { HubError::NotFound("no such endpoint".into()) })
        .with_state(state)
}

pub(crate) fn log_body(s: &HubConfig, path: &str, body: &[u8]) {
    if let Some(dir) = &s.body_log {
        use std::io::Write;
        let f = dir.join(format!("bodies-{}.log", std::process::id()));
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(f)
        {
            let _ = writeln!(f, "{path} {}", body.len());
            let _ = f.write_all(body);
            let _ = f.write_all(b"\n");
        }
    }
}

pub(crate) fn admin(s: &HubConfig, h: &HeaderMap) -> R<()> {
    let tok = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| HubError::Unauthorized("admin bearer token required".into()))?;
    let got = hex::encode(Sha256::digest(tok.as_bytes()));
    // Compare digests (fixed length) byte by byte without early exit.
    let same = got.len() == s.admin_token_sha256.len()
        && got
            .bytes()
            .zip(s.admin_token_sha256.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0;
    if !same {
        return Err(HubError::Unauthorized("wrong admin token".into()));
    }
    Ok(())
}

async fn sync(State(s): State<HubState>, h: HeaderMap, body: Bytes) -> R<Json<Value>> {
    log_body(&s, "/v1/sync", &body);
    let hdr = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| HubError::Unauthorized(format!("{k} header missing")))
    };
    let site = Uuid::parse_str(hdr(keys::H_SITE)?)
        .map_err(|_| HubError::Unauthorized("bad site id".into()))?;
    let time: i64 = hdr(keys::H_TIME)?
        .parse()
        .map_err(|_| HubError::Unauthorized("bad time".into()))?;
    if (chrono::Utc::now().timestamp() - time).abs() > keys::MAX_SKEW_SECS {
        return Err(HubError::Unauthorized("signature time out of range".into()));
    }
    let pk =
        s.db.site_key(site)
            .await?
            .ok_or_else(|| HubError::Unauthorized("unknown site".into()))?;
    if !keys::verify_signature(&pk, "POST", "/v1/sync", time, &body, hdr(keys::H_SIG)?) {
        return Err(HubError::Unauthorized("bad signature".into()));
    }
    let req: SyncRequest =
        serde_json::from_slice(&body).map_err(|e| HubError::Bad(format!("sync body: {e}")))?;
    let resp = s.db.sync(site, &req).await?;
    Ok(Json(serde_json::to_value(resp).expect("serialises")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSite {
    name: String,
    public_key: String,
    #[serde(default)]
    devices: Vec<DeviceRow>,
}

async fn add_site(State(s): State<HubState>, h: HeaderMap, body: Bytes) -> R<Json<Value>> {
    log_body(&s, "/v1/sites", &body);
    admin(&s, &h)?;
    let n: NewSite = serde_json::from_slice(&body).map_err(|e| HubError::Bad(e.to_string()))?;
    let id = s.db.add_site(&n.name, &n.public_key, &n.devices).await?;
    Ok(Json(json!({ "id": id })))
}

async fn list_sites(State(s): State<HubState>, h: HeaderMap) -> R<Json<Value>> {
    admin(&s, &h)?;
    Ok(Json(json!({ "sites": s.db.sites().await? })))
}

async fn headcount(State(s): State<HubState>, h: HeaderMap) -> R<Json<Value>> {
    admin(&s, &h)?;
    Ok(Json(
        serde_json::to_value(s.db.headcount().await?).expect("serialises"),
    ))
}

/// A person's request, taken once for the whole processor. The operator's
/// staff (or the central portal after checking the person) send the
/// identity attributes; the hub turns them into the pseudonym at once and
/// keeps only that.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRequest {
    kind: String,
    display_name: String,
    contact: Option<String>,
    date_of_birth: Option<String>,
}

async fn add_request(State(s): State<HubState>, h: HeaderMap, body: Bytes) -> R<Json<Value>> {
    log_body(&s, "/v1/requests", &body);
    admin(&s, &h)?;
    let n: NewRequest = serde_json::from_slice(&body).map_err(|e| HubError::Bad(e.to_string()))?;
    let p = s.pseudonym_key.pseudonym(
        &n.display_name,
        n.contact.as_deref(),
        n.date_of_birth.as_deref(),
    );
    let v = s.db.add_request(&n.kind, p, Raised::Desk).await?;
    Ok(Json(serde_json::to_value(v).expect("serialises")))
}

async fn get_request(
    State(s): State<HubState>,
    h: HeaderMap,
    Path(id): Path<Uuid>,
) -> R<Json<Value>> {
    admin(&s, &h)?;
    Ok(Json(
        serde_json::to_value(s.db.request(id).await?).expect("serialises"),
    ))
}

async fn pending(State(s): State<HubState>, h: HeaderMap) -> R<Json<Value>> {
    admin(&s, &h)?;
    Ok(Json(json!({ "pending": s.db.pending().await? })))
}

async fn anchors(State(s): State<HubState>, h: HeaderMap) -> R<Json<Value>> {
    admin(&s, &h)?;
    let r = s.db.anchor_reports().await?;
    let intact = r.iter().all(|x| x.intact);
    Ok(Json(json!({ "intact": intact, "sites": r })))
}

async fn dossier(State(s): State<HubState>, h: HeaderMap) -> R<Json<Value>> {
    admin(&s, &h)?;
    Ok(Json(crate::dossier::build(&s).await?))
}
