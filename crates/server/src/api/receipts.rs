//! Signed receipts: the deployment's public key, a public check of a
//! pasted or scanned code (no key needed, nothing stored is read), and the
//! code as a QR image for the kiosk. Signing and checking live in
//! `facegate_core::receipts`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use facegate_core::receipts;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::{Json, Query};
use crate::state::AppState;

/// The longest code accepted (a receipt code is under 250 characters).
const MAX_CODE: usize = 1000;

/// The key that signs this deployment's receipts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReceiptKey {
    /// `Ed25519`.
    pub algorithm: String,
    /// The public key, 64 hex characters (as printed in the notice and the filing pack).
    pub public_key: String,
}

/// This deployment's receipt public key.
#[utoipa::path(get, path = "/v1/receipts/public-key", tag = "receipts",
    responses((status = 200, description = "The Ed25519 public key receipts are signed with", body = ReceiptKey)))]
pub async fn public_key(State(s): State<AppState>) -> Json<ReceiptKey> {
    Json(ReceiptKey {
        algorithm: "Ed25519".into(),
        public_key: s.receipts.public_key_hex(),
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReceiptCode {
    /// The code (`FG1-…`); spaces and line breaks are ignored.
    pub code: String,
    /// Check against this public key (64 hex) instead of this deployment's.
    #[serde(default)]
    pub public_key: Option<String>,
}

/// What a valid receipt states.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReceiptView {
    pub receipt_id: String,
    pub at: DateTime<Utc>,
    /// The stored result: `match`, `no_match`, `unknown`, `enrolled`, `refused`…
    pub decision: String,
    /// `face`, `pin`, `card`…
    pub method: String,
    /// The scenario's manifest id.
    pub scenario: String,
    pub device: Option<String>,
    /// The requirement a refusal cited.
    pub refusal_rule: Option<String>,
    /// The person's pseudonym on this deployment's receipts (hex); no name, no face data.
    pub person: Option<String>,
}

impl From<receipts::Receipt> for ReceiptView {
    fn from(r: receipts::Receipt) -> Self {
        ReceiptView {
            receipt_id: r.receipt_id.to_string(),
            at: r.at,
            decision: r.decision,
            method: r.method,
            scenario: r.scenario,
            device: r.device,
            refusal_rule: r.refusal_rule,
            person: r.person,
        }
    }
}

/// The answer to a receipt check.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReceiptCheck {
    /// Whether the signature holds for the key used.
    pub valid: bool,
    /// The key it was checked against (64 hex).
    pub public_key: String,
    /// What the receipt states, when valid.
    pub receipt: Option<ReceiptView>,
    /// Why not, when invalid.
    pub message_zh: Option<String>,
    pub message_en: Option<String>,
}

/// Check a receipt code (public: anyone holding a code may check it).
/// An altered or foreign code is answered `valid: false` with the reason.
#[utoipa::path(post, path = "/v1/receipts/verify", tag = "receipts", request_body = ReceiptCode,
    responses((status = 200, description = "Whether the receipt is valid, and what it states", body = ReceiptCheck)))]
pub async fn verify(
    State(s): State<AppState>,
    Json(body): Json<ReceiptCode>,
) -> Result<Json<ReceiptCheck>, ApiError> {
    if body.code.len() > MAX_CODE {
        return Err(ApiError::bad("凭证码过长", "the code is too long"));
    }
    let pk_hex = body
        .public_key
        .unwrap_or_else(|| s.receipts.public_key_hex());
    let key = receipts::parse_public_key(&pk_hex)
        .map_err(|e| ApiError::bad(e.message_zh(), e.to_string()))?;
    Ok(Json(match receipts::verify(&body.code, &key) {
        Ok(r) => ReceiptCheck {
            valid: true,
            public_key: pk_hex.trim().to_string(),
            receipt: Some(r.into()),
            message_zh: None,
            message_en: None,
        },
        Err(e) => ReceiptCheck {
            valid: false,
            public_key: pk_hex.trim().to_string(),
            receipt: None,
            message_zh: Some(e.message_zh()),
            message_en: Some(e.to_string()),
        },
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QrQuery {
    /// A receipt code (`FG1-…`).
    pub code: String,
}

/// A receipt code as a QR image (SVG), for the kiosk to show beside the
/// code. Only well-formed receipt codes are drawn.
#[utoipa::path(get, path = "/v1/receipts/qr", tag = "receipts", params(QrQuery),
    responses((status = 200, description = "The QR code", content_type = "image/svg+xml", body = String)))]
pub async fn qr(Query(q): Query<QrQuery>) -> Result<impl IntoResponse, ApiError> {
    if q.code.len() > MAX_CODE {
        return Err(ApiError::bad("凭证码过长", "the code is too long"));
    }
    receipts::decode(&q.code).map_err(|e| ApiError::bad(e.message_zh(), e.to_string()))?;
    let code: String = q.code.chars().filter(|c| !c.is_whitespace()).collect();
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        qr_svg(&code)?,
    ))
}

/// An SVG QR code of `text` (alphanumeric mode for a receipt code).
pub fn qr_svg(text: &str) -> Result<String, ApiError> {
    let qr = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(ApiError::internal)?;
    Ok(qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// The signed-in person's evidence file: their decisions with signed
/// receipts, the notice versions (and which was in force at each decision),
/// their consents, the filing number and the receipts' public key. The
/// portal prints it as one document; the JSON is for machines.
#[utoipa::path(get, path = "/v1/me/evidence", tag = "portal", security(("bearer" = [])),
    responses(
        (status = 200, description = "The evidence file", body = Object),
        (status = 403, description = "Not a portal session", body = crate::ErrorBody),
        (status = 404, description = "The person is gone", body = crate::ErrorBody)))]
pub async fn evidence(
    State(s): State<AppState>,
    caller: crate::auth::Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let crate::auth::Caller::Person { person_id } = &caller else {
        return Err(ApiError::Forbidden(
            "only a portal session has an evidence file".into(),
        ));
    };
    let pid = facegate_core::pipeline::person_id(person_id)?;
    let file = s.core.evidence(pid).await?;
    Ok(Json(
        serde_json::to_value(file).map_err(ApiError::internal)?,
    ))
}
