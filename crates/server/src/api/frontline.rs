//! The front line: notice, consent, enrolment, verification (face or an
//! alternative credential), identification, and portal codes. Device keys act
//! here for their own device only.

use axum::extract::State;
use chrono::{DateTime, Utc};
use facegate_policy as policy;
use facegate_store as store;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Query};
use crate::pipeline::{self, ConsentEvidence};
use crate::state::AppState;
use facegate_core::ops::{Frames, Who};

/// What every front-line handler works out first, in one place: the device
/// the caller acts for (a device key only for its own), the scenario, and
/// the audit label.
pub(crate) struct FrontCall {
    pub(crate) device: Option<String>,
    pub(crate) scenario: std::sync::Arc<facegate_core::deploy::Deployed>,
    pub(crate) actor: String,
}

impl FrontCall {
    pub(crate) fn new(
        s: &AppState,
        caller: &Caller,
        device_id: Option<&str>,
        scenario: Option<&str>,
    ) -> ApiResult<FrontCall> {
        let device = caller.require_frontline(device_id)?;
        Ok(FrontCall {
            device,
            scenario: scenario_for(s, caller, scenario)?,
            actor: caller.actor(),
        })
    }

    /// [`FrontCall::new`] from a request body's `device_id` and `scenario`.
    pub(crate) fn of(
        s: &AppState,
        caller: &Caller,
        device_id: &Option<String>,
        scenario: &Option<String>,
    ) -> ApiResult<FrontCall> {
        FrontCall::new(s, caller, device_id.as_deref(), scenario.as_deref())
    }

    /// Where a consent-side act happened: `kiosk:<device>` or `api`.
    fn channel(&self) -> String {
        match &self.device {
            Some(dv) => format!("kiosk:{dv}"),
            None => "api".into(),
        }
    }

    pub(crate) fn who(&self) -> Who<'_> {
        Who {
            actor: &self.actor,
            device: self.device.as_deref(),
        }
    }
}

/// The scenario a front-line request acts in: the one it names, else (for
/// a device key) the key's own scenario or (for anyone else) the server's.
/// A device key acts only in its own scenario: a device of the same name in
/// another scenario is another device.
pub(crate) fn scenario_for(
    s: &AppState,
    caller: &Caller,
    scenario: Option<&str>,
) -> ApiResult<std::sync::Arc<facegate_core::deploy::Deployed>> {
    let Some(bound) = caller.device_scenario() else {
        return Ok(s.scenario(scenario)?);
    };
    let d = match scenario {
        Some(id) => s.scenario(Some(id))?,
        None => s
            .core
            .scenario_by_store_id(bound)
            .ok_or_else(|| crate::error::ApiError::NotFound("this device key's scenario".into()))?,
    };
    if d.store_id != bound {
        return Err(crate::error::ApiError::Forbidden(format!(
            "this device key is bound to a device of another scenario, not of scenario {}",
            d.scenario.id
        )));
    }
    Ok(d)
}

