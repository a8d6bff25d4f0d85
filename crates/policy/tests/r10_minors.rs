//! Minors (R10 / Art. 7, with R11 / R12 / Art. 8): the scenario's `[minors]`
//! rules at enrolment (guardian, transmission, 1:N) and in the sweep, with
//! minority computed from the date of birth at the time of the sweep.

mod common;

use chrono::{Datelike, Duration, NaiveDate};
use common::*;
use facegate_policy::*;
use proptest::prelude::*;

fn record(
    s: &Scenario,
    enrolled_at: chrono::DateTime<chrono::Utc>,
    last_used_at: chrono::DateTime<chrono::Utc>,
    dob: Option<NaiveDate>,
) -> TemplateFacts {
    TemplateFacts {
        id: uuid::Uuid::now_v7(),
        scenario: s.id.clone(),
        enrolled_at,
        last_used_at: Some(last_used_at),
        // The flag recorded at enrolment is left false on purpose: the sweep
        // must work minority out from the date of birth.
        minor: false,
        consent_withdrawn_at: None,
        date_of_birth: dob,
    }
}

/// A scenario doing 1:N with central storage that may transmit, to exercise
/// the minors' transmission and 1:N rules.
fn identification_scenario(minors_identification: bool) -> Scenario {
    let mut s = gate();
    s.mode = Mode::Identification;
    s.identification_justification = Some(Text::new("住户走近即识别", "identify residents"));
    s.storage.location = StorageLocation::Central;
    s.storage.transmit_templates = true;
    s.minors.as_mut().unwrap().identification = minors_identification;
    s
}

#[test]
fn r10_minors_template_200_days_old_is_deleted_by_the_sweep() {
    // The demo scenario promises 180 days for under-14s (adults: 365).
    let s = gate();
    assert_eq!(minor_template_days(&s), 180);
    let now = t("2026-03-01T02:00:00Z");
    let enrolled = now - Duration::days(200);
    let dob = d("2016-04-04");
    // Used yesterday, so the 90-day inactivity rule does not fire.
    let rec = record(&s, enrolled, now - Duration::days(1), Some(dob));
    let m = minor_deletion(&s, enrolled, dob, now).expect("due under the minors' rule");
    assert_eq!(m.reason, MinorDeletionReason::Expired);
    assert_eq!(m.due_at, enrolled + Duration::days(180));
    let due = sweep(std::slice::from_ref(&s), std::slice::from_ref(&rec), now);
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].reason, SweepReason::Expired);
    assert_eq!(due[0].due_at, enrolled + Duration::days(180));
    // The same template of an adult stays.
    let adult = record(&s, enrolled, now - Duration::days(1), Some(d("1980-01-01")));
    assert!(sweep(std::slice::from_ref(&s), &[adult], now).is_empty());
    assert_eq!(minor_deletion(&s, enrolled, d("1980-01-01"), now), None);
}

#[test]
fn r10_minors_template_within_the_period_is_kept() {
    let s = gate();
    let now = t("2026-03-01T02:00:00Z");
    let enrolled = now - Duration::days(170);
    let dob = d("2016-04-04");
    assert_eq!(minor_deletion(&s, enrolled, dob, now), None);
    let rec = record(&s, enrolled, now - Duration::days(1), Some(dob));
    assert!(sweep(std::slice::from_ref(&s), &[rec], now).is_empty());
}

#[test]
fn r10_minors_period_holds_after_the_14th_birthday() {
    // Enrolled at 13 with a guardian's consent for 180 days; the child has
    // turned 14 since: the template still goes at 180 days, not 365.
    let s = gate();
    let dob = d("2011-09-01");
    let enrolled = t("2025-06-01T02:00:00Z");
    let now = t("2025-12-15T02:00:00Z");
    assert!(is_under_14(dob, enrolled) && !is_under_14(dob, now));
    let m = minor_deletion(&s, enrolled, dob, now).unwrap();
    assert_eq!(m.due_at, enrolled + Duration::days(180));
}

#[test]
fn r10_date_of_birth_corrected_after_enrolment_applies_at_the_sweep() {
    let s = gate();
    let now = t("2026-03-01T02:00:00Z");
    let enrolled = now - Duration::days(200);
    // Flag says adult (recorded from a wrong date), the date of birth known
    // now says 10 years old at enrolment.
    let rec = record(&s, enrolled, now - Duration::days(1), Some(d("2015-02-02")));
    assert!(!rec.minor);
    assert_eq!(
        sweep(std::slice::from_ref(&s), &[rec], now)[0].reason,
        SweepReason::Expired
    );
}

#[test]
fn r10_scenario_without_minors_deletes_a_minors_template_at_once() {
    let mut s = hotel(); // [minors] allowed = false
    s.retention.template_days = Some(30);
    let now = t("2026-03-01T02:00:00Z");
    let enrolled = now - Duration::days(1);
    let dob = d("2018-01-01");
    let m = minor_deletion(&s, enrolled, dob, now).unwrap();
    assert_eq!(
        (m.reason, m.due_at),
        (MinorDeletionReason::NotAllowed, enrolled)
    );
    let rec = record(&s, enrolled, now, Some(dob));
    let due = sweep(std::slice::from_ref(&s), &[rec], now);
    assert_eq!(due[0].reason, SweepReason::MinorNotAllowed);
}

