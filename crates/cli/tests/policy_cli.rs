//! The policy subcommands as a user runs them: the real `facegate` binary on
//! the shipped manifests and the broken fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn facegate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(args)
        .output()
        .expect("run facegate")
}

fn policy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn init_writes_manifests_that_lint_clean() {
    let dir = std::env::temp_dir().join(format!("facegate-cli-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for template in ["residential-gate", "hotel-checkin"] {
        let file = dir.join(format!("{template}.toml"));
        let _ = std::fs::remove_file(&file);
        let o = facegate(&["init", "--template", template, "-o", file.to_str().unwrap()]);
        assert!(o.status.success(), "init {template}: {}", text(&o));
        let o = facegate(&["lint", file.to_str().unwrap()]);
        assert!(o.status.success(), "lint {template}: {}", text(&o));
        // init refuses to overwrite what an operator already edited.
        let o = facegate(&["init", "--template", template, "-o", file.to_str().unwrap()]);
        assert!(
            !o.status.success(),
            "init overwrote {template} without --force"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lint_fails_every_broken_fixture_naming_its_rule_and_line() {
    let fixtures = policy_dir().join("tests/fixtures");
    let mut seen = 0;
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        // Each fixture marks the offending line with `# expect: Rn`.
        let expected: Vec<(usize, String)> = src
            .lines()
            .enumerate()
            .filter_map(|(i, l)| {
                l.split("# expect: ")
                    .nth(1)
                    .map(|r| (i + 1, r.split_whitespace().next().unwrap().to_string()))
            })
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` marker",
            path.display()
        );
        let o = facegate(&["lint", "--json", path.to_str().unwrap()]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{} should fail lint: {}",
            path.display(),
            text(&o)
        );
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).expect("lint --json prints JSON");
        let report = if v.is_array() { v[0].clone() } else { v };
        let diags = report["diagnostics"].as_array().expect("diagnostics array");
        for (line, rule) in &expected {
            let hit = diags.iter().any(|d| {
                d["rule"] == serde_json::json!(rule)
                    && d["line"] == serde_json::json!(line)
                    && d["severity"] == "error"
            });
            assert!(
                hit,
                "{}: no {rule} error at line {line}: {report}",
                path.display()
            );
        }
        // The human form names the rule and article in both languages.
        let o = facegate(&["lint", path.to_str().unwrap()]);
        let human = text(&o);
        assert!(
            human.contains(&expected[0].1),
            "{}: {human}",
            path.display()
        );
        assert!(
            human.contains("Art.") && human.contains('第'),
            "{}: {human}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 6, "only {seen} broken fixtures found");
}

#[test]
fn r21_filing_deadline_command_counts_working_days() {
    for (reached, last) in [
        ("2025-06-01", "2025-07-14"),
        ("2025-09-15", "2025-10-31"),
        ("2025-12-20", "2026-02-02"),
        ("2026-01-20", "2026-03-09"),
        ("2026-09-10", "2026-10-28"),
    ] {
        let o = facegate(&["filing", "deadline", "--reached", reached]);
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(last), "{reached}: expected {last}, got {out}");
        assert!(
            !out.to_lowercase().contains("provisional"),
            "{reached} is not provisional: {out}"
        );
    }
    let o = facegate(&["filing", "deadline", "--reached", "2026-12-01", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["provisional"], serde_json::Value::Bool(true), "{v}");
}

#[test]
fn r9_notice_since_names_the_rule_and_article_when_fresh_consent_is_needed() {
    let dir = std::env::temp_dir().join(format!("facegate-cli-notice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join("old.toml");
    let new = dir.join("new.toml");
    let _ = std::fs::remove_file(&old);
    let o = facegate(&["init", "-o", old.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let src = std::fs::read_to_string(&old).unwrap();
    let purpose = "核验业主、住户身份，开启小区出入口门禁。";
    assert!(src.contains(purpose), "template purpose changed");
    std::fs::write(&new, src.replace(purpose, "核验住户身份并统计访客流量。")).unwrap();
    let o = facegate(&[
        "notice",
        new.to_str().unwrap(),
        "--since",
        old.to_str().unwrap(),
    ]);
    let out = text(&o);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("R9 / Art. 6") && out.contains("R9 第六条"),
        "{out}"
    );
}
