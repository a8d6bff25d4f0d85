//! The front desk: resident and room numbers (a kiosk's keypad lookup, the
//! console's find and correct), the guard's check (人工核验), answering and
//! closing requests and complaints, portal logout, and the series the
//! console's charts draw. Each handler extracts, calls the core, responds.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::frontline::{FrontCall, Outcome};
use crate::api::people::{complaint_view, person_view, ComplaintView, PersonView};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::pipeline;
use crate::state::AppState;

/// An id in a path: `400` when it is not a UUID (so a probe for the route
/// is told the route exists).
fn path_id(s: &str, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(s.trim()).map_err(|_| {
        ApiError::bad(
            format!("{what} 编号无效。"),
            format!("{what} id is not a UUID"),
        )
    })
}

// ---- residents ------------------------------------------------------------

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// A resident number, or a room number as digits (e.g. `31502` for
    /// room 3-1502), as typed on the kiosk's keypad: 1 to 8 digits.
    #[param(pattern = "^[0-9]{1,8}$")]
    pub number: String,
}

/// What a kiosk learns from a number: the person it names. Never a name
/// or a date of birth.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ResidentLookup {
    pub person_id: String,
    /// `resident_no` or `room`.
    pub matched: String,
}

/// Find the person a resident or room number names (kiosk keypad).
#[utoipa::path(get, path = "/v1/residents/lookup", tag = "residents", params(LookupQuery),
    security(("bearer" = [])), responses(
        (status = 200, description = "The person the number names", body = ResidentLookup),
        (status = 404, description = "No resident with this number", body = crate::ErrorBody),
        (status = 409, description = "A room with several residents: type the resident number", body = crate::ErrorBody)))]
pub async fn lookup(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<LookupQuery>,
) -> ApiResult<Json<ResidentLookup>> {
    caller.require_frontline(None)?;
    let m = s.core.lookup_resident(&q.number).await?;
    Ok(Json(ResidentLookup {
        person_id: m.person_id.to_string(),
        matched: m.matched.into(),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FindQuery {
    /// A resident or room number, a person id, or part of a name; empty
    /// lists the newest. At most 100 characters.
    #[param(max_length = 100)]
    pub q: Option<String>,
}

/// Find residents (console): by number, id or part of the name; at most 50.
#[utoipa::path(get, path = "/v1/persons", tag = "persons", params(FindQuery),
    security(("bearer" = [])), responses(
        (status = 200, description = "Persons found (not erased), with their numbers", body = Vec<PersonView>)))]
pub async fn find(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<FindQuery>,
) -> ApiResult<Json<Vec<PersonView>>> {
    caller.require_reader()?;
    let found = s.core.find_residents(q.q.as_deref().unwrap_or("")).await?;
    Ok(Json(
        found
            .iter()
            .map(|f| person_view(&f.person, f.resident.as_ref()))
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema, Default)]
pub struct CorrectPerson {
    /// Not blank when given.
    #[schema(min_length = 1, pattern = r"[^\s\u0085]")]
    pub display_name: Option<String>,
    /// Empty clears it.
    pub contact: Option<String>,
    #[schema(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub date_of_birth: Option<NaiveDate>,
    /// 1 to 8 digits, not taken by another resident.
    #[schema(pattern = r"^[0-9]{1,8}$")]
    pub resident_no: Option<String>,
    /// As written (e.g. `3-1502`); must contain digits.
    #[schema(max_length = 32, pattern = "[0-9]")]
    pub room: Option<String>,
}

/// Correct a person's record (a correction request answered at once).
#[utoipa::path(patch, path = "/v1/persons/{id}", tag = "persons", request_body = CorrectPerson,
    params(("id" = String, Path, format = Uuid, description = "The person")),
    security(("bearer" = [])), responses(
        (status = 200, description = "The corrected record", body = PersonView),
        (status = 404, description = "No such person, or erased", body = crate::ErrorBody),
        (status = 409, description = "The resident number is another person's", body = crate::ErrorBody)))]
pub async fn correct(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<CorrectPerson>,
) -> ApiResult<Json<PersonView>> {
    caller.require_operator()?;
    let pid = pipeline::person_id(&id)?;
    let f = s
        .core
        .correct_person(
            pid,
            facegate_core::residents::Correction {
                display_name: req.display_name.as_deref(),
                contact: req.contact.as_deref(),
                date_of_birth: req.date_of_birth,
                resident_no: req.resident_no.as_deref(),
                room: req.room.as_deref(),
            },
            "console",
            &caller.actor(),
        )
        .await?;
    Ok(Json(person_view(&f.person, f.resident.as_ref())))
}

// ---- the guard's check ----------------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
pub struct StaffedCheckInput {
    #[schema(format = Uuid)]
    pub person_id: String,
    pub scenario: Option<String>,
    pub device_id: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StaffedCheckView {
    pub id: String,
    /// Four digits shown at the kiosk, for the guard to match.
    pub code: String,
    /// `pending`, `decided`, `cancelled` or `expired`.
    pub status: String,
    pub device_id: Option<String>,
    pub person_id: String,
    /// The person's name, for the guard to compare (never to a device).
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub guard_name: Option<String>,
    /// The decision, with its receipt, once decided.
    pub outcome: Option<Outcome>,
}

fn check_view(c: &facegate_core::staffed::CheckState, name: Option<String>) -> StaffedCheckView {
    let k = &c.check;
    let outcome = match (k.passed, k.receipt_id, k.decided_at) {
        (Some(passed), Some(receipt), Some(at)) => Some(Outcome {
            outcome: if passed { "pass" } else { "fail" }.into(),
            method: facegate_core::staffed::METHOD.into(),
            grants: k.grants.clone().unwrap_or_default(),
            receipt_id: receipt.to_string(),
            // The signed code kept since the decision: the kiosk's poll
            // shows the same code the guard's decision gave.
            receipt_code: c.receipt_code().unwrap_or_default().to_string(),
            at,
            person_id: Some(k.person_id.to_string()),
            score: None,
            threshold: None,
            score_model: None,
            liveness: None,
        }),
        _ => None,
    };
    StaffedCheckView {
        id: k.id.to_string(),
        code: k.code.clone(),
        status: c.status.into(),
        device_id: k.device.clone(),
        person_id: k.person_id.to_string(),
        display_name: name,
        created_at: k.created_at,
        expires_at: k.expires_at,
        decided_at: k.decided_at,
        guard_name: k.guard_name.clone(),
        outcome,
    }
}

/// A kiosk asks for a guard's check (人工核验) of the person in front of
/// it: an alternative to face (R6, R15), refused where the scenario does
/// not offer it.
#[utoipa::path(post, path = "/v1/staffed-checks", tag = "recognition", request_body = StaffedCheckInput,
    security(("bearer" = [])), responses(
        (status = 200, description = "The check, waiting for a guard (poll it)", body = StaffedCheckView),
        (status = 403, description = "The role may not do this, or the Measures refuse it (`rule` and `article` say which)", body = crate::ErrorBody),
        (status = 404, description = "No such person, scenario or device", body = crate::ErrorBody)))]
