//! The front line: notice, consent, enrolment, verification (face or an
//! alternative credential), identification, and portal codes. Device keys act
//! here for their own device only.

use axum::extract::{Path, Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use facegate_gallery::{Decision, Encoding, PersonId, Template};
use facegate_policy as policy;
use facegate_store as store;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::pipeline::{self, Challenge, ConsentEvidence};
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
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
}

/// The notice in force (R4), public: anyone may read it before anything happens.
#[utoipa::path(get, path = "/v1/notice", tag = "notice", params(NoticeQuery),
    responses((status = 200, body = NoticeView)))]
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
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct GuardianInput {
    pub name: String,
    /// 父母 / parent, 其他监护人 / other guardian.
    pub relationship: String,
    pub contact: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ConsentInput {
    pub person_id: String,
    pub scenario: Option<String>,
    /// `processing` (default), `transmission` or `image_retention`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
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
    responses((status = 200, body = ConsentView), (status = 403, body = crate::ErrorBody)))]
pub async fn give_consent(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<ConsentInput>,
) -> ApiResult<Json<ConsentView>> {
    let device = caller.require_frontline(req.device_id.as_deref())?;
    let d = s.scenario(req.scenario.as_deref())?;
    let pid = pipeline::person_id(&req.person_id)?;
    let person = pipeline::live_person(&s, pid).await?;
    if req.notice_version != d.notice_version {
        return Err(policy::Refusal::new(
            policy::RuleId::R4,
            "The notice acknowledged is not the current version; read the current notice before consenting.",
            "所确认的告知书不是当前版本，请重新阅读告知书后再同意。",
        )
        .into());
    }
    let minor = person
        .identity
        .as_ref()
        .and_then(|i| i.date_of_birth)
        .is_some_and(|dob| policy::is_under_14(dob, Utc::now()));
    let given_by = match (&req.guardian, minor) {
        (Some(g), _) => {
            if g.name.trim().is_empty() || g.relationship.trim().is_empty() {
                return Err(ApiError::bad(
                    "请填写监护人姓名和关系。",
                    "give the guardian's name and relationship",
                ));
            }
            let gu = s
                .store
                .add_guardian(
                    pid,
                    &store::PersonIdentity {
                        display_name: g.name.trim().into(),
                        contact: g.contact.clone(),
                        date_of_birth: None,
                    },
                    g.relationship.trim(),
                    &caller.actor(),
                )
                .await?;
            store::ConsentGiver::Guardian(gu.id)
        }
        (None, true) => {
            return Err(policy::Refusal::new(
                policy::RuleId::R10,
                "This person is under 14: a parent or other guardian must consent before face recognition is used.",
                "未满十四周岁，须由父母或其他监护人同意后才能使用人脸识别。",
            )
            .into())
        }
        (None, false) => store::ConsentGiver::Subject,
    };
    let channel = req.channel.clone().unwrap_or_else(|| match &device {
        Some(dv) => format!("kiosk:{dv}"),
        None => "api".into(),
    });
    let evidence = serde_json::to_string(&ConsentEvidence {
        notice_version: d.notice_version.clone(),
        terms: d.scenario.consent_terms(),
        note: if req.evidence.trim().is_empty() {
            format!("{} agreed after the notice was shown", caller.actor())
        } else {
            req.evidence.clone()
        },
    })
    .map_err(ApiError::internal)?;
    let c = s
        .store
        .give_consent(
            &store::NewConsent {
                person_id: pid,
                scenario_id: d.store_id,
                kind: req.kind.unwrap_or(store::ConsentKind::Processing),
                notice_id: Some(d.notice_id),
                given_by,
                channel,
                evidence,
            },
            &caller.actor(),
        )
        .await?;
    if c.kind == store::ConsentKind::Processing {
        // Agreeing to face after a decline is the person opting back in (R17);
        // the store records it.
        s.core
            .opt_back_in(pid, &d, &c.channel, &caller.actor())
            .await?;
    }
    Ok(Json(consent_view(&s, &c)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DeclineInput {
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
/// on them again within the quiet period (R17).
#[utoipa::path(post, path = "/v1/decline-face", tag = "consents", request_body = DeclineInput,
    security(("bearer" = [])), responses((status = 200, body = DeclineView)))]
pub async fn decline_face(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<DeclineInput>,
) -> ApiResult<Json<DeclineView>> {
    let device = caller.require_frontline(req.device_id.as_deref())?;
    let d = s.scenario(req.scenario.as_deref())?;
    let pid = pipeline::person_id(&req.person_id)?;
    let channel = match &device {
        Some(dv) => format!("kiosk:{dv}"),
        None => "api".into(),
    };
    // Kept in the store (R17 on the server, across restarts and instances);
    // only for an existing person.
    let until = s
        .core
        .decline_face(pid, &d, &channel, &caller.actor())
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
    let device = caller.require_frontline(req.device_id.as_deref())?;
    let d = s.scenario(req.scenario.as_deref())?;
    let pid = pipeline::person_id(&req.person_id)?;
    let channel = match &device {
        Some(dv) => format!("kiosk:{dv}"),
        None => "api".into(),
    };
    let lifted = s
        .core
        .opt_back_in(pid, &d, &channel, &caller.actor())
        .await?;
    Ok(Json(OptInView { lifted }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct FaceInput {
    pub person_id: String,
    pub scenario: Option<String>,
    pub device_id: Option<String>,
    /// 1–8 frames, base64 JPEG/PNG/WebP (a `data:` URL prefix is accepted).
    /// Processed in memory and dropped; never stored.
    pub images: Vec<String>,
    #[serde(default)]
    pub challenge: Challenge,
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
    pub at: DateTime<Utc>,
    pub person_id: Option<String>,
    pub score: Option<f32>,
    pub threshold: Option<f32>,
    pub liveness: Option<f32>,
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
            at: ev.at,
            person_id: ev.event.person_id.map(|p| p.to_string()),
            score: ev.event.score.map(|x| x as f32),
            threshold: ev.event.threshold.map(|x| x as f32),
            liveness: None,
        }
    }
}

/// Enrol a face (R4 notice, R7 consent, R10 guardian, R13 PIA checked by policy).
#[utoipa::path(post, path = "/v1/enrol", tag = "recognition", request_body = FaceInput,
    security(("bearer" = [])),
    responses((status = 200, body = Outcome), (status = 403, body = crate::ErrorBody)))]
pub async fn enrol(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<FaceInput>,
) -> ApiResult<Json<Outcome>> {
    let device = caller.require_frontline(req.device_id.as_deref())?;
    let d = s.scenario(req.scenario.as_deref())?;
    let pid = pipeline::person_id(&req.person_id)?;
    let facts = pipeline::person_facts(&s, &d, pid).await?;
    let ack = req
        .notice_version
        .clone()
        .or_else(|| pipeline::acknowledged_notice(&facts));
    let attempt = pipeline::Attempt::new(&s, &d, Some(pid), device.as_deref(), &caller.actor());
    let permit = attempt
        .authorize(policy::Action::Enrol, policy::Method::Face, facts, ack)
        .await?;
    let cap = pipeline::capture(
        &s,
        &req.images,
        req.challenge.into(),
        pipeline::ENROL_MIN_FACE_PX,
    )
    .await?;
    let t = Template::new(
        PersonId(pid),
        facegate_gallery::ScenarioId(d.store_id),
        facegate_core::deploy::model_id(),
        cap.embedding.as_slice(),
        Encoding::Int8,
    )
    .map_err(ApiError::internal)?;
    let sealed = s.keyring.seal(&t).map_err(ApiError::internal)?;
    pipeline::persist_data_key(&s, sealed.key_id()).await?;
    s.store
        .enrol(
            &store::Enrolment {
                person_id: pid,
                scenario_id: d.store_id,
                device_id: device.as_deref().and_then(|x| d.devices.get(x).copied()),
                sealed_template: sealed.to_bytes(),
            },
            &attempt.actor,
        )
        .await?;
    if let Some(g) = s.galleries.write().unwrap().get_mut(&d.store_id) {
        g.add(&t).map_err(ApiError::internal)?;
    }
    drop(t);
    let ev = attempt.record("face", "enrolled", None, None, None).await?;
    Ok(Json(Outcome {
        liveness: cap.liveness,
        ..Outcome::of(&ev, "enrolled", Some(permit.grants))
    }))
}

/// 1:1 face verification of a claimed person.
#[utoipa::path(post, path = "/v1/verify", tag = "recognition", request_body = FaceInput,
    security(("bearer" = [])),
    responses((status = 200, body = Outcome), (status = 403, body = crate::ErrorBody)))]
