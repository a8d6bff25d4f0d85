//! 1:N under consent (issue 11): a probe of an unknown person is authorised
//! on what does not depend on who they are; each match must then pass
//! `authorize` with the matched person's facts, else it is answered unknown.

mod common;

use chrono::Duration;
use common::*;
use facegate_policy::*;

/// The gate as a consent-based 1:N scenario (residents identified as they
/// walk up).
fn walk_up_gate() -> Scenario {
    let mut s = gate();
    s.mode = Mode::Identification;
    s.identification_justification = Some(Text::new(
        "住户走近闸机即识别，无需操作",
        "residents are identified as they walk up",
    ));
    s
}

fn probe(s: &Scenario, at: chrono::DateTime<chrono::Utc>) -> Processing {
    let mut p = step(s, Action::Identify, PersonFacts::default(), at);
    p.notice_version = None;
    p
}

#[test]
fn r7_identification_probe_of_an_unknown_person_is_not_refused_for_consent() {
    let s = walk_up_gate();
    let at = t("2025-08-01T03:00:00Z");
    let p = probe(&s, at);
    // As a whole-person decision the unknown probe has no consent...
    assert_refused(authorize(&s, &p), RuleId::R7);
    // ...but the probe itself may run, over the consenting gallery.
    let permit = authorize_identification_probe(&s, &p).unwrap();
    assert_eq!(permit.action, Action::Identify);
    assert!(permit.checked.contains(&RuleId::R13));
    assert!(!permit.checked.contains(&RuleId::R7));
}

#[test]
fn r3_identification_probe_in_a_verification_scenario_is_refused() {
    let s = gate();
    let at = t("2025-08-01T03:00:00Z");
    assert_refused(
        authorize_identification_probe(&s, &probe(&s, at)),
        RuleId::R3,
    );
    let mut p = probe(&walk_up_gate(), at);
    p.action = Action::Verify;
    assert_refused(
        authorize_identification_probe(&walk_up_gate(), &p),
        RuleId::R3,
    );
}

#[test]
fn r19_r18_r13_identification_probe_still_needs_device_and_pia() {
    let s = walk_up_gate();
    let at = t("2025-08-01T03:00:00Z");
    let mut p = probe(&s, at);
    let mut dev = p.device.clone().unwrap();
    dev.placement = Placement::ChangingRoom;
    p.device = Some(dev);
    assert_refused(authorize_identification_probe(&s, &p), RuleId::R19);
    let mut p = probe(&s, at);
    p.device = None;
    assert_refused(authorize_identification_probe(&s, &p), RuleId::R18);
    let mut p = probe(&s, at);
    p.pia = PiaStatus::Missing;
    assert_refused(authorize_identification_probe(&s, &p), RuleId::R13);
}

#[test]
fn r8_a_match_whose_consent_was_withdrawn_is_answered_unknown() {
    let s = walk_up_gate();
    let at = t("2025-08-01T03:00:00Z");
    let resident = adult(&s, at);
    // The match is checked with the person's facts and the notice version
    // their consent was given under.
    let mut m = step(&s, Action::Identify, resident.clone(), at);
    m.notice_version = Some(resident.consents[0].notice_version.clone());
    authorize(&s, &m).unwrap();
    let mut gone = resident;
    gone.consents[0].withdraw(at - Duration::minutes(1));
    m.person = gone;
    assert_refused(authorize(&s, &m), RuleId::R8);
    // No consent at all: R7.
    m.person.consents.clear();
    assert_refused(authorize(&s, &m), RuleId::R7);
}

#[test]
fn r10_a_minors_match_is_unknown_unless_minors_rules_allow_1_to_n() {
    let mut s = walk_up_gate();
    let at = t("2025-08-01T03:00:00Z");
    let mut child = adult(&s, at);
    child.date_of_birth = Some(d("2016-04-04"));
    let mut g = ConsentRecord::given(
        &s,
        ConsentKind::Processing,
        at - Duration::days(1),
        "c",
        "e",
    );
    g.given_by = ConsentGiver::Guardian {
        guardian_id: "g".into(),
        relationship: "父亲".into(),
    };
    child.guardian_consent = Some(g);
    let m = step(&s, Action::Identify, child.clone(), at);
    assert_refused(authorize(&s, &m), RuleId::R10);
    s.minors.as_mut().unwrap().identification = true;
    child.guardian_consent.as_mut().unwrap().terms = s.consent_terms();
    authorize(&s, &step(&s, Action::Identify, child, at)).unwrap();
}
