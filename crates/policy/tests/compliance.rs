//! One test (or more) per enforceable requirement, named after its ID.
//! Every refusal test asserts the R-ID and the article.

mod common;

use chrono::Duration;
use common::*;
use facegate_policy::*;

// ---------------------------------------------------------------- R1, R2, R3

#[test]
fn r1_production_scenario_tagged_rnd_training_is_rejected() {
    let mut s = gate();
    s.purpose_id = "rnd_training".into();
    let e = check_scenario(&s).unwrap_err();
    assert_eq!((e.rule, e.article.as_str()), (RuleId::R1, "Art. 2"));
    assert_refusal(&e, RuleId::R1);
}

#[test]
fn r1_export_from_production_to_research_is_refused() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let mut p = step(&s, Action::ExportToResearch, adult(&s, at), at);
    p.device = None;
    assert_refused(authorize(&s, &p), RuleId::R1);
}

#[test]
fn r2_attribute_analysis_is_a_prohibited_use() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let p = step(&s, Action::AnalyseAttributes, adult(&s, at), at);
    assert_refused(authorize(&s, &p), RuleId::R2);
}

#[test]
fn r2_method_not_on_the_allow_list_is_refused() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let mut p = step(&s, Action::Verify, adult(&s, at), at);
    p.method = Method::Pin; // the gate offers face, card, QR code, staffed check
    assert_refused(authorize(&s, &p), RuleId::R2);
}

#[test]
fn r2_inactive_device_is_refused() {
    let mut s = gate();
    s.devices[0].active = false;
    let at = t("2025-07-01T02:00:00Z");
    assert_refused(
        authorize(&s, &step(&s, Action::Verify, adult(&s, at), at)),
        RuleId::R2,
    );
}

#[test]
fn r3_identification_in_a_verification_scenario_is_refused() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let p = step(&s, Action::Identify, adult(&s, at), at);
    assert_refused(authorize(&s, &p), RuleId::R3);
}

#[test]
fn r3_unregistered_purpose_is_refused() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let mut p = step(&s, Action::Verify, adult(&s, at), at);
    p.purpose_id = "marketing".into();
    assert_refused(authorize(&s, &p), RuleId::R3);
}

#[test]
fn r3_missing_necessity_is_refused_at_run_time() {
    let mut s = gate();
    s.necessity = Text::default();
    let at = t("2025-07-01T02:00:00Z");
    let p = step(&s, Action::Verify, adult(&s, at), at);
    assert_refused(authorize(&s, &p), RuleId::R3);
}

// ---------------------------------------------------------------- R4, R5, R6

#[test]
fn r4_processing_without_an_acknowledged_notice_is_refused() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let mut p = step(&s, Action::Enrol, adult(&s, at), at);
    p.notice_version = None;
    assert_refused(authorize(&s, &p), RuleId::R4);
}

#[test]
fn r4_notice_has_every_art5_item_in_both_languages() {
    let s = gate();
    for lang in [Lang::Zh, Lang::En] {
        let n = render_notice(&s, lang);
        for key in [
            NoticeItemKey::Processor,
            NoticeItemKey::Purpose,
            NoticeItemKey::Method,
            NoticeItemKey::Retention,
            NoticeItemKey::Necessity,
            NoticeItemKey::EffectOnRights,
            NoticeItemKey::Rights,
            NoticeItemKey::Withdrawal,
            NoticeItemKey::Alternative,
            NoticeItemKey::Complaints,
        ] {
            let item = n
                .items
                .iter()
                .find(|i| i.key == key)
                .unwrap_or_else(|| panic!("{key:?} missing"));
            assert!(!item.body.trim().is_empty(), "{key:?} empty");
            assert!(n.text.contains(&item.title) && n.html.contains("<dt>"));
        }
        assert_eq!(n.version.len(), 64);
    }
    let zh = render_notice(&s, Lang::Zh);
    assert!(zh.text.contains("365 天"), "{}", zh.text);
    assert!(zh.text.contains("门禁卡"));
    assert!(zh.html.contains("lang=\"zh-CN\""));
    // The version is language independent: consent binds to one version.
    assert_eq!(zh.version, render_notice(&s, Lang::En).version);
}

#[test]
fn r5_changed_notice_must_be_shown_before_processing() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let person = adult(&s, at);
    let old_version = s.notice_version();
    let mut s2 = s.clone();
    s2.complaint_channels[0].contact = "021-5555 0199".into();
    assert_ne!(
        s2.notice_version(),
        old_version,
        "any item change is a new version"
    );
    let mut p = step(&s2, Action::Verify, person, at);
    p.notice_version = Some(old_version);
    assert_refused(authorize(&s2, &p), RuleId::R5);
    // Once the change is shown (new version acknowledged) the old consent
    // still holds: a complaint number is not a material change.
    p.notice_version = Some(s2.notice_version());
    authorize(&s2, &p).expect("permitted after the change is shown");
}

