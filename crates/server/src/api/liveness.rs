//! Server-issued liveness challenges (issue 15): the kiosk or gate asks for
//! one before a face capture and sends its nonce with the frames.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::Json;
use crate::pipeline;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChallengeInput {
    /// Scenario id (manifest `id`); default: the server's scenario.
    pub scenario: Option<String>,
    /// The device (a device key acts for its own device only).
    pub device_id: Option<String>,
    /// The person claimed, for enrolment and 1:1 verification; leave out
    /// for 1:N identification (the challenge is then bound to the device).
    #[schema(format = Uuid)]
    pub person_id: Option<String>,
}

/// One action of a challenge, with what to show and read aloud.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChallengeStep {
    /// `turn_left`, `turn_right`, `blink`, `nod` or `open_mouth` (the
    /// person's own left and right).
    pub action: String,
    pub prompt_zh: String,
    pub prompt_en: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChallengeView {
    /// Send it back once, as `challenge_nonce`, with the frames.
    pub nonce: String,
    /// The actions to perform, in this order.
    pub actions: Vec<ChallengeStep>,
    /// The capture request must arrive before this.
    pub expires_at: DateTime<Utc>,
    /// The liveness level the scenario requires at this device: `active`,
    /// `passive` or `none` (a device with a certified PAD sensor).
    pub required: String,
    /// Whether the manifest asks for spoken prompts (accessibility, R6).
    pub audio_prompts: bool,
}

/// Issue a liveness challenge: a nonce, a random ordered sequence of 2–3
/// actions and a deadline, bound to the device, the scenario and the
/// person claimed. It is taken once by the capture request that names it.
#[utoipa::path(post, path = "/v1/challenges", tag = "recognition", request_body = ChallengeInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The challenge", body = ChallengeView),
        (status = 400, description = "A malformed request", body = crate::ErrorBody),
        (status = 403, description = "The role may not do this, or the key is bound to another device", body = crate::ErrorBody),
        (status = 404, description = "No such person, scenario or device", body = crate::ErrorBody)))]
pub async fn issue(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<ChallengeInput>,
) -> ApiResult<Json<ChallengeView>> {
    let crate::api::frontline::FrontCall {
        device,
        scenario: d,
        ..
    } = crate::api::frontline::FrontCall::of(&s, &caller, &req.device_id, &req.scenario)?;
    let person = req
        .person_id
        .as_deref()
        .map(pipeline::person_id)
        .transpose()?;
    let c = s
        .core
        .issue_challenge(&d, device.as_deref(), person)
        .await?;
    Ok(Json(ChallengeView {
        nonce: c.nonce,
        actions: c
            .actions
            .iter()
            .map(|a| ChallengeStep {
                action: serde_json::to_value(a)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                prompt_zh: a.prompt_zh().into(),
                prompt_en: a.prompt_en().into(),
            })
            .collect(),
        expires_at: c.expires_at,
        required: c.required.key().into(),
        audio_prompts: d
            .scenario
            .accessibility
            .as_ref()
            .is_some_and(|a| a.audio_prompts),
    }))
}