#[test]
fn r10_enrolment_rules_for_a_minor_and_an_adult() {
    let s = gate();
    let at = t("2025-08-01T03:00:00Z");
    let child = minor_enrolment(&s, d("2016-04-04"), at).unwrap();
    assert!(child.minor && child.guardian_consent_required);
    assert_eq!(child.age, 9);
    assert!(!child.transmit && !child.identification);
    assert_eq!(child.template_days, 180);
    assert_eq!(child.template_expires_at, at + Duration::days(180));
    let adult = minor_enrolment(&s, d("1980-01-01"), at).unwrap();
    assert!(!adult.minor && !adult.guardian_consent_required);
    assert_eq!(adult.template_days, 365);
    // A scenario that does not use face for under-14s refuses with R10.
    let e = minor_enrolment(&hotel(), d("2016-04-04"), at).unwrap_err();
    assert_refusal(&e, RuleId::R10);
    assert!(minor_enrolment(&hotel(), d("1980-01-01"), at).is_ok());
}

#[test]
fn r10_minors_templates_stay_on_the_device_where_adults_may_leave() {
    let s = identification_scenario(false);
    let at = t("2025-08-01T03:00:00Z");
    assert!(minor_enrolment(&s, d("1980-01-01"), at).unwrap().transmit);
    assert!(!minor_enrolment(&s, d("2016-04-04"), at).unwrap().transmit);
    let mut s2 = s.clone();
    s2.minors.as_mut().unwrap().transmit = true;
    assert!(minor_enrolment(&s2, d("2016-04-04"), at).unwrap().transmit);
}

#[test]
fn r10_minors_join_the_1_to_n_gallery_only_when_minors_rules_allow() {
    let at = t("2025-08-01T03:00:00Z");
    let s = identification_scenario(false);
    assert!(
        minor_enrolment(&s, d("1980-01-01"), at)
            .unwrap()
            .identification
    );
    assert!(
        !minor_enrolment(&s, d("2016-04-04"), at)
            .unwrap()
            .identification
    );
    // authorize agrees: identifying a minor is refused, verifying is not.
    let mut person = adult(&s, at);
    person.date_of_birth = Some(d("2016-04-04"));
    let mut g = ConsentRecord::given(
        &s,
        ConsentKind::Processing,
        at - Duration::days(1),
        "c",
        "e",
    );
    g.given_by = ConsentGiver::Guardian {
        guardian_id: "g".into(),
        relationship: "母亲".into(),
    };
    person.guardian_consent = Some(g);
    let e = authorize(&s, &step(&s, Action::Identify, person.clone(), at)).unwrap_err();
    assert_refusal(&e, RuleId::R10);
    assert!(authorize(&s, &step(&s, Action::Verify, person.clone(), at)).is_ok());
    let s2 = identification_scenario(true);
    assert!(
        minor_enrolment(&s2, d("2016-04-04"), at)
            .unwrap()
            .identification
    );
    let mut person2 = person;
    person2.consents = vec![];
    let mut g2 = ConsentRecord::given(
        &s2,
        ConsentKind::Processing,
        at - Duration::days(1),
        "c",
        "e",
    );
    g2.given_by = ConsentGiver::Guardian {
        guardian_id: "g".into(),
        relationship: "母亲".into(),
    };
    person2.guardian_consent = Some(g2);
    assert!(authorize(&s2, &step(&s2, Action::Identify, person2, at)).is_ok());
}

#[test]
fn r10_lint_warns_when_minors_join_a_1_to_n_gallery() {
    let src = template_with(
        "residential-gate",
        r#"mode = "verification""#,
        "mode = \"identification\"\nidentification_justification = { zh = \"住户走近即识别\" }",
    );
    let src = edit(
        &src,
        "transmit = false         # 不传出设备",
        "identification = true\ntransmit = false         # 不传出设备",
    );
    let r = lint(&src, "m");
    assert!(
        r.of_rule(RuleId::R10)
            .iter()
            .any(|d| d.path == "minors.identification" && d.severity == Severity::Warning),
        "{}",
        r.render(&src)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// R12 for minors: deleted exactly when the person was under 14 at
    /// enrolment (from the date of birth) and the minors' period is over.
    #[test]
    fn r12_minors_deletion_follows_the_date_of_birth(
        birth_day in 0i64..(20 * 365),
        enrol_day in 0i64..(3 * 365),
        age_days in 0i64..400,
    ) {
        let s = gate();
        let dob = NaiveDate::from_ymd_opt(2006, 1, 1).unwrap() + Duration::days(birth_day);
        let enrolled = t("2025-06-01T04:00:00Z") + Duration::days(enrol_day);
        let now = enrolled + Duration::days(age_days);
        prop_assume!(dob <= shanghai_date(enrolled));
        let minor_then = {
            let on = shanghai_date(enrolled);
            let mut a = on.year() - dob.year();
            if (on.month(), on.day()) < (dob.month(), dob.day()) { a -= 1; }
            a < 14
        };
        let got = minor_deletion(&s, enrolled, dob, now);
        let want = minor_then && age_days >= 180;
        prop_assert_eq!(got.is_some(), want, "dob {} enrolled {} now {}", dob, enrolled, now);
        // The sweep (used yesterday, so inactivity never fires) agrees.
        let rec = record(&s, enrolled, now - Duration::days(1).min(Duration::days(age_days)), Some(dob));
        let swept = !sweep(std::slice::from_ref(&s), &[rec], now).is_empty();
        prop_assert_eq!(swept, want || age_days >= 365);
    }
}
