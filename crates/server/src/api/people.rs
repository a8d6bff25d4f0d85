//! Persons and their rights: records, consents and one-step withdrawal (R8),
//! export of everything held (access), erasure (delete), requests and
//! complaints. A portal session reaches only its own person.

use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use facegate_policy as policy;
use facegate_store as store;
use serde::{Deserialize, Serialize};

use crate::api::frontline::{consent_view, ConsentView};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::pipeline;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewPerson {
    /// Not blank.
    #[schema(min_length = 1, pattern = r"[^\s\u0085]")]
    pub display_name: String,
    pub contact: Option<String>,
    /// Needed to apply the under-14 rule (R10). A calendar date, `YYYY-MM-DD`.
    #[schema(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub date_of_birth: Option<NaiveDate>,
    /// The short number typed at a kiosk: 1 to 8 digits, not taken
    /// (default: a free six-digit one).
    #[schema(pattern = r"^[0-9]{1,8}$")]
    pub resident_no: Option<String>,
    /// The room as written (e.g. `3-1502`); a kiosk takes its digits.
    #[schema(max_length = 32, pattern = "[0-9]")]
    pub room: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PersonView {
    pub id: String,
    pub display_name: Option<String>,
    pub contact: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    /// Under 14 today (Asia/Shanghai): minors' rules apply.
    pub minor: bool,
    pub created_at: DateTime<Utc>,
    pub erased_at: Option<DateTime<Utc>>,
    /// The short number typed at a kiosk.
    pub resident_no: Option<String>,
    pub room: Option<String>,
}

pub fn person_view(p: &store::Person, r: Option<&store::Resident>) -> PersonView {
    let dob = p.identity.as_ref().and_then(|i| i.date_of_birth);
    PersonView {
        resident_no: r.map(|r| r.resident_no.clone()),
        room: r.and_then(|r| r.room.clone()),
        id: p.id.to_string(),
        display_name: p.identity.as_ref().map(|i| i.display_name.clone()),
        contact: p.identity.as_ref().and_then(|i| i.contact.clone()),
        date_of_birth: dob,
        minor: dob.is_some_and(|d| policy::is_under_14(d, Utc::now())),
        created_at: p.created_at,
        erased_at: p.erased_at,
    }
}

/// Register a person (identity encrypted at rest, apart from any template).
#[utoipa::path(post, path = "/v1/persons", tag = "persons", request_body = NewPerson,
    security(("bearer" = [])), responses(
        (status = 200, description = "The person registered, with a resident number", body = PersonView),
        (status = 409, description = "The resident number is another person's", body = crate::ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<NewPerson>,
) -> ApiResult<Json<PersonView>> {
    caller.require_operator()?;
    let f = s
        .core
        .add_resident(
            &store::PersonIdentity {
                display_name: req.display_name.trim().into(),
                contact: req.contact.filter(|c| !c.trim().is_empty()),
                date_of_birth: req.date_of_birth,
            },
            req.resident_no.as_deref(),
            req.room.as_deref(),
            &caller.actor(),
        )
        .await?;
    Ok(Json(person_view(&f.person, f.resident.as_ref())))
}

/// One person's record (readers, or the person in the portal).
#[utoipa::path(get, path = "/v1/persons/{id}", tag = "persons", params(("id" = String, Path, format = Uuid, description = "The person")),
    security(("bearer" = [])), responses(
        (status = 200, description = "The person", body = PersonView),
        (status = 404, description = "No such person (or not this session's)", body = crate::ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PersonView>> {
    caller.require_self_or_reader(&id)?;
    let pid = pipeline::person_id(&id)?;
    let r = s.store.resident(pid).await?;
    Ok(Json(person_view(&s.store.person(pid).await?, r.as_ref())))
}

/// A person's consents.
#[utoipa::path(get, path = "/v1/persons/{id}/consents", tag = "consents", params(("id" = String, Path, format = Uuid, description = "The person")),
    security(("bearer" = [])), responses(
        (status = 200, description = "Every consent, withdrawn ones too", body = Vec<ConsentView>),
        (status = 404, description = "No such person (or not this session's)", body = crate::ErrorBody)))]
pub async fn consents(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ConsentView>>> {
    caller.require_self_or_reader(&id)?;
    let pid = pipeline::person_id(&id)?;
    let cs = s.store.consents(pid).await?;
    Ok(Json(cs.iter().map(|c| consent_view(&s, c)).collect()))
}

#[derive(Deserialize, utoipa::ToSchema, Default)]
pub struct WithdrawInput {
    /// `portal`, `kiosk:<device>`… (default: from the caller). Not blank.
    #[schema(min_length = 1, pattern = r"[^\s\u0085]")]
    pub channel: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WithdrawalView {
    pub consent: ConsentView,
    /// Keep this: proof of withdrawal and of the deletion.
    pub receipt_id: String,
    /// Face templates deleted in the same step.
    pub templates_deleted: u64,
    /// What the person can use from now on (R15).
    pub alternatives: Vec<String>,
}

/// Withdraw a consent in one step (R8): effective at once; withdrawing
/// processing consent deletes the face templates in the same transaction.
#[utoipa::path(post, path = "/v1/consents/{id}/withdraw", tag = "consents", params(("id" = String, Path, format = Uuid, description = "The consent")),
    request_body = Option<WithdrawInput>, security(("bearer" = [])),
    responses(
        (status = 200, description = "Withdrawn, with the receipt of the deletion", body = WithdrawalView),
        (status = 409, description = "Already withdrawn", body = crate::ErrorBody),
        (status = 404, description = "No such consent (or not this session's)", body = crate::ErrorBody)))]
pub async fn withdraw(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<Json<WithdrawInput>>,
) -> ApiResult<Json<WithdrawalView>> {
    let cid = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("consent".into()))?;
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
        _ => {
            caller.require_frontline(None)?;
            facegate_core::ops::Acting::Operator
        }
    };
    if s.store.consent(cid).await?.withdrawn_at.is_some() {
        return Err(ApiError::Conflict(
            "this consent was already withdrawn".into(),
        ));
    }
    let channel = body
        .and_then(|b| b.0.channel)
        .unwrap_or_else(|| match &caller {
            Caller::Person { .. } => "portal".into(),
            Caller::Key {
                device_id: Some(d), ..
            } => format!("kiosk:{d}"),
            _ => "api".into(),
        });
    let r = s
        .core
        .withdraw_consent(cid, acting, &channel, &caller.actor())
        .await?;
    let c = &r.consent;
    let alternatives = s
        .scenario_by_store_id(c.scenario_id)
        .map(|d| {
            d.scenario
                .alternatives()
                .iter()
                .map(|m| m.key().to_string())
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(WithdrawalView {
        consent: consent_view(&s, &r.consent),
        receipt_id: r
            .deletion
            .as_ref()
            .map(|d| d.receipt_id.to_string())
            .unwrap_or_else(|| format!("audit-{}", r.audit_seq)),
        templates_deleted: r
            .deletion
            .as_ref()
            .map(|d| d.templates_deleted)
            .unwrap_or(0),
        alternatives,
    }))
}

/// Everything held about a person, machine-readable (access / copy request).
/// Templates are counted, never exported (R11).
#[utoipa::path(get, path = "/v1/persons/{id}/export", tag = "persons", params(("id" = String, Path, format = Uuid, description = "The person")),
    security(("bearer" = [])), responses(
        (status = 200, description = "JSON document of everything held", body = Object),
        (status = 404, description = "No such person (or not this session's)", body = crate::ErrorBody)))]