#[test]
fn r5_a_notice_version_computed_once_decides_like_authorize() {
    // The server hashes the notice once at deploy and passes it in; every
    // decision must be the one `authorize` (which renders it) would make.
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let current = s.notice_version();
    let mut stale = s.clone();
    stale.complaint_channels[0].contact = "021-5555 0199".into();
    let acks = [None, Some(stale.notice_version()), Some(current.clone())];
    let actions = [Action::Enrol, Action::Verify, Action::Withdraw];
    let mut refusals = vec![];
    for ack in &acks {
        for action in actions {
            let mut p = step(&s, action, adult(&s, at), at);
            p.notice_version = ack.clone();
            let once = authorize_with_notice(&s, &current, &p);
            assert_eq!(once, authorize(&s, &p), "{action:?} with {ack:?}");
            if let Err(e) = once {
                refusals.push(e.rule);
            }
        }
    }
    // R4 (none shown) and R5 (an older one) for enrol and verify; withdrawal
    // is never refused.
    assert_eq!(refusals, [RuleId::R4, RuleId::R4, RuleId::R5, RuleId::R5]);
}

#[test]
fn r5_notice_changes_lists_only_the_changed_items() {
    let s = gate();
    let mut s2 = s.clone();
    s2.retention.template_days = Some(180);
    let old = render_notice(&s, Lang::Zh);
    let new = render_notice(&s2, Lang::Zh);
    let ch = notice_changes(&old, &new);
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert_eq!(ch[0].key, NoticeItemKey::Retention);
    assert!(ch[0].new.as_deref().unwrap().contains("180 天"));
    assert!(!requires_reconsent(&ch));
    assert!(render_changes(&ch, Lang::Zh).contains("保存期限"));
    assert!(notice_changes(&old, &old).is_empty());
}

#[test]
fn r6_missing_accessibility_provisions_are_flagged() {
    let src = template_with(
        "residential-gate",
        "non_visual_liveness = true",
        "non_visual_liveness = false",
    );
    let r = lint(&src, "a.toml");
    let w = r.of_rule(RuleId::R6);
    assert_eq!(w.len(), 1, "{:?}", r.diagnostics);
    assert_eq!(w[0].severity, Severity::Warning);
    assert_eq!(w[0].article.as_deref(), Some("Art. 5"));
}

// ---------------------------------------------------------------- R7, R8, R9

#[test]
fn r7_enrolment_without_consent_is_refused() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let mut person = adult(&s, at);
    person.consents.clear();
    assert_refused(
        authorize(&s, &step(&s, Action::Enrol, person, at)),
        RuleId::R7,
    );
}

#[test]
fn r7_consent_for_another_scenario_or_kind_does_not_count() {
    let s = gate();
    let h = hotel();
    let at = t("2025-07-01T02:00:00Z");
    let mut person = adult(&s, at);
    person.consents = vec![
        ConsentRecord::given(&h, ConsentKind::Processing, at, "kiosk", "e1"),
        ConsentRecord::given(&s, ConsentKind::Transmission, at, "kiosk", "e2"),
    ];
    assert_refused(
        authorize(&s, &step(&s, Action::Enrol, person, at)),
        RuleId::R7,
    );
}

#[test]
fn r7_consent_given_is_permitted_and_enrolment_gets_an_expiry() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let p = authorize(&s, &step(&s, Action::Enrol, adult(&s, at), at)).unwrap();
    assert!(p.checked.contains(&RuleId::R7));
    assert_eq!(p.template_expires_at, Some(at + Duration::days(90)));
    assert!(p.discard_image);
}

#[test]
fn r8_withdrawn_consent_stops_processing_at_once() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let mut person = adult(&s, at);
    person.consents[0].withdraw(at - Duration::seconds(1));
    person.consents[0].withdraw(at); // a second withdrawal keeps the first time
    assert_eq!(
        person.consents[0].withdrawn_at,
        Some(at - Duration::seconds(1))
    );
    assert_refused(
        authorize(&s, &step(&s, Action::Verify, person.clone(), at)),
        RuleId::R8,
    );
    // Withdrawal itself and deletion are always possible, in one step.
    for a in [Action::Withdraw, Action::Delete] {
        authorize(&s, &step(&s, a, person.clone(), at)).unwrap();
    }
    // The alternative keeps working after withdrawal.
    let mut p = step(&s, Action::Verify, person, at);
    p.method = Method::Card;
    authorize(&s, &p).unwrap();
}