pub async fn request_check(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<StaffedCheckInput>,
) -> ApiResult<Json<StaffedCheckView>> {
    let call = FrontCall::of(&s, &caller, &req.device_id, &req.scenario)?;
    let pid = pipeline::person_id(&req.person_id)?;
    let c = s
        .core
        .request_staffed_check(&call.scenario, pid, call.who())
        .await?;
    Ok(Json(check_view(&c, None)))
}

/// For a device key, the device it acts as (its scenario's store id and
/// the device id): it sees only the checks asked for there. `None` for an
/// operator, who sees any.
fn device_of(caller: &Caller) -> ApiResult<Option<(Uuid, String)>> {
    let device = caller.require_frontline(None)?;
    Ok(match (caller.device_scenario(), device) {
        (Some(scenario), Some(dv)) => Some((scenario, dv)),
        _ => None,
    })
}

/// One check: a kiosk polls the ones it asked for; operators see any.
#[utoipa::path(get, path = "/v1/staffed-checks/{id}", tag = "recognition",
    params(("id" = String, Path, format = Uuid, description = "The check")),
    security(("bearer" = [])), responses(
        (status = 200, description = "The check and, once decided, its outcome", body = StaffedCheckView),
        (status = 404, description = "No such check (or not this device's)", body = crate::ErrorBody)))]
pub async fn get_check(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<StaffedCheckView>> {
    let device = device_of(&caller)?;
    let id = path_id(&id, "check")?;
    let c = s
        .core
        .staffed_check(id, device.as_ref().map(|(sc, dv)| (*sc, dv.as_str())))
        .await?;
    Ok(Json(check_view(&c, None)))
}

/// The kiosk withdraws its pending check (the person left or chose another
/// method); operators may too. The check stays readable as `cancelled` (the
/// kiosk's poll and the audit see why it ended), so this is a state change,
/// not a `DELETE`.
#[utoipa::path(post, path = "/v1/staffed-checks/{id}/cancel", tag = "recognition",
    params(("id" = String, Path, format = Uuid, description = "The check")),
    security(("bearer" = [])), responses(
        (status = 204, description = "Withdrawn"),
        (status = 404, description = "No such check (or not this device's)", body = crate::ErrorBody),
        (status = 409, description = "Already decided, withdrawn or expired", body = crate::ErrorBody)))]
