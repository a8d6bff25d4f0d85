//! Shared helpers for the compliance tests.
#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, Utc};
use facegate_policy::*;

pub fn gate() -> Scenario {
    parse_manifest(init_template("residential-gate").unwrap())
        .expect("residential-gate lints clean")
}

pub fn hotel() -> Scenario {
    parse_manifest(init_template("hotel-checkin").unwrap()).expect("hotel-checkin lints clean")
}

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// An adult with a processing consent for `s` given a day before `at`.
pub fn adult(s: &Scenario, at: DateTime<Utc>) -> PersonFacts {
    PersonFacts {
        date_of_birth: Some(d("1985-03-02")),
        consents: vec![ConsentRecord::given(
            s,
            ConsentKind::Processing,
            at - chrono::Duration::days(1),
            "kiosk",
            "sig:abc",
        )],
        guardian_consent: None,
        last_face_refusal_at: None,
        face_opt_in_at: None,
    }
}

/// A processing step by face at the scenario's first device, with the
/// current notice acknowledged and a current PIA.
pub fn step(s: &Scenario, action: Action, person: PersonFacts, at: DateTime<Utc>) -> Processing {
    Processing {
        action,
        method: Method::Face,
        purpose_id: s.purpose_id.clone(),
        person,
        device: s.devices.first().map(Device::facts),
        at,
        notice_version: Some(s.notice_version()),
        pia: PiaStatus::Current,
    }
}

/// Asserts a refusal by `rule` (see [`assert_refusal`]) and returns it.
#[track_caller]
pub fn assert_refused(r: Result<Permit, Refusal>, rule: RuleId) -> Refusal {
    match r {
        Ok(p) => panic!("expected refusal {rule}, got permit {p:?}"),
        Err(e) => {
            assert_refusal(&e, rule);
            e
        }
    }
}

/// Asserts `e` is a refusal by `rule` that names the rule and its article in
/// English and Chinese (`R15 / Art. 10: … / …（R15 第十条）`), with a Chinese
/// and an English message.
#[track_caller]
pub fn assert_refusal(e: &Refusal, rule: RuleId) {
    assert_eq!(e.rule, rule, "wrong rule: {e}");
    assert_eq!(e.article, rule.article(), "wrong article: {e}");
    assert!(!e.message_zh.is_empty() && !e.message_en.is_empty());
    assert!(
        e.message_zh.chars().any(is_cjk),
        "message_zh is not Chinese: {e}"
    );
    assert!(
        !e.message_en.chars().any(is_cjk),
        "message_en is not English: {e}"
    );
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{rule} / {}", rule.article())),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("{rule} {}", rule.article_zh())),
        "no Chinese article: {shown}"
    );
}

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

/// `src` with `from` replaced by `to`; panics when `from` is not there, so a
/// test never runs on an unedited manifest by mistake.
#[track_caller]
pub fn edit(src: &str, from: &str, to: &str) -> String {
    assert!(src.contains(from), "{from:?} not found in the manifest");
    src.replace(from, to)
}

/// The `init` template `name` with `from` replaced by `to` (see [`edit`]).
#[track_caller]
pub fn template_with(name: &str, from: &str, to: &str) -> String {
    edit(init_template(name).unwrap(), from, to)
}
