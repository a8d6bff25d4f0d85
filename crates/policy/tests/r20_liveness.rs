//! Liveness level in the manifest (issue 15), a security measure of R20 /
//! Art. 14: `active` by default, `passive` warned about, `none` only where
//! every device declares a certified PAD sensor; `required_liveness` and
//! `check_liveness` are what the decision core calls; the PIA reports it.

mod common;

use common::*;
use facegate_policy::*;

const PAD: &str = r#"pad_sensor = { model = "3D module X1", certificate = "CNAS report 2025-PAD-0042", standard = "ISO/IEC 30107-3" }"#;

fn gate_src_with_liveness(level: &str) -> String {
    template_with(
        "residential-gate",
        r#"liveness = "active""#,
        &format!("liveness = \"{level}\""),
    )
}

/// The gate template with `liveness = "none"` and a PAD sensor on the
/// devices named.
fn gate_none_with_pad(on: &[&str]) -> String {
    let mut src = gate_src_with_liveness("none");
    for id in on {
        src = edit(
            &src,
            &format!("id = \"{id}\"\n"),
            &format!("id = \"{id}\"\n{PAD}\n"),
        );
    }
    src
}

#[test]
fn r20_liveness_defaults_to_active() {
    let src = template_with("residential-gate", "liveness = \"active\"\n", "");
    let s = parse_manifest(&src).unwrap();
    assert_eq!(s.liveness, LivenessLevel::Active);
    for d in &s.devices {
        assert_eq!(required_liveness(&s, Some(d)), LivenessLevel::Active);
    }
    assert_eq!(required_liveness(&s, None), LivenessLevel::Active);
    // Stating the default changes neither the PIA fingerprint nor consent.
    let explicit = gate();
    assert_eq!(s.pia_fingerprint(), explicit.pia_fingerprint());
    assert_eq!(s.consent_terms(), explicit.consent_terms());
}

#[test]
fn r20_active_scenario_refuses_a_passive_only_request_from_any_device() {
    let s = gate();
    for d in s.devices.iter().map(Some).chain([None]) {
        let e = check_liveness(&s, d, LivenessLevel::Passive).unwrap_err();
        assert_refusal(&e, RuleId::R20);
        assert!(e.message_en.contains("active") && e.message_zh.contains("动作"));
        let e = check_liveness(&s, d, LivenessLevel::None).unwrap_err();
        assert_refusal(&e, RuleId::R20);
        assert_eq!(
            check_liveness(&s, d, LivenessLevel::Active),
            Ok(LivenessLevel::Active)
        );
    }
}

#[test]
fn r20_passive_scenario_is_warned_and_accepts_passive() {
    let src = gate_src_with_liveness("passive");
    let r = lint(&src, "m");
    assert!(!r.has_errors(), "{}", r.render(&src));
    let w = r.of_rule(RuleId::R20);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].severity, Severity::Warning);
    assert_eq!(w[0].path, "liveness");
    assert!(src
        .lines()
        .nth(w[0].line - 1)
        .unwrap()
        .starts_with("liveness"));
    assert!(w[0].message_zh.contains("静默") && w[0].message_en.contains("passive"));
    let s = parse_manifest(&src).unwrap();
    assert_eq!(
        check_liveness(&s, s.devices.first(), LivenessLevel::Passive),
        Ok(LivenessLevel::Passive)
    );
    assert_refusal(
        &check_liveness(&s, s.devices.first(), LivenessLevel::None).unwrap_err(),
        RuleId::R20,
    );
    // Choosing passive changes the assessed method: the PIA must be renewed.
    assert_ne!(s.pia_fingerprint(), gate().pia_fingerprint());
}