pub async fn export(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_self_or_operator(&id)?;
    let pid = pipeline::person_id(&id)?;
    let (acting, channel) = acting_channel(&caller)?;
    let x = s
        .core
        .export_person(pid, acting, channel, &caller.actor())
        .await?;
    Ok(Json(serde_json::json!({
        "format": "facegate-export/1",
        "exported_at": x.exported_at,
        "request_id": x.request_id,
        "person": person_view(&x.person, x.resident.as_ref()),
        "guardians": x.guardians.iter().map(|g| serde_json::json!({
            "id": g.id, "relationship": g.relationship,
            "name": g.identity.as_ref().map(|i| i.display_name.clone()),
            "created_at": g.created_at,
        })).collect::<Vec<_>>(),
        "consents": x.consents.iter().map(|c| consent_view(&s, c)).collect::<Vec<_>>(),
        "credentials": x.credentials.iter().map(|c| serde_json::json!({
            "id": c.id, "kind": c.kind.as_str(), "created_at": c.created_at, "revoked_at": c.revoked_at,
        })).collect::<Vec<_>>(),
        "face_templates": {
            "count": x.templates,
            "note_zh": "人脸特征值仅以加密形式保存在设备内，不导出。",
            "note_en": "Face templates are kept only encrypted in the device and are not exported.",
        },
        "verification_events": x.events,
        "complaints": x.complaints.iter().map(complaint_view).collect::<Vec<_>>(),
    })))
}