pub async fn verify(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<FaceInput>,
) -> ApiResult<Json<Outcome>> {
    let device = caller.require_frontline(req.device_id.as_deref())?;
    let d = s.scenario(req.scenario.as_deref())?;
    let pid = pipeline::person_id(&req.person_id)?;
    let facts = pipeline::person_facts(&s, &d, pid).await?;
    let ack = pipeline::acknowledged_notice(&facts).or(req.notice_version.clone());
    let attempt = pipeline::Attempt::new(&s, &d, Some(pid), device.as_deref(), &caller.actor());
    let permit = attempt
        .authorize(policy::Action::Verify, policy::Method::Face, facts, ack)
        .await?;
    let cap = pipeline::capture(&s, &req.images, req.challenge.into(), 40.0).await?;
    let m = {
        let g = s.galleries.read().unwrap();
        g.get(&d.store_id)
            .map(|g| g.verify(PersonId(pid), cap.embedding.as_slice()))
    };
    let (pass, score, threshold) = match m {
        Some(Ok(m)) => (m.accepted, Some(m.score), Some(m.threshold)),
        Some(Err(facegate_gallery::Error::UnknownPerson(_))) | None => (false, None, None),
        Some(Err(e)) => return Err(ApiError::internal(e)),
    };
    let result = if pass { "match" } else { "no_match" };
    let ev = attempt
        .record("face", result, score, threshold, None)
        .await?;
    Ok(Json(Outcome {
        liveness: cap.liveness,
        ..pass_or_fail(&ev, pass, permit)
    }))
}