#[test]
fn r8_sweep_deletes_templates_of_withdrawn_consent() {
    let s = gate();
    let now = t("2025-07-01T02:00:00Z");
    let rec = TemplateFacts {
        id: uuid::Uuid::now_v7(),
        scenario: s.id.clone(),
        enrolled_at: now - Duration::days(3),
        last_used_at: Some(now - Duration::days(1)),
        minor: false,
        consent_withdrawn_at: Some(now - Duration::minutes(5)),
        date_of_birth: None,
    };
    let due = sweep(std::slice::from_ref(&s), std::slice::from_ref(&rec), now);
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].id, due[0].reason), (rec.id, SweepReason::Withdrawn));
}

#[test]
fn r9_material_change_requires_fresh_consent() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let person = adult(&s, at);
    let mut s2 = s.clone();
    s2.purpose = Text::new(
        "核验住户身份并统计访客流量",
        "Verify residents and count visitors",
    );
    let changes = notice_changes(&render_notice(&s, Lang::Zh), &render_notice(&s2, Lang::Zh));
    assert!(requires_reconsent(&changes), "{changes:?}");
    // Even with the new notice shown, the old consent no longer holds.
    let p = step(&s2, Action::Verify, person, at);
    assert_refused(authorize(&s2, &p), RuleId::R9);
}

#[test]
fn r9_method_change_requires_fresh_consent() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let person = adult(&s, at);
    let mut s2 = s.clone();
    s2.storage.transmit_templates = true;
    assert_refused(
        authorize(&s2, &step(&s2, Action::Verify, person, at)),
        RuleId::R9,
    );
}

// ---------------------------------------------------------------- R10

fn child(s: &Scenario, dob: &str, at: chrono::DateTime<chrono::Utc>) -> PersonFacts {
    let mut p = adult(s, at);
    p.date_of_birth = Some(d(dob));
    p
}

fn guardian(s: &Scenario, at: chrono::DateTime<chrono::Utc>) -> ConsentRecord {
    let mut g = ConsentRecord::given(
        s,
        ConsentKind::Processing,
        at - Duration::days(1),
        "counter",
        "form-17",
    );
    g.given_by = ConsentGiver::Guardian {
        guardian_id: "g-1".into(),
        relationship: "母亲 mother".into(),
    };
    g
}

#[test]
fn r10_under_14_needs_guardian_consent_at_13_years_364_days() {
    let s = gate();
    // Born 2011-07-02: on 2025-07-01 (Shanghai) the child is 13 years 364 days.
    let at = t("2025-07-01T02:00:00Z");
    assert_eq!(age_on(d("2011-07-02"), shanghai_date(at)), 13);
    let person = child(&s, "2011-07-02", at);
    assert_refused(
        authorize(&s, &step(&s, Action::Enrol, person.clone(), at)),
        RuleId::R10,
    );
    let mut with_guardian = person;
    with_guardian.guardian_consent = Some(guardian(&s, at));
    let permit = authorize(&s, &step(&s, Action::Enrol, with_guardian, at)).unwrap();
    assert!(permit.minor);
    assert_eq!(permit.template_expires_at, Some(at + Duration::days(90)));
}

#[test]
fn r10_fourteen_years_0_days_needs_no_guardian() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let permit = authorize(
        &s,
        &step(&s, Action::Enrol, child(&s, "2011-07-01", at), at),
    )
    .unwrap();
    assert!(!permit.minor);
}

#[test]
fn r10_birthday_is_taken_in_shanghai_time() {
    let s = gate();
    // 2025-06-30T17:00Z is already 2025-07-01 01:00 in Shanghai: 14 today.
    let at = t("2025-06-30T17:00:00Z");
    authorize(
        &s,
        &step(&s, Action::Enrol, child(&s, "2011-07-01", at), at),
    )
    .unwrap();
    // 2025-06-30T15:00Z is 23:00 on 30 June in Shanghai: still 13.
    let at = t("2025-06-30T15:00:00Z");
    assert_refused(
        authorize(
            &s,
            &step(&s, Action::Enrol, child(&s, "2011-07-01", at), at),
        ),
        RuleId::R10,
    );
}

#[test]
fn r10_born_on_29_february() {
    let s = gate();
    // Born 2012-02-29: 2026 is a common year; 14 is reached on 1 March.
    assert_eq!(age_on(d("2012-02-29"), d("2026-02-28")), 13);
    assert_eq!(age_on(d("2012-02-29"), d("2026-03-01")), 14);
    let at = t("2026-02-28T04:00:00Z");
    assert_refused(
        authorize(
            &s,
            &step(&s, Action::Enrol, child(&s, "2012-02-29", at), at),
        ),
        RuleId::R10,
    );
    let at = t("2026-03-01T04:00:00Z");
    authorize(
        &s,
        &step(&s, Action::Enrol, child(&s, "2012-02-29", at), at),
    )
    .unwrap();
    // In a leap year the birthday itself counts.
    assert_eq!(age_on(d("2012-02-29"), d("2028-02-29")), 16);
    assert_eq!(age_on(d("2012-02-29"), d("2028-02-28")), 15);
}

