//! What the operator and the auditor read: the dashboard (headcount against
//! 100,000 with the working-day filing deadline), scenarios with their lint
//! results, devices, request and complaint queues, the audit chain, the PIA
//! and the filing pack. Writes here are operator-only; reads also auditor.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use chrono::{DateTime, NaiveDate, Utc};
use facegate_policy as policy;
use facegate_store::{AuditHead, ChainReport};
use serde::{Deserialize, Serialize};

use crate::api::people::{complaint_view, ComplaintView};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Filing {
    /// Distinct persons with stored face information (R21).
    pub headcount: i64,
    pub threshold: u64,
    /// `ok`, `watch` (80 %), `warning` (95 %) or `filing_due` (100,000 reached).
    pub alert_level: String,
    /// First day (Asia/Shanghai) the count reached 100,000.
    pub threshold_reached_on: Option<NaiveDate>,
    /// Last day to file: 30 working days on the official calendar.
    pub last_day_to_file: Option<NaiveDate>,
    /// Working days left until the last day (today excluded).
    pub working_days_left: Option<u32>,
    /// The deadline runs past the known holiday calendar.
    pub provisional: bool,
    pub filing_number: Option<String>,
}

fn working_days_between(from: NaiveDate, to: NaiveDate) -> u32 {
    let cal = policy::WorkCalendar::official();
    let mut n = 0;
    let mut d = from;
    while d < to {
        d = d.succ_opt().unwrap_or(d);
        if cal.is_working_day(d) {
            n += 1;
        }
    }
    n
}

pub async fn filing_status(s: &AppState) -> ApiResult<Filing> {
    let h = s.store.headcount().await?;
    let level = policy::alert_level(h.count.max(0) as u64, policy::DEFAULT_ALERT_LEVELS);
    let reached = h.threshold_reached_at.map(policy::shanghai_date);
    let deadline = reached.map(|r| policy::filing_deadline(r, policy::FilingKind::Initial));
    let today = policy::shanghai_date(Utc::now());
    let d = s.scenario(None)?;
    Ok(Filing {
        headcount: h.count,
        threshold: policy::FILING_THRESHOLD,
        alert_level: match level {
            policy::AlertLevel::None => "ok",
            policy::AlertLevel::Watch => "watch",
            policy::AlertLevel::Warning => "warning",
            policy::AlertLevel::FilingDue => "filing_due",
        }
        .into(),
        threshold_reached_on: reached,
        last_day_to_file: deadline.as_ref().map(|x| x.last_day),
        working_days_left: deadline
            .as_ref()
            .map(|x| working_days_between(today, x.last_day)),
        provisional: deadline.as_ref().is_some_and(|x| x.provisional),
        filing_number: d.scenario.filing.as_ref().and_then(|f| f.number.clone()),
    })
}

/// Headcount and filing status (R21).
#[utoipa::path(get, path = "/v1/filing", tag = "filing", security(("bearer" = [])),
    responses(
        (status = 200, description = "Headcount against 100,000 and the filing deadline", body = Filing)))]