#[test]
fn r20_none_needs_a_certified_pad_sensor_on_every_device() {
    // One of two devices has a sensor: refused, at the other device.
    let src = gate_none_with_pad(&["gate-north-1"]);
    let r = lint(&src, "m");
    let errs: Vec<_> = r
        .of_rule(RuleId::R20)
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert_eq!(errs.len(), 1, "{}", r.render(&src));
    assert_eq!(errs[0].path, "devices[1].pad_sensor.certificate");
    assert_eq!(
        src.lines().nth(errs[0].line - 1).unwrap(),
        "id = \"gate-south-1\"",
        "located at the device lacking the sensor"
    );
    assert!(errs[0].message_en.contains("gate-south-1"));
    assert!(parse_manifest(&src).is_err());
    // A sensor without a certificate reference is no sensor.
    let blank = edit(
        &gate_none_with_pad(&["gate-north-1", "gate-south-1"]),
        "certificate = \"CNAS report 2025-PAD-0042\", standard",
        "certificate = \" \", standard",
    );
    let r = lint(&blank, "m");
    assert!(r.has_errors(), "{}", r.render(&blank));
    // Every device certified: accepted, explained in a note with the
    // certificates, and each device needs no check by facegate.
    let src = gate_none_with_pad(&["gate-north-1", "gate-south-1"]);
    let r = lint(&src, "m");
    assert!(!r.has_errors(), "{}", r.render(&src));
    let notes: Vec<_> = r
        .of_rule(RuleId::R20)
        .into_iter()
        .filter(|d| d.severity == Severity::Note)
        .collect();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].message_en.contains("CNAS report 2025-PAD-0042"));
    assert!(notes[0].message_zh.contains("传感器"));
    let s = parse_manifest(&src).unwrap();
    for d in &s.devices {
        assert_eq!(required_liveness(&s, Some(d)), LivenessLevel::None);
        assert!(check_liveness(&s, Some(d), LivenessLevel::None).is_ok());
    }
    // A device the manifest does not know, or a scenario value whose device
    // lost its sensor, is held to active.
    assert_eq!(required_liveness(&s, None), LivenessLevel::Active);
    let mut bare = s.devices[0].clone();
    bare.pad_sensor = None;
    assert_eq!(required_liveness(&s, Some(&bare)), LivenessLevel::Active);
    assert_refusal(
        &check_liveness(&s, Some(&bare), LivenessLevel::Passive).unwrap_err(),
        RuleId::R20,
    );
}

#[test]
fn r20_none_without_devices_is_refused() {
    let src = gate_src_with_liveness("none");
    let (head, _) = src.split_once("[[devices]]").unwrap();
    let tail = "\n[filing]\nexpected_headcount = 3000\n";
    let src = format!("{head}{tail}");
    let r = lint(&src, "m");
    let e = r.of_rule(RuleId::R20);
    assert!(
        e.iter()
            .any(|d| d.severity == Severity::Error && d.path == "liveness"),
        "{}",
        r.render(&src)
    );
}

#[test]
fn r20_lint_liveness_none_without_pad_fixture() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/liveness-none-without-pad.toml");
    let src = std::fs::read_to_string(path).unwrap();
    let r = lint(&src, "liveness-none-without-pad.toml");
    let line = src
        .lines()
        .position(|l| l.contains("# expect: R20"))
        .unwrap()
        + 1;
    assert!(
        r.diagnostics.iter().any(|d| d.rule == Some(RuleId::R20)
            && d.line == line
            && d.severity == Severity::Error),
        "{}",
        r.render(&src)
    );
    let human = r.render(&src);
    assert!(
        human.contains("error[R20]") && human.contains("第十四条"),
        "{human}"
    );
}

#[test]
fn r20_pia_reports_the_liveness_level_per_device() {
    let inputs = PiaInputs {
        report_id: "PIA-G-1".into(),
        assessed_on: d("2025-05-20"),
        assessor: "DPO".into(),
        headcount: 3000,
        security_measures: vec![],
        incidents: vec![],
    };
    let r = pia_report(&gate(), &inputs);
    assert!(r.markdown.contains("liveness = active"), "{}", r.markdown);
    assert!(
        r.markdown.contains("| gate-north-1 | active |"),
        "{}",
        r.markdown
    );
    let s = parse_manifest(&gate_none_with_pad(&["gate-north-1", "gate-south-1"])).unwrap();
    let r = pia_report(&s, &inputs);
    assert!(r.markdown.contains("liveness = none"));
    assert!(r
        .markdown
        .contains("| gate-north-1 | none | 3D module X1 (CNAS report 2025-PAD-0042) |"));
    assert!(r.html.contains("活体检测"));
}

#[test]
fn r20_every_liveness_level_is_explained_in_both_languages() {
    // The Chinese text names the level in Chinese (no English word on a
    // Chinese page), the English one by its manifest key.
    for (level, key, zh_name) in [
        (LivenessLevel::Active, "active", "动作活体"),
        (LivenessLevel::Passive, "passive", "静默活体"),
        (LivenessLevel::None, "none", "不做活体检测"),
    ] {
        let mut s = gate();
        s.liveness = level;
        let (en, zh) = explain_liveness(&s);
        assert!(en.contains(key) && zh.contains(zh_name), "{zh}");
        assert!(!zh.contains(key), "{zh}");
        assert!(zh.contains("活体"));
        assert_eq!(level.key(), key);
        assert!(!level.name(Lang::Zh).is_empty() && !level.name(Lang::En).is_empty());
    }
    assert!(LivenessLevel::None < LivenessLevel::Passive);
    assert!(LivenessLevel::Passive < LivenessLevel::Active);
}