#[test]
fn r10_scenario_without_minors_refuses_under_14_even_with_guardian() {
    let s = hotel();
    let at = t("2025-07-01T02:00:00Z");
    let mut person = child(&s, "2015-01-01", at);
    person.guardian_consent = Some(guardian(&s, at));
    assert_refused(
        authorize(&s, &step(&s, Action::Verify, person.clone(), at)),
        RuleId::R10,
    );
    // The child is checked by staff instead.
    let mut p = step(&s, Action::Verify, person, at);
    p.method = Method::StaffedCheck;
    authorize(&s, &p).unwrap();
}

#[test]
fn r10_enrolment_without_date_of_birth_is_refused() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let mut person = adult(&s, at);
    person.date_of_birth = None;
    assert_refused(
        authorize(&s, &step(&s, Action::Enrol, person, at)),
        RuleId::R10,
    );
}

#[test]
fn r10_guardian_consent_for_another_scenario_is_refused_and_a_withdrawn_one_is_r8() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let mut person = child(&s, "2015-01-01", at);
    let mut other = guardian(&s, at);
    other.scenario = "hotel-checkin".into();
    person.guardian_consent = Some(other);
    assert_refused(
        authorize(&s, &step(&s, Action::Verify, person.clone(), at)),
        RuleId::R10,
    );
    // A guardian's withdrawal is a withdrawal (R8 / Art. 6), with or
    // without a notice version on the request.
    let mut g = guardian(&s, at);
    g.withdrawn_at = Some(at - Duration::hours(1));
    person.guardian_consent = Some(g);
    let mut p = step(&s, Action::Verify, person, at);
    assert_refused(authorize(&s, &p), RuleId::R8);
    p.notice_version = None;
    assert_refused(authorize(&s, &p), RuleId::R8);
}

#[test]
fn r10_minors_face_information_stays_on_the_device() {
    let mut s = gate(); // minors.transmit = false
    s.storage.transmit_templates = true;
    let at = t("2025-07-01T02:00:00Z");
    let mut person = child(&s, "2015-01-01", at);
    person.guardian_consent = Some(guardian(&s, at));
    person.consents.push(ConsentRecord::given(
        &s,
        ConsentKind::Transmission,
        at,
        "counter",
        "form-18",
    ));
    assert_refused(
        authorize(&s, &step(&s, Action::Transmit, person, at)),
        RuleId::R10,
    );
}

#[test]
fn r11_minors_transmission_needs_its_own_separate_consent() {
    let mut s = gate();
    s.storage.transmit_templates = true;
    s.minors.as_mut().unwrap().transmit = true;
    let at = t("2025-07-01T02:00:00Z");
    let mut person = child(&s, "2015-01-01", at);
    person.guardian_consent = Some(guardian(&s, at)); // processing only
    assert_refused(
        authorize(&s, &step(&s, Action::Transmit, person.clone(), at)),
        RuleId::R11,
    );
    person.consents.push(ConsentRecord::given(
        &s,
        ConsentKind::Transmission,
        at,
        "counter",
        "form-18",
    ));
    authorize(&s, &step(&s, Action::Transmit, person, at)).unwrap();
}

#[test]
fn r9_guardian_consent_before_a_purpose_change_needs_renewal() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let mut person = child(&s, "2015-01-01", at);
    person.guardian_consent = Some(guardian(&s, at));
    authorize(&s, &step(&s, Action::Verify, person.clone(), at)).unwrap();
    let mut s2 = s.clone();
    s2.purpose = Text::new(
        "核验住户身份并统计访客流量",
        "Verify residents and count visitors",
    );
    let e = assert_refused(
        authorize(&s2, &step(&s2, Action::Verify, person, at)),
        RuleId::R9,
    );
    assert!(e.message_zh.contains("监护人"), "{e}");
}

// ---------------------------------------------------------------- R11, R12

#[test]
fn r11_transmission_without_separate_consent_is_refused() {
    let mut s = gate();
    s.storage.transmit_templates = true;
    let at = t("2025-07-01T02:00:00Z");
    let person = adult(&s, at); // processing consent only
    assert_refused(
        authorize(&s, &step(&s, Action::Transmit, person.clone(), at)),
        RuleId::R11,
    );
    let mut with = person;
    with.consents.push(ConsentRecord::given(
        &s,
        ConsentKind::Transmission,
        at,
        "app",
        "e",
    ));
    authorize(&s, &step(&s, Action::Transmit, with, at)).unwrap();
}

#[test]
fn r11_scenario_that_keeps_faces_on_device_never_transmits() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let mut person = adult(&s, at);
    person.consents.push(ConsentRecord::given(
        &s,
        ConsentKind::Transmission,
        at,
        "app",
        "e",
    ));
    assert_refused(
        authorize(&s, &step(&s, Action::Transmit, person.clone(), at)),
        RuleId::R11,
    );
    assert_refused(
        authorize(&s, &step(&s, Action::Export, person, at)),
        RuleId::R11,
    );
}

