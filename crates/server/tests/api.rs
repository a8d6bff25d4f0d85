//! API tests against a real server (SQLite file, real models, real policy):
//! every role boundary, refusals naming their rule, and the rights paths.

mod common;

use axum::http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn role_boundaries_hold() {
    let t = common::server().await;
    let alice = t.consenting_person("Alice", "1990-05-01").await;
    let bob = t.consenting_person("Bob", "1985-03-03").await;

    // Unauthenticated calls fail (and a wrong key is the same as none).
    for (m, p) in [
        ("GET", format!("/v1/persons/{alice}")),
        ("GET", "/v1/dashboard".to_string()),
        ("GET", "/v1/audit".to_string()),
        ("POST", "/v1/verify".to_string()),
    ] {
        let (s, b) = t.call(m, &p, None, Some(json!({}))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {p}: {b}");
        let (s, _) = t.call(m, &p, Some("fgk_nope_nope"), Some(json!({}))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {p}");
    }

    // A device key cannot read persons, the dashboard or the audit log.
    for p in [
        format!("/v1/persons/{alice}"),
        format!("/v1/persons/{alice}/consents"),
        format!("/v1/persons/{alice}/export"),
        "/v1/audit".into(),
        "/v1/dashboard".into(),
    ] {
        let (s, b) = t.call("GET", &p, Some(&t.device), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{p}: {b}");
    }
    // …nor act as another device.
    let nv = t.notice_version().await;
    let (s, _) = t
        .call(
            "POST",
            "/v1/consents",
            Some(&t.device),
            Some(json!({"person_id": alice, "notice_version": nv, "device_id": "gate-south-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // An auditor reads but cannot write.
    let (s, _) = t
        .call("GET", "/v1/audit/verify", Some(&t.auditor), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t
        .call(
            "GET",
            &format!("/v1/persons/{alice}"),
            Some(&t.auditor),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    for (p, body) in [
        ("/v1/persons", json!({"display_name": "X"})),
        (
            "/v1/consents",
            json!({"person_id": alice, "notice_version": nv}),
        ),
        ("/v1/keys", json!({"role": "admin"})),
        (
            "/v1/credentials",
            json!({"person_id": alice, "secret": "123456"}),
        ),
    ] {
        let (s, b) = t.call("POST", p, Some(&t.auditor), Some(body)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{p}: {b}");
    }
    let (s, _) = t
        .call(
            "POST",
            &format!("/v1/persons/{alice}/erase"),
            Some(&t.auditor),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Only an admin issues keys.
    let (s, _) = t
        .call(
            "POST",
            "/v1/keys",
            Some(&t.device),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A portal session reaches only its own person (IDOR).
    let (s, code) = t
        .call(
            "POST",
            &format!("/v1/persons/{alice}/portal-code"),
            Some(&t.admin),
            Some(json!({"identity_check": "ID card checked (test)"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, sess) = t
        .call(
            "POST",
            "/v1/portal/session",
            None,
            Some(json!({"code": code["code"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{sess}");
    let tok = sess["token"].as_str().unwrap().to_string();
    let (s, me) = t.call("GET", "/v1/me", Some(&tok), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["person"]["id"], alice.as_str());
    let (s, _) = t
        .call(
            "GET",
            &format!("/v1/persons/{alice}/export"),
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    for p in [
        format!("/v1/persons/{bob}"),
        format!("/v1/persons/{bob}/consents"),
        format!("/v1/persons/{bob}/export"),
    ] {
        let (s, _) = t.call("GET", &p, Some(&tok), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}");
    }
    let (s, _) = t
        .call(
            "POST",
            &format!("/v1/persons/{bob}/erase"),
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let bob_consents = t.consents(&bob).await;
    let bob_consent = bob_consents[0]["id"].as_str().unwrap();
    let (s, _) = t
        .call(
            "POST",
            &format!("/v1/consents/{bob_consent}/withdraw"),
            Some(&tok),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for p in ["/v1/dashboard", "/v1/audit", "/v1/requests"] {
        let (s, _) = t.call("GET", p, Some(&tok), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{p}");
    }
    // The code was single use.
    let (s, _) = t
        .call(
            "POST",
            "/v1/portal/session",
            None,
            Some(json!({"code": code["code"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn r10_under_14_needs_guardian_consent() {
    let t = common::server().await;
    let today = chrono::Utc::now().date_naive();
    let dob = today.with_year_sub(12);
    let (_, p) = t
        .call(
            "POST",
            "/v1/persons",
            Some(&t.admin),
            Some(json!({"display_name": "小明", "date_of_birth": dob})),
        )
        .await;
    let kid = p["id"].as_str().unwrap().to_string();
    let nv = t.notice_version().await;
    // The child alone cannot consent …
    let (s, b) = t
        .call(
            "POST",
            "/v1/consents",
            Some(&t.device),
            Some(json!({"person_id": kid, "notice_version": nv, "device_id": "gate-north-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(b["rule"], "R10");
    assert_eq!(b["article"], "Art. 7");
    assert_eq!(b["article_zh"], "第七条");
    assert!(b["message_zh"].as_str().unwrap().contains("监护人"));
    // … and cannot be enrolled: policy refuses before any pixel is read.
    let (s, b) = t.face("/v1/enrol", &kid, "obama.jpg").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(b["rule"].is_string());
    // The refusal's receipt, in the person's portal, names the same rule
    // and article in both languages.
    let tok = t.portal_token(&kid).await;
    let (s, me) = t.call("GET", "/v1/me", Some(&tok), None).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    let refused = &me["recent"][0];
    assert_eq!(refused["result"], "refused", "{me}");
    assert_eq!(refused["refusal_rule"], b["rule"], "{me}");
    assert_eq!(refused["refusal_article"], b["article"], "{me}");
    assert_eq!(refused["refusal_article_zh"], b["article_zh"], "{me}");
    assert!(refused["refusal_article_zh"].is_string(), "{me}");
    // With a guardian's consent, enrolment succeeds.
    let (s, b) = t
        .call(
            "POST",
            "/v1/consents",
            Some(&t.device),
            Some(
                json!({"person_id": kid, "notice_version": nv, "device_id": "gate-north-1",
                          "guardian": {"name": "王芳", "relationship": "父母 / parent"}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["given_by"], "guardian");
    let (s, b) = t.face("/v1/enrol", &kid, "obama.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["outcome"], "enrolled");
}

trait SubYears {
    fn with_year_sub(self, y: i32) -> chrono::NaiveDate;
}
impl SubYears for chrono::NaiveDate {
    fn with_year_sub(self, y: i32) -> chrono::NaiveDate {
        use chrono::Datelike;
        self.with_year(self.year() - y)
            .unwrap_or(self - chrono::Duration::days(365 * y as i64))
    }
}

#[tokio::test]
async fn r8_withdrawal_refuses_face_and_the_pin_still_works() {
    let t = common::server().await;
    let p = t.consenting_person("Obama", "1961-08-04").await;
    let (s, b) = t.face("/v1/enrol", &p, "obama.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t
        .call("POST", "/v1/credentials", Some(&t.device), Some(json!({"person_id": p, "device_id": "gate-north-1", "kind": "pin", "secret": "246810"})))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Same person, other photo: pass; another person: fail. Both get receipts.
    let (s, b) = t.face("/v1/verify", &p, "obama2.jpg").await;
    assert_eq!(
        (s, b["outcome"].as_str()),
        (StatusCode::OK, Some("pass")),
        "{b}"
    );
    let face_grants = b["grants"].clone();
    assert!(b["receipt_id"].as_str().unwrap().len() >= 32);
    let (_, b) = t.face("/v1/verify", &p, "biden.jpg").await;
    assert_eq!(b["outcome"], "fail");

    // Withdraw in one step: templates deleted in the same transaction.
    let cs = t.consents(&p).await;
    let cid = cs[0]["id"].as_str().unwrap();
    let (s, w) = t
        .call(
            "POST",
            &format!("/v1/consents/{cid}/withdraw"),
            Some(&t.device),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(w["templates_deleted"], 1);
    assert!(w["alternatives"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "pin"));

    // The next face attempt is refused by R8, naming rule and article …
    let (s, b) = t.face("/v1/verify", &p, "obama2.jpg").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"], "refused");
    assert!(b["rule"].as_str().unwrap().starts_with('R'));
    assert!(b["article"].as_str().unwrap().starts_with("Art."));
    assert!(
        !b["message_zh"].as_str().unwrap().is_empty()
            && !b["message_en"].as_str().unwrap().is_empty()
    );
    // … while the PIN still reaches the same outcome.
    let (s, b) = t
        .call(
            "POST",
            "/v1/verify/credential",
            Some(&t.device),
            Some(json!({"person_id": p, "device_id": "gate-north-1", "secret": "246810"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["outcome"], "pass");
    assert_eq!(b["grants"], face_grants);
}

#[tokio::test]
async fn data_keys_live_in_the_store_only_and_are_written_when_new() {
    let t = common::server().await;
    assert!(t.state.store.wrapped_keys().await.unwrap().is_empty());
    let a = t.consenting_person("Obama", "1961-08-04").await;
    let (s, b) = t.face("/v1/enrol", &a, "obama.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The scenario's new data key reached the store with the first template.
    let before = t.state.store.wrapped_keys().await.unwrap();
    assert_eq!(before.len(), 1);
    let b_id = t.consenting_person("Biden", "1942-11-20").await;
    let (s, b) = t.face("/v1/enrol", &b_id, "biden.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Same key: not written again.
    assert_eq!(t.state.store.wrapped_keys().await.unwrap(), before);
    // No key file beside the database: the store's table is the one place.
    assert!(!t.dir.join("keyring.bin").exists());
    // The stored keys alone open every committed template, as a restarted
    // server does.
    let kek = facegate_gallery::Kek::load_or_create(&t.dir.join("template.kek")).unwrap();
    let wrapped: Vec<_> = before
        .iter()
        .map(|w| facegate_gallery::WrappedKey::from_bytes(&w.wrapped).unwrap())
        .collect();
    let ring = facegate_gallery::Keyring::with_wrapped(kek, &wrapped).unwrap();
    let d = t.state.scenario(None).unwrap();
    let g = facegate_server::deploy::load_gallery(
        &t.state.store,
        &ring,
        d.store_id,
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(g.len(), 2);
}

/// Rewrite audit record `seq`'s details behind the server's back; returns
/// what was there.
async fn rewrite_audit_details(t: &common::T, seq: i64, details: &str) -> String {
    use sqlx::Connection;
    let url = format!("sqlite:{}", t.dir.join("facegate.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let (old,): (String,) = sqlx::query_as("SELECT details FROM audit_log WHERE seq = $1")
        .bind(seq)
        .fetch_one(&mut c)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET details = $1 WHERE seq = $2")
        .bind(details)
        .bind(seq)
        .execute(&mut c)
        .await
        .unwrap();
    old
}

#[tokio::test]
async fn r14_the_dashboard_reuses_a_chain_check_only_while_the_head_is_unchanged() {
    let t = common::server().await;
    let checks = || {
        t.state
            .metrics
            .sum("facegate_audit_chain_verifications_total", "")
    };
    let dashboard = || async {
        let (s, d) = t.call("GET", "/v1/dashboard", Some(&t.auditor), None).await;
        assert_eq!(s, StatusCode::OK, "{d}");
        d
    };
    let verify = || async {
        let (s, v) = t
            .call("GET", "/v1/audit/verify", Some(&t.auditor), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    };
    let d = dashboard().await;
    assert_eq!(d["chain_intact"], true, "{d}");
    let n = checks();
    assert!(n >= 1);
    // Nothing appended: the next load reuses the walk.
    let again = dashboard().await;
    assert_eq!(again["audit_records"], d["audit_records"]);
    assert_eq!(again["chain_intact"], true);
    assert_eq!(checks(), n, "an unchanged head is not verified again");

    // An older record is edited: the explicit verification always walks the
    // whole chain, names the record, and the dashboard shows it at once.
    let original = rewrite_audit_details(&t, 2, r#"{"forged":true}"#).await;
    let v = verify().await;
    assert_eq!(v["intact"], false, "{v}");
    assert_eq!(v["report"]["fault"]["seq"], 2, "{v}");
    assert_eq!(dashboard().await["chain_intact"], false);

    // Put back, verified intact, cached; then edited again after that
    // cached check: the next append moves the head and the dashboard walks
    // the chain again and sees it.
    rewrite_audit_details(&t, 2, &original).await;
    assert_eq!(verify().await["intact"], true);
    assert_eq!(dashboard().await["chain_intact"], true);
    let n = checks();
    rewrite_audit_details(&t, 2, r#"{"forged":true}"#).await;
    t.consenting_person("Eve", "1990-01-01").await; // audited: the head moves
    let d = dashboard().await;
    assert_eq!(d["chain_intact"], false, "{d}");
    assert_eq!(checks(), n + 1);
}

#[tokio::test]
async fn pins_cannot_be_brute_forced() {
    let t = common::server().await;
    let p = t.consenting_person("Carol", "1970-01-01").await;
    let (s, b) = t
        .call(
            "POST",
            "/v1/credentials",
            Some(&t.admin),
            Some(json!({"person_id": p, "secret": "13579"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the PIN is registered before it is locked: {b}"
    );
    for i in 0..5 {
        let (s, b) = t
            .call("POST", "/v1/verify/credential", Some(&t.device), Some(json!({"person_id": p, "device_id": "gate-north-1", "secret": format!("0000{i}")})))
            .await;
        assert_eq!((s, b["outcome"].as_str()), (StatusCode::OK, Some("fail")));
    }
    // Locked for this person, whichever key asks, even with the right PIN.
    let (s, b) = t
        .call(
            "POST",
            "/v1/verify/credential",
            Some(&t.admin),
            Some(json!({"person_id": p, "secret": "13579"})),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_loses_nothing() {
    let t = common::server().await;
    let p = t.consenting_person("Dan", "1970-01-01").await;
    let (s, b) = t
        .call(
            "POST",
            "/v1/enrol",
            Some(&t.device),
            Some(json!({"person_id": p, "device_id": "gate-north-1", "images": ["not base64!"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(!b["message_zh"].as_str().unwrap().is_empty());
    let (s, b) = t.face("/v1/enrol", &p, "coffee.png").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    // Nothing was enrolled by the failures.
    let (_, d) = t.call("GET", "/v1/dashboard", Some(&t.auditor), None).await;
    assert_eq!(d["filing"]["headcount"], 0);
    assert_eq!(d["chain_intact"], true);
    // A body over the limit is refused before it is read.
    let big = "A".repeat(9 * 1024 * 1024);
    let (s, _) = t
        .call(
            "POST",
            "/v1/enrol",
            Some(&t.device),
            Some(json!({"person_id": p, "images": [big]})),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn openapi_document_is_checked_in() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let doc = facegate_server::openapi::document();
    if std::env::var_os("FACEGATE_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &doc).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == doc,
        "crates/server/openapi.json is out of date: run FACEGATE_UPDATE_OPENAPI=1 cargo test -p facegate-server --test api openapi"
    );
}

#[tokio::test]
async fn r15_a_face_only_manifest_is_refused_at_startup_naming_rule_and_article() {
    let dir = std::env::temp_dir().join(format!("facegate-server-test-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = facegate_server::deploy::demo_manifest().replacen(
        "methods = [\"face\", \"pin\", \"card\", \"qr_code\", \"staffed_check\"]",
        "methods = [\"face\"]",
        1,
    );
    let path = dir.join("face-only.toml");
    std::fs::write(&path, manifest).unwrap();
    let mut config = facegate_server::ServerConfig::new(&dir);
    config.scenario = Some(path);
    let err = match facegate_server::AppState::open(config).await {
        Ok(_) => panic!("a face-only manifest must not deploy"),
        Err(e) => e.body(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    // The deploy's one lint refuses it as a refusal of the Measures (as
    // the device routes do), naming the rule and its article.
    assert_eq!(err.error, "refused");
    assert_eq!(err.rule.as_deref(), Some("R15"));
    assert!(
        err.message_en.contains("R15 / Art. 10"),
        "{}",
        err.message_en
    );
    assert!(
        err.message_zh.contains("R15 / 第十条"),
        "{}",
        err.message_zh
    );
}

#[tokio::test]
async fn r15_an_uploaded_face_only_manifest_is_refused_naming_rule_and_article_in_both_languages() {
    let t = common::server().await;
    let manifest = facegate_server::deploy::demo_manifest();
    let face_only = manifest.replacen(
        "methods = [\"face\", \"pin\", \"card\", \"qr_code\", \"staffed_check\"]",
        "methods = [\"face\"]",
        1,
    );
    assert_ne!(
        face_only, manifest,
        "the demo manifest's methods line moved"
    );
    let (s, b) = t
        .send(
            "POST",
            "/v1/scenarios",
            Some(&t.admin),
            Some(("application/toml", face_only)),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["ok"], false);
    let r15: Vec<_> = b["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["rule"] == "R15")
        .collect();
    assert!(!r15.is_empty(), "{b}");
    for d in r15 {
        assert_eq!(d["severity"], "error", "{d}");
        assert_eq!(d["article"], "Art. 10", "{d}");
        assert_eq!(d["article_zh"], "第十条", "{d}");
        assert!(!d["message_zh"].as_str().unwrap().is_empty(), "{d}");
        assert!(!d["message_en"].as_str().unwrap().is_empty(), "{d}");
    }
    // Nothing was deployed.
    let (_, ss) = t.call("GET", "/v1/scenarios", Some(&t.admin), None).await;
    assert_eq!(ss.as_array().unwrap().len(), 1, "{ss}");
}

#[tokio::test]
async fn an_erased_person_is_not_found_at_the_front_line() {
    let t = common::server().await;
    let p = t.consenting_person("Dave", "1980-05-05").await;
    let (s, b) = t
        .call(
            "POST",
            &format!("/v1/persons/{p}/erase"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let nv = t.notice_version().await;
    let (s, b) = t
        .call(
            "POST",
            "/v1/consents",
            Some(&t.device),
            Some(json!({"person_id": p, "notice_version": nv, "device_id": "gate-north-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "consent: {b}");
    let (s, b) = t
        .call(
            "POST",
            &format!("/v1/persons/{p}/portal-code"),
            Some(&t.device),
            Some(json!({"device_id": "gate-north-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "portal code: {b}");
    let (s, b) = t.face("/v1/verify", &p, "obama.jpg").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "verify: {b}");
    let (s, b) = t
        .call(
            "POST",
            "/v1/verify/credential",
            Some(&t.device),
            Some(json!({"person_id": p, "device_id": "gate-north-1", "secret": "13579"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "credential: {b}");
}