/// The frames of a face request, as the core takes them.
fn frames<'a>(images_b64: &'a [String], nonce: &'a Option<String>) -> Frames<'a> {
    Frames {
        images_b64,
        nonce: nonce.as_deref(),
        operator_import: false,
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoticeQuery {
    /// Scenario id (manifest `id`); default: the server's scenario.
    pub scenario: Option<String>,
    /// `zh` (default) or `en`.
    pub lang: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NoticeView {
    pub scenario: String,
    pub scenario_name_zh: String,
    pub scenario_name_en: String,
    /// Content hash: send it back as `notice_version` when consenting (R4).
    pub version: String,
    pub lang: String,
    /// Accessible HTML fragment.
    pub html: String,
    pub text: String,
    /// Methods offered, face and every alternative, in manifest order (R15).
    pub methods: Vec<String>,
    pub filing_number: Option<String>,
    /// Hours face is not offered again after a person declines (R17).
    pub quiet_period_hours: u32,
    /// The Ed25519 public key (hex) that checks this deployment's signed
    /// receipts (`facegate receipt verify`, `/receipt`).
    pub receipt_public_key: String,
}

/// The notice in force (R4), public: anyone may read it before anything happens.
#[utoipa::path(get, path = "/v1/notice", tag = "notice", params(NoticeQuery),
    responses(
        (status = 200, description = "The notice in force", body = NoticeView),
        (status = 404, description = "No such scenario", body = crate::ErrorBody)))]
pub async fn notice(
    State(s): State<AppState>,
    Query(q): Query<NoticeQuery>,
) -> ApiResult<Json<NoticeView>> {
    let d = s.scenario(q.scenario.as_deref())?;
    let lang = match q.lang.as_deref() {
        Some("en") => policy::Lang::En,
        _ => policy::Lang::Zh,
    };
    let n = policy::render_notice(&d.scenario, lang);
    Ok(Json(NoticeView {
        scenario: d.scenario.id.clone(),
        scenario_name_zh: d.scenario.name.zh.clone(),
        scenario_name_en: d.scenario.name.get(policy::Lang::En).to_string(),
        version: n.version,
        lang: if lang == policy::Lang::En { "en" } else { "zh" }.into(),
        html: n.html,
        text: n.text,
        methods: d
            .scenario
            .methods
            .iter()
            .map(|m| m.key().to_string())
            .collect(),
        filing_number: d.scenario.filing.as_ref().and_then(|f| f.number.clone()),
        quiet_period_hours: d.scenario.quiet_period_hours,
        receipt_public_key: s.receipts.public_key_hex(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct GuardianInput {
    #[schema(min_length = 1, pattern = r"[^\s\u0085]")]
    pub name: String,
    /// 父母 / parent, 其他监护人 / other guardian.
    #[schema(min_length = 1, pattern = r"[^\s\u0085]")]
    pub relationship: String,
    pub contact: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ConsentInput {
    #[schema(format = Uuid)]
    pub person_id: String,
    pub scenario: Option<String>,
    /// `processing` (default), `transmission` or `image_retention`.
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::schema::ConsentKindName>)]
    pub kind: Option<store::ConsentKind>,
    /// The `version` of the notice the person was shown (R4).
    pub notice_version: String,
    /// Where: `kiosk:<device>`, `portal`, `counter`…
    pub channel: Option<String>,
    /// The device, when given at a kiosk.
    pub device_id: Option<String>,
    /// What the person did (e.g. "tapped 同意 on screen 2").
    #[serde(default)]
    pub evidence: String,
    /// For a person under 14: the guardian who consents (R10).
    pub guardian: Option<GuardianInput>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConsentView {
    pub id: String,
    pub person_id: String,
    pub scenario: String,
    pub kind: String,
    pub given_at: DateTime<Utc>,
    /// `subject` or `guardian`.
    pub given_by: String,
    pub channel: String,
    pub notice_version: String,
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub active: bool,
}

pub fn consent_view(s: &AppState, c: &store::Consent) -> ConsentView {
    let ev: ConsentEvidence = serde_json::from_str(&c.evidence).unwrap_or_default();
    ConsentView {
        id: c.id.to_string(),
        person_id: c.person_id.to_string(),
        scenario: s
            .scenario_by_store_id(c.scenario_id)
            .map(|d| d.scenario.id.clone())
            .unwrap_or_else(|| c.scenario_id.to_string()),
        kind: c.kind.as_str().into(),
        given_at: c.given_at,
        given_by: match c.given_by {
            store::ConsentGiver::Subject => "subject".into(),
            store::ConsentGiver::Guardian(_) => "guardian".into(),
        },
        channel: c.channel.clone(),
        notice_version: ev.notice_version,
        withdrawn_at: c.withdrawn_at,
        active: c.is_active(),
    }
}

/// Give a separate consent (R7) under the notice just shown (R4); a person
/// under 14 needs a guardian's (R10).
#[utoipa::path(post, path = "/v1/consents", tag = "consents", request_body = ConsentInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The consent recorded", body = ConsentView),
        (status = 403, description = "The role may not do this, or the Measures refuse it (`rule` and `article` say which)", body = crate::ErrorBody),
        (status = 404, description = "No such person or scenario", body = crate::ErrorBody)))]
pub async fn give_consent(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<ConsentInput>,
) -> ApiResult<Json<ConsentView>> {
    let call = FrontCall::of(&s, &caller, &req.device_id, &req.scenario)?;
    let pid = pipeline::person_id(&req.person_id)?;
    let (d, who) = (&call.scenario, call.who());
    let c = s
        .core
        .give_consent(
            d,
            pid,
            who,
            facegate_core::ops::NewConsent {
                kind: req.kind.unwrap_or(store::ConsentKind::Processing),
                notice_version: &req.notice_version,
                channel: req.channel.as_deref(),
                evidence: &req.evidence,
                guardian: req.guardian.as_ref().map(|g| facegate_core::ops::Guardian {
                    name: &g.name,
                    relationship: &g.relationship,
                    contact: g.contact.as_deref(),
                }),
            },
        )
        .await?;
    Ok(Json(consent_view(&s, &c)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DeclineInput {
    #[schema(format = Uuid)]
    pub person_id: String,
    pub scenario: Option<String>,
    pub device_id: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeclineView {
    /// Face will not be offered to this person again before this time (R17).
    pub no_face_prompt_until: DateTime<Utc>,
    /// The alternatives the person can use instead (R15).
    pub alternatives: Vec<String>,
}

/// The person chose "use another method": remember it so face is not pushed
/// on them again within the quiet period (R17). A device records it only for
/// the person who has just completed another method at it (the kiosk sends
/// it after the PIN, card, QR or guard's check); the person (portal) and an
/// operator always may.
#[utoipa::path(post, path = "/v1/decline-face", tag = "consents", request_body = DeclineInput,
    security(("bearer" = [])), responses(
        (status = 200, description = "Face will not be offered again within the quiet period", body = DeclineView),
        (status = 403, description = "A device declining for someone who has not just used another method at it", body = crate::ErrorBody),
        (status = 404, description = "No such person or scenario", body = crate::ErrorBody)))]
pub async fn decline_face(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<DeclineInput>,
) -> ApiResult<Json<DeclineView>> {
    let pid = pipeline::person_id(&req.person_id)?;
    let (d, channel, actor) = match &caller {
        Caller::Person { .. } => (
            s.scenario(req.scenario.as_deref())?,
            "portal".to_string(),
            caller.actor(),
        ),
        _ => {
            let call = FrontCall::of(&s, &caller, &req.device_id, &req.scenario)?;
            let channel = call.channel();
            (call.scenario, channel, call.actor)
        }
    };
    let acting = match &caller {
        Caller::Person { person_id } => {
            facegate_core::ops::Acting::Person(pipeline::person_id(person_id)?)
        }
        Caller::Key {
            role: crate::Role::Device,
            device_id: Some(dv),
            ..
        } => facegate_core::ops::Acting::Device(facegate_core::DeviceAt {
            name: dv,
            scenario: caller.device_scenario(),
        }),
        _ => facegate_core::ops::Acting::Operator,
    };
    // Kept in the store (R17 on the server, across restarts and instances).
    let until = s
        .core
        .decline_face(pid, &d, acting, &channel, &actor)
        .await?;
    s.metrics.inc("facegate_face_declined_total", &[]);
    Ok(Json(DeclineView {
        no_face_prompt_until: until,
        alternatives: d
            .scenario
            .alternatives()
            .iter()
            .map(|m| m.key().to_string())
            .collect(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OptInView {
    /// `true` when a decline was lifted; `false` when there was none.
    pub lifted: bool,
}

/// The person explicitly asks to use face again after declining (R17):
/// recorded, and face is offered again at once.
#[utoipa::path(post, path = "/v1/opt-in-face", tag = "consents", request_body = DeclineInput,
    security(("bearer" = [])),
    responses((status = 200, body = OptInView), (status = 404, body = crate::ErrorBody)))]
pub async fn opt_in_face(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<DeclineInput>,
) -> ApiResult<Json<OptInView>> {
    let call = FrontCall::of(&s, &caller, &req.device_id, &req.scenario)?;
    let pid = pipeline::person_id(&req.person_id)?;
    let (d, channel) = (&call.scenario, call.channel());
    let lifted = s.core.opt_back_in(pid, d, &channel, &call.actor).await?;
    Ok(Json(OptInView { lifted }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct FaceInput {
    #[schema(format = Uuid)]
    pub person_id: String,
    pub scenario: Option<String>,
    pub device_id: Option<String>,
    /// 1–8 frames, base64 JPEG/PNG/WebP (a `data:` URL prefix is accepted).
    /// Processed in memory and dropped; never stored.
    #[schema(min_items = 1, max_items = 8)]
    pub images: Vec<String>,
    /// The nonce of a challenge from `POST /v1/challenges` for this device
    /// and person; the frames must show its actions in order, before its
    /// deadline, once. Without it the capture is passive-only, which a
    /// scenario requiring `active` liveness refuses (R20).
    pub challenge_nonce: Option<String>,
    /// The notice version shown just before (enrolment, R4).
    pub notice_version: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Outcome {
    /// `pass`, `fail` (verification), `enrolled`, `known`/`unknown` (identification).
    pub outcome: String,
    /// `face`, `pin`, `card`…
    pub method: String,
    /// What passing grants: the same for face and every alternative (R15, R17).
    pub grants: String,
    /// Keep this: it names the audit record of this decision.
    pub receipt_id: String,
    /// The receipt signed by the deployment (`FG1-…`): show it with its QR
    /// (`/v1/receipts/qr`); anyone can check it offline with the public key
    /// (`facegate receipt verify`) or at `/receipt`.
    pub receipt_code: String,
    pub at: DateTime<Utc>,
    pub person_id: Option<String>,
    /// The face decision's score, matched when above `threshold`: the fused
    /// log-odds of "same person" when the template and the capture carry
    /// every model's embedding (`score_model` then names the fusion), else
    /// the first model's cosine (`score_model` names it: a template
    /// enrolled by the first model alone, or a score the first model
    /// decided alone in the cascade); each against its own calibrated
    /// threshold.
    pub score: Option<f32>,
    pub threshold: Option<f32>,
    /// The model or fusion whose scale `score` and `threshold` are on (kept
    /// with the decision's record).
    pub score_model: Option<String>,
    pub liveness: Option<f32>,
}

impl Outcome {
    /// The answer with its signed receipt code.
    pub fn signed(s: &AppState, o: facegate_core::ops::Outcome) -> Self {
        let (_, code) = s.receipt(&o.event);
        Self::with_code(o, code)
    }

    /// The answer with a code already signed (a guard's decision keeps the
    /// code it was signed with).
    pub fn with_code(o: facegate_core::ops::Outcome, receipt_code: String) -> Self {
        Outcome {
            liveness: o.liveness,
            receipt_code,
            ..Outcome::of(&o.event, o.outcome, o.grants)
        }
    }
}

impl Outcome {
    /// The answer to a decision, read off its receipt (so the two cannot
    /// disagree). `grants` is given only when the person passed.
    fn of(ev: &store::VerificationEvent, outcome: &str, grants: Option<String>) -> Outcome {
        Outcome {
            outcome: outcome.into(),
            method: ev.event.method.clone(),
            grants: grants.unwrap_or_default(),
            receipt_id: ev.id.to_string(),
            receipt_code: String::new(),
            at: ev.at,
            person_id: ev.event.person_id.map(|p| p.to_string()),
            score: ev.event.score.map(|x| x as f32),
            threshold: ev.event.threshold.map(|x| x as f32),
            score_model: ev.event.score_model.clone(),
            liveness: None,
        }
    }
}

/// Enrol a face (R4 notice, R7 consent, R10 guardian, R13 PIA checked by policy).
#[utoipa::path(post, path = "/v1/enrol", tag = "recognition", request_body = FaceInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The decision, with its receipt", body = Outcome),
        (status = 400, description = "An image that is not base64, not a picture, shows no face or more than one, or fails liveness", body = crate::ErrorBody),
        (status = 403, description = "The role may not do this, or the Measures refuse it (`rule` and `article` say which)", body = crate::ErrorBody),
        (status = 404, description = "No such person, scenario or device", body = crate::ErrorBody)))]
pub async fn enrol(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<FaceInput>,
) -> ApiResult<Json<Outcome>> {
    let call = FrontCall::of(&s, &caller, &req.device_id, &req.scenario)?;
    let pid = pipeline::person_id(&req.person_id)?;
    let (d, who) = (&call.scenario, call.who());
    let frames = frames(&req.images, &req.challenge_nonce);
    let o = s
        .core
        .enrol_face(d, pid, who, frames, req.notice_version.clone())
        .await?;
    Ok(Json(Outcome::signed(&s, o)))
}

/// 1:1 face verification of a claimed person.
#[utoipa::path(post, path = "/v1/verify", tag = "recognition", request_body = FaceInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The decision, with its receipt", body = Outcome),
        (status = 400, description = "An image that is not base64, not a picture, shows no face or more than one, or fails liveness", body = crate::ErrorBody),
        (status = 403, description = "The role may not do this, or the Measures refuse it (`rule` and `article` say which)", body = crate::ErrorBody),
        (status = 404, description = "No such person, scenario or device", body = crate::ErrorBody)))]
pub async fn verify(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<FaceInput>,
) -> ApiResult<Json<Outcome>> {
    let call = FrontCall::of(&s, &caller, &req.device_id, &req.scenario)?;
    let pid = pipeline::person_id(&req.person_id)?;
    let (d, who) = (&call.scenario, call.who());
    let frames = frames(&req.images, &req.challenge_nonce);
    let o = s
        .core
        .verify_face(d, pid, who, frames, req.notice_version.clone())
        .await?;
    Ok(Json(Outcome::signed(&s, o)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct IdentifyInput {
    pub scenario: Option<String>,
    pub device_id: Option<String>,
    /// 1–8 frames, base64 JPEG/PNG/WebP (a `data:` URL prefix is accepted).
    #[schema(min_items = 1, max_items = 8)]
    pub images: Vec<String>,
    /// The nonce of a challenge from `POST /v1/challenges` for this device
    /// (no person); see [`FaceInput::challenge_nonce`].
    pub challenge_nonce: Option<String>,
}

/// 1:N identification with an open-set answer: `unknown` below the
/// calibrated threshold. Only where the scenario's mode allows it (R3).
#[utoipa::path(post, path = "/v1/identify", tag = "recognition", request_body = IdentifyInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`known` with the person, or `unknown`", body = Outcome),
        (status = 400, description = "An image that is not base64, not a picture, shows no face or more than one, or fails liveness", body = crate::ErrorBody),
        (status = 403, description = "The role may not do this, or the Measures refuse it (`rule` and `article` say which)", body = crate::ErrorBody),
        (status = 404, description = "No such scenario or device", body = crate::ErrorBody)))]
pub async fn identify(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<IdentifyInput>,
) -> ApiResult<Json<Outcome>> {
    let call = FrontCall::of(&s, &caller, &req.device_id, &req.scenario)?;
    let (d, who) = (&call.scenario, call.who());
    let frames = frames(&req.images, &req.challenge_nonce);
    let o = s.core.identify(d, who, frames).await?;
    Ok(Json(Outcome::signed(&s, o)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CredentialInput {
    #[schema(format = Uuid)]
    pub person_id: String,
    pub scenario: Option<String>,
    pub device_id: Option<String>,
    /// `pin` (default), `card` or `qr`.
    #[schema(value_type = Option<crate::openapi::schema::CredentialKindName>)]
    pub kind: Option<String>,
    /// What the person presents. Registering one (`POST /v1/credentials`)
    /// takes 4 to 256 bytes, digits only for a PIN (schema `NewCredential`).
    pub secret: String,
}

/// Register an alternative credential (R15): a PIN, card or QR token.
#[utoipa::path(post, path = "/v1/credentials", tag = "recognition", request_body = crate::openapi::schema::NewCredential,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The credential registered", body = Outcome),
        (status = 400, description = "A PIN that is not digits, or a card or QR token already issued", body = crate::ErrorBody),
        (status = 403, description = "The role may not do this, or the Measures refuse it (`rule` and `article` say which)", body = crate::ErrorBody),
        (status = 404, description = "No such person, scenario or device", body = crate::ErrorBody)))]
pub async fn add_credential(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<CredentialInput>,
) -> ApiResult<Json<Outcome>> {
    let call = FrontCall::of(&s, &caller, &req.device_id, &req.scenario)?;
    let pid = pipeline::person_id(&req.person_id)?;
    let (d, who) = (&call.scenario, call.who());
    let kind = req.kind.as_deref().unwrap_or("pin");
    let o = s
        .core
        .add_credential(d, pid, who, kind, &req.secret)
        .await?;
    Ok(Json(Outcome::signed(&s, o)))
}

/// Verify by an alternative credential: the same outcome face would give
/// (R15, R17). Wrong PINs lock that person's PIN after 5 tries in 15 minutes,
/// whichever key or device is asking.
#[utoipa::path(post, path = "/v1/verify/credential", tag = "recognition", request_body = CredentialInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`pass` or `fail`, with its receipt", body = Outcome),
        (status = 403, description = "The role may not do this, or the Measures refuse it (`rule` and `article` say which)", body = crate::ErrorBody),
        (status = 404, description = "No such person, scenario or device", body = crate::ErrorBody),
        (status = 429, description = "This credential is locked after too many failures; see `Retry-After`", body = crate::ErrorBody)))]
pub async fn verify_credential(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<CredentialInput>,
) -> ApiResult<Json<Outcome>> {
    let call = FrontCall::of(&s, &caller, &req.device_id, &req.scenario)?;
    let pid = pipeline::person_id(&req.person_id)?;
    let (d, who) = (&call.scenario, call.who());
    let kind = req.kind.as_deref().unwrap_or("pin");
    let limit = s.config.limits.credential_failures as i64;
    let o = s
        .core
        .verify_credential(d, pid, who, kind, &req.secret, limit)
        .await?;
    Ok(Json(Outcome::signed(&s, o)))
}

#[derive(Deserialize, utoipa::ToSchema, Default)]
pub struct CodeInput {
    /// For a device key: the device at which the person just passed a check.
    pub device_id: Option<String>,
    /// For an operator: how the person's identity was checked (e.g. "居民身份证 checked at the
    /// property office"); recorded in the audit record. Required for operators.
    #[schema(max_length = 500)]
    pub identity_check: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PortalCode {
    /// 8 digits, single use.
    pub code: String,
    pub expires_at: DateTime<Utc>,
    /// Where the person types it.
    pub portal_path: String,
}

/// Issue a one-time portal code for a person: at a device only for the
/// person who passed a check there within the last minute (face or an
/// alternative); by an operator only with the identity check recorded.
#[utoipa::path(post, path = "/v1/persons/{id}/portal-code", tag = "portal",
    params(("id" = String, Path, format = Uuid, description = "The person")),
    request_body = Option<CodeInput>, security(("bearer" = [])),
    responses(
        (status = 200, description = "A one-time code for the portal", body = PortalCode),
        (status = 403, description = "A device may issue a code only for the person who passed a check at it within the last minute; an operator must record how identity was checked (`identity_check`)", body = crate::ErrorBody),
        (status = 404, description = "No such person", body = crate::ErrorBody)))]
pub async fn portal_code(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<Json<CodeInput>>,
) -> ApiResult<Json<PortalCode>> {
    let input = body.map(|Json(b)| b).unwrap_or_default();
    // The document's bound, whoever calls (a device's request is refused
    // too, not silently let through with the field ignored).
    if input
        .identity_check
        .as_deref()
        .is_some_and(|c| c.chars().count() > 500)
    {
        return Err(crate::error::ApiError::bad(
            "身份核验说明过长（最多 500 字）。",
            "identity_check is too long (at most 500 characters)",
        ));
    }
    let device = caller.require_frontline(input.device_id.as_deref())?;
    let pid = pipeline::person_id(&id)?;
    pipeline::live_person(&s, pid).await?;
    let issuer = match (&caller, device.as_deref()) {
        (
            Caller::Key {
                role: crate::Role::Device,
                ..
            },
            Some(dv),
        ) => facegate_core::PortalIssuer::Device(facegate_core::DeviceAt {
            name: dv,
            scenario: caller.device_scenario(),
        }),
        _ => facegate_core::PortalIssuer::Operator {
            identity_check: input.identity_check.as_deref(),
        },
    };
    let basis = s.core.portal_code_basis(pid, issuer).await?;
    let (code, expires_at) = s
        .auth
        .issue_portal_code(pid, basis, &caller.actor())
        .await?;
    Ok(Json(PortalCode {
        code,
        expires_at,
        portal_path: "/portal".into(),
    }))
}