#[test]
fn r11_central_enrolment_needs_transmission_consent() {
    let mut s = gate();
    s.storage.location = StorageLocation::Central;
    s.storage.transmit_templates = true;
    let at = t("2025-07-01T02:00:00Z");
    let person = adult(&s, at);
    assert_refused(
        authorize(&s, &step(&s, Action::Enrol, person, at)),
        RuleId::R11,
    );
}

#[test]
fn r12_template_expiry_follows_the_scenario_rule() {
    let s = gate();
    let enrolled = t("2025-07-01T02:00:00Z");
    // Used regularly: 365 days after enrolment.
    let used = enrolled + Duration::days(300);
    assert_eq!(
        template_expiry(&s, enrolled, Some(used), false),
        enrolled + Duration::days(365)
    );
    // Not used: 90 days after the last use.
    assert_eq!(
        template_expiry(&s, enrolled, None, false),
        enrolled + Duration::days(90)
    );
    // Minors: 180 days at most.
    assert_eq!(
        template_expiry(&s, enrolled, Some(enrolled + Duration::days(170)), true),
        enrolled + Duration::days(180)
    );
    // Hotel: 0 days, deleted right after the match.
    assert_eq!(template_expiry(&hotel(), enrolled, None, false), enrolled);
}

#[test]
fn r12_sweep_selects_exactly_the_expired_records() {
    let s = gate();
    let now = t("2026-07-01T00:00:00Z");
    let mk = |days_ago: i64, used_days_ago: Option<i64>, scenario: &str| TemplateFacts {
        id: uuid::Uuid::now_v7(),
        scenario: scenario.into(),
        enrolled_at: now - Duration::days(days_ago),
        last_used_at: used_days_ago.map(|u| now - Duration::days(u)),
        minor: false,
        consent_withdrawn_at: None,
        date_of_birth: None,
    };
    let fresh = mk(10, Some(1), "residential-gate");
    let old = mk(400, Some(1), "residential-gate");
    let idle = mk(100, Some(91), "residential-gate");
    let orphan = mk(1, None, "gone-scenario");
    let due = sweep(
        std::slice::from_ref(&s),
        &[fresh.clone(), old.clone(), idle.clone(), orphan.clone()],
        now,
    );
    let ids: Vec<_> = due.iter().map(|x| (x.id, x.reason)).collect();
    assert_eq!(
        ids,
        vec![
            (old.id, SweepReason::Expired),
            (idle.id, SweepReason::Expired),
            (orphan.id, SweepReason::NoScenario)
        ]
    );
}

#[test]
fn r12_keeping_images_is_refused_unless_declared_and_consented() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    assert_refused(
        authorize(&s, &step(&s, Action::KeepImage, adult(&s, at), at)),
        RuleId::R12,
    );
    let mut s2 = s.clone();
    s2.retention.keep_images = true;
    s2.retention.image_days = Some(7);
    let person = PersonFacts {
        consents: vec![ConsentRecord::given(
            &s2,
            ConsentKind::Processing,
            at,
            "k",
            "e",
        )],
        ..adult(&s2, at)
    };
    assert_refused(
        authorize(&s2, &step(&s2, Action::KeepImage, person.clone(), at)),
        RuleId::R12,
    );
    let mut with = person;
    with.consents.push(ConsentRecord::given(
        &s2,
        ConsentKind::ImageRetention,
        at,
        "k",
        "e",
    ));
    let p = authorize(&s2, &step(&s2, Action::KeepImage, with, at)).unwrap();
    assert!(!p.discard_image);
}

#[test]
fn r12_scenario_without_retention_is_refused_at_run_time() {
    let mut s = gate();
    s.retention.template_days = None;
    let at = t("2025-07-01T02:00:00Z");
    assert_refused(
        authorize(&s, &step(&s, Action::Verify, adult(&s, at), at)),
        RuleId::R12,
    );
}

// ---------------------------------------------------------------- R13, R14

#[test]
fn r13_no_processing_without_a_pia() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let mut p = step(&s, Action::Verify, adult(&s, at), at);
    p.pia = pia_status(&s, None, false);
    assert_eq!(p.pia, PiaStatus::Missing);
    assert_refused(authorize(&s, &p), RuleId::R13);
}

