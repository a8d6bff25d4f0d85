//! Filing (R21–R23, R28): deadlines on the embedded working-day calendar,
//! headcount, alert levels, change detection and the filing pack.

mod common;

use common::*;
use facegate_policy::*;

#[track_caller]
fn deadline(reached: &str, kind: FilingKind) -> (String, bool) {
    let dl = filing_deadline(d(reached), kind);
    (dl.last_day.to_string(), dl.provisional)
}

#[test]
fn r21_deadline_examples_from_the_issue() {
    for (reached, last) in [
        ("2025-06-01", "2025-07-14"),
        ("2025-09-15", "2025-10-31"),
        ("2025-12-20", "2026-02-02"),
        ("2026-01-20", "2026-03-09"),
        ("2026-09-10", "2026-10-28"),
    ] {
        assert_eq!(
            deadline(reached, FilingKind::Initial),
            (last.to_string(), false),
            "reached {reached}"
        );
    }
}

#[test]
fn r21_deadline_beyond_the_known_calendar_is_provisional() {
    let (last, provisional) = deadline("2026-12-01", FilingKind::Initial);
    assert!(provisional);
    assert_eq!(last, "2027-01-12");
    // A count that ends inside 2026 is not provisional.
    assert!(!deadline("2026-11-02", FilingKind::Initial).1);
}

#[test]
fn r21_trigger_day_is_not_counted_and_make_up_days_are() {
    let cal = WorkCalendar::official();
    // 2025-09-28 (Sunday) is an official working day; 2025-10-01..08 are not.
    assert!(cal.is_working_day(d("2025-09-28")));
    assert!(!cal.is_working_day(d("2025-10-03")));
    assert!(!cal.is_working_day(d("2025-10-04")));
    // One working day after Friday 2025-09-26 is Sunday 2025-09-28.
    assert_eq!(
        cal.add_working_days(d("2025-09-26"), 1),
        (d("2025-09-28"), false)
    );
    // One working day after 2025-09-30 is 2025-10-09.
    assert_eq!(
        cal.add_working_days(d("2025-09-30"), 1),
        (d("2025-10-09"), false)
    );
}

#[test]
fn r21_headcount_counts_distinct_persons_across_scenarios() {
    let gate = ["p1", "p2", "p3"];
    let attendance = ["p2", "p3", "p4"];
    assert_eq!(
        distinct_headcount(gate.iter().chain(&attendance).copied()),
        4
    );
    let series = [
        (d("2025-08-03"), 100_250),
        (d("2025-08-01"), 99_990),
        (d("2025-08-02"), 100_000),
    ];
    assert_eq!(threshold_reached_on(&series), Some(d("2025-08-02")));
    assert_eq!(threshold_reached_on(&series[1..2]), None);
}

#[test]
fn r21_alert_levels_at_80_and_95_percent() {
    let l = DEFAULT_ALERT_LEVELS;
    assert_eq!(alert_level(79_999, l), AlertLevel::None);
    assert_eq!(alert_level(80_000, l), AlertLevel::Watch);
    assert_eq!(alert_level(94_999, l), AlertLevel::Watch);
    assert_eq!(alert_level(95_000, l), AlertLevel::Warning);
    assert_eq!(alert_level(99_999, l), AlertLevel::Warning);
    assert_eq!(alert_level(100_000, l), AlertLevel::FilingDue);
}

#[test]
fn r21_lint_warns_when_expected_headcount_reaches_the_threshold_unfiled() {
    let src = template_with(
        "residential-gate",
        "expected_headcount = 3000",
        "expected_headcount = 120000",
    );
    let r = lint(&src, "x.toml");
    let w = r.of_rule(RuleId::R21);
    assert_eq!(w.len(), 1, "{:?}", r.diagnostics);
    assert_eq!(w[0].article.as_deref(), Some("Art. 15"));
}

#[test]
fn r22_change_filing_is_due_when_filed_attributes_change() {
    let s = gate();
    let measures = vec!["加密 encryption".to_string()];
    let filed = FilingSnapshot::of(std::slice::from_ref(&s), &measures, "PIA-1");
    assert!(filed
        .changes(&FilingSnapshot::of(
            std::slice::from_ref(&s),
            &measures,
            "PIA-1"
        ))
        .is_empty());
    let mut s2 = s.clone();
    s2.methods.push(Method::Pin);
    let now = FilingSnapshot::of(std::slice::from_ref(&s2), &measures, "PIA-2");
    assert_eq!(
        filed.changes(&now),
        vec!["method".to_string(), "pia".to_string()]
    );
    let dl = filing_deadline(d("2025-09-15"), FilingKind::Change);
    assert_eq!(
        (dl.last_day, dl.kind.rule()),
        (d("2025-10-31"), RuleId::R22)
    );
}

#[test]
fn r23_deregistration_deadline_is_30_working_days_after_stopping() {
    let dl = filing_deadline(d("2025-12-20"), FilingKind::Deregistration);
    assert_eq!(dl.last_day, d("2026-02-02"));
    assert_eq!(dl.kind.rule(), RuleId::R23);
    assert_eq!(dl.kind.rule().article(), "Art. 15");
}

#[test]
fn r28_processor_above_threshold_before_in_force_files_by_2025_07_14() {
    let dl = filing_deadline(d("2024-11-11"), FilingKind::Initial);
    assert_eq!(dl.counted_from, d("2025-06-01"));
    assert_eq!(dl.last_day, d("2025-07-14"));
    assert!(!dl.provisional);
}

#[test]
fn r21_filing_pack_has_the_five_contents() {
    let scenarios = [gate(), hotel()];
    let pias: Vec<_> = scenarios
        .iter()
        .map(|s| {
            pia_report(
                s,
                &PiaInputs {
                    report_id: format!("PIA-{}", s.id),
                    assessed_on: d("2025-05-20"),
                    assessor: "DPO".into(),
                    headcount: 100_250,
                    security_measures: vec![],
                    incidents: vec![],
                },
            )
        })
        .collect();
    let pack = filing_pack(
        &scenarios,
        &FilingPackInputs {
            headcount: 100_250,
            threshold_reached_on: Some(d("2025-09-15")),
            security_measures: vec!["加密 encryption".into(), "审计 audit".into()],
            procedures: vec!["每月核对设备清单 / monthly device inventory".into()],
        },
        &pias,
    );
    for h in [
        "\n## 一、",
        "\n## 二、",
        "\n## 三、",
        "\n## 四、",
        "\n## 五、",
    ] {
        assert_eq!(pack.markdown.matches(h).count(), 1, "{h} once");
    }
    // Each PIA's four contents sit under 五、 as level-4 headings.
    assert_eq!(pack.markdown.matches("\n#### 一、").count(), 2);
    assert_eq!(pack.html.matches("<h2>").count(), 5);
    assert!(pack.markdown.contains("100250"));
    assert!(pack.markdown.contains("2025-10-31"));
    assert!(pack.markdown.contains("PIA-hotel-checkin"));
    assert_eq!(pack.deadline.unwrap().last_day, d("2025-10-31"));
    assert!(pack.html.contains("<section class=\"pia\""));
    assert_eq!(pack.html.matches("</html>").count(), 1);
}
