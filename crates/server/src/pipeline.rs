//! The HTTP side of the verification pipeline, which lives in
//! `facegate_core::pipeline`: how core answers become HTTP errors (one
//! place), the API's challenge type, and base64 for callers.

use base64::Engine as _;
use chrono::Utc;
use facegate_store::StoreError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

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
    acknowledged_notice, capture, live_person, person_facts, person_id, Attempt, Capture,
    ConsentEvidence, ENROL_MIN_FACE_PX, LIVENESS_MIN,
};

/// Which active-liveness challenge the frames are meant to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Challenge {
    /// One frame; passive liveness only (a gate with its own PAD sensor).
    #[default]
    None,
    /// The head turns: yaw spans at least 12° across the frames.
    TurnHead,
    /// The eyes close and open again across the frames.
    Blink,
}

impl From<Challenge> for facegate_core::pipeline::Challenge {
    fn from(c: Challenge) -> Self {
        use facegate_core::pipeline::Challenge as C;
        match c {
            Challenge::None => C::None,
            Challenge::TurnHead => C::TurnHead,
            Challenge::Blink => C::Blink,
        }
    }
}

/// Make sure the data key `key_id` is in the store before the template it
/// sealed is committed (see [`facegate_core::Core::persist_data_key`]).
pub async fn persist_data_key(s: &AppState, key_id: Uuid) -> Result<(), ApiError> {
    Ok(s.core.persist_data_key(key_id).await?)
}

/// Base64 of image bytes, as the API takes them (for the CLI and tests).
pub fn encode_image(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