pub async fn filing(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Filing>> {
    caller.require_reader()?;
    Ok(Json(filing_status(&s).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Count {
    pub key: String,
    pub count: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Dashboard {
    pub filing: Filing,
    /// The days `verifications` and `refusals` cover (today and the days
    /// before it, Asia/Shanghai), counted from the store's verification
    /// events: the same on every instance and after a restart.
    pub days: u32,
    /// Checks over those days, by `method/result`.
    pub verifications: Vec<Count>,
    /// Refusals over those days, by requirement ID.
    pub refusals: Vec<Count>,
    pub open_requests: usize,
    pub open_complaints: usize,
    pub audit_records: i64,
    pub chain_intact: bool,
    pub pia_status: String,
}

/// The days the dashboard's counts cover.
pub const DASHBOARD_DAYS: u32 = 30;

/// The console dashboard.
#[utoipa::path(get, path = "/v1/dashboard", tag = "filing", security(("bearer" = [])),
    responses(
        (status = 200, description = "The console dashboard", body = Dashboard)))]
pub async fn dashboard(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Dashboard>> {
    caller.require_reader()?;
    let filing = filing_status(&s).await?;
    let st = s.core.check_stats(DASHBOARD_DAYS).await?;
    let mut by_kind: std::collections::BTreeMap<String, u64> = Default::default();
    for d in st.days {
        *by_kind
            .entry(format!("{}/{}", d.method, d.result))
            .or_default() += d.count;
    }
    let verifications = by_kind
        .into_iter()
        .map(|(key, count)| Count { key, count })
        .collect();
    let refusals = st
        .refusals
        .into_iter()
        .map(|(key, count)| Count { key, count })
        .collect();
    let requests = s.store.requests().await?;
    let complaints = s.store.complaints().await?;
    let chain = chain_report(&s).await?;
    let d = s.scenario(None)?;
    Ok(Json(Dashboard {
        filing,
        days: DASHBOARD_DAYS,
        verifications,
        refusals,
        open_requests: requests.iter().filter(|r| r.status == "open").count(),
        open_complaints: complaints.iter().filter(|c| c.status == "open").count(),
        audit_records: chain.records as i64,
        chain_intact: chain.is_intact(),
        pia_status: format!("{:?}", d.pia_status).to_lowercase(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ScenarioView {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    pub version: i64,
    pub purpose_zh: String,
    pub mode: String,
    pub methods: Vec<String>,
    pub notice_version: String,
    pub pia_id: String,
    pub pia_status: String,
    /// Linter findings (warnings; a manifest with errors is never deployed).
    #[schema(value_type = Vec<Object>)]
    pub lint: Vec<serde_json::Value>,
}

pub(crate) fn scenario_view(d: &crate::deploy::Deployed) -> ScenarioView {
    ScenarioView {
        id: d.scenario.id.clone(),
        name_zh: d.scenario.name.zh.clone(),
        name_en: d.scenario.name.get(policy::Lang::En).to_string(),
        version: d.version,
        purpose_zh: d.scenario.purpose.zh.clone(),
        mode: format!("{:?}", d.scenario.mode).to_lowercase(),
        methods: d
            .scenario
            .methods
            .iter()
            .map(|m| m.key().to_string())
            .collect(),
        notice_version: d.notice_version.clone(),
        pia_id: d.pia.id.clone(),
        pia_status: format!("{:?}", d.pia_status).to_lowercase(),
        lint: d
            .lint
            .iter()
            .filter_map(|x| serde_json::to_value(x).ok())
            .collect(),
    }
}

/// Deployed scenarios with their lint results.
#[utoipa::path(get, path = "/v1/scenarios", tag = "scenarios", security(("bearer" = [])),
    responses(
        (status = 200, description = "Deployed scenarios", body = Vec<ScenarioView>)))]
pub async fn scenarios(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ScenarioView>>> {
    caller.require_reader()?;
    let all = s.scenarios.read().unwrap().clone();
    Ok(Json(all.iter().map(|d| scenario_view(d)).collect()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LintResult {
    pub ok: bool,
    #[schema(value_type = Vec<Object>)]
    pub diagnostics: Vec<serde_json::Value>,
    pub scenario: Option<ScenarioView>,
}

/// Upload a scenario manifest (TOML body). The linter runs first; any error
/// refuses the upload with every diagnostic (422). A valid manifest becomes a
/// new scenario version with its notice and PIA.
#[utoipa::path(post, path = "/v1/scenarios", tag = "scenarios", request_body(content = String, content_type = "application/toml"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deployed as a new version", body = LintResult),
        (status = 400, description = "The body is not UTF-8 text, or the manifest cannot be deployed", body = crate::ErrorBody),
        (status = 409, description = "This site is attached to a hub: manifests come only as the hub signs and pushes them", body = crate::ErrorBody),
        (status = 422, description = "The linter found errors: nothing was deployed", body = LintResult)))]
pub async fn upload_scenario(
    State(s): State<AppState>,
    caller: Caller,
    body: String,
) -> ApiResult<axum::response::Response> {
    caller.require_operator()?;
    let report = policy::lint(&body, "scenario.toml");
    let diagnostics: Vec<serde_json::Value> = report
        .diagnostics
        .iter()
        .filter_map(|x| serde_json::to_value(x).ok())
        .collect();
    if report.has_errors() {
        return Ok((
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            Json(LintResult {
                ok: false,
                diagnostics,
                scenario: None,
            }),
        )
            .into_response());
    }
    // A site attached to a hub takes manifests only as the hub signed them
    // (refused in the core, 409, for every operator path).
    let d = s.core.deploy_local(&body).await?;
    let view = scenario_view(&d);
    Ok(Json(LintResult {
        ok: true,
        diagnostics,
        scenario: Some(view),
    })
    .into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    pub id: String,
    pub scenario: String,
    pub placement: String,
    pub location_zh: Option<String>,
    pub active: bool,
    /// `ok`, or the requirement that stops it capturing (R18, R19).
    pub status: String,
    pub status_en: String,
    pub status_zh: String,
}

/// Devices and their placements, checked against R18/R19.
#[utoipa::path(get, path = "/v1/devices", tag = "scenarios", security(("bearer" = [])),
    responses(
        (status = 200, description = "Devices with their R18/R19 status", body = Vec<DeviceView>)))]
pub async fn devices(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<DeviceView>>> {
    caller.require_reader()?;
    let all = s.scenarios.read().unwrap().clone();
    let mut out = vec![];
    for d in &all {
        for dev in &d.scenario.devices {
            let (status, en, zh) = match policy::check_device(&dev.facts()) {
                Ok(()) => ("ok".to_string(), String::new(), String::new()),
                Err(r) => (r.rule.to_string(), r.message_en, r.message_zh),
            };
            out.push(DeviceView {
                id: dev.id.clone(),
                scenario: d.scenario.id.clone(),
                placement: dev.placement.key().into(),
                location_zh: dev.location.as_ref().map(|l| l.zh.clone()),
                active: dev.active,
                status,
                status_en: en,
                status_zh: zh,
            });
        }
    }
    Ok(Json(out))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RequestView {
    pub id: String,
    pub person_id: Option<String>,
    pub kind: String,
    pub channel: String,
    pub received_at: DateTime<Utc>,
    pub due_date: NaiveDate,
    pub status: String,
    pub outcome: Option<String>,
}

pub fn request_view(r: facegate_store::SubjectRequest) -> RequestView {
    RequestView {
        id: r.id.to_string(),
        person_id: r.person_id.map(|p| p.to_string()),
        kind: r.kind.as_str().into(),
        channel: r.channel,
        received_at: r.received_at,
        due_date: r.due_date,
        status: r.status,
        outcome: r.outcome,
    }
}

/// Requests from persons (access, copy, delete), oldest first.
#[utoipa::path(get, path = "/v1/requests", tag = "requests", security(("bearer" = [])),
    responses(
        (status = 200, description = "Requests, oldest first", body = Vec<RequestView>)))]
pub async fn requests(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<RequestView>>> {
    caller.require_reader()?;
    Ok(Json(
        s.store
            .requests()
            .await?
            .into_iter()
            .map(request_view)
            .collect(),
    ))
}

/// Complaints (R25), oldest first.
#[utoipa::path(get, path = "/v1/complaints", tag = "requests", security(("bearer" = [])),
    responses(
        (status = 200, description = "Complaints, oldest first", body = Vec<ComplaintView>)))]
pub async fn complaints(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ComplaintView>>> {
    caller.require_reader()?;
    Ok(Json(
        s.store
            .complaints()
            .await?
            .iter()
            .map(complaint_view)
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// First sequence number (default: the latest `limit` records).
    pub from: Option<i64>,
    /// At most this many (default 100, max 1000).
    pub limit: Option<i64>,
}

/// Audit records (never images or templates).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "Audit records, oldest first", body = Vec<Object>)))]
pub async fn audit(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_reader()?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let from = match q.from {
        Some(f) => f,
        None => (s.store.audit_len().await? - limit + 1).max(1),
    };
    let recs = s.store.audit_records(from, limit).await?;
    Ok(Json(
        serde_json::to_value(recs).map_err(ApiError::internal)?,
    ))
}

/// The audit chain's state for the dashboard, which every console page load
/// asks for. Verifying walks and hashes every record (O(records)), so the
/// result is kept with the head it was made at and reused while the head is
/// unchanged: every append, and any rewrite of the head row (seq, hash or
/// MAC), makes the next load verify the whole chain again. An edit to an
/// older record that leaves the head as it was shows here once the head
/// next moves (in service, the next audited event); the audit tab's
/// `GET /v1/audit/verify` and `facegate audit verify` always walk the whole
/// chain, and their result replaces this one.
pub async fn chain_report(s: &AppState) -> Result<ChainReport, ApiError> {
    let head = s.store.audit_head().await?;
    if let Some((at, report)) = s.chain_checked.lock().unwrap().as_ref() {
        if *at == head {
            return Ok(report.clone());
        }
    }
    verify_chain_at(s, head).await
}

/// Walk the whole audit chain now, and remember the result for
/// [`chain_report`].
pub async fn verify_chain_now(s: &AppState) -> Result<ChainReport, ApiError> {
    let head = s.store.audit_head().await?;
    verify_chain_at(s, head).await
}

/// `head` is read before the walk: records appended meanwhile make the
/// remembered head older than the report, so the next load verifies again
/// (never the reverse).
async fn verify_chain_at(s: &AppState, head: AuditHead) -> Result<ChainReport, ApiError> {
    let report = s.store.verify_chain().await?;
    s.metrics
        .inc("facegate_audit_chain_verifications_total", &[]);
    *s.chain_checked.lock().unwrap() = Some((head, report.clone()));
    Ok(report)
}

/// Verify the audit hash chain; names the first altered, removed, inserted or
/// reordered record.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses(
        (status = 200, description = "`intact`, and the chain report naming the first broken record", body = Object)))]
pub async fn audit_verify(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_reader()?;
    let r = verify_chain_now(&s).await?;
    Ok(Json(
        serde_json::json!({ "intact": r.is_intact(), "report": r }),
    ))
}

/// Export the whole audit log as JSON Lines.
#[utoipa::path(get, path = "/v1/audit/export", tag = "audit", security(("bearer" = [])),
    responses(
        (status = 200, description = "JSON Lines, one audit record a line", content_type = "application/x-ndjson", body = String)))]
pub async fn audit_export(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    caller.require_reader()?;
    let mut buf = Vec::new();
    s.store.export_audit_jsonl(&mut buf).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"facegate-audit.jsonl\"",
            ),
        ],
        buf,
    ))
}

