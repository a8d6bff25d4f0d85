//! facegate-policy: China's Face Recognition Measures (《人脸识别技术应用安全管理办法》,
//! CAC/MPS Order No. 19, in force 2025-06-01) as code.
//!
//! Every rule software can enforce lives here, as pure functions: no I/O, no
//! async, no clock reads (time is always an argument). The requirement IDs
//! R1–R28 are those of `shared/regulation/MEASURES.md`; every "no" is a
//! [`Refusal`] naming the requirement and article, in Chinese and English.
//!
//! - **Scenario manifest** ([`Scenario`], TOML): [`parse_manifest`] parses and
//!   lints; [`lint()`] gives rustc-style [`Diagnostic`]s with line:col.
//! - **Runtime decisions**: [`authorize()`]`(&Scenario, &Processing) ->
//!   Result<Permit, Refusal>` (consent, minors, notice version, devices,
//!   transmission, PIA, quiet period, alternatives).
//! - **Notice** (R4, R5, R9): [`render_notice`], [`notice_changes`].
//! - **Retention** (R12, R14): [`template_expiry`], [`sweep`].
//! - **Minors** (R10, R12): [`minor_enrolment`] (what `[minors]` allows at
//!   enrolment) and [`minor_deletion`] (the sweep, from the date of birth).
//! - **Private spaces by meaning** (R19): [`private_space()`] reads a device's
//!   location text; [`Device::effective_placement`] and the linter use it.
//! - **Liveness level** (R20, issue 15): [`required_liveness`] and
//!   [`check_liveness`] for the scenario's `liveness` setting.
//! - **Filing** (R21–R23): [`filing_deadline`] on the embedded working-day
//!   calendar, headcount, alert levels, [`FilingSnapshot`] change detection.
//! - **PIA and filing pack** (R13, R21): [`pia_report`], [`pia_status`],
//!   [`filing_pack`].
//! - **Templates**: [`init_template`] gives the commented manifests that
//!   `facegate init` writes.
//!
//! ## What the decision core calls
//!
//! - **Deploy**: [`lint()`] (errors refuse the manifest: R19 reads every
//!   device's location text, R20 the liveness level).
//! - **Face enrol / verify**: [`authorize_with_notice`] with the person's
//!   facts (consent is decided before the notice: R7/R8/R9/R10, then R17
//!   quiet period, then R4/R5); then [`check_liveness`] with the level the
//!   capture actually passed against [`required_liveness`]`(scenario,
//!   device)`; at enrolment [`minor_enrolment`] says whether the template may
//!   leave the device or join a 1:N gallery and when it expires.
//! - **1:N identify**: [`authorize_identification_probe`] for the unknown
//!   probe, then [`authorize()`] with [`Action::Identify`] and each match's
//!   facts; a refused match is answered "unknown".
//! - **Sweep**: [`sweep`] with each template's date of birth (minority is
//!   worked out at the sweep, [`minor_deletion`]).
//!
//! ```
//! use facegate_policy::*;
//! use chrono::{DateTime, Utc};
//!
//! let scenario = parse_manifest(init_template("residential-gate").unwrap()).unwrap();
//! let at: DateTime<Utc> = "2025-07-01T02:00:00Z".parse().unwrap();
//! let person = PersonFacts {
//!     date_of_birth: Some("1990-01-01".parse().unwrap()),
//!     consents: vec![ConsentRecord::given(&scenario, ConsentKind::Processing, at, "kiosk", "sig:1")],
//!     ..PersonFacts::default()
//! };
//! let mut step = Processing {
//!     action: Action::Verify,
//!     method: Method::Face,
//!     purpose_id: scenario.purpose_id.clone(),
//!     person,
//!     device: scenario.devices.first().map(Device::facts),
//!     at,
//!     notice_version: Some(scenario.notice_version()),
//!     pia: PiaStatus::Current,
//! };
//! assert!(authorize(&scenario, &step).is_ok());
//!
//! // Without a PIA, face processing is refused, naming R13 / Art. 9.
//! step.pia = PiaStatus::Missing;
//! let refusal = authorize(&scenario, &step).unwrap_err();
//! assert_eq!((refusal.rule, refusal.article.as_str()), (RuleId::R13, "Art. 9"));
//!
//! // 30 working days on the official calendar.
//! let d = filing_deadline("2025-06-01".parse().unwrap(), FilingKind::Initial);
//! assert_eq!(d.last_day.to_string(), "2025-07-14");
//! ```

pub mod authorize;
pub mod documents;
pub mod filing;
pub mod lint;
pub mod liveness;
pub mod manifest;
pub mod minors;
pub mod notice;
pub mod pia;
pub mod private_space;
pub mod retention;
pub mod rules;

pub use authorize::{
    age_on, authorize, authorize_identification_probe, authorize_with_notice, check_device,
    check_device_declaration, check_scenario, is_under_14, shanghai_date, Action, ConsentGiver,
    ConsentKind, ConsentRecord, DeviceFacts, Permit, PersonFacts, PiaStatus, Processing,
    GUARDIAN_AGE,
};
pub use documents::{filing_document, pia_document, DocInputs, SignagePhoto};
pub use filing::{
    alert_level, distinct_headcount, filing_deadline, threshold_reached_on, AlertLevel, Deadline,
    FilingKind, FilingSnapshot, WorkCalendar, DEFAULT_ALERT_LEVELS, FILING_THRESHOLD,
};
pub use lint::{lint, lint_scenario, Diagnostic, LintReport, Severity};
pub use liveness::{check_liveness, explain_liveness, required_liveness, LivenessLevel, PadSensor};
pub use manifest::{
    Accessibility, ComplaintChannel, Device, FilingInfo, Lang, LegalBasis, Method, Minors, Mode,
    NoticeTexts, PiaLink, Placement, Processor, Retention, Scenario, Storage, StorageLocation,
    Text, MIN_LOG_RETENTION_DAYS,
};
pub use minors::{
    minor_deletion, minor_enrolment, minor_template_days, MinorDeletion, MinorDeletionReason,
    MinorEnrolment,
};
pub use notice::{
    notice_changes, render_changes, render_notice, requires_reconsent, ChangedItem, Notice,
    NoticeItem, NoticeItemKey,
};
pub use pia::{
    filing_pack, pia_report, pia_status, FilingPack, FilingPackInputs, PiaInputs, PiaReport,
};
pub use private_space::{private_space, private_spaces, PrivateSpaceHit};
pub use retention::{
    check_log_fields, check_log_retention, log_entry_deletable, sweep, template_expiry, SweepItem,
    SweepReason, TemplateFacts,
};
pub use rules::{Refusal, RuleId};

/// Parses a manifest and lints it: the [`Scenario`] when there is no error
/// (warnings are allowed), else every diagnostic.
pub fn parse_manifest(src: &str) -> Result<Scenario, Vec<Diagnostic>> {
    let report = lint(src, "scenario.toml");
    if report.has_errors() {
        return Err(report.diagnostics);
    }
    report.scenario.ok_or(report.diagnostics)
}

/// Names of the manifest templates `facegate init` can write.
pub const INIT_TEMPLATES: [&str; 2] = ["residential-gate", "hotel-checkin"];

/// The commented manifest template `name` (see [`INIT_TEMPLATES`]).
pub fn init_template(name: &str) -> Option<&'static str> {
    match name {
        "residential-gate" => Some(include_str!("../manifests/residential-gate.toml")),
        "hotel-checkin" => Some(include_str!("../manifests/hotel-checkin.toml")),
        _ => None,
    }
}