/// The outcome of a 1:1 check (face or an alternative): what passing grants
/// is the same whichever method passed (R15, R17).
fn pass_or_fail(ev: &store::VerificationEvent, pass: bool, permit: policy::Permit) -> Outcome {
    if pass {
        Outcome::of(ev, "pass", Some(permit.grants))
    } else {
        Outcome::of(ev, "fail", None)
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct IdentifyInput {
    pub scenario: Option<String>,
    pub device_id: Option<String>,
    pub images: Vec<String>,
    #[serde(default)]
    pub challenge: Challenge,
}

/// 1:N identification with an open-set answer: `unknown` below the
/// calibrated threshold. Only where the scenario's mode allows it (R3).
#[utoipa::path(post, path = "/v1/identify", tag = "recognition", request_body = IdentifyInput,
    security(("bearer" = [])),
    responses((status = 200, body = Outcome), (status = 403, body = crate::ErrorBody)))]
pub async fn identify(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<IdentifyInput>,
) -> ApiResult<Json<Outcome>> {
    let device = caller.require_frontline(req.device_id.as_deref())?;
    let d = s.scenario(req.scenario.as_deref())?;
    let mut attempt = pipeline::Attempt::new(&s, &d, None, device.as_deref(), &caller.actor());
    // Policy first, before any pixel is looked at: scenario, mode (R3),
    // device (R18/R19), PIA (R13). The person in front of the camera is not
    // known yet, so a consent-based scenario's R7 is checked per match below
    // (1:N over the consenting gallery).
    let pre = policy::authorize_with_notice(
        &d.scenario,
        &d.notice_version,
        &policy::Processing {
            action: policy::Action::Identify,
            method: policy::Method::Face,
            purpose_id: d.scenario.purpose_id.clone(),
            person: policy::PersonFacts::default(),
            device: match device.as_deref() {
                Some(id) => Some(
                    d.scenario
                        .device(id)
                        .ok_or_else(|| ApiError::NotFound(format!("device {id}")))?
                        .facts(),
                ),
                None => None,
            },
            at: Utc::now(),
            notice_version: Some(d.notice_version.clone()),
            pia: d.pia_status,
        },
    );
    let consent_based = d.scenario.legal_basis == policy::LegalBasis::Consent;
    match pre {
        Ok(_) => {}
        Err(r) if r.rule == policy::RuleId::R7 && consent_based => {}
        Err(_) => {
            // Record and return the refusal the usual way.
            attempt
                .authorize(
                    policy::Action::Identify,
                    policy::Method::Face,
                    policy::PersonFacts::default(),
                    Some(d.notice_version.clone()),
                )
                .await?;
        }
    }
    let cap = pipeline::capture(&s, &req.images, req.challenge.into(), 40.0).await?;
    let id = {
        let g = s.galleries.read().unwrap();
        match g.get(&d.store_id) {
            Some(g) if !g.is_empty() => Some(
                g.identify(cap.embedding.as_slice(), 5)
                    .map_err(ApiError::internal)?,
            ),
            _ => None,
        }
    };
    let (mut person, mut score, threshold) = match &id {
        Some(i) => match i.decision {
            Decision::Known { person, score } => (Some(person.0), Some(score), Some(i.threshold)),
            Decision::Unknown => (None, None, Some(i.threshold)),
        },
        None => (None, None, None),
    };
    // A match counts only for a person whose processing (or guardian's)
    // consent is active under the notice in force: policy decides it as it
    // would a 1:1 check of that person. Otherwise the answer is `unknown`,
    // and nothing about the probe or the candidate is kept.
    let mut grants = None;
    if let Some(pid) = person {
        let permitted = match pipeline::person_facts(&s, &d, pid).await {
            Ok(facts) => {
                let ack = pipeline::acknowledged_notice(&facts);
                policy::authorize_with_notice(
                    &d.scenario,
                    &d.notice_version,
                    &policy::Processing {
                        action: policy::Action::Verify,
                        method: policy::Method::Face,
                        purpose_id: d.scenario.purpose_id.clone(),
                        person: facts,
                        device: device
                            .as_deref()
                            .and_then(|id| d.scenario.device(id))
                            .map(|x| x.facts()),
                        at: Utc::now(),
                        notice_version: ack,
                        pia: d.pia_status,
                    },
                )
                .ok()
            }
            Err(facegate_core::CoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        match permitted {
            Some(p) => grants = Some(p.grants),
            None => {
                person = None;
                score = None;
            }
        }
    }
    attempt.person = person;
    let result = if person.is_some() { "known" } else { "unknown" };
    let ev = attempt
        .record("face", result, score, threshold, None)
        .await?;
    Ok(Json(Outcome {
        liveness: cap.liveness,
        ..Outcome::of(&ev, result, grants)
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CredentialInput {
    pub person_id: String,
    pub scenario: Option<String>,
    pub device_id: Option<String>,
    /// `pin` (default), `card` or `qr`.
    pub kind: Option<String>,
    pub secret: String,
}

fn method_of(kind: Option<&str>) -> Result<(store::CredentialKind, policy::Method), ApiError> {
    match kind.unwrap_or("pin") {
        "pin" => Ok((store::CredentialKind::Pin, policy::Method::Pin)),
        "card" => Ok((store::CredentialKind::Card, policy::Method::Card)),
        "qr" | "qr_code" => Ok((store::CredentialKind::Qr, policy::Method::QrCode)),
        k => Err(ApiError::bad(
            format!("不支持的凭证类型：{k}"),
            format!("unsupported credential kind: {k}"),
        )),
    }
}

/// Register an alternative credential (R15): a PIN, card or QR token.
#[utoipa::path(post, path = "/v1/credentials", tag = "recognition", request_body = CredentialInput,
    security(("bearer" = [])),
    responses((status = 200, body = Outcome), (status = 403, body = crate::ErrorBody)))]
pub async fn add_credential(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<CredentialInput>,
) -> ApiResult<Json<Outcome>> {
    let device = caller.require_frontline(req.device_id.as_deref())?;
    let d = s.scenario(req.scenario.as_deref())?;
    let pid = pipeline::person_id(&req.person_id)?;
    let (kind, method) = method_of(req.kind.as_deref())?;
    let facts = pipeline::person_facts(&s, &d, pid).await?;
    let attempt = pipeline::Attempt::new(&s, &d, Some(pid), device.as_deref(), &caller.actor());
    let permit = attempt
        .authorize(
            policy::Action::Enrol,
            method,
            facts,
            Some(d.notice_version.clone()),
        )
        .await?;
    s.store
        .add_credential(pid, kind, &req.secret, &attempt.actor)
        .await?;
    let ev = attempt
        .record(method.key(), "enrolled", None, None, None)
        .await?;
    Ok(Json(Outcome::of(&ev, "enrolled", Some(permit.grants))))
}

/// Verify by an alternative credential: the same outcome face would give
/// (R15, R17). Wrong PINs lock that person's PIN after 5 tries in 15 minutes,
/// whichever key or device is asking.
#[utoipa::path(post, path = "/v1/verify/credential", tag = "recognition", request_body = CredentialInput,
    security(("bearer" = [])),
    responses((status = 200, body = Outcome), (status = 429, body = crate::ErrorBody)))]
pub async fn verify_credential(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<CredentialInput>,
) -> ApiResult<Json<Outcome>> {
    let device = caller.require_frontline(req.device_id.as_deref())?;
    let d = s.scenario(req.scenario.as_deref())?;
    let pid = pipeline::person_id(&req.person_id)?;
    let (kind, method) = method_of(req.kind.as_deref())?;
    let facts = pipeline::person_facts(&s, &d, pid).await?;
    let attempt = pipeline::Attempt::new(&s, &d, Some(pid), device.as_deref(), &caller.actor());
    let permit = attempt
        .authorize(
            policy::Action::Verify,
            method,
            facts,
            Some(d.notice_version.clone()),
        )
        .await?;
    // Counted in the store before the secret is checked, so a burst gets
    // at most the limit evaluated, across processes. Per person and
    // credential; never against a person this device has just verified
    // another way (a lock-out cannot be turned against them).
    s.core
        .reserve_credential_attempt(
            pid,
            method.key(),
            device.as_deref(),
            s.config.limits.credential_failures as i64,
        )
        .await?;
    let ok = match kind {
        store::CredentialKind::Pin => s.store.verify_pin(pid, &req.secret).await?,
        k => s.store.find_by_credential(k, &req.secret).await? == Some(pid),
    };
    if ok {
        s.core.credential_succeeded(pid, method.key()).await?;
    }
    let result = if ok { "match" } else { "no_match" };
    let ev = attempt
        .record(method.key(), result, None, None, None)
        .await?;
    Ok(Json(pass_or_fail(&ev, ok, permit)))
}

#[derive(Deserialize, utoipa::ToSchema, Default)]
pub struct CodeInput {
    /// For a device key: the device at which the person just passed a check.
    pub device_id: Option<String>,
    /// For an operator: how the person's identity was checked (e.g. "居民身份证 checked at the
    /// property office"); recorded in the audit record. Required for operators.
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
    params(("id" = String, Path)), request_body = CodeInput, security(("bearer" = [])),
    responses((status = 200, body = PortalCode), (status = 403, body = crate::ErrorBody),
        (status = 404, body = crate::ErrorBody)))]
pub async fn portal_code(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<Json<CodeInput>>,
) -> ApiResult<Json<PortalCode>> {
    let input = body.map(|Json(b)| b).unwrap_or_default();
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
        ) => facegate_core::PortalIssuer::Device(dv),
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
