//! axum's extractors, with every rejection answered as [`ApiError`], so a
//! request that never reaches a handler (an empty or malformed body, a body
//! that is not JSON, a bad path or query) still gets the one JSON error body
//! ([`crate::ErrorBody`]) the OpenAPI document promises. Handlers import
//! `Json`, `Path` and `Query` from here instead of `axum::extract`.
//!
//! What no extractor sees — an unknown path, a wrong method, a body over the
//! limit read by a plain `String` — is turned into the same body by
//! [`not_found`] (the router's fallback) and [`json_errors`] (a layer).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ApiError;

impl ApiError {
    /// The error for a status that something other than a handler chose
    /// (an extractor's rejection, the router), with its reason in English.
    pub fn from_status(status: StatusCode, detail: &str) -> ApiError {
        let detail = detail.trim();
        match status {
            StatusCode::BAD_REQUEST => ApiError::bad(
                format!("请求无效：{detail}"),
                format!("invalid request: {detail}"),
            ),
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
            StatusCode::FORBIDDEN => ApiError::Forbidden(detail.into()),
            StatusCode::NOT_FOUND => ApiError::NotFound(if detail.is_empty() {
                "no such path".into()
            } else {
                detail.into()
            }),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(if detail.is_empty() {
                "request body over the limit".into()
            } else {
                detail.into()
            }),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(detail.into()),
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable {
                zh: format!("请求内容不符合要求：{detail}"),
                en: format!("unprocessable request: {detail}"),
            },
            StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited { retry_after_s: 1 },
            StatusCode::CONFLICT => ApiError::Conflict(detail.into()),
            s if s.is_client_error() => ApiError::bad(
                format!("请求无效（{}）：{detail}", s.as_u16()),
                format!("invalid request ({}): {detail}", s.as_u16()),
            ),
            _ => ApiError::Internal(format!("{status}: {detail}")),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let text = r.body_text();
        match &r {
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
                "send the body as JSON with Content-Type: application/json".into(),
            ),
            JsonRejection::JsonSyntaxError(_) => ApiError::bad(
                format!("请求体不是有效的 JSON：{text}"),
                format!("the body is not valid JSON: {text}"),
            ),
            JsonRejection::JsonDataError(_) => ApiError::Unprocessable {
                zh: format!("请求体缺少字段或字段类型不对：{text}"),
                en: text,
            },
            _ => ApiError::from_status(status, &text),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::from_status(r.status(), &r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::from_status(r.status(), &r.body_text())
    }
}

/// A JSON body (request) or JSON answer (response), as `axum::Json`, whose
/// rejection is an [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(v) = <axum::Json<T> as FromRequest<S>>::from_request(req, state).await?;
        Ok(Json(v))
    }
}

/// `Option<Json<T>>`: no body (no `Content-Type`) and a JSON `null` are
/// `None`; any other body is read and must be valid.
impl<T, S> OptionalFromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let v = <axum::Json<Option<T>> as OptionalFromRequest<S>>::from_request(req, state).await?;
        Ok(v.and_then(|axum::Json(v)| v).map(Json))
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters, as `axum::extract::Path`, rejected as an [`ApiError`].
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(v) =
            <axum::extract::Path<T> as FromRequestParts<S>>::from_request_parts(parts, state)
                .await?;
        Ok(Path(v))
    }
}

/// A query string, as `axum::extract::Query`, rejected as an [`ApiError`].
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(v) =
            <axum::extract::Query<T> as FromRequestParts<S>>::from_request_parts(parts, state)
                .await?;
        Ok(Query(v))
    }
}

/// The router's fallback: an unknown path is `404` with the error body.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such path".into())
}

/// A layer that gives every `4xx`/`5xx` answer the JSON error body, for the
/// answers no handler wrote: `405` from the method router (its `Allow`
/// header kept), `413` from the body limit under a plain `String` body, and
/// any other rejection that is not JSON already.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let detail = match axum::body::to_bytes(body, 4096).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    let mut fresh = ApiError::from_status(status, &detail).into_response();
    // Keep what the original answer said in its headers (Allow, Retry-After…),
    // but not its body's type or length.
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    for (k, v) in parts.headers.iter() {
        if !fresh.headers().contains_key(k) {
            fresh.headers_mut().insert(k.clone(), v.clone());
        }
    }
    *fresh.status_mut() = status;
    fresh
}