/// Who acts on a person's rights, and through which channel.
fn acting_channel(
    caller: &Caller,
) -> ApiResult<(facegate_core::ops::Acting<'static>, &'static str)> {
    Ok(match caller {
        Caller::Person { person_id } => (
            facegate_core::ops::Acting::Person(pipeline::person_id(person_id)?),
            "portal",
        ),
        _ => (facegate_core::ops::Acting::Operator, "api"),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErasureView {
    pub receipt_id: String,
    pub templates_deleted: u64,
    pub at: DateTime<Utc>,
}

/// Delete a person: templates, credentials and identity go; consent and
/// audit records stay as evidence without a name (R14).
#[utoipa::path(post, path = "/v1/persons/{id}/erase", tag = "persons", params(("id" = String, Path, format = Uuid, description = "The person")),
    security(("bearer" = [])), responses(
        (status = 200, description = "Erased, with the receipt", body = ErasureView),
        (status = 404, description = "No such person (or not this session's)", body = crate::ErrorBody)))]
pub async fn erase(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ErasureView>> {
    caller.require_self_or_operator(&id)?;
    let pid = pipeline::person_id(&id)?;
    let (_, channel) = acting_channel(&caller)?;
    let r = s
        .core
        .erase_on_request(pid, channel, &caller.actor())
        .await?;
    Ok(Json(ErasureView {
        receipt_id: r.receipt_id.to_string(),
        templates_deleted: r.templates_deleted,
        at: r.at,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ComplaintInput {
    /// Required for keys; a portal session files for its own person.
    #[schema(format = Uuid)]
    pub person_id: Option<String>,
    /// Not blank; at most 10,000 characters.
    #[schema(min_length = 1, max_length = 10000, pattern = r"[^\s\u0085]")]
    pub body: String,
    pub channel: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ComplaintView {
    pub id: String,
    pub person_id: Option<String>,
    pub channel: String,
    pub received_at: DateTime<Utc>,
    pub body: String,
    /// `open` or `resolved` (answered and closed).
    pub status: String,
    /// The operator's reply, shown to the person.
    pub response: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Last day to answer: 15 working days after it was received
    /// (Asia/Shanghai, official calendar).
    pub due_date: NaiveDate,
}

/// File a complaint (R25, PIPL Art. 50).
#[utoipa::path(post, path = "/v1/complaints", tag = "requests", request_body = ComplaintInput,
    security(("bearer" = [])), responses(
        (status = 200, description = "The complaint received", body = ComplaintView),
        (status = 404, description = "No such person", body = crate::ErrorBody)))]
pub async fn complain(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<ComplaintInput>,
) -> ApiResult<Json<ComplaintView>> {
    let person = match &caller {
        Caller::Person { person_id } => Some(pipeline::person_id(person_id)?),
        _ => {
            caller.require_frontline(None)?;
            req.person_id
                .as_deref()
                .map(pipeline::person_id)
                .transpose()?
        }
    };
    let channel = req.channel.unwrap_or_else(|| "portal".into());
    let c = s
        .core
        .file_complaint(person, &req.body, &channel, &caller.actor())
        .await?;
    Ok(Json(complaint_view(&c)))
}

pub fn complaint_view(c: &store::Complaint) -> ComplaintView {
    ComplaintView {
        id: c.id.to_string(),
        person_id: c.person_id.map(|p| p.to_string()),
        channel: c.channel.clone(),
        received_at: c.received_at,
        body: c.body.clone(),
        status: c.status.clone(),
        response: c.response.clone(),
        resolved_at: c.resolved_at,
        due_date: facegate_core::requests::answer_due(c.received_at).0,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    pub person: PersonView,
    pub consents: Vec<ConsentView>,
    pub scenario_name_zh: String,
    pub scenario_name_en: String,
    pub notice_html_zh: String,
    pub notice_html_en: String,
    pub notice_version: String,
    pub alternatives: Vec<String>,
    pub filing_number: Option<String>,
    /// Recent decisions about this person, with their receipt ids.
    #[schema(value_type = Vec<Object>)]
    pub recent: Vec<serde_json::Value>,
    pub complaints: Vec<ComplaintView>,
}

/// The portal's view of the signed-in person.
#[utoipa::path(get, path = "/v1/me", tag = "portal", security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed-in person", body = Me),
        (status = 403, description = "Not a portal session", body = crate::ErrorBody),
        (status = 404, description = "The person is gone", body = crate::ErrorBody)))]
pub async fn me(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Me>> {
    let Caller::Person { person_id } = &caller else {
        return Err(ApiError::Forbidden(
            "only a portal session has a 'me'".into(),
        ));
    };
    let pid = pipeline::person_id(person_id)?;
    let d = s.scenario(None)?;
    let p = s.store.person(pid).await?;
    let cs = s.store.consents(pid).await?;
    let events = s.store.verification_events(pid, 20).await?;
    let complaints = s
        .core
        .complaints_of(pid)
        .await?
        .iter()
        .map(complaint_view)
        .collect();
    Ok(Json(Me {
        person: person_view(&p, s.store.resident(pid).await?.as_ref()),
        consents: cs.iter().map(|c| consent_view(&s, c)).collect(),
        scenario_name_zh: d.scenario.name.zh.clone(),
        scenario_name_en: d.scenario.name.get(policy::Lang::En).to_string(),
        notice_html_zh: policy::render_notice(&d.scenario, policy::Lang::Zh).html,
        notice_html_en: policy::render_notice(&d.scenario, policy::Lang::En).html,
        notice_version: d.notice_version.clone(),
        alternatives: d.scenario.alternatives().iter().map(|m| m.key().to_string()).collect(),
        filing_number: d.scenario.filing.as_ref().and_then(|f| f.number.clone()),
        recent: events
            .iter()
            .map(|e| {
                // A refusal names its article too, in both languages (as the
                // refusal's own response did).
                let rule = e.event.refusal_rule.as_deref().and_then(policy::RuleId::parse);
                serde_json::json!({
                    "receipt_id": e.id, "at": e.at, "method": e.event.method, "result": e.event.result,
                    "refusal_rule": e.event.refusal_rule,
                    "refusal_article": rule.map(|r| r.article()),
                    "refusal_article_zh": rule.map(|r| r.article_zh()),
                })
            })
            .collect(),
        complaints,
    }))
}
