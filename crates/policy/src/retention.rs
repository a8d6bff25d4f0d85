//! Retention (R12, R14): when each template expires, which records a sweep
//! must delete at a given time, and how long processing logs are kept.

use crate::manifest::{Scenario, MIN_LOG_RETENTION_DAYS};
use crate::rules::{Refusal, RuleId};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// When a template enrolled at `enrolled_at` must be deleted under the
/// scenario's rule: `template_days` after enrolment (the minors' value when
/// shorter and the person is under 14), or `inactive_days` after the last
/// use, whichever comes first. `template_days = 0` (or none) means at once.
pub fn template_expiry(
    scenario: &Scenario,
    enrolled_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    minor: bool,
) -> DateTime<Utc> {
    let mut days = scenario.retention.template_days.unwrap_or(0);
    if minor {
        if let Some(m) = scenario.minors.as_ref().and_then(|m| m.template_days) {
            days = days.min(m);
        }
    }
    let mut expiry = enrolled_at + Duration::days(i64::from(days));
    if let Some(i) = scenario.retention.inactive_days {
        let last = last_used_at.unwrap_or(enrolled_at).max(enrolled_at);
        expiry = expiry.min(last + Duration::days(i64::from(i)));
    }
    expiry
}

/// What a sweep needs to know about one stored template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateFacts {
    /// Template id.
    pub id: Uuid,
    /// Scenario id it belongs to.
    pub scenario: String,
    /// Enrolment time.
    pub enrolled_at: DateTime<Utc>,
    /// Last successful use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// The person was under 14 at enrolment.
    pub minor: bool,
    /// The processing consent was withdrawn at (delete at once, R8).
    pub consent_withdrawn_at: Option<DateTime<Utc>>,
    /// The person's date of birth as known at the sweep: minority at
    /// enrolment is worked out from it (R10), on top of `minor`.
    #[serde(default)]
    pub date_of_birth: Option<NaiveDate>,
}

/// Why a sweep deletes a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepReason {
    /// Retention period over (R12).
    Expired,
    /// Consent withdrawn (R8).
    Withdrawn,
    /// The scenario is not the template's (or no longer exists): nothing
    /// authorises keeping it.
    NoScenario,
    /// The person was under 14 at enrolment and the scenario does not use
    /// face recognition for minors (R10).
    MinorNotAllowed,
}

/// One deletion a sweep must make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepItem {
    /// Template id.
    pub id: Uuid,
    /// Why.
    pub reason: SweepReason,
    /// When it became due.
    pub due_at: DateTime<Utc>,
}

/// The templates in `records` that must be deleted at `now`, given the
/// scenarios in force. Records of an unknown scenario are due at once.
pub fn sweep(
    scenarios: &[Scenario],
    records: &[TemplateFacts],
    now: DateTime<Utc>,
) -> Vec<SweepItem> {
    records
        .iter()
        .filter_map(|r| {
            if let Some(w) = r.consent_withdrawn_at.filter(|w| *w <= now) {
                return Some(SweepItem {
                    id: r.id,
                    reason: SweepReason::Withdrawn,
                    due_at: w,
                });
            }
            let Some(s) = scenarios.iter().find(|s| s.id == r.scenario) else {
                return Some(SweepItem {
                    id: r.id,
                    reason: SweepReason::NoScenario,
                    due_at: now,
                });
            };
            // Minority from the date of birth known now (R10), else the
            // flag recorded at enrolment.
            let by_dob = r
                .date_of_birth
                .and_then(|dob| crate::minors::minor_deletion(s, r.enrolled_at, dob, now));
            if let Some(m) = by_dob {
                if m.reason == crate::minors::MinorDeletionReason::NotAllowed {
                    return Some(SweepItem {
                        id: r.id,
                        reason: SweepReason::MinorNotAllowed,
                        due_at: m.due_at,
                    });
                }
            }
            let minor = r.minor
                || r.date_of_birth
                    .is_some_and(|dob| crate::authorize::is_under_14(dob, r.enrolled_at));
            let due = template_expiry(s, r.enrolled_at, r.last_used_at, minor);
            (due <= now).then_some(SweepItem {
                id: r.id,
                reason: SweepReason::Expired,
                due_at: due,
            })
        })
        .collect()
}

/// True when a processing-log entry written at `written_at` may be deleted
/// at `now`: never before [`MIN_LOG_RETENTION_DAYS`] (R14), or the
/// scenario's longer `log_days`.
pub fn log_entry_deletable(
    scenario: &Scenario,
    written_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    now >= written_at + Duration::days(i64::from(scenario.log_retention_days()))
}

/// Checks a log retention setting (days) is at least 3 years (R14).
pub fn check_log_retention(days: u32) -> Result<(), Refusal> {
    if days < MIN_LOG_RETENTION_DAYS {
        return Err(Refusal::new(
            RuleId::R14,
            format!("processing records must be kept at least {MIN_LOG_RETENTION_DAYS} days (3 years); {days} is too short"),
            format!("处理记录至少保存{MIN_LOG_RETENTION_DAYS}天（3年），{days}天不足"),
        ));
    }
    Ok(())
}

/// Field names a processing log / audit record may never carry (R14: no
/// images or templates in logs).
const FORBIDDEN_LOG_FIELDS: &[&str] = &[
    "image",
    "images",
    "photo",
    "picture",
    "frame",
    "jpeg",
    "png",
    "template",
    "templates",
    "embedding",
    "embeddings",
    "feature",
    "features",
    "face_image",
    "face_template",
    "vector",
    "biometric",
];

/// Checks a log schema (its field names) holds no image or template field
/// (R14). Names are compared case-insensitively, whole or as a `_`-separated
/// part (`face_image_b64` is refused).
pub fn check_log_fields<'a>(fields: impl IntoIterator<Item = &'a str>) -> Result<(), Refusal> {
    for f in fields {
        let lower = f.to_ascii_lowercase();
        let bad = FORBIDDEN_LOG_FIELDS.contains(&lower.as_str())
            || lower
                .split(['_', '-', '.'])
                .any(|part| FORBIDDEN_LOG_FIELDS.contains(&part));
        if bad {
            return Err(Refusal::new(
                RuleId::R14,
                format!("log field '{f}' would hold images or templates; records never contain face information"),
                format!("日志字段“{f}”可能包含人脸图像或特征，处理记录不得包含人脸信息"),
            ));
        }
    }
    Ok(())
}