/// The PIA report in force (R13), as an HTML document.
#[utoipa::path(get, path = "/v1/pia", tag = "filing", security(("bearer" = [])),
    responses(
        (status = 200, description = "The PIA report as HTML", content_type = "text/html", body = String)))]
pub async fn pia(State(s): State<AppState>, caller: Caller) -> ApiResult<Html<String>> {
    caller.require_reader()?;
    Ok(Html(s.scenario(None)?.pia.html.clone()))
}

/// The filing pack: the five contents Art. 15 requires, as one HTML document.
#[utoipa::path(get, path = "/v1/filing/pack", tag = "filing", security(("bearer" = [])),
    responses(
        (status = 200, description = "The filing pack as HTML", content_type = "text/html", body = String)))]
pub async fn filing_pack(State(s): State<AppState>, caller: Caller) -> ApiResult<Html<String>> {
    caller.require_reader()?;
    let (inputs, _) = filing_inputs(&s).await?;
    let all = s.scenarios.read().unwrap().clone();
    let scenarios: Vec<policy::Scenario> = all.iter().map(|d| d.scenario.clone()).collect();
    let pias: Vec<policy::PiaReport> = all.iter().map(|d| d.pia.clone()).collect();
    let pack = policy::filing_pack(&scenarios, &inputs, &pias);
    Ok(Html(pack.html))
}

/// What the filing pack states beyond the manifests, built once for the
/// console's pack and the official documents: the headcount and threshold
/// date from the store, the security measures and the operating procedures
/// this system follows. Also the filing status it was read from.
pub async fn filing_inputs(s: &AppState) -> ApiResult<(policy::FilingPackInputs, Filing)> {
    let f = filing_status(s).await?;
    let inputs = policy::FilingPackInputs {
        headcount: f.headcount.max(0) as u64,
        threshold_reached_on: f.threshold_reached_on,
        security_measures: crate::deploy::security_measures(),
        procedures: crate::deploy::operating_procedures(),
    };
    Ok((inputs, f))
}
