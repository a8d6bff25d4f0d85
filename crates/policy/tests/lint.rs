//! The linter on the `init` manifests (pass) and on broken manifests (fail
//! with the right R-ID at the right line). Each fixture marks the line where
//! the error must be reported with a trailing `# expect: Rn` comment, like
//! rustc's UI tests.

mod common;

use common::template_with;
use facegate_policy::*;
use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn init_manifests_lint_clean_of_errors() {
    for name in INIT_TEMPLATES {
        let src = init_template(name).unwrap();
        let r = lint(src, name);
        assert!(!r.has_errors(), "{}", r.render(src));
        // Both are complete: the only finding left is the PIA to be made,
        // beside the note that explains the liveness level.
        let rules: Vec<_> = r
            .diagnostics
            .iter()
            .filter(|d| d.severity != Severity::Note)
            .map(|d| d.rule)
            .collect();
        assert_eq!(rules, vec![Some(RuleId::R13)], "{}", r.render(src));
        let notes: Vec<_> = r
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Note)
            .collect();
        assert_eq!(notes.len(), 1, "{}", r.render(src));
        assert_eq!(notes[0].rule, Some(RuleId::R20));
        assert_eq!(notes[0].path, "liveness");
        let s = parse_manifest(src).unwrap();
        assert_eq!(s.id, name);
    }
}

#[test]
fn init_manifests_with_their_pia_linked_have_no_findings() {
    for name in INIT_TEMPLATES {
        let s = parse_manifest(init_template(name).unwrap()).unwrap();
        let src = format!(
            "{}\n[pia]\nid = \"PIA-1\"\nassessed_on = \"2025-05-20\"\nfingerprint = \"{}\"\n",
            init_template(name).unwrap(),
            s.pia_fingerprint()
        );
        let r = lint(&src, name);
        assert_eq!(r.counts(), (0, 0), "{}", r.render(&src));
        assert!(
            r.diagnostics.iter().all(|d| d.severity == Severity::Note),
            "{}",
            r.render(&src)
        );
    }
}

fn expected(src: &str) -> BTreeSet<(RuleId, usize)> {
    src.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let tag = l.split("# expect: ").nth(1)?;
            Some((RuleId::parse(tag.trim()).expect("valid rule id"), i + 1))
        })
        .collect()
}

fn check_fixture(name: &str, rule: RuleId) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.toml"));
    let src = std::fs::read_to_string(&path).unwrap();
    let want = expected(&src);
    assert!(
        want.iter().any(|(r, _)| *r == rule),
        "{name}: fixture has no `# expect: {rule}`"
    );
    let r = lint(&src, name);
    assert!(r.has_errors(), "{name} should fail");
    let got: BTreeSet<(RuleId, usize)> = r
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.rule.expect("rule"), d.line))
        .collect();
    assert_eq!(got, want, "{name}:\n{}", r.render(&src));
    for d in r
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
    {
        let rule = d.rule.unwrap();
        assert_eq!(d.article.as_deref(), Some(rule.article()));
        // The article in Chinese too, as the JSON the console shows carries it.
        assert_eq!(d.article_zh.as_deref(), Some(rule.article_zh()));
        let json = serde_json::to_value(d).unwrap();
        assert_eq!(json["article_zh"], rule.article_zh(), "{json}");
        assert!(!d.message_zh.is_empty() && !d.hint_zh.is_empty() && !d.hint_en.is_empty());
        // The span points into the marked line.
        let line = src.lines().nth(d.line - 1).unwrap();
        assert!(line.contains("# expect"), "{name}: {line}");
        assert!(d.col >= 1);
    }
    let rendered = r.render(&src);
    assert!(rendered.contains(&format!("error[{rule}]")), "{rendered}");
    assert!(rendered.contains(&format!("--> {name}:")), "{rendered}");
    assert!(rendered.contains('^'));
    let json = r.to_json();
    assert!(json["errors"].as_u64().unwrap() >= 1);
    assert!(json["diagnostics"][0]["rule"].as_str().is_some(), "{json}");
    // parse_manifest refuses it too.
    assert!(parse_manifest(&src).is_err());
}

