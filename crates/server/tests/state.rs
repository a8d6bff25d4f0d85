//! Issue 11 behaviours through the HTTP API: state that survives a restart
//! (keys, declines, sessions, lock-outs), R17 on the server, portal access
//! only for the person, lock-outs counted before the secret is checked, and
//! device actions scoped to the person in front of the device.

mod common;

use axum::http::StatusCode;
use serde_json::{json, Value};

async fn pin(t: &common::T, p: &str, secret: &str) -> (StatusCode, Value) {
    t.call(
        "POST",
        "/v1/verify/credential",
        Some(&t.device),
        Some(json!({"person_id": p, "device_id": "gate-north-1", "secret": secret})),
    )
    .await
}

async fn set_pin(t: &common::T, p: &str) {
    let (s, b) = t
        .call(
            "POST",
            "/v1/credentials",
            Some(&t.device),
            Some(json!({"person_id": p, "device_id": "gate-north-1", "kind": "pin", "secret": "246810"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

async fn decline(t: &common::T, p: &str) -> (StatusCode, Value) {
    t.call(
        "POST",
        "/v1/decline-face",
        Some(&t.device),
        Some(json!({"person_id": p, "device_id": "gate-north-1"})),
    )
    .await
}

#[tokio::test]
async fn r17_a_face_attempt_after_a_decline_is_refused_until_the_person_opts_back_in() {
    let t = common::server().await;
    let p = t.consenting_person("Obama", "1961-08-04").await;
    let (s, b) = t.face("/v1/enrol", &p, "obama.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The kiosk records the decline once the person has used the other
    // method at it.
    set_pin(&t, &p).await;
    let (s, b) = pin(&t, &p, "246810").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = decline(&t, &p).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t.face("/v1/verify", &p, "obama2.jpg").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["rule"], "R17", "{b}");
    assert_eq!(b["article"], "Art. 12", "{b}");
    // A restart does not forget it (the decline is in the store).
    let t2 = t.restart().await;
    let (s, b) = t2.face("/v1/verify", &p, "obama2.jpg").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["rule"], "R17");
    // The alternative still works (R15) …
    let (s, b) = pin(&t, &p, "246810").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["outcome"], "pass");
    // … and an explicit opt-in (recorded) lifts it.
    let (s, b) = t
        .call(
            "POST",
            "/v1/opt-in-face",
            Some(&t.device),
            Some(json!({"person_id": p, "device_id": "gate-north-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["lifted"], true);
    let (s, b) = t.face("/v1/verify", &p, "obama2.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["outcome"], "pass");
    let recs = t.state.store.audit_records(1, 10_000).await.unwrap();
    assert!(recs.iter().any(|r| r.event == "face_declined"));
    assert!(recs.iter().any(|r| r.event == "face_opted_in"));
}

#[tokio::test]
async fn r17_a_device_declines_face_only_for_the_person_who_just_used_another_method_there() {
    let t = common::server().await;
    let victim = t.consenting_person("Obama", "1961-08-04").await;
    let (s, b) = t.face("/v1/enrol", &victim, "obama.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Any device key naming any person: refused, and the person's face
    // still works (no denial of service on anyone for the quiet period).
    let (s, b) = decline(&t, &victim).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = t.face("/v1/verify", &victim, "obama2.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["outcome"], "pass", "{b}");
    // A face pass is not "another method": still refused.
    let (s, b) = decline(&t, &victim).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    // Registering a PIN (a device may, for anyone) or a wrong PIN is not a
    // passed check either.
    set_pin(&t, &victim).await;
    let (s, b) = decline(&t, &victim).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = pin(&t, &victim, "000000").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["outcome"], "fail");
    let (s, b) = decline(&t, &victim).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    // The right PIN at this device: the person is in front of it.
    let (s, b) = pin(&t, &victim, "246810").await;
    assert_eq!(b["outcome"], "pass", "{b}");
    let (s2, b) = decline(&t, &victim).await;
    assert_eq!((s, s2), (StatusCode::OK, StatusCode::OK), "{b}");
    // Another person, who used nothing at the device: refused.
    let other = t.consenting_person("Biden", "1942-11-20").await;
    let (s, b) = decline(&t, &other).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    // An operator always may.
    let (s, b) = t
        .call(
            "POST",
            "/v1/decline-face",
            Some(&t.admin),
            Some(json!({"person_id": other, "device_id": "gate-north-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn r17_decline_face_only_for_an_existing_person() {
    let t = common::server().await;
    let (s, b) = decline(&t, &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, b) = decline(&t, "not-a-uuid").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
}

#[tokio::test]
async fn portal_code_only_for_the_person_who_just_passed_at_the_device() {
    let t = common::server().await;
    let alice = t.consenting_person("Alice", "1990-01-01").await;
    let bob = t.consenting_person("Bob", "1990-01-01").await;
    set_pin(&t, &alice).await;
    let code_for = |p: String| {
        let t = &t;
        async move {
            t.call(
                "POST",
                &format!("/v1/persons/{p}/portal-code"),
                Some(&t.device),
                Some(json!({"device_id": "gate-north-1"})),
            )
            .await
        }
    };
    // Nobody passed yet.
    let (s, b) = code_for(alice.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    // A failed check is no basis.
    let (s, b) = pin(&t, &alice, "000000").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["outcome"], "fail");
    let (s, _) = code_for(alice.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A pass is, for that person only.
    let (s, b) = pin(&t, &alice, "246810").await;
    assert_eq!(b["outcome"], "pass", "{b}");
    let (s2, b2) = code_for(alice.clone()).await;
    assert_eq!((s, s2), (StatusCode::OK, StatusCode::OK), "{b2}");
    let (s, b) = code_for(bob.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    // An operator must record how identity was checked.
    let (s, b) = t
        .call(
            "POST",
            &format!("/v1/persons/{bob}/portal-code"),
            Some(&t.admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = t
        .call(
            "POST",
            &format!("/v1/persons/{bob}/portal-code"),
            Some(&t.admin),
            Some(json!({"identity_check": "居民身份证 seen at the office"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let recs = t.state.store.audit_records(1, 10_000).await.unwrap();
    let issued: Vec<_> = recs
        .iter()
        .filter(|r| r.event == "portal_code_issued")
        .collect();
    assert_eq!(issued.len(), 2);
    assert!(
        issued[0].details.contains("check_receipt"),
        "{}",
        issued[0].details
    );
    assert!(
        issued[1].details.contains("居民身份证"),
        "{}",
        issued[1].details
    );
}

#[tokio::test]
async fn pin_lockout_burst_of_50_gets_at_most_the_limit_evaluated() {
    let t = common::server().await;
    let p = t.consenting_person("Carol", "1990-01-01").await;
    set_pin(&t, &p).await;
    let limit = t.state.config.limits.credential_failures as usize;
    let mut tasks = Vec::new();
    let t = std::sync::Arc::new(t);
    for i in 0..50 {
        let t = t.clone();
        let p = p.clone();
        // One of them is the right PIN: it must not get through once the
        // limit is spent.
        let secret = if i == 49 { "246810" } else { "000000" };
        tasks.push(tokio::spawn(async move { pin(&t, &p, secret).await.0 }));
    }
    let mut evaluated = 0;
    let mut limited = 0;
    for h in tasks {
        match h.await.unwrap() {
            StatusCode::OK => evaluated += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            s => panic!("unexpected {s}"),
        }
    }
    assert!(evaluated <= limit, "{evaluated} evaluated, limit {limit}");
    assert_eq!(evaluated + limited, 50);
    let pid = uuid::Uuid::parse_str(&p).unwrap();
    let events = t.state.store.verification_events(pid, 1000).await.unwrap();
    let pins = events
        .iter()
        .filter(|e| e.event.method == "pin" && e.event.result != "enrolled")
        .count();
    assert!(pins <= limit, "{pins} PIN checks evaluated");
}

#[tokio::test]
async fn a_pin_lockout_never_blocks_a_person_the_device_has_just_verified_by_face() {
    let t = common::server().await;
    let p = t.consenting_person("Obama", "1961-08-04").await;
    let (s, b) = t.face("/v1/enrol", &p, "obama.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    set_pin(&t, &p).await;
    let limit = t.state.config.limits.credential_failures as usize;
    for _ in 0..limit {
        let (s, _) = pin(&t, &p, "000000").await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, _) = pin(&t, &p, "246810").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "locked after {limit}");
    // The lock holds across a restart.
    let t2 = t.restart().await;
    let (s, _) = pin(&t2, &p, "246810").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // The person passes face at this device: the PIN lock does not stand
    // in their way there.
    let (s, b) = t.face("/v1/verify", &p, "obama2.jpg").await;
    assert_eq!(b["outcome"], "pass", "{s} {b}");
    let (s, b) = pin(&t, &p, "246810").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["outcome"], "pass");
}

#[tokio::test]
async fn a_device_cannot_withdraw_for_anyone_but_the_person_it_just_verified() {
    let t = common::server().await;
    let alice = t.consenting_person("Alice", "1990-01-01").await;
    let bob = t.consenting_person("Bob", "1990-01-01").await;
    set_pin(&t, &alice).await;
    let consent_of = |cs: Value| cs[0]["id"].as_str().unwrap().to_string();
    let bob_consent = consent_of(t.consents(&bob).await);
    let alice_consent = consent_of(t.consents(&alice).await);
    let withdraw = |c: String| {
        let t = &t;
        async move {
            t.call(
                "POST",
                &format!("/v1/consents/{c}/withdraw"),
                Some(&t.device),
                Some(json!({})),
            )
            .await
        }
    };
    let (s, b) = withdraw(bob_consent.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = withdraw(alice_consent.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (_, b) = pin(&t, &alice, "246810").await;
    assert_eq!(b["outcome"], "pass");
    let (s, b) = withdraw(alice_consent).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = withdraw(bob_consent).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn r7_consent_given_twice_is_one_record_and_withdrawal_removes_the_face() {
    let t = common::server().await;
    let p = t.consenting_person("Obama", "1961-08-04").await;
    let nv = t.notice_version().await;
    let (s, again) = t
        .call(
            "POST",
            "/v1/consents",
            Some(&t.device),
            Some(json!({"person_id": p, "notice_version": nv, "device_id": "gate-north-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{again}");
    let cs = t.consents(&p).await;
    let active: Vec<_> = cs
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["active"] == true)
        .collect();
    assert_eq!(active.len(), 1, "{cs}");
    assert_eq!(active[0]["id"], again["id"]);
    let (s, b) = t.face("/v1/enrol", &p, "obama.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(t.state.store.headcount().await.unwrap().count, 1);
    let (s, b) = t
        .call(
            "POST",
            &format!("/v1/consents/{}/withdraw", again["id"].as_str().unwrap()),
            Some(&t.admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(t.state.store.headcount().await.unwrap().count, 0);
    // After a restart the face does not pass: refused R8 (withdrawn).
    // (The notice is acknowledged in the request, so the refusal is about
    // consent whatever order policy checks in.)
    let t2 = t.restart().await;
    let bytes = common::fresh_frame("obama2.jpg");
    let (s, b) = t2
        .call(
            "POST",
            "/v1/verify",
            Some(&t.device),
            Some(
                json!({"person_id": p, "device_id": "gate-north-1", "notice_version": nv,
                        "images": [facegate_server::pipeline::encode_image(&bytes)]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["rule"], "R8", "{b}");
}

/// The model-based test's shrunk counterexample, kept as a plain test: a face
/// verify after withdrawal sent *without* `notice_version` is refused for
/// the withdrawal (R8 / Art. 6), not for the notice (R4).
#[tokio::test]
async fn r8_a_face_verify_after_withdrawal_without_notice_version_is_r8_not_r4() {
    let t = common::server().await;
    let p = t.consenting_person("Obama", "1961-08-04").await;
    let (s, b) = t.face("/v1/enrol", &p, "obama.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let cs = t.consents(&p).await;
    let id = cs[0]["id"].as_str().unwrap().to_string();
    let (s, b) = t
        .call(
            "POST",
            &format!("/v1/consents/{id}/withdraw"),
            Some(&t.admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let bytes = common::fresh_frame("obama2.jpg");
    let (s, b) = t
        .call(
            "POST",
            "/v1/verify",
            Some(&t.device),
            Some(json!({"person_id": p, "device_id": "gate-north-1",
                        "images": [facegate_server::pipeline::encode_image(&bytes)]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["rule"], "R8", "{b}");
    assert_eq!(b["article"], "Art. 6", "{b}");
}

#[tokio::test]
async fn keys_and_portal_sessions_survive_a_restart_and_revocation_is_immediate() {
    let t = common::server().await;
    let p = t.consenting_person("Dora", "1990-01-01").await;
    let tok = t.portal_token(&p).await;
    let t2 = t.restart().await;
    let (s, me) = t2.call("GET", "/v1/me", Some(&tok), None).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    let (s, _) = t2.call("GET", "/v1/notice", Some(&t.device), None).await;
    assert_eq!(s, StatusCode::OK);
    // Revoke the device key on one instance: the other refuses it at once.
    let (s, keys) = t.call("GET", "/v1/keys", Some(&t.admin), None).await;
    assert_eq!(s, StatusCode::OK);
    let dev_id = t
        .device
        .strip_prefix("fgk_")
        .unwrap()
        .split('_')
        .next()
        .unwrap();
    assert!(keys.as_array().unwrap().iter().any(|k| k["id"] == dev_id));
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/v1/keys/{dev_id}"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = decline(&t2, &p).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(!t.dir.join("keys.json").exists());
}

#[tokio::test]
async fn portal_guessing_is_limited_per_source_not_for_everyone() {
    let t = common::server().await;
    let p = t.consenting_person("Eve", "1990-01-01").await;
    let redeem = |code: String, src: &'static str| {
        let t = &t;
        async move {
            let req = axum::http::Request::builder()
                .method("POST")
                .uri("/v1/portal/session")
                .header("content-type", "application/json")
                .header("x-forwarded-for", src)
                .body(axum::body::Body::from(json!({ "code": code }).to_string()))
                .unwrap();
            use tower::ServiceExt;
            t.app.clone().oneshot(req).await.unwrap().status()
        }
    };
    let mut statuses = Vec::new();
    for i in 0..15 {
        statuses.push(redeem(format!("{:08}", i), "203.0.113.9").await);
    }
    assert!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count()
            <= 10
    );
    assert_eq!(*statuses.last().unwrap(), StatusCode::TOO_MANY_REQUESTS);
    // The person's own code, from another source, still works.
    let (s, code) = t
        .call(
            "POST",
            &format!("/v1/persons/{p}/portal-code"),
            Some(&t.admin),
            Some(json!({"identity_check": "ID card (test)"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let s = redeem(code["code"].as_str().unwrap().to_string(), "198.51.100.7").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn r12_r10_a_minors_template_older_than_the_minors_rule_is_swept() {
    // The demo scenario, with the inactivity rule out of the way so the
    // adult's template is kept by the adult rule (365 days) alone.
    let manifest = common::passive_demo().replacen("inactive_days = 90", "inactive_days = 365", 1);
    let t = common::server_with_manifest(Some(manifest)).await;
    let adult = t.consenting_person("Obama", "1961-08-04").await;
    let (s, b) = t.face("/v1/enrol", &adult, "obama.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // A 10-year-old with a guardian's consent.
    let dob = (chrono::Utc::now() - chrono::Duration::days(365 * 10))
        .date_naive()
        .to_string();
    let (s, p) = t
        .call(
            "POST",
            "/v1/persons",
            Some(&t.admin),
            Some(json!({"display_name": "小明", "date_of_birth": dob})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let child = p["id"].as_str().unwrap().to_string();
    let nv = t.notice_version().await;
    let (s, b) = t
        .call(
            "POST",
            "/v1/consents",
            Some(&t.device),
            Some(
                json!({"person_id": child, "notice_version": nv, "device_id": "gate-north-1",
                        "guardian": {"name": "王芳", "relationship": "父母 / parent"}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t.face("/v1/enrol", &child, "biden.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(t.state.store.headcount().await.unwrap().count, 2);
    // 170 days on: nothing goes.
    let now = chrono::Utc::now();
    let n = facegate_server::sweep_at(&t.state, now + chrono::Duration::days(170))
        .await
        .unwrap();
    assert_eq!(n, 0);
    // 200 days on: the minor's template (180-day rule) goes, the adult's stays.
    let n = facegate_server::sweep_at(&t.state, now + chrono::Duration::days(200))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(t.state.store.headcount().await.unwrap().count, 1);
    let child_id = uuid::Uuid::parse_str(&child).unwrap();
    assert!(t
        .state
        .store
        .person_templates(child_id, None, "test")
        .await
        .unwrap()
        .is_empty());
    let recs = t.state.store.audit_records(1, 10_000).await.unwrap();
    assert!(
        recs.iter().any(|r| r.details.contains("minor_retention")),
        "the deletion receipt names the minors rule"
    );
}

#[tokio::test]
async fn scenarios_keep_their_identity_and_reuploading_never_changes_the_default() {
    let t = common::server().await;
    let demo = facegate_server::deploy::demo_manifest();
    let other = common::east_manifest();
    for m in [other.clone(), demo.clone(), other] {
        t.deploy(m).await;
        // A request without `scenario` still goes to the default.
        let (_, n) = t.call("GET", "/v1/notice", None, None).await;
        assert_eq!(n["scenario"], "residential-gate");
    }
    assert_eq!(t.state.scenarios.read().unwrap().len(), 2);
}

#[tokio::test]
async fn r7_identification_runs_over_the_consenting_gallery_and_keeps_nothing_of_an_unknown() {
    let manifest = common::passive_demo().replacen(
        "mode = \"verification\"",
        "mode = \"identification\"\nidentification_justification = { zh = \"住户走近闸机即可通行\", en = \"residents pass as they walk up\" }",
        1,
    );
    let t = common::server_with_manifest(Some(manifest)).await;
    let p = t.consenting_person("Obama", "1961-08-04").await;
    let (s, b) = t.face("/v1/enrol", &p, "obama.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let identify = |fixture: &'static str| {
        let t = &t;
        async move {
            let bytes = common::fresh_frame(fixture);
            t.call(
                "POST",
                "/v1/identify",
                Some(&t.device),
                Some(json!({"device_id": "gate-north-1",
                            "images": [facegate_server::pipeline::encode_image(&bytes)]})),
            )
            .await
        }
    };
    // Not refused R7 for the stranger in front of the camera: the
    // consenting resident is recognised.
    let (s, b) = identify("obama2.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["outcome"], "known", "{b}");
    assert_eq!(b["person_id"], p.as_str());
    // Someone not enrolled: unknown, and the receipt keeps nothing about them.
    let (s, b) = identify("biden.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["outcome"], "unknown", "{b}");
    assert!(b["person_id"].is_null() && b["score"].is_null(), "{b}");
    // After withdrawal the resident is unknown too.
    let cs = t.consents(&p).await;
    let cid = cs[0]["id"].as_str().unwrap();
    let (s, _) = t
        .call(
            "POST",
            &format!("/v1/consents/{cid}/withdraw"),
            Some(&t.admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = identify("obama2.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["outcome"], "unknown", "{b}");
}

/// The identification demo: the passive demo in 1:N mode.
fn identification_demo() -> String {
    common::passive_demo().replacen(
        "mode = \"verification\"",
        "mode = \"identification\"\nidentification_justification = { zh = \"住户走近闸机即可通行\", en = \"residents pass as they walk up\" }",
        1,
    )
}

/// The gallery's cascade bounds `(lo, hi)` at `fmr` for a shipped fusion.
fn bounds_of(fmr: f64, r: facegate_core::Recognition) -> (f32, f32) {
    let spec = facegate_server::deploy::fused_spec(r).unwrap();
    facegate_gallery::FusedGallery::new(
        facegate_gallery::ScenarioId::new(),
        spec,
        Default::default(),
    )
    .unwrap()
    .cascade_bounds(fmr)
}

/// [`bounds_of`] the default fusion (the pair).
fn bounds(fmr: f64) -> (f32, f32) {
    bounds_of(fmr, Default::default())
}

/// Model calls the engine makes while `f` runs.
async fn model_calls<F: std::future::Future>(t: &common::T, f: F) -> (F::Output, u64) {
    let before = t.state.engine.model_calls();
    let out = f.await;
    (out, t.state.engine.model_calls() - before)
}

/// The gate decides with the pair fusion (issue 13, in production: the first
/// model and dlib's ResNet, weights a company may ship), as a cascade:
/// enrolment seals both embeddings under the pair's model id (the second
/// model runs: 5 model calls, not 4); a clear
/// resident or a clear stranger is decided by the first model alone within
/// the gallery's bounds (4 calls). A template made by the first model alone
/// (enrolled before the fusion, or by an instance run with
/// `FACEGATE_RECOGNITION=first`) keeps matching, on the first model's own
/// scale, after a restart with the fusion on; 1:N finds both kinds.
#[tokio::test]
async fn the_gate_decides_with_the_fusion_and_first_model_templates_keep_matching() {
    let t = common::server_with_manifest(Some(identification_demo())).await;
    let spec = facegate_server::deploy::fused_spec(Default::default()).unwrap();
    let obama = t.consenting_person("Obama", "1961-08-04").await;
    let ((s, b), calls) = model_calls(&t, t.face("/v1/enrol", &obama, "obama.jpg")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(calls, 5, "detector, landmarks, both embeddings, liveness");
    let d = t.state.scenario(None).unwrap();
    let sealed_models = |t: &common::T| {
        let (t, sid) = (t.state.clone(), d.store_id);
        async move {
            let mut v: Vec<(String, usize)> = t
                .store
                .scenario_templates(sid, "test")
                .await
                .unwrap()
                .iter()
                .map(|(_, _, blob)| {
                    let s = facegate_gallery::SealedTemplate::from_bytes(blob).unwrap();
                    (s.model_id().to_string(), s.dim())
                })
                .collect();
            v.sort();
            v
        }
    };
    assert_eq!(
        sealed_models(&t).await,
        vec![(spec.fused_model_id.clone(), spec.fused_dim())]
    );
    // 1:1, clear cases: the first model's cosine, above the cascade's upper
    // bound (pass) or below its lower one (fail); the other models not run.
    let (lo, hi) = bounds(1e-4);
    let ((s, b), calls) = model_calls(&t, t.face("/v1/verify", &obama, "obama2.jpg")).await;
    assert_eq!(
        (s, b["outcome"].as_str(), calls),
        (StatusCode::OK, Some("pass"), 4),
        "{b}"
    );
    assert!(
        (b["threshold"].as_f64().unwrap() - hi as f64).abs() < 1e-5,
        "{b}"
    );
    assert!(b["score"].as_f64().unwrap() > hi as f64, "{b}");
    // The answer, and the decision's record, name the scale: the first
    // model's cosine here.
    assert_eq!(b["score_model"], spec.first_model_id.as_str(), "{b}");
    let kept = |t: &common::T, receipt: &serde_json::Value| {
        let (st, id) = (t.state.clone(), receipt.as_str().unwrap().parse().unwrap());
        async move {
            st.store
                .verification_event(id)
                .await
                .unwrap()
                .unwrap()
                .event
                .score_model
        }
    };
    assert_eq!(
        kept(&t, &b["receipt_id"]).await.as_deref(),
        Some(spec.first_model_id.as_str())
    );
    let ((_, b), calls) = model_calls(&t, t.face("/v1/verify", &obama, "biden.jpg")).await;
    assert_eq!((b["outcome"].as_str(), calls), (Some("fail"), 4), "{b}");
    assert!(b["score"].as_f64().unwrap() <= lo as f64, "{b}");
    assert_eq!(b["score_model"], spec.first_model_id.as_str(), "{b}");

    // An instance with the first model alone enrols Biden: a first-model
    // template, matched on the first model's scale by either instance.
    let first_only = t
        .restart_with(|c| c.recognition = facegate_core::Recognition::First)
        .await;
    let biden = first_only.consenting_person("Biden", "1942-11-20").await;
    let (s, b) = first_only.face("/v1/enrol", &biden, "biden.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, b) = first_only.face("/v1/verify", &obama, "obama2.jpg").await;
    assert_eq!(
        b["outcome"], "pass",
        "the first model alone reads a fused template: {b}"
    );
    let first_t = spec.first_calibration.threshold(1e-4);
    assert!(
        (b["threshold"].as_f64().unwrap() - first_t as f64).abs() < 1e-5,
        "{b}"
    );
    drop(first_only);
    assert_eq!(sealed_models(&t).await, {
        let mut v = vec![
            (spec.fused_model_id.clone(), spec.fused_dim()),
            (spec.first_model_id.clone(), spec.first_dim),
        ];
        v.sort();
        v
    });
    let t = t.restart().await;
    let (s, b) = t.face("/v1/verify", &biden, "biden.jpg").await;
    assert_eq!(
        (s, b["outcome"].as_str()),
        (StatusCode::OK, Some("pass")),
        "{b}"
    );
    assert!(
        (b["threshold"].as_f64().unwrap() - first_t as f64).abs() < 1e-5,
        "{b}"
    );
    let (_, b) = t.face("/v1/verify", &biden, "obama2.jpg").await;
    assert_eq!(b["outcome"], "fail", "{b}");
    // 1:N over both kinds: each person is found on their own template's
    // scale (Obama's fused template by the cascade's first-model bound).
    let fmr = facegate_gallery::Calibration::fmr_for_fpir(0.01, 2);
    for (fixture, who, want) in [
        ("obama2.jpg", &obama, bounds(fmr).1),
        ("biden.jpg", &biden, spec.first_calibration.threshold(fmr)),
    ] {
        let bytes = common::fresh_frame(fixture);
        let (s, b) = t
            .call(
                "POST",
                "/v1/identify",
                Some(&t.device),
                Some(json!({"device_id": "gate-north-1",
                            "images": [facegate_server::pipeline::encode_image(&bytes)]})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(
            (b["outcome"].as_str(), b["person_id"].as_str()),
            (Some("known"), Some(who.as_str())),
            "{b}"
        );
        assert!(
            (b["threshold"].as_f64().unwrap() - want as f64).abs() < 1e-5,
            "{b}"
        );
    }
}

/// Where the first model's score leaves the answer open (between the
/// cascade's bounds), the deferred second model runs and the fused log-odds
/// decide against the fused table. The resident here is one whose enrolled
/// first-model embedding the first model reads poorly (it is Obama's,
/// blended with an unrelated direction, so a new photo scores about 0.36),
/// while the second model's embedding is Obama's own. The same with the
/// three-model fusion (`FACEGATE_RECOGNITION=three`).
#[tokio::test]
async fn an_open_first_model_score_runs_the_other_models_and_the_fusion_decides() {
    for r in [
        facegate_core::Recognition::Pair,
        facegate_core::Recognition::Three,
    ] {
        open_score_runs_the_other_models(r).await;
    }
}

async fn open_score_runs_the_other_models(recognition: facegate_core::Recognition) {
    use facegate_gallery::{parts_template, Encoding, PersonId, ScenarioId};
    let t = common::server().await;
    let t = t.restart_with(|c| c.recognition = recognition).await;
    let spec = facegate_server::deploy::fused_spec(recognition).unwrap();
    let p = t.consenting_person("Obama", "1961-08-04").await;
    let face = |fixture: &str| {
        let bytes = std::fs::read(facegate_assets::fixture(fixture).unwrap()).unwrap();
        let f = t
            .state
            .engine
            .one_face_bytes_with(
                &bytes,
                &facegate_vision::OneFaceOptions::VERIFY,
                &facegate_vision::Budget::unlimited(),
            )
            .unwrap();
        let facegate_vision::OneFace::One(f) = f else {
            panic!("{fixture}: one face")
        };
        let o = t.state.engine.other_embeddings(&f).unwrap();
        let others: Vec<Vec<f32>> = o
            .second
            .iter()
            .map(|e| e.as_slice().to_vec())
            .chain(o.third.iter().map(|e| e.as_slice().to_vec()))
            .collect();
        (f.embedding.unwrap(), others)
    };
    let (first, others) = face("obama.jpg");
    assert_eq!(others.len(), spec.other_dims.len(), "{recognition:?}");
    let (probe_first, ..) = face("obama2.jpg");
    // Blend the first embedding towards a direction orthogonal to the
    // probe's, until the probe's cosine with it is 0.36.
    let (a, q) = (first.as_slice(), probe_first.as_slice());
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    let r: Vec<f32> = (0..a.len())
        .map(|i| ((i * 7919 % 101) as f32 - 50.0) / 50.0)
        .collect();
    let r: Vec<f32> = r.iter().zip(q).map(|(x, y)| x - dot(&r, q) * y).collect();
    let unit = |v: Vec<f32>| {
        let n = dot(&v, &v).sqrt();
        v.into_iter().map(|x| x / n).collect::<Vec<f32>>()
    };
    let r = unit(r);
    let c = dot(a, q); // about 0.76
    let w = (c * c / (0.36f32 * 0.36) - 1.0).max(0.0).sqrt(); // cos(a + w r, q) = 0.36 (r ⟂ q, and nearly ⟂ a)
    let blended = unit(a.iter().zip(&r).map(|(x, y)| x + w * y).collect());
    let cos = dot(&blended, q);
    let (lo, hi) = bounds_of(1e-4, recognition);
    assert!(
        cos > lo && cos <= hi,
        "{cos} must be between the bounds {lo} and {hi}"
    );
    let d = t.state.scenario(None).unwrap();
    let template = parts_template(
        PersonId(p.parse().unwrap()),
        ScenarioId(d.store_id),
        &spec.fused_model_id,
        &std::iter::once(blended.as_slice())
            .chain(others.iter().map(|v| v.as_slice()))
            .collect::<Vec<_>>(),
        Encoding::F32,
    )
    .unwrap();
    // Sealed as enrolment seals it: under the scenario's data key, which
    // the store keeps (so a restart opens it).
    t.state.ensure_data_key(d.store_id).await.unwrap();
    let sealed = t.state.keyring.seal(&template).unwrap();
    t.state
        .store
        .enrol(
            &facegate_store::Enrolment {
                person_id: p.parse().unwrap(),
                scenario_id: d.store_id,
                device_id: None,
                sealed_template: sealed.to_bytes(),
            },
            "test",
        )
        .await
        .unwrap();
    let ((s, b), calls) = model_calls(&t, t.face("/v1/verify", &p, "obama2.jpg")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(calls, 4 + others.len() as u64, "the other models ran: {b}");
    let fused_t = spec.fused_calibration.threshold(1e-4);
    assert!(
        (b["threshold"].as_f64().unwrap() - fused_t as f64).abs() < 1e-5,
        "{b}"
    );
    let score = b["score"].as_f64().unwrap();
    assert_eq!(b["outcome"] == "pass", score > fused_t as f64, "{b}");
    // On the fusion's scale, and the decision's record says so.
    assert_eq!(b["score_model"], spec.fused_model_id.as_str(), "{b}");
    let id = b["receipt_id"].as_str().unwrap().parse().unwrap();
    let ev = t.state.store.verification_event(id).await.unwrap().unwrap();
    assert_eq!(
        ev.event.score_model.as_deref(),
        Some(spec.fused_model_id.as_str())
    );
    // The first model alone would have rejected it (0.36 is under its own
    // threshold at 1e-4); the other models see the same person.
    assert!(cos < spec.first_calibration.threshold(1e-4));
    assert_eq!(b["outcome"], "pass", "the fusion accepts the resident: {b}");
    // The gallery (the other models' embeddings beside the first's) is a
    // copy of the store's sealed templates: a restarted instance, and a
    // second one on the same store, answer the same.
    let (first_answer, first_score) = (b["outcome"].clone(), score);
    let again = t.restart_with(|c| c.recognition = recognition).await;
    let ((s, b), calls) = model_calls(&again, again.face("/v1/verify", &p, "obama2.jpg")).await;
    assert_eq!((s, calls), (StatusCode::OK, 4 + others.len() as u64), "{b}");
    assert_eq!(b["outcome"], first_answer, "{b}");
    assert!(
        (b["score"].as_f64().unwrap() - first_score).abs() < 1e-4,
        "{b}"
    );
    assert!(
        (b["threshold"].as_f64().unwrap() - fused_t as f64).abs() < 1e-5,
        "{b}"
    );
}

/// The deployed scenarios as `id → (version, methods)`.
async fn deployed(t: &common::T) -> std::collections::BTreeMap<String, (i64, Vec<String>)> {
    let (s, v) = t.call("GET", "/v1/scenarios", Some(&t.admin), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let methods = x["methods"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap().to_string())
                .collect();
            (
                x["id"].as_str().unwrap().to_string(),
                (x["version"].as_i64().unwrap(), methods),
            )
        })
        .collect()
}

/// What an operator deployed runs after a restart as before it: a second
/// scenario uploaded through the API is deployed again (its gates are not
/// stopped, its retention still swept), and an upload of the configured
/// scenario is kept rather than reverted to the configured file, until the
/// file itself is edited, which then supersedes it (as it supersedes
/// devices added in the console).
#[tokio::test]
async fn uploaded_scenarios_outlive_a_restart_until_the_configured_file_is_edited() {
    let t = common::server().await;
    let demo = facegate_server::deploy::demo_manifest();
    t.deploy(common::east_manifest()).await;
    let no_pin = demo.replacen("\"face\", \"pin\", ", "\"face\", ", 1);
    assert_ne!(no_pin, demo, "the demo manifest's methods line moved");
    t.deploy(no_pin.clone()).await;
    let before = deployed(&t).await;
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(!before["residential-gate"].1.contains(&"pin".to_string()));

    // Restarted twice (the second start must not add a version either).
    let t2 = t.restart().await;
    assert_eq!(deployed(&t2).await, before, "a restart deploys what ran");
    let t3 = t2.restart().await;
    assert_eq!(deployed(&t3).await, before);
    // An upload identical to what runs is not a new version.
    t3.deploy(no_pin).await;
    assert_eq!(deployed(&t3).await, before);

    // The operator edits the configured file: it supersedes the upload.
    let edited = demo.replacen("quiet_period_hours = 72", "quiet_period_hours = 96", 1);
    assert_ne!(edited, demo, "the demo manifest's quiet period line moved");
    std::fs::write(t.dir.join("scenario.toml"), &edited).unwrap();
    let t4 = t3.restart().await;
    let after = deployed(&t4).await;
    assert!(
        after["residential-gate"].1.contains(&"pin".to_string()),
        "{after:?}"
    );
    assert!(after["residential-gate"].0 > before["residential-gate"].0);
    assert_eq!(
        after["residential-gate-east"],
        before["residential-gate-east"]
    );
}

/// Two instances on one store: what one deploys (a new scenario, a new
/// version of the default one) the other runs from its next request, with
/// no restart, so neither keeps deciding under a replaced manifest.
#[tokio::test]
async fn a_deploy_on_one_instance_is_in_force_on_the_other_at_once() {
    let a = common::server().await;
    let b = a.restart().await;
    assert_eq!(deployed(&b).await, deployed(&a).await);
    let demo = facegate_server::deploy::demo_manifest();
    a.deploy(common::east_manifest()).await;
    let no_pin = demo.replacen("\"face\", \"pin\", ", "\"face\", ", 1);
    a.deploy(no_pin).await;
    let on_a = deployed(&a).await;
    assert_eq!(on_a.len(), 2);
    assert_eq!(deployed(&b).await, on_a, "b runs what a deployed");
    // And back the other way, for a device revoked on b.
    let (s, v) = b
        .call(
            "POST",
            "/v1/scenarios/residential-gate-east/devices/gate-north-1/revoke",
            Some(&b.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, devs) = a.call("GET", "/v1/devices", Some(&a.admin), None).await;
    let east_gate = devs
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "gate-north-1" && d["scenario"] == "residential-gate-east")
        .cloned()
        .expect("listed on a");
    assert_eq!(east_gate["active"], false, "a sees b's revocation");
}

async fn dashboard(t: &common::T) -> Value {
    let (s, d) = t.call("GET", "/v1/dashboard", Some(&t.auditor), None).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    d
}

/// The dashboard's counts of checks and refusals are the store's, over a
/// stated window, not this process's counters: a restart (or another
/// instance on the store) shows the same figures.
#[tokio::test]
async fn the_dashboards_checks_and_refusals_are_the_stores_and_outlive_a_restart() {
    let t = common::server().await;
    let p = t.consenting_person("Dana", "1990-01-01").await;
    set_pin(&t, &p).await;
    for secret in ["246810", "000000", "111111"] {
        let (s, b) = pin(&t, &p, secret).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (s, b) = decline(&t, &p).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t.face("/v1/verify", &p, "obama2.jpg").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let counts = |d: &Value, field: &str| -> std::collections::BTreeMap<String, u64> {
        d[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["key"].as_str().unwrap().to_string(),
                    c["count"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let d = dashboard(&t).await;
    assert_eq!(d["days"], 30, "{d}");
    let checks = counts(&d, "verifications");
    let pins: u64 = checks
        .iter()
        .filter(|(k, _)| k.starts_with("pin/") && !k.ends_with("/enrolled"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(pins, 3, "{d}");
    assert_eq!(counts(&d, "refusals").get("R17"), Some(&1), "{d}");
    let t2 = t.restart().await;
    let d2 = dashboard(&t2).await;
    assert_eq!(counts(&d2, "verifications"), checks, "{d2}");
    assert_eq!(counts(&d2, "refusals"), counts(&d, "refusals"), "{d2}");
}

/// A hub's manifest key, pinned in `t`'s store.
async fn pinned_hub(t: &common::T, seed: u8) -> ed25519_dalek::SigningKey {
    let hub = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    t.state
        .store
        .hub_pin_manifest_key(&hex::encode(hub.verifying_key().to_bytes()))
        .await
        .unwrap();
    hub
}

/// What a site does with a deploy command it checked: keep the manifest
/// `hub` signed as `version` of `name`, deploy it, record it deployed.
async fn hub_deploy(
    t: &common::T,
    hub: &ed25519_dalek::SigningKey,
    name: &str,
    version: i64,
    text: &str,
) {
    use ed25519_dalek::Signer;
    let store = &t.state.store;
    let (mid, cmd, nv) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), "ab".repeat(32));
    let sig = hub.sign(&facegate_core::hub_trust::signed_bytes(
        mid, name, version, &nv, text,
    ));
    store
        .hub_manifest_receive(
            cmd,
            mid,
            name,
            version,
            &nv,
            text,
            &hex::encode(sig.to_bytes()),
        )
        .await
        .unwrap();
    t.state.core.deploy_scenario(text).await.unwrap();
    store.hub_manifest_outcome(cmd, None).await.unwrap();
}

/// A hub-governed scenario runs on another instance only as the hub signed
/// it: a version of it in the store that is not the hub's signed manifest
/// under the pinned key (written by anything but the site's checked deploy)
/// is not deployed by an instance bringing itself in step with the store;
/// the hub's next signed version is.
#[tokio::test]
async fn a_hub_scenario_runs_on_another_instance_only_as_the_hub_signed_it() {
    let a = common::server().await;
    let b = a.restart().await;
    let hub = pinned_hub(&a, 7).await;
    let east = common::east_manifest();
    let name = "residential-gate-east";
    hub_deploy(&a, &hub, name, 1, &east).await;
    let signed = deployed(&a).await[name].clone();
    assert_eq!(
        deployed(&b).await.get(name),
        Some(&signed),
        "b runs the signed manifest"
    );

    // A version the hub never signed reaches the store (here through a's
    // core directly, as any writer to the store could): b keeps the signed one.
    let unsigned = east.replacen("\"face\", \"pin\", ", "\"face\", ", 1);
    assert_ne!(unsigned, east);
    a.state.core.deploy_scenario(&unsigned).await.unwrap();
    assert_ne!(deployed(&a).await[name], signed);
    assert_eq!(
        deployed(&b).await[name],
        signed,
        "b does not run an unsigned version"
    );

    // The hub's next signed version runs on b.
    let second = east.replacen("\"face\", \"pin\", ", "\"pin\", \"face\", ", 1);
    assert_ne!(second, east);
    hub_deploy(&a, &hub, name, 2, &second).await;
    assert_eq!(deployed(&b).await[name], deployed(&a).await[name]);
    assert_ne!(deployed(&b).await[name], signed);

    // Signed by another key than the pinned one: not run either.
    let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
    let before = deployed(&b).await[name].clone();
    hub_deploy(&a, &other, name, 3, &unsigned).await;
    assert_eq!(
        deployed(&b).await[name],
        before,
        "b does not run another hub's manifest"
    );
}

/// A restart runs a hub-governed scenario as the hub's newest manifest that
/// verifies under the pinned key (not a later unsigned version in the
/// store), none at all once no manifest verifies, and, after the site is
/// detached from its hub, as the operator's own (its gates and retention
/// do not stop at the next restart).
#[tokio::test]
async fn a_hub_scenario_restarts_as_the_hub_signed_it_and_as_the_operators_own_after_detach() {
    let a = common::server().await;
    let store = &a.state.store;
    let hub = pinned_hub(&a, 9).await;
    let name = "residential-gate-east";
    let east = common::east_manifest();
    hub_deploy(&a, &hub, name, 1, &east).await;
    let signed_methods = deployed(&a).await[name].1.clone();

    // An unsigned version written to the store: a restart runs the signed
    // text again, not it.
    let unsigned = east.replacen("\"face\", \"pin\", ", "\"face\", ", 1);
    assert_ne!(unsigned, east);
    a.state.core.deploy_scenario(&unsigned).await.unwrap();
    let b = a.restart().await;
    assert_eq!(deployed(&b).await[name].1, signed_methods);

    // Pinned to another hub's key: nothing of the old hub's runs.
    pinned_hub(&a, 10).await;
    let c = a.restart().await;
    assert!(!deployed(&c).await.contains_key(name));

    // Detached: the scenario is the operator's own and runs after a restart.
    assert!(store.hub_detach("test").await.unwrap());
    let d = a.restart().await;
    assert!(deployed(&d).await.contains_key(name));
}
