//! Every refusal names its requirement and article and says why in Chinese
//! and in English: a walk over all RuleIds, and over a large sample of the
//! inputs of every function that refuses (authorize, the device, scenario,
//! log, liveness and minors checks), checking each refusal it returns.

mod common;

use chrono::Duration;
use common::*;
use facegate_policy::*;
use std::collections::BTreeSet;

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

#[test]
fn every_rule_id_has_an_article_and_titles_in_both_languages() {
    assert_eq!(RuleId::ALL.len(), 28);
    for (i, r) in RuleId::ALL.into_iter().enumerate() {
        assert_eq!(r.to_string(), format!("R{}", i + 1));
        let n: u32 = r.article().strip_prefix("Art. ").unwrap().parse().unwrap();
        assert!((2..=20).contains(&n), "{r}: {}", r.article());
        assert!(r.article_zh().starts_with('第') && r.article_zh().ends_with('条'));
        assert!(r.title_zh().chars().any(is_cjk), "{r}");
        assert!(
            !r.title_en().is_empty() && !r.title_en().chars().any(is_cjk),
            "{r}"
        );
        // A refusal built for the rule carries its article and shows both.
        let e = Refusal::new(r, "reason in English", "中文理由");
        assert_refusal(&e, r);
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(j["rule"], r.to_string());
        assert_eq!(j["article"], r.article());
        assert!(j["message_zh"].is_string() && j["message_en"].is_string());
    }
}

/// A small deterministic generator (xorshift), so the sample is the same on
/// every run and needs no extra dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize].clone()
    }
    fn bool(&mut self) -> bool {
        self.next().is_multiple_of(2)
    }
}

fn scenarios() -> Vec<Scenario> {
    let mut out = vec![gate(), hotel()];
    let mut ident = gate();
    ident.mode = Mode::Identification;
    ident.identification_justification = Some(Text::new("识别", "identify"));
    ident.storage.location = StorageLocation::Central;
    ident.storage.transmit_templates = true;
    out.push(ident);
    let mut face_only = gate();
    face_only.methods = vec![Method::Face];
    out.push(face_only);
    let mut rnd = gate();
    rnd.purpose_id = "rnd_training".into();
    out.push(rnd);
    let mut images = gate();
    images.retention.keep_images = true;
    images.retention.image_days = Some(7);
    out.push(images);
    let mut no_retention = hotel();
    no_retention.retention.template_days = None;
    out.push(no_retention);
    out
}

fn devices(s: &Scenario) -> Vec<Option<DeviceFacts>> {
    let first = s.devices[0].facts();
    let mut forbidden = first.clone();
    forbidden.placement = Placement::Toilet;
    let mut public_bare = first.clone();
    public_bare.placement = Placement::PublicArea;
    public_bare.signage_evidence = false;
    let mut inactive = first.clone();
    inactive.active = false;
    let mut unknown = first.clone();
    unknown.id = "not-in-the-manifest".into();
    vec![
        Some(first),
        None,
        Some(forbidden),
        Some(public_bare),
        Some(inactive),
        Some(unknown),
    ]
}

#[test]
fn every_refusal_from_authorize_names_rule_and_article_in_both_languages() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let at = t("2025-08-01T03:00:00Z");
    let actions = [
        Action::Enrol,
        Action::Verify,
        Action::Identify,
        Action::Transmit,
        Action::KeepImage,
        Action::Export,
        Action::PromptFace,
        Action::AnalyseAttributes,
        Action::ExportToResearch,
        Action::Withdraw,
        Action::Delete,
    ];
    let kinds = [
        ConsentKind::Processing,
        ConsentKind::Transmission,
        ConsentKind::ImageRetention,
    ];
    let mut seen = BTreeSet::new();
    let scenarios = scenarios();
    let notices: Vec<String> = scenarios.iter().map(Scenario::notice_version).collect();
    for _ in 0..20_000 {
        let k = (rng.next() % scenarios.len() as u64) as usize;
        let (s, notice) = (&scenarios[k], &notices[k]);
        let mut person = adult(s, at);
        person.consents.clear();
        for _ in 0..(rng.next() % 4) {
            let mut c =
                ConsentRecord::given(s, rng.pick(&kinds), at - Duration::days(1), "kiosk", "e");
            match rng.next() % 4 {
                0 => c.withdraw(at - Duration::hours(1)),
                1 => c.terms = "old".into(),
                _ => {}
            }
            person.consents.push(c);
        }
        person.date_of_birth = rng.pick(&[Some(d("1980-01-01")), Some(d("2016-01-01")), None]);
        if rng.bool() {
            let mut g = ConsentRecord::given(
                s,
                ConsentKind::Processing,
                at - Duration::days(1),
                "counter",
                "form",
            );
            g.given_by = ConsentGiver::Guardian {
                guardian_id: "g".into(),
                relationship: "母亲".into(),
            };
            if rng.bool() {
                g.withdraw(at - Duration::hours(2));
            }
            person.guardian_consent = Some(g);
        }
        if rng.bool() {
            person.last_face_refusal_at = Some(at - Duration::hours(3));
        }
        let p = Processing {
            action: rng.pick(&actions),
            method: rng.pick(&[Method::Face, Method::Face, Method::Card, Method::Pin]),
            purpose_id: if rng.next().is_multiple_of(8) {
                "other-purpose".into()
            } else {
                s.purpose_id.clone()
            },
            person,
            device: rng.pick(&devices(s)),
            at,
            notice_version: rng.pick(&[None, Some("old".to_string()), Some(notice.clone())]),
            pia: rng.pick(&[
                PiaStatus::Current,
                PiaStatus::Current,
                PiaStatus::Stale,
                PiaStatus::Missing,
            ]),
        };
        if let Err(e) = authorize_with_notice(s, notice, &p) {
            assert_refusal(&e, e.rule);
            seen.insert(e.rule);
        }
    }
    use RuleId::*;
    let want: BTreeSet<RuleId> = [
        R1, R2, R3, R4, R5, R7, R8, R9, R10, R11, R12, R13, R15, R17, R18, R19,
    ]
    .into();
    assert!(
        want.is_subset(&seen),
        "refusals never produced: {:?}",
        want.difference(&seen).collect::<Vec<_>>()
    );
}

#[test]
fn every_refusal_from_the_other_checks_names_rule_and_article_in_both_languages() {
    let mut all = vec![];
    let s = hotel();
    for placement in Placement::ALL {
        let mut f = s.devices[0].facts();
        f.placement = placement;
        for (active, sign) in [(true, true), (false, true), (true, false)] {
            f.active = active;
            f.signage_evidence = sign;
            all.extend(check_device(&f).err());
        }
    }
    let mut dev = s.devices[0].clone();
    dev.location = Some(Text::new("客房内", "inside the guest room"));
    all.extend(check_device_declaration(&dev).err());
    let mut bad = gate();
    bad.necessity = Text::default();
    all.extend(check_scenario(&bad).err());
    all.extend(check_log_retention(30).err());
    all.extend(check_log_fields(["face_image_b64"]).err());
    for level in [LivenessLevel::None, LivenessLevel::Passive] {
        all.extend(check_liveness(&gate(), None, level).err());
    }
    all.extend(minor_enrolment(&hotel(), d("2016-01-01"), t("2025-08-01T03:00:00Z")).err());
    let rules: BTreeSet<RuleId> = all.iter().map(|e| e.rule).collect();
    for e in &all {
        assert_refusal(e, e.rule);
    }
    use RuleId::*;
    for r in [R2, R3, R10, R14, R18, R19, R20] {
        assert!(rules.contains(&r), "{r} never produced: {rules:?}");
    }
}