pub async fn cancel_check(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let device = device_of(&caller)?;
    let id = path_id(&id, "check")?;
    s.core
        .cancel_staffed_check(
            id,
            device.as_ref().map(|(sc, dv)| (*sc, dv.as_str())),
            &caller.actor(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChecksQuery {
    /// Only `pending` is listed.
    #[param(value_type = Option<String>, pattern = "^pending$")]
    pub status: Option<String>,
}

/// The checks waiting for a guard (the console's guard screen).
#[utoipa::path(get, path = "/v1/staffed-checks", tag = "recognition", params(ChecksQuery),
    security(("bearer" = [])), responses(
        (status = 200, description = "Pending checks, oldest first, with the person's name", body = Vec<StaffedCheckView>)))]
pub async fn pending_checks(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<ChecksQuery>,
) -> ApiResult<Json<Vec<StaffedCheckView>>> {
    caller.require_operator()?;
    if q.status.as_deref().is_some_and(|x| x != "pending") {
        return Err(ApiError::bad(
            "只能列出待核验（pending）的请求。",
            "only status=pending is listed",
        ));
    }
    let cs = s.core.pending_staffed_checks().await?;
    Ok(Json(
        cs.into_iter().map(|(c, n)| check_view(&c, n)).collect(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DecideInput {
    /// `pass` (the guard confirmed the person) or `fail`.
    #[schema(pattern = "^(pass|fail)$")]
    pub result: String,
    /// The guard who looked at the person. Not blank; at most 100 characters.
    // Not blank as the server reads it (`str::trim`, Unicode White_Space):
    // the schema's regex is ECMA-262's, whose `\s` lacks U+0085 (NEL),
    // which `trim` removes, so every such pattern here excludes it too.
    #[schema(min_length = 1, max_length = 100, pattern = r"[^\s\u0085]")]
    pub guard_name: String,
    /// How the person was checked (e.g. "known to me", "ID card").
    #[schema(max_length = 500)]
    pub how: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DecisionView {
    pub check: StaffedCheckView,
    pub outcome: Outcome,
}

/// A guard confirms or refuses a pending check; recorded as a
/// verification with method `staffed_check`.
#[utoipa::path(post, path = "/v1/staffed-checks/{id}/decide", tag = "recognition", request_body = DecideInput,
    params(("id" = String, Path, format = Uuid, description = "The check")),
    security(("bearer" = [])), responses(
        (status = 200, description = "Decided, with the receipt", body = DecisionView),
        (status = 404, description = "No such check", body = crate::ErrorBody),
        (status = 409, description = "Already decided, or expired", body = crate::ErrorBody)))]
pub async fn decide_check(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<DecideInput>,
) -> ApiResult<Json<DecisionView>> {
    caller.require_operator()?;
    let id = path_id(&id, "check")?;
    let passed = match req.result.as_str() {
        "pass" => true,
        "fail" => false,
        _ => {
            return Err(ApiError::bad(
                "结果应为 pass 或 fail。",
                "result is pass or fail",
            ))
        }
    };
    let (c, o) = s
        .core
        .decide_staffed_check(
            id,
            passed,
            &req.guard_name,
            req.how.as_deref().unwrap_or(""),
            &caller.actor(),
        )
        .await?;
    Ok(Json(DecisionView {
        check: check_view(&c, None),
        outcome: Outcome::with_code(o, c.receipt_code().unwrap_or_default().to_string()),
    }))
}

// ---- requests and complaints -----------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AnswerInput {
    /// The reply the person reads in the portal. Not blank; at most 10,000 characters.
    #[schema(min_length = 1, max_length = 10000, pattern = r"[^\s\u0085]")]
    pub response: String,
}

/// Answer a complaint and close it; the person sees the reply in the portal.
#[utoipa::path(post, path = "/v1/complaints/{id}/resolve", tag = "requests", request_body = AnswerInput,
    params(("id" = String, Path, format = Uuid, description = "The complaint")),
    security(("bearer" = [])), responses(
        (status = 200, description = "Answered and closed", body = ComplaintView),
        (status = 404, description = "No such complaint", body = crate::ErrorBody),
        (status = 409, description = "Already answered", body = crate::ErrorBody)))]
pub async fn resolve_complaint(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<AnswerInput>,
) -> ApiResult<Json<ComplaintView>> {
    caller.require_operator()?;
    let id = path_id(&id, "complaint")?;
    let c = s
        .core
        .answer_complaint(id, &req.response, &caller.actor())
        .await?;
    Ok(Json(complaint_view(&c)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CloseInput {
    /// `done` or `rejected`.
    #[schema(pattern = "^(done|rejected)$")]
    pub status: String,
    /// What was done, or why not. Not blank; at most 10,000 characters.
    #[schema(min_length = 1, max_length = 10000, pattern = r"[^\s\u0085]")]
    pub outcome: String,
}

/// Close a person's request with its outcome.
#[utoipa::path(post, path = "/v1/requests/{id}/close", tag = "requests", request_body = CloseInput,
    params(("id" = String, Path, format = Uuid, description = "The request")),
    security(("bearer" = [])), responses(
        (status = 200, description = "Closed", body = crate::api::console::RequestView),
        (status = 404, description = "No such request", body = crate::ErrorBody),
        (status = 409, description = "Already closed", body = crate::ErrorBody)))]
pub async fn close_request(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<CloseInput>,
) -> ApiResult<Json<crate::api::console::RequestView>> {
    caller.require_operator()?;
    let id = path_id(&id, "request")?;
    let r = s
        .core
        .close_request(id, &req.status, &req.outcome, &caller.actor())
        .await?;
    Ok(Json(crate::api::console::request_view(r)))
}

/// Log out of the portal: the session is deleted in the store.
#[utoipa::path(delete, path = "/v1/portal/session", tag = "portal",
    security(("bearer" = [])), responses(
        (status = 204, description = "The session is ended")))]
