//! A site's attachment to its hub changes only by explicit acts (issue 16):
//! a start without `--hub` (a replica, or a restart without the flag) keeps
//! the pinned hub key, so local uploads stay refused; `facegate hub-detach`
//! removes it, with an audit record.

mod common;

use common::*;

#[test]
fn a_start_without_hub_keeps_the_hub_pin_until_hub_detach() {
    let root = std::env::temp_dir().join(format!("facegate-detach-{}", uuid::Uuid::now_v7()));
    let dir = root.join("site");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = dir.join("facegate.db");
    let manifest = facegate_core::deploy::demo_manifest();
    let upload = |s: &SiteProc, admin: &str, tag: &str| {
        http(
            &s.addr,
            "POST",
            "/v1/scenarios",
            Some(admin),
            Some(format!("{manifest}\n# {tag}\n")),
        )
    };

    let s = serve_alone(&dir);
    let admin = s
        .admin
        .clone()
        .expect("the first start prints the admin key");
    assert_eq!(
        upload(&s, &admin, "alone").0,
        200,
        "a site alone deploys its own"
    );
    s.proc.kill9();

    // Pinned, as a start with --hub --hub-manifest-key leaves it.
    sqlite(
        &rt,
        &db,
        &format!(
            "INSERT INTO hub_manifest_pin (id, public_key, pinned_at) VALUES (1, '{}', '2026-11-27T00:00:00Z')",
            "ab".repeat(32)
        ),
    );
    let s = serve_alone(&dir);
    let (st, v) = upload(&s, &admin, "after a start without --hub");
    assert_eq!(st, 409, "still attached: {v}");
    assert!(v["message_en"].as_str().unwrap().contains("hub"), "{v}");
    s.proc.kill9();

    let detach = || {
        let out = bin()
            .args(["hub-detach", "--data-dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(detach().starts_with("detached"));
    assert!(
        detach().contains("not attached"),
        "a second detach changes nothing"
    );
    assert_eq!(
        sqlite(
            &rt,
            &db,
            "SELECT actor FROM audit_log WHERE event = 'hub_detached'"
        ),
        vec!["cli:hub-detach".to_string()],
        "one audit record, for the one detachment"
    );
    let s = serve_alone(&dir);
    assert_eq!(
        upload(&s, &admin, "detached").0,
        200,
        "detached: its own deploy again"
    );
    s.proc.kill9();
    let _ = std::fs::remove_dir_all(&root);
}