#[test]
fn r13_purpose_or_method_change_marks_the_pia_stale_and_blocks_enrolment() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let report = pia_report(
        &s,
        &PiaInputs {
            report_id: "PIA-1".into(),
            assessed_on: d("2025-05-20"),
            assessor: "DPO".into(),
            headcount: 2800,
            security_measures: vec![],
            incidents: vec![],
        },
    );
    let link = report.link();
    assert_eq!(pia_status(&s, Some(&link), false), PiaStatus::Current);
    assert_eq!(
        pia_status(&s, Some(&link), true),
        PiaStatus::Stale,
        "major incident"
    );
    let mut changed = s.clone();
    changed.mode = Mode::Identification;
    assert_eq!(pia_status(&changed, Some(&link), false), PiaStatus::Stale);
    let mut changed = s.clone();
    changed.purpose.zh += "（并用于考勤）";
    assert_eq!(pia_status(&changed, Some(&link), false), PiaStatus::Stale);
    // A change of complaint phone number is neither purpose nor method.
    let mut same = s.clone();
    same.complaint_channels[0].contact = "021-0000 0000".into();
    assert_eq!(pia_status(&same, Some(&link), false), PiaStatus::Current);

    let mut p = step(&s, Action::Enrol, adult(&s, at), at);
    p.pia = PiaStatus::Stale;
    assert_refused(authorize(&s, &p), RuleId::R13);
    // Verification of already-enrolled people continues while it is renewed.
    p.action = Action::Verify;
    authorize(&s, &p).unwrap();
}

#[test]
fn r13_pia_report_has_the_four_art9_contents() {
    let s = hotel();
    let r = pia_report(
        &s,
        &PiaInputs {
            report_id: "PIA-H-1".into(),
            assessed_on: d("2025-05-28"),
            assessor: "王某 DPO".into(),
            headcount: 40_000,
            security_measures: vec!["模板 AES-256-GCM 加密存储 / encrypted at rest".into()],
            incidents: vec![],
        },
    );
    for heading in ["## 一、", "## 二、", "## 三、", "## 四、"] {
        assert!(r.markdown.contains(heading), "{heading} missing");
    }
    assert_eq!(r.html.matches("<h2>").count(), 4);
    assert!(r.markdown.contains("40000"));
    assert!(r.markdown.contains("front-desk-1"));
    assert_eq!(r.gaps.len(), 4, "only encryption was given: {:?}", r.gaps);
    assert_eq!(r.sha256.len(), 64);
}

#[test]
fn r14_log_retention_is_never_below_three_years() {
    let mut s = gate();
    assert!(s.log_retention_days() >= 1095);
    s.retention.log_days = Some(30);
    assert_eq!(s.log_retention_days(), 1095);
    let written = t("2025-07-01T00:00:00Z");
    assert!(!log_entry_deletable(
        &s,
        written,
        written + Duration::days(1094)
    ));
    assert!(log_entry_deletable(
        &s,
        written,
        written + Duration::days(1095)
    ));
    let e = check_log_retention(365).unwrap_err();
    assert_eq!((e.rule, e.article.as_str()), (RuleId::R14, "Art. 9"));
    assert_refusal(&e, RuleId::R14);
    check_log_retention(1095).unwrap();
}

#[test]
fn r14_log_schema_with_image_or_template_fields_is_rejected() {
    check_log_fields([
        "event",
        "scenario",
        "purpose",
        "subject_pseudonym",
        "at",
        "score",
    ])
    .unwrap();
    for bad in [
        "face_image_b64",
        "template",
        "Embedding",
        "photo",
        "feature_vector",
    ] {
        let e = check_log_fields(["event", bad]).unwrap_err();
        assert_eq!(
            (e.rule, e.article.as_str()),
            (RuleId::R14, "Art. 9"),
            "{bad}"
        );
        assert_refusal(&e, RuleId::R14);
    }
}

// ---------------------------------------------------------------- R15, R17

#[test]
fn r15_face_only_scenario_is_refused() {
    let mut s = gate();
    s.methods = vec![Method::Face];
    let at = t("2025-07-01T02:00:00Z");
    let e = assert_refused(
        authorize(&s, &step(&s, Action::Verify, adult(&s, at), at)),
        RuleId::R15,
    );
    assert!(e.message_zh.contains("唯一"));
    let src = template_with(
        "residential-gate",
        r#"methods = ["face", "card", "qr_code", "staffed_check"]"#,
        r#"methods = ["face"]"#,
    );
    assert!(parse_manifest(&src)
        .unwrap_err()
        .iter()
        .any(|d| d.rule == Some(RuleId::R15)));
}

#[test]
fn r15_face_only_with_a_cited_state_rule_is_allowed() {
    let mut s = gate();
    s.methods = vec![Method::Face];
    s.face_only_exception = Some("某法规第X条（示例）".into());
    let at = t("2025-07-01T02:00:00Z");
    let mut person = adult(&s, at);
    person.consents = vec![ConsentRecord::given(
        &s,
        ConsentKind::Processing,
        at,
        "k",
        "e",
    )];
    authorize(&s, &step(&s, Action::Verify, person, at)).unwrap();
    assert!(render_notice(&s, Lang::Zh).text.contains("某法规第X条"));
}

