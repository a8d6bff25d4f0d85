//! The HTTP side of the verification pipeline, which lives in
//! `facegate_core::pipeline`: how core answers become HTTP errors (one
//! place), and base64 for callers.

use base64::Engine as _;
use chrono::Utc;
use facegate_store::StoreError;

use crate::error::ApiError;

/// The one place core answers become HTTP errors.
impl From<facegate_core::CoreError> for ApiError {
    fn from(e: facegate_core::CoreError) -> Self {
        use facegate_core::CoreError as C;
        match e {
            C::Refused(r) => r.into(),
            C::Forbidden(m) => ApiError::Forbidden(m),
            C::NotFound(m) => ApiError::NotFound(m),
            C::Conflict(m) => ApiError::Conflict(m),
            C::BadRequest { zh, en } => ApiError::BadRequest { zh, en },
            C::TooLarge(m) => ApiError::TooLarge(m),
            C::Locked { until } => ApiError::RateLimited {
                retry_after_s: (until - Utc::now()).num_seconds().max(1) as u64,
            },
            C::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Refused(r) => r.into(),
            StoreError::NotFound { kind, .. } => ApiError::NotFound(kind.to_string()),
            StoreError::Invalid(m) => {
                ApiError::bad(format!("输入无效：{m}"), format!("invalid input: {m}"))
            }
            e => ApiError::internal(e),
        }
    }
}

pub use facegate_core::pipeline::{
    acknowledged_notice, live_person, person_facts, person_id, Attempt, Capture, ConsentEvidence,
    ENROL_MIN_FACE_PX, LIVENESS_MIN,
};

/// Base64 of image bytes, as the API takes them (for the CLI and tests).
pub fn encode_image(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
