//! Refusal order (issue 11): withdrawal or absent consent is R7/R8 (and a
//! guardian's R10/R8) before any notice check, so a face verify after
//! withdrawal, sent without `notice_version`, is R8 / Art. 6. A property test
//! walks every combination of consent state, notice state, age and action.

mod common;

use chrono::Duration;
use common::*;
use facegate_policy::*;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum C {
    /// Given and active under the current terms.
    Current,
    /// Given, then withdrawn.
    Withdrawn,
    /// Active, but given under other terms (purpose/method changed).
    OldTerms,
    /// For another scenario.
    OtherScenario,
    /// Given only after the step.
    Later,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum N {
    Absent,
    Old,
    Current,
}

fn c() -> impl Strategy<Value = C> {
    prop::sample::select(vec![
        C::Current,
        C::Withdrawn,
        C::OldTerms,
        C::OtherScenario,
        C::Later,
    ])
}

fn record(s: &Scenario, kind: C, at: chrono::DateTime<chrono::Utc>) -> ConsentRecord {
    let mut r = ConsentRecord::given(
        s,
        ConsentKind::Processing,
        at - Duration::days(2),
        "kiosk",
        "sig",
    );
    match kind {
        C::Current => {}
        C::Withdrawn => r.withdraw(at - Duration::hours(1)),
        C::OldTerms => r.terms = "terms-before-the-change".into(),
        C::OtherScenario => r.scenario = "another-scenario".into(),
        C::Later => r.given_at = at + Duration::hours(1),
    }
    r
}

/// What the subject's own consents decide (R7 none, R8 withdrawn, R9 old
/// terms), or None when one is active under the current terms.
fn expected_subject(cs: &[C]) -> Option<RuleId> {
    let mine: Vec<C> = cs
        .iter()
        .copied()
        .filter(|c| !matches!(c, C::OtherScenario | C::Later))
        .collect();
    if mine.is_empty() {
        Some(RuleId::R7)
    } else if mine.contains(&C::Current) {
        None
    } else if mine.contains(&C::OldTerms) {
        Some(RuleId::R9)
    } else {
        Some(RuleId::R8)
    }
}

fn expected_guardian(g: Option<C>) -> Option<RuleId> {
    match g {
        None | Some(C::OtherScenario) | Some(C::Later) => Some(RuleId::R10),
        Some(C::Withdrawn) => Some(RuleId::R8),
        Some(C::OldTerms) => Some(RuleId::R9),
        Some(C::Current) => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn r8_consent_is_decided_before_the_notice(
        consents in prop::collection::vec(c(), 0..4),
        guardian in prop::option::of(c()),
        notice in prop::sample::select(vec![N::Absent, N::Old, N::Current]),
        minor in any::<bool>(),
        action in prop::sample::select(vec![Action::Enrol, Action::Verify]),
    ) {
        let s = gate(); // minors allowed with a guardian's consent
        let at = t("2025-08-01T03:00:00Z");
        let mut person = adult(&s, at);
        person.consents = consents.iter().map(|k| record(&s, *k, at)).collect();
        if minor {
            person.date_of_birth = Some(d("2015-05-05"));
        }
        person.guardian_consent = guardian.map(|k| {
            let mut g = record(&s, k, at);
            g.given_by = ConsentGiver::Guardian {
                guardian_id: "g".into(),
                relationship: "父亲 father".into(),
            };
            g
        });
        let mut p = step(&s, action, person, at);
        p.notice_version = match notice {
            N::Absent => None,
            N::Old => Some("an-older-notice".into()),
            N::Current => Some(s.notice_version()),
        };
        let person_rule = if minor {
            expected_guardian(guardian)
        } else {
            expected_subject(&consents)
        };
        let want = person_rule.or(match notice {
            N::Absent => Some(RuleId::R4),
            N::Old => Some(RuleId::R5),
            N::Current => None,
        });
        let got = authorize(&s, &p);
        match (want, got) {
            (None, Ok(permit)) => prop_assert_eq!(permit.minor, minor),
            (Some(rule), Err(e)) => {
                prop_assert_eq!(e.rule, rule, "{}", e);
                assert_refusal(&e, rule);
            }
            (want, got) => prop_assert!(false, "want {:?}, got {:?}", want, got),
        }
    }
}

#[test]
fn r8_face_verify_after_withdrawal_without_notice_version_is_r8() {
    let s = gate();
    let at = t("2025-08-01T03:00:00Z");
    let mut person = adult(&s, at);
    person.consents[0].withdraw(at - Duration::minutes(5));
    let mut p = step(&s, Action::Verify, person, at);
    p.notice_version = None;
    let e = authorize(&s, &p).unwrap_err();
    assert_refusal(&e, RuleId::R8);
    assert_eq!(e.article, "Art. 6");
}

#[test]
fn r7_face_verify_without_consent_and_without_notice_is_r7() {
    let s = gate();
    let at = t("2025-08-01T03:00:00Z");
    let mut person = adult(&s, at);
    person.consents.clear();
    let mut p = step(&s, Action::Verify, person, at);
    p.notice_version = None;
    assert_refused(authorize(&s, &p), RuleId::R7);
}