pub async fn logout(
    State(s): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
) -> ApiResult<StatusCode> {
    if !matches!(caller, Caller::Person { .. }) {
        return Err(ApiError::Forbidden(
            "only a portal session can log out".into(),
        ));
    }
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    s.auth.end_session(token).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- charts ------------------------------------------------------------------

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysQuery {
    /// How many days, today included (default 90 for the headcount, 14
    /// for checks; 1 to 1095).
    #[param(minimum = 1, maximum = 1095)]
    pub days: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HeadcountPoint {
    /// A day (Asia/Shanghai).
    pub date: NaiveDate,
    /// Distinct persons with stored face information at the end of it (R21).
    pub headcount: i64,
}

/// The headcount at the end of each day (R21), for the console's chart.
#[utoipa::path(get, path = "/v1/stats/headcount", tag = "filing", params(DaysQuery),
    security(("bearer" = [])), responses(
        (status = 200, description = "One point per day, oldest first", body = Vec<HeadcountPoint>)))]
pub async fn headcount(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<DaysQuery>,
) -> ApiResult<Json<Vec<HeadcountPoint>>> {
    caller.require_reader()?;
    let series = s.core.headcount_series(q.days.unwrap_or(90)).await?;
    Ok(Json(
        series
            .into_iter()
            .map(|p| HeadcountPoint {
                date: p.date,
                headcount: p.headcount,
            })
            .collect(),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChecksPoint {
    pub date: NaiveDate,
    /// `face`, `pin`, `card`, `qr_code`, `staffed_check`…
    pub method: String,
    /// `match`, `no_match`, `enrolled`, `known`, `unknown`, `refused`…
    pub result: String,
    pub count: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RuleCount {
    /// Requirement ID (e.g. `R7`).
    pub rule: String,
    pub count: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckStatsView {
    pub days: Vec<ChecksPoint>,
    pub refusals: Vec<RuleCount>,
}

/// Checks per day by method and result, and refusals by rule.
#[utoipa::path(get, path = "/v1/stats/checks", tag = "filing", params(DaysQuery),
    security(("bearer" = [])), responses(
        (status = 200, description = "Counts per day (Asia/Shanghai), method and result", body = CheckStatsView)))]
pub async fn checks(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<DaysQuery>,
) -> ApiResult<Json<CheckStatsView>> {
    caller.require_reader()?;
    let st = s.core.check_stats(q.days.unwrap_or(14)).await?;
    Ok(Json(CheckStatsView {
        days: st
            .days
            .into_iter()
            .map(|d| ChecksPoint {
                date: d.date,
                method: d.method,
                result: d.result,
                count: d.count,
            })
            .collect(),
        refusals: st
            .refusals
            .into_iter()
            .map(|(rule, count)| RuleCount { rule, count })
            .collect(),
    }))
}