#[test]
fn r15_declining_face_reaches_the_same_outcome() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let by_face = authorize(&s, &step(&s, Action::Verify, adult(&s, at), at)).unwrap();
    // Someone who declined face a minute ago, with no face consent at all.
    let decliner = PersonFacts {
        last_face_refusal_at: Some(at - Duration::minutes(1)),
        ..PersonFacts::default()
    };
    for m in s.alternatives() {
        let mut p = step(&s, Action::Verify, decliner.clone(), at);
        p.method = m;
        p.notice_version = None;
        p.pia = PiaStatus::Missing;
        let alt = authorize(&s, &p).unwrap_or_else(|e| panic!("{m:?}: {e}"));
        assert_eq!(alt.grants, by_face.grants, "same outcome by {m:?}");
        assert_eq!(alt.action, by_face.action);
    }
}

#[test]
fn r17_no_face_prompt_within_the_quiet_period() {
    let s = gate(); // quiet_period_hours = 72
    let refused_at = t("2025-07-01T02:00:00Z");
    let person = PersonFacts {
        last_face_refusal_at: Some(refused_at),
        ..adult(&s, refused_at)
    };
    let at = refused_at + Duration::hours(71);
    assert_refused(
        authorize(&s, &step(&s, Action::PromptFace, person.clone(), at)),
        RuleId::R17,
    );
    let at = refused_at + Duration::hours(72);
    authorize(&s, &step(&s, Action::PromptFace, person, at)).unwrap();
}

#[test]
fn r17_quiet_period_is_never_below_48_hours() {
    let mut s = gate();
    s.quiet_period_hours = 1;
    let refused_at = t("2025-07-01T02:00:00Z");
    let person = PersonFacts {
        last_face_refusal_at: Some(refused_at),
        ..adult(&s, refused_at)
    };
    let at = refused_at + Duration::hours(47);
    assert_refused(
        authorize(&s, &step(&s, Action::PromptFace, person, at)),
        RuleId::R17,
    );
}

// ---------------------------------------------------------------- R18, R19

#[test]
fn r18_public_device_without_signage_is_refused() {
    let mut s = hotel();
    s.devices[0].signage_evidence = None;
    let at = t("2025-07-01T02:00:00Z");
    let e = assert_refused(
        authorize(&s, &step(&s, Action::Verify, adult(&s, at), at)),
        RuleId::R18,
    );
    assert!(e.message_en.contains("signage"));
}

#[test]
fn r18_public_device_needs_necessity_and_capture_zone() {
    for f in [
        (|d: &mut Device| d.public_safety_necessity = None) as fn(&mut Device),
        |d| d.capture_zone = None,
        |d| d.capture_zone = Some(vec![[0.1, 0.1], [2.0, 0.5]]),
    ] {
        let mut s = hotel();
        f(&mut s.devices[0]);
        let at = t("2025-07-01T02:00:00Z");
        assert_refused(
            authorize(&s, &step(&s, Action::Verify, adult(&s, at), at)),
            RuleId::R18,
        );
    }
    // Complete: permitted.
    let s = hotel();
    let at = t("2025-07-01T02:00:00Z");
    authorize(&s, &step(&s, Action::Verify, adult(&s, at), at)).unwrap();
}

#[test]
fn r18_face_capture_without_a_device_is_refused() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let mut p = step(&s, Action::Verify, adult(&s, at), at);
    p.device = None;
    assert_refused(authorize(&s, &p), RuleId::R18);
}

#[test]
fn r19_private_spaces_are_refused_with_no_override() {
    let s = hotel();
    let at = t("2025-07-01T02:00:00Z");
    let private = [
        Placement::HotelRoom,
        Placement::Bathhouse,
        Placement::ChangingRoom,
        Placement::Toilet,
        Placement::ShowerRoom,
        Placement::FittingRoom,
        Placement::LactationRoom,
        Placement::DormitoryRoom,
    ];
    // The Measures' list of private spaces; is_forbidden agrees with it.
    let forbidden: Vec<_> = Placement::ALL
        .into_iter()
        .filter(|p| p.is_forbidden())
        .collect();
    assert_eq!(forbidden, private);
    for placement in private {
        // Even with necessity, zone and signage all recorded.
        let dev = DeviceFacts {
            id: "x".into(),
            placement,
            active: true,
            public_safety_necessity: true,
            capture_zone: true,
            signage_evidence: true,
        };
        let e = check_device(&dev).unwrap_err();
        assert_eq!((e.rule, e.article.as_str()), (RuleId::R19, "Art. 13"));
        assert_refusal(&e, RuleId::R19);
        let mut p = step(&s, Action::Verify, adult(&s, at), at);
        p.device = Some(dev);
        assert_refused(authorize(&s, &p), RuleId::R19);
    }
}

