//! One error type for every handler, mapped to HTTP in one place.
//!
//! A refusal under the Measures is always `403`, carries facegate-policy's
//! [`Refusal`] itself, and its body names the rule and article in Chinese and
//! English. Other errors carry a machine code and
//! the same two messages, so the kiosk can show them as they are.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use facegate_policy::Refusal;
use serde::{Deserialize, Serialize};

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code: `refused`, `unauthorized`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `bad_request`, `too_large`, `unsupported_media_type`,
    /// `unprocessable`, `rate_limited`, `conflict`, `internal`.
    pub error: String,
    /// Requirement ID when the Measures refuse (e.g. `R15`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Article of the Measures (e.g. `Art. 10`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub article: Option<String>,
    /// The same article in Chinese (e.g. `第十条`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article_zh: Option<String>,
    pub message_zh: String,
    pub message_en: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Refused(Refusal),
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("bad request: {en}")]
    BadRequest { zh: String, en: String },
    #[error("request too large: {0}")]
    TooLarge(String),
    /// The body is not in a format this operation reads (e.g. not JSON).
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// Well-formed, but not what the operation takes (a missing field, a
    /// wrong type, a date that is not a date).
    #[error("unprocessable: {en}")]
    Unprocessable { zh: String, en: String },
    #[error("too many attempts; retry after {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad(zh: impl Into<String>, en: impl Into<String>) -> Self {
        ApiError::BadRequest {
            zh: zh.into(),
            en: en.into(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Refused(_) => StatusCode::FORBIDDEN,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let plain = |error: &str, zh: String, en: String| ErrorBody {
            error: error.into(),
            rule: None,
            article: None,
            article_zh: None,
            message_zh: zh,
            message_en: en,
        };
        match self {
            ApiError::Refused(r) => ErrorBody {
                error: "refused".into(),
                rule: Some(r.rule.to_string()),
                article: Some(r.article.clone()),
                article_zh: Some(r.rule.article_zh().to_string()),
                message_zh: r.message_zh.clone(),
                message_en: r.message_en.clone(),
            },
            ApiError::Unauthorized => plain(
                "unauthorized",
                "缺少或无效的访问凭证。".into(),
                "Missing or invalid credentials.".into(),
            ),
            ApiError::Forbidden(m) => plain(
                "forbidden",
                "您的角色无权执行此操作。".into(),
                format!("Not allowed: {m}."),
            ),
            ApiError::NotFound(what) => plain(
                "not_found",
                "未找到该记录。".into(),
                format!("Not found: {what}."),
            ),
            ApiError::MethodNotAllowed => plain(
                "method_not_allowed",
                "此地址不支持该请求方法。".into(),
                "This path does not take this method (see the Allow header).".into(),
            ),
            ApiError::BadRequest { zh, en } => plain("bad_request", zh.clone(), en.clone()),
            ApiError::TooLarge(m) => plain(
                "too_large",
                "请求或图片过大。".into(),
                format!("Too large: {m}."),
            ),
            ApiError::UnsupportedMediaType(m) => plain(
                "unsupported_media_type",
                "请求体格式不受支持，请以 JSON（Content-Type: application/json）发送。".into(),
                format!("Unsupported media type: {m}."),
            ),
            ApiError::Unprocessable { zh, en } => plain("unprocessable", zh.clone(), en.clone()),
            ApiError::RateLimited { retry_after_s } => plain(
                "rate_limited",
                format!("尝试次数过多，请 {retry_after_s} 秒后再试。"),
                format!("Too many attempts; try again in {retry_after_s} s."),
            ),
            ApiError::Conflict(m) => plain(
                "conflict",
                "与现有记录冲突。".into(),
                format!("Conflict: {m}."),
            ),
            ApiError::Internal(_) => plain(
                "internal",
                "服务器内部错误，未丢失任何数据，请稍后再试。".into(),
                "Internal error; nothing was lost, please try again.".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = %e, "internal error");
        }
        let status = self.status();
        let mut resp = (status, axum::Json(self.body())).into_response();
        if let ApiError::RateLimited { retry_after_s } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        ApiError::Refused(r)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
