//! Official documents for people and regulators: the PIA report and the
//! filing pack in one language each (Chinese official, English on request),
//! printable on A4 with page numbers and a signature block (the console
//! turns them into PDF through the browser's print), and the signage photos
//! (R19) they show.

use axum::extract::State;
use axum::response::Html;
use base64::Engine as _;
use facegate_policy as policy;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// The largest signage photo accepted (2 MiB).
pub const MAX_SIGNAGE_BYTES: usize = 2 * 1024 * 1024;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DocQuery {
    /// `zh` (the official version, default) or `en`; anything else is 400.
    pub lang: Option<String>,
}

fn lang(q: &DocQuery) -> ApiResult<policy::Lang> {
    // Trimmed: the document's pattern `^(zh|en)$` admits a trailing line
    // break in some regex dialects.
    match q.lang.as_deref().map(str::trim) {
        None | Some("zh") | Some("zh-CN") => Ok(policy::Lang::Zh),
        Some("en") => Ok(policy::Lang::En),
        Some(x) => Err(ApiError::bad(
            format!("不支持的语言：{x}（可选 zh、en）"),
            format!("unsupported language: {x} (zh or en)"),
        )),
    }
}

/// Everything the documents need beyond the manifests, read from the store.
async fn inputs(s: &AppState) -> ApiResult<policy::DocInputs> {
    let (filing, f) = crate::api::console::filing_inputs(s).await?;
    let photos = s.store.signage_photos().await?;
    let all = s.scenarios.read().unwrap().clone();
    let signage = photos
        .iter()
        .filter_map(|p| {
            let device = all
                .iter()
                .find_map(|d| d.device_names.get(&p.device_id).cloned())?;
            Some(policy::SignagePhoto {
                device,
                data_url: format!(
                    "data:{};base64,{}",
                    p.content_type,
                    base64::engine::general_purpose::STANDARD.encode(&p.bytes)
                ),
            })
        })
        .collect();
    Ok(policy::DocInputs {
        filing,
        dated: Some(policy::shanghai_date(s.now())),
        receipt_public_key: Some(s.receipts.public_key_hex()),
        filing_number: f.filing_number,
        signage,
    })
}

/// The PIA report in force (R13) as an official, printable document.
#[utoipa::path(get, path = "/v1/documents/pia", tag = "filing", params(DocQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The PIA report: cover, processor, the four Art. 9 contents, signature block; A4 with page numbers", content_type = "text/html", body = String)))]
pub async fn pia(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<DocQuery>,
) -> ApiResult<Html<String>> {
    caller.require_reader()?;
    let l = lang(&q)?;
    let inp = inputs(&s).await?;
    let d = s.scenario(None)?;
    Ok(Html(policy::pia_document(&d.scenario, &d.pia, &inp, l)))
}

/// The filing pack (R21, the five Art. 15 contents) as an official,
/// printable document.
#[utoipa::path(get, path = "/v1/documents/filing-pack", tag = "filing", params(DocQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The filing pack: cover, processor, the five Art. 15 contents, signage photos, signature block; A4 with page numbers", content_type = "text/html", body = String)))]
pub async fn filing_pack(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<DocQuery>,
) -> ApiResult<Html<String>> {
    caller.require_reader()?;
    let l = lang(&q)?;
    let inp = inputs(&s).await?;
    let all = s.scenarios.read().unwrap().clone();
    let scenarios: Vec<policy::Scenario> = all.iter().map(|d| d.scenario.clone()).collect();
    let pias: Vec<policy::PiaReport> = all.iter().map(|d| d.pia.clone()).collect();
    Ok(Html(policy::filing_document(&scenarios, &pias, &inp, l)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignageUpload {
    /// The photo, base64 (a `data:` URL prefix is allowed): JPEG, PNG or
    /// WebP, at most 2 MiB.
    pub image: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignageQuery {
    /// The device's scenario; needed only when several deployed scenarios
    /// have a device of this name.
    pub scenario: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SignageView {
    pub device_id: String,
    /// The scenario whose device it is.
    pub scenario: String,
    pub content_type: String,
    pub sha256: String,
    pub bytes: usize,
}

/// The photo's type, read by the vision crate's format sniff from its first
/// bytes and header (the declared type is not trusted; a header without an
/// image size is not a photo): JPEG, PNG or WebP.
fn signage_type(b: &[u8]) -> ApiResult<&'static str> {
    let refused = || {
        ApiError::bad(
            "照片须为 JPEG、PNG 或 WebP 图像",
            "the photo must be a JPEG, PNG or WebP image",
        )
    };
    let (format, _, _) = facegate_vision::header_dimensions(b).map_err(|_| refused())?;
    match format.to_mime_type() {
        m @ ("image/jpeg" | "image/png" | "image/webp") => Ok(m),
        _ => Err(refused()),
    }
}

/// Upload the photo of a device's signage (R19 evidence, shown in the filing pack).
#[utoipa::path(put, path = "/v1/devices/{device}/signage", tag = "filing", request_body = SignageUpload,
    params(("device" = String, Path, description = "The device's manifest id"), SignageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored (a previous photo is replaced)", body = SignageView),
        (status = 400, description = "Not a JPEG, PNG or WebP photo, or a device name several scenarios share without `scenario`", body = crate::ErrorBody),
        (status = 404, description = "No such device", body = crate::ErrorBody)))]
pub async fn upload_signage(
    State(s): State<AppState>,
    caller: Caller,
    Path(device): Path<String>,
    Query(q): Query<SignageQuery>,
    Json(body): Json<SignageUpload>,
) -> ApiResult<Json<SignageView>> {
    caller.require_operator()?;
    let (scenario, id) = s.device_named(&device, q.scenario.as_deref())?;
    let b64 = match body.image.split_once(";base64,") {
        Some((head, rest)) if head.starts_with("data:") => rest,
        _ => body.image.as_str(),
    };
    if b64.len() > MAX_SIGNAGE_BYTES / 3 * 4 + 8 {
        return Err(ApiError::TooLarge(format!(
            "signage photo over {MAX_SIGNAGE_BYTES} bytes"
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| {
            ApiError::bad(
                "照片不是有效的 base64 编码",
                "the photo is not valid base64",
            )
        })?;
    if bytes.len() > MAX_SIGNAGE_BYTES {
        return Err(ApiError::TooLarge(format!(
            "signage photo over {MAX_SIGNAGE_BYTES} bytes"
        )));
    }
    let ct = signage_type(&bytes)?;
    let p = s
        .store
        .put_signage_photo(id, ct, &bytes, &caller.actor())
        .await?;
    Ok(Json(SignageView {
        device_id: device,
        scenario,
        content_type: p.content_type,
        sha256: p.sha256,
        bytes: bytes.len(),
    }))
}