#[test]
fn r19_manifest_with_a_hotel_room_device_does_not_parse() {
    let src = template_with(
        "hotel-checkin",
        r#"placement = "public_area""#,
        r#"placement = "hotel_room""#,
    );
    let errs = parse_manifest(&src).unwrap_err();
    assert!(errs.iter().any(|d| d.rule == Some(RuleId::R19)), "{errs:?}");
}

// ---------------------------------------------------------------- R20

#[test]
fn r20_pia_lists_missing_art14_measures() {
    let s = gate();
    let all = vec![
        "数据加密 AES-GCM".to_string(),
        "安全审计 hash-chained audit log".into(),
        "访问控制 role-based".into(),
        "授权管理 per-operator grants".into(),
        "入侵检测 IDS alerts".into(),
    ];
    let inp = |m: Vec<String>| PiaInputs {
        report_id: "P".into(),
        assessed_on: d("2025-05-20"),
        assessor: String::new(),
        headcount: 1,
        security_measures: m,
        incidents: vec![],
    };
    assert!(pia_report(&s, &inp(all.clone())).gaps.is_empty());
    let r = pia_report(&s, &inp(all[..4].to_vec()));
    assert_eq!(r.gaps.len(), 1);
    assert!(r.gaps[0].contains("入侵检测"));
}

// ---------------------------------------------------------------- R21 (notice), store round trip

#[test]
fn r21_filing_number_is_shown_in_the_notice_once_filed() {
    let mut s = gate();
    assert!(!render_notice(&s, Lang::Zh)
        .items
        .iter()
        .any(|i| i.key == NoticeItemKey::Filing));
    s.filing = Some(FilingInfo {
        number: Some("沪人脸备2025-0001".into()),
        expected_headcount: None,
    });
    let n = render_notice(&s, Lang::Zh);
    let item = n
        .items
        .iter()
        .find(|i| i.key == NoticeItemKey::Filing)
        .unwrap();
    assert_eq!(item.body, "沪人脸备2025-0001");
}

#[test]
fn scenario_round_trips_through_json_for_the_store() {
    for s in [gate(), hotel()] {
        let j = serde_json::to_string(&s).unwrap();
        let back: Scenario = serde_json::from_str(&j).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.notice_version(), s.notice_version());
        assert_eq!(back.consent_terms(), s.consent_terms());
    }
}

// ---------------------------------------------------------------- R17 (server side, issue 11)

#[test]
fn r17_face_attempt_after_a_decline_is_refused_for_the_quiet_period() {
    let s = gate(); // quiet_period_hours = 72
    let declined = t("2025-07-01T02:00:00Z");
    let person = PersonFacts {
        last_face_refusal_at: Some(declined),
        ..adult(&s, declined)
    };
    for action in [Action::Verify, Action::Enrol] {
        let at = declined + Duration::minutes(1);
        let e = assert_refused(
            authorize(&s, &step(&s, action, person.clone(), at)),
            RuleId::R17,
        );
        assert_eq!(e.article, "Art. 12");
        // The alternative is never blocked by the decline.
        let mut alt = step(&s, action, person.clone(), at);
        alt.method = Method::Card;
        authorize(&s, &alt).unwrap();
        // After the quiet period face may be used again.
        let later = declined + Duration::hours(72);
        authorize(&s, &step(&s, action, person.clone(), later)).unwrap();
    }
}

#[test]
fn r17_explicit_opt_in_after_the_decline_lifts_the_quiet_period() {
    let s = gate();
    let declined = t("2025-07-01T02:00:00Z");
    let at = declined + Duration::hours(2);
    let mut person = PersonFacts {
        last_face_refusal_at: Some(declined),
        face_opt_in_at: Some(declined + Duration::hours(1)),
        ..adult(&s, declined)
    };
    authorize(&s, &step(&s, Action::Verify, person.clone(), at)).unwrap();
    authorize(&s, &step(&s, Action::PromptFace, person.clone(), at)).unwrap();
    assert_eq!(person.face_quiet_until(&s, at), None);
    // An opt-in older than the decline does not lift it, nor one recorded
    // after the attempt.
    person.face_opt_in_at = Some(declined - Duration::hours(1));
    assert_refused(
        authorize(&s, &step(&s, Action::Verify, person.clone(), at)),
        RuleId::R17,
    );
    person.face_opt_in_at = Some(at + Duration::hours(1));
    assert_refused(
        authorize(&s, &step(&s, Action::Verify, person, at)),
        RuleId::R17,
    );
}

#[test]
fn r17_withdrawal_is_still_named_first_after_a_decline() {
    let s = gate();
    let at = t("2025-07-01T02:00:00Z");
    let mut person = adult(&s, at);
    person.consents[0].withdraw(at - Duration::hours(2));
    person.last_face_refusal_at = Some(at - Duration::hours(1));
    let mut p = step(&s, Action::Verify, person, at);
    p.notice_version = None;
    assert_refused(authorize(&s, &p), RuleId::R8);
}