#[test]
fn r15_lint_face_only_manifest() {
    check_fixture("face-only", RuleId::R15);
}

#[test]
fn r19_lint_hotel_room_device() {
    check_fixture("hotel-room-device", RuleId::R19);
}

#[test]
fn r19_lint_public_device_whose_location_is_a_guest_room() {
    check_fixture("public-device-in-guest-room", RuleId::R19);
    // The caret is under the term itself, in the location value.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/public-device-in-guest-room.toml");
    let src = std::fs::read_to_string(path).unwrap();
    let r = lint(&src, "f");
    let d = r.of_rule(RuleId::R19)[0];
    assert_eq!(&src[d.span.clone()], "客房", "{}", r.render(&src));
    assert_eq!(d.path, "devices[0].location");
}

#[test]
fn r20_lint_liveness_none_without_a_certified_pad_sensor() {
    check_fixture("liveness-none-without-pad", RuleId::R20);
}

#[test]
fn r18_lint_public_device_without_signage() {
    check_fixture("public-device-no-signage", RuleId::R18);
}

#[test]
fn r12_lint_no_retention() {
    check_fixture("no-retention", RuleId::R12);
}

#[test]
fn r4_lint_notice_missing_an_art5_item() {
    check_fixture("notice-missing-item", RuleId::R4);
}

#[test]
fn r10_lint_minors_allowed_without_rules() {
    check_fixture("minors-without-rules", RuleId::R10);
}

#[test]
fn r14_lint_short_log_retention() {
    check_fixture("short-log-retention", RuleId::R14);
}

#[test]
fn r17_lint_coercive_copy() {
    check_fixture("coercive-copy", RuleId::R17);
}

#[test]
fn r1_lint_rnd_training_tag() {
    check_fixture("rnd-training-tag", RuleId::R1);
}

#[test]
fn r3_lint_identification_without_justification() {
    check_fixture("identification-unjustified", RuleId::R3);
}

#[test]
fn r11_lint_central_storage_without_transmission() {
    check_fixture("central-without-transmission", RuleId::R11);
}

#[test]
fn every_fixture_is_checked() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let n = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(n, 13, "add a test for each new fixture");
}

#[test]
fn syntax_and_schema_errors_are_located_and_lose_nothing() {
    let src = template_with(
        "residential-gate",
        "quiet_period_hours = 72",
        "quiet_period_hours = \"soon\"",
    );
    let r = lint(&src, "s.toml");
    assert_eq!(r.diagnostics.len(), 1);
    let d = &r.diagnostics[0];
    assert_eq!(d.rule, None);
    assert_eq!(d.code(), "E0001");
    let line = src.lines().nth(d.line - 1).unwrap();
    assert!(line.starts_with("quiet_period_hours"), "{line}");
    // An unknown key (say, an attempted override) is an error, not ignored.
    let src = template_with(
        "hotel-checkin",
        "placement = \"public_area\"",
        "placement = \"hotel_room\"\noverride_r19 = true",
    );
    let r = lint(&src, "s.toml");
    assert!(r.has_errors());
    assert!(
        r.diagnostics[0].message_en.contains("override_r19"),
        "{:?}",
        r.diagnostics
    );
    // Not TOML at all.
    assert!(lint("id = ", "s.toml").has_errors());
    assert!(lint("", "s.toml").has_errors());
}

#[test]
fn carets_line_up_under_chinese_text() {
    let src = template_with(
        "residential-gate",
        "purpose = { zh = \"核验业主",
        "purpose = { zh = \"必须刷脸。核验业主",
    );
    let r = lint(&src, "s.toml");
    let out = r.render(&src);
    assert!(out.contains("error[R17]"), "{out}");
    assert!(out.contains("R17 / Art. 12 (第十二条)"), "{out}");
}
