//! Minors (R10 / Art. 7, with R11 and R12): the scenario's `[minors]` rules
//! as pure functions the decision core calls at enrolment and in the sweep.
//!
//! - [`minor_enrolment`]: at enrolment, whether the person is under 14 and,
//!   if so, what `[minors]` allows: face at all, the guardian's consent,
//!   leaving the device (transmission), joining a 1:N gallery, and when the
//!   template must go.
//! - [`minor_deletion`]: in the sweep, whether a template must be deleted
//!   under the minors' rules. Minority is worked out from the date of birth
//!   *at the time of the sweep* (not from a flag stored at enrolment), so a
//!   date of birth recorded or corrected after enrolment still applies the
//!   shorter retention.

use crate::authorize::{age_on, is_under_14, shanghai_date};
use crate::manifest::{Mode, Scenario};
use crate::rules::{Refusal, RuleId};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// What the scenario's `[minors]` rules allow for one person's face
/// enrolment (adults get the scenario's ordinary rules, with `minor: false`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinorEnrolment {
    /// Under 14 on the Shanghai date of the enrolment.
    pub minor: bool,
    /// Age in whole years (周岁) at enrolment.
    pub age: u32,
    /// A parent's or guardian's consent is needed (and not the person's own).
    pub guardian_consent_required: bool,
    /// The template may leave the device (still only with a transmission
    /// consent): for minors both the scenario and `[minors] transmit` must
    /// allow it.
    pub transmit: bool,
    /// The template may join the scenario's 1:N identification gallery; when
    /// false it is used for 1:1 verification only.
    pub identification: bool,
    /// Days the template is kept after enrolment under the rule that
    /// applies (the minors' value when shorter).
    pub template_days: u32,
    /// When the template must be deleted at the latest (before any
    /// inactivity rule shortens it).
    pub template_expires_at: DateTime<Utc>,
}

/// The `[minors]` rules for enrolling a person born on `dob` at `at`.
///
/// Refuses with R10 when the person is under 14 and the scenario does not
/// use face recognition for minors (no `[minors]`, or `allowed = false`).
/// Consent itself (the guardian's record) is checked by
/// [`crate::authorize()`]; this says what the rules allow once it is there.
pub fn minor_enrolment(
    scenario: &Scenario,
    dob: NaiveDate,
    at: DateTime<Utc>,
) -> Result<MinorEnrolment, Refusal> {
    let age = age_on(dob, shanghai_date(at));
    let minor = is_under_14(dob, at);
    let adult_days = scenario.retention.template_days.unwrap_or(0);
    let identification = scenario.mode == Mode::Identification;
    if !minor {
        return Ok(MinorEnrolment {
            minor,
            age,
            guardian_consent_required: false,
            transmit: scenario.storage.transmit_templates,
            identification,
            template_days: adult_days,
            template_expires_at: at + Duration::days(i64::from(adult_days)),
        });
    }
    let Some(rules) = scenario.minors.as_ref().filter(|m| m.allowed) else {
        return Err(Refusal::new(
            RuleId::R10,
            "this scenario does not use face recognition for people under 14; use the alternative",
            "本场景不对不满十四周岁的未成年人使用人脸识别，请使用其他方式",
        ));
    };
    let days = minor_template_days(scenario);
    Ok(MinorEnrolment {
        minor,
        age,
        // Art. 7: a guardian's consent whatever the manifest says.
        guardian_consent_required: true,
        transmit: rules.transmit && scenario.storage.transmit_templates,
        identification: identification && rules.identification,
        template_days: days,
        template_expires_at: at + Duration::days(i64::from(days)),
    })
}

/// Template retention for minors in `scenario`: the shorter of
/// `[minors] template_days` and the adults' `template_days`.
pub fn minor_template_days(scenario: &Scenario) -> u32 {
    let adult = scenario.retention.template_days.unwrap_or(0);
    scenario
        .minors
        .as_ref()
        .and_then(|m| m.template_days)
        .map_or(adult, |m| m.min(adult))
}

/// Why the minors' rules delete a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MinorDeletionReason {
    /// The minors' retention period is over (R10, R12).
    Expired,
    /// The scenario does not use face recognition for under-14s at all: the
    /// template should never have been made (R10).
    NotAllowed,
}

/// A deletion the minors' rules require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinorDeletion {
    /// When it became due.
    pub due_at: DateTime<Utc>,
    /// Why.
    pub reason: MinorDeletionReason,
}

/// Whether a template enrolled at `enrolled_at` for a person born on `dob`
/// must be deleted at `now` under the scenario's `[minors]` rules.
///
/// The person counts as a minor for this template when they were under 14
/// on the Shanghai date of enrolment, worked out now from `dob` (so a date
/// of birth corrected after enrolment applies). Such a template is kept at
/// most [`minor_template_days`] after enrolment, even once the person has
/// turned 14 (the guardian consented to that period, no longer); in a
/// scenario that does not allow minors it is due at once. Returns `None`
/// when the minors' rules do not (yet) require deletion; the adults' rules
/// ([`crate::template_expiry`]) still apply on top.
pub fn minor_deletion(
    scenario: &Scenario,
    enrolled_at: DateTime<Utc>,
    dob: NaiveDate,
    now: DateTime<Utc>,
) -> Option<MinorDeletion> {
    if !is_under_14(dob, enrolled_at) {
        return None;
    }
    if !scenario.minors_allowed() {
        return Some(MinorDeletion {
            due_at: enrolled_at,
            reason: MinorDeletionReason::NotAllowed,
        });
    }
    let due = enrolled_at + Duration::days(i64::from(minor_template_days(scenario)));
    (due <= now).then_some(MinorDeletion {
        due_at: due,
        reason: MinorDeletionReason::Expired,
    })
}
