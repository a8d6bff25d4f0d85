//! The front desk over HTTP (issue 14): keypad numbers, the guard's check
//! (人工核验) as an alternative method (R6, R15), complaints answered in the
//! console and read in the portal, requests closed, portal logout, and the
//! console's series, all from the store.

mod common;

use axum::http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_resident_number_names_the_person_and_nothing_else_to_a_device() {
    let t = common::server().await;
    let (s, p) = t
        .call(
            "POST",
            "/v1/persons",
            Some(&t.admin),
            Some(json!({"display_name": "张三", "date_of_birth": "1950-03-01", "room": "3-1502"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let id = p["id"].as_str().unwrap();
    let no = p["resident_no"].as_str().unwrap().to_string();
    assert_eq!(no.len(), 6, "{p}");
    assert_eq!(p["room"], "3-1502");
    // The kiosk's keypad: by resident number, then by the room's digits.
    for n in [no.as_str(), "31502"] {
        let (s, r) = t
            .call(
                "GET",
                &format!("/v1/residents/lookup?number={n}"),
                Some(&t.device),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["person_id"], id);
        // Never a name or a date of birth to a device.
        let text = r.to_string();
        assert!(!text.contains("张三") && !text.contains("1950"), "{r}");
        assert_eq!(r.as_object().unwrap().len(), 2, "{r}");
    }
    let (s, _) = t
        .call(
            "GET",
            "/v1/residents/lookup?number=999999999",
            Some(&t.device),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, e) = t
        .call(
            "GET",
            "/v1/residents/lookup?number=7",
            Some(&t.device),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    // A second resident in the same room: the room alone no longer names one.
    let (_, p2) = t
        .call(
            "POST",
            "/v1/persons",
            Some(&t.admin),
            Some(json!({"display_name": "李四", "room": "3-1502", "resident_no": "77"})),
        )
        .await;
    let (s, e) = t
        .call(
            "GET",
            "/v1/residents/lookup?number=31502",
            Some(&t.device),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(
        e["message_en"]
            .as_str()
            .unwrap()
            .contains("resident number"),
        "{e}"
    );
    // The console finds by number, by name; a device may not search.
    let (s, found) = t
        .call("GET", "/v1/persons?q=77", Some(&t.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{found}");
    assert_eq!(found[0]["id"], p2["id"]);
    let (_, found) = t
        .call(
            "GET",
            &format!("/v1/persons?q={}", urlencode("张")),
            Some(&t.auditor),
            None,
        )
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["display_name"], "张三");
    let (s, _) = t
        .call("GET", "/v1/persons?q=77", Some(&t.device), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Correct: a new number and name; the request is logged and closed.
    let (s, c) = t
        .call(
            "PATCH",
            &format!("/v1/persons/{id}"),
            Some(&t.admin),
            Some(json!({"display_name": "张三丰", "resident_no": "1234"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["display_name"], "张三丰");
    assert_eq!(c["resident_no"], "1234");
    assert_eq!(c["room"], "3-1502");
    let (s, e) = t
        .call(
            "PATCH",
            &format!("/v1/persons/{id}"),
            Some(&t.admin),
            Some(json!({"resident_no": "77"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "a number already taken: {e}");
    let (_, rs) = t.call("GET", "/v1/requests", Some(&t.admin), None).await;
    assert!(
        rs.as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "correct" && r["status"] == "done"),
        "{rs}"
    );
    // Erased: the number no longer names anyone.
    let (s, _) = t
        .call(
            "POST",
            &format!("/v1/persons/{id}/erase"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t
        .call(
            "GET",
            "/v1/residents/lookup?number=1234",
            Some(&t.device),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test]
async fn r15_the_guards_check_is_an_alternative_decided_once_with_a_receipt() {
    let t = common::server().await;
    let pid = t.consenting_person("王五", "1948-05-05").await;
    // The kiosk's probe for the route: a bad id is 400, not 404.
    let (s, _) = t
        .call("GET", "/v1/staffed-checks/probe", Some(&t.device), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let c = ask_check(&t, &pid).await;
    assert_eq!(c["status"], "pending");
    assert!(c["display_name"].is_null(), "never a name to a device: {c}");
    let cid = c["id"].as_str().unwrap().to_string();
    // The guard screen lists it with the name; a device may not list.
    let (s, list) = t
        .call(
            "GET",
            "/v1/staffed-checks?status=pending",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list[0]["id"], cid.as_str());
    assert_eq!(list[0]["display_name"], "王五");
    let (s, _) = t
        .call(
            "GET",
            "/v1/staffed-checks?status=pending",
            Some(&t.device),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The guard's name is required.
    let (s, _) = t
        .call(
            "POST",
            &format!("/v1/staffed-checks/{cid}/decide"),
            Some(&t.admin),
            Some(json!({"result": "pass", "guard_name": "  "})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, d) = t
        .call(
            "POST",
            &format!("/v1/staffed-checks/{cid}/decide"),
            Some(&t.admin),
            Some(json!({"result": "pass", "guard_name": "赵保安", "how": "in person at the gate"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["outcome"]["outcome"], "pass");
    assert_eq!(d["outcome"]["method"], "staffed_check");
    // What passing grants is what face grants (R15, R17).
    assert!(!d["outcome"]["grants"].as_str().unwrap().is_empty(), "{d}");
    let receipt = d["outcome"]["receipt_id"].as_str().unwrap().to_string();
    // Decided once.
    let (s, _) = t
        .call(
            "POST",
            &format!("/v1/staffed-checks/{cid}/decide"),
            Some(&t.admin),
            Some(json!({"result": "fail", "guard_name": "钱保安"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // The kiosk polls and sees the outcome with the same receipt, also
    // after a restart.
    let t2 = t.restart().await;
    let (s, got) = t2
        .call(
            "GET",
            &format!("/v1/staffed-checks/{cid}"),
            Some(&t.device),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{got}");
    assert_eq!(got["status"], "decided");
    assert_eq!(got["outcome"]["receipt_id"], receipt.as_str());
    // The poll carries the signed code (the kiosk shows it with its QR): the
    // very code the guard's decision gave, and it verifies with the
    // deployment's public key alone.
    let polled = got["outcome"]["receipt_code"].as_str().unwrap();
    assert!(polled.starts_with("FG1-"), "{got}");
    assert_eq!(Some(polled), d["outcome"]["receipt_code"].as_str());
    let (_, k) = t2.call("GET", "/v1/receipts/public-key", None, None).await;
    let key = facegate_core::receipts::parse_public_key(k["public_key"].as_str().unwrap()).unwrap();
    let r = facegate_core::receipts::verify(polled, &key).unwrap();
    assert_eq!(r.receipt_id.to_string(), receipt);
    assert_eq!(r.method, "staffed_check");
    assert_eq!(r.decision, "match");
    assert_eq!(r.device.as_deref(), Some("gate-north-1"));
    let mut altered = polled.to_string();
    let last = if altered.ends_with('A') { "B" } else { "A" };
    altered.replace_range(altered.len() - 1.., last);
    assert!(facegate_core::receipts::verify(&altered, &key).is_err());
    // The receipt is in the person's record and the audit log.
    let tok = t2.portal_token(&pid).await;
    let (_, me) = t2.call("GET", "/v1/me", Some(&tok), None).await;
    assert!(
        me["recent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["receipt_id"] == receipt.as_str() && e["method"] == "staffed_check"),
        "{me}"
    );
    // The kiosk withdraws a check when the person leaves: the guard no
    // longer sees it and cannot confirm it.
    let c2 = ask_check(&t2, &pid).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = t2
        .call(
            "POST",
            &format!("/v1/staffed-checks/{c2}/cancel"),
            Some(&t.device),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, list) = t2
        .call(
            "GET",
            "/v1/staffed-checks?status=pending",
            Some(&t.admin),
            None,
        )
        .await;
    assert!(list.as_array().unwrap().is_empty(), "{list}");
    let (s, _) = t2
        .call(
            "POST",
            &format!("/v1/staffed-checks/{c2}/decide"),
            Some(&t.admin),
            Some(json!({"result": "pass", "guard_name": "赵保安"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = t2
        .call(
            "POST",
            &format!("/v1/staffed-checks/{c2}/cancel"),
            Some(&t.device),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Checks per day count it.
    let (s, st) = t2
        .call("GET", "/v1/stats/checks?days=3", Some(&t.auditor), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{st}");
    assert!(
        st["days"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["method"] == "staffed_check" && d["result"] == "match" && d["count"] == 1),
        "{st}"
    );
}

#[tokio::test]
async fn r6_a_scenario_without_the_guards_check_refuses_it_naming_the_rule() {
    let m = facegate_policy::init_template("residential-gate")
        .unwrap()
        .replace(
            "methods = [\"face\", \"card\", \"qr_code\", \"staffed_check\"]",
            "methods = [\"face\", \"card\", \"qr_code\"]",
        );
    assert!(!m.contains("staffed_check\"]"));
    let t = common::server_with_manifest(Some(m)).await;
    let pid = t.consenting_person("赵六", "1960-01-01").await;
    let (s, b) = t
        .call(
            "POST",
            "/v1/staffed-checks",
            Some(&t.device),
            Some(json!({"person_id": pid, "device_id": "gate-north-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(b["rule"].is_string(), "{b}");
    assert!(b["article_zh"].is_string(), "{b}");
}

#[tokio::test]
async fn r25_a_complaint_answered_in_the_console_is_seen_in_the_portal() {
    let t = common::server().await;
    let pid = t.consenting_person("孙七", "1980-02-02").await;
    let tok = t.portal_token(&pid).await;
    let (s, c) = t
        .call(
            "POST",
            "/v1/complaints",
            Some(&tok),
            Some(json!({"body": "闸机太慢"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert!(c["due_date"].is_string(), "{c}");
    let cid = c["id"].as_str().unwrap().to_string();
    // The kiosk probe: the route exists.
    let (s, _) = t
        .call(
            "POST",
            "/v1/complaints/probe/resolve",
            Some(&t.admin),
            Some(json!({"response": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = t
        .call(
            "POST",
            &format!("/v1/complaints/{cid}/resolve"),
            Some(&tok),
            Some(json!({"response": "x"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a person does not answer complaints"
    );
    let (s, r) = t
        .call(
            "POST",
            &format!("/v1/complaints/{cid}/resolve"),
            Some(&t.admin),
            Some(json!({"response": "已调整闸机灵敏度。"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "resolved");
    let (s, _) = t
        .call(
            "POST",
            &format!("/v1/complaints/{cid}/resolve"),
            Some(&t.admin),
            Some(json!({"response": "again"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, me) = t.call("GET", "/v1/me", Some(&tok), None).await;
    assert_eq!(me["complaints"][0]["status"], "resolved", "{me}");
    assert_eq!(
        me["complaints"][0]["response"], "已调整闸机灵敏度。",
        "{me}"
    );
    // Export includes the complaint; then the request closed at once
    // cannot be closed again.
    let (s, x) = t
        .call(
            "GET",
            &format!("/v1/persons/{pid}/export"),
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{x}");
    assert_eq!(x["complaints"][0]["response"], "已调整闸机灵敏度。");
    let rid = x["request_id"].as_str().unwrap();
    let (s, _) = t
        .call(
            "POST",
            &format!("/v1/requests/{rid}/close"),
            Some(&t.admin),
            Some(json!({"status": "done", "outcome": "again"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Logout: the session is gone from the store (a restart does not bring it back).
    let (s, _) = t
        .call("DELETE", "/v1/portal/session", Some(&tok), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t.call("GET", "/v1/me", Some(&tok), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let t2 = t.restart().await;
    let (s, _) = t2.call("GET", "/v1/me", Some(&tok), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = t2
        .call("DELETE", "/v1/portal/session", Some(&t.admin), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn r21_the_headcount_series_follows_enrolments_day_by_day() {
    let t = common::server().await;
    let (s, h) = t
        .call("GET", "/v1/stats/headcount?days=7", Some(&t.auditor), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert_eq!(h.as_array().unwrap().len(), 7);
    assert_eq!(h[6]["headcount"], 0);
    let pid = t.consenting_person("周八", "1970-07-07").await;
    let (s, b) = t.face("/v1/enrol", &pid, "obama.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, h) = t
        .call("GET", "/v1/stats/headcount?days=7", Some(&t.auditor), None)
        .await;
    assert_eq!(h[6]["headcount"], 1, "{h}");
    let (_, f) = t.call("GET", "/v1/filing", Some(&t.auditor), None).await;
    assert_eq!(h[6]["headcount"], f["headcount"]);
    let (s, _) = t
        .call("GET", "/v1/stats/headcount?days=0", Some(&t.auditor), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = t
        .call("GET", "/v1/stats/headcount", Some(&t.device), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn r15_a_guards_decision_is_signed_once_and_every_poll_returns_that_code() {
    // The code is signed when the guard decides and kept with the check:
    // polls (before and after a restart, and after the kiosk is renamed in
    // a re-deployed manifest, which changes what a re-made receipt would
    // state) return that very code. Before, each poll signed the stored
    // event again, naming the device by the map in force at the poll.
    let t = common::server().await;
    let pid = t.consenting_person("王五", "1948-05-05").await;
    let (cid, d) = decided_check(&t, &pid, "pass").await;
    let code = d["outcome"]["receipt_code"].as_str().unwrap().to_string();
    assert_eq!(d["check"]["outcome"]["receipt_code"], code.as_str(), "{d}");
    let id = uuid::Uuid::parse_str(&cid).unwrap();
    let kept = t.state.store.staffed_check(id).await.unwrap().receipt_code;
    assert_eq!(kept.as_deref(), Some(code.as_str()), "kept with the check");
    for _ in 0..3 {
        assert_eq!(poll(&t, &cid).await, code);
    }
    let renamed = facegate_server::deploy::demo_manifest().replacen(
        "id = \"gate-north-1\"",
        "id = \"gate-north-7\"",
        1,
    );
    t.deploy(renamed).await;
    // What signing at the poll would give now differs: the kept code is
    // what stays stable.
    let rid = uuid::Uuid::parse_str(d["outcome"]["receipt_id"].as_str().unwrap()).unwrap();
    let ev = t
        .state
        .store
        .verification_event(rid)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        t.state.receipt(&ev).1,
        code,
        "the test re-deploys nothing that matters"
    );
    assert_eq!(poll(&t, &cid).await, code, "after a re-deployment");
    let t2 = t.restart().await;
    assert_eq!(poll(&t2, &cid).await, code, "after a restart");
}

async fn poll(t: &common::T, cid: &str) -> String {
    let (s, got) = t
        .call(
            "GET",
            &format!("/v1/staffed-checks/{cid}"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{got}");
    got["outcome"]["receipt_code"].as_str().unwrap().to_string()
}

/// A guard's check of `pid` asked at the kiosk and decided (`pass` or
/// `fail`) in the console: the check's id and the decision.
async fn decided_check(t: &common::T, pid: &str, result: &str) -> (String, serde_json::Value) {
    let cid = ask_check(t, pid).await["id"].as_str().unwrap().to_string();
    let (s, d) = t
        .call(
            "POST",
            &format!("/v1/staffed-checks/{cid}/decide"),
            Some(&t.admin),
            Some(json!({"result": result, "guard_name": "赵保安"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    (cid, d)
}

/// The kiosk asks for a guard's check of `pid`: the check as the kiosk sees it.
async fn ask_check(t: &common::T, pid: &str) -> serde_json::Value {
    let (s, c) = t
        .call(
            "POST",
            "/v1/staffed-checks",
            Some(&t.device),
            Some(json!({"person_id": pid, "device_id": "gate-north-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    c
}

/// A kiosk sees only the checks asked for at it: not those of the
/// same-named device of another scenario, whose key is another device's.
#[tokio::test]
async fn a_kiosk_of_another_scenario_does_not_see_a_same_named_kiosks_check() {
    let t = common::server().await;
    t.deploy(common::east_manifest()).await;
    let east = t.device_key("residential-gate-east", "gate-north-1").await;
    let pid = t.consenting_person("赵六", "1950-06-06").await;
    let cid = ask_check(&t, &pid).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/staffed-checks/{cid}");
    for (method, path) in [("GET", path.clone()), ("POST", format!("{path}/cancel"))] {
        let (s, e) = t.call(method, &path, Some(&east), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method}: {e}");
        assert_eq!(e["error"], "not_found", "{e}");
    }
    let (s, c) = t.call("GET", &path, Some(&t.device), None).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "pending", "not withdrawn by the other kiosk");
}

/// A check decided before its code was kept with it (no `receipt_code` in
/// the row): a poll makes the code from the stored event, and the
/// decision's receipt has one source, the check's code, whichever way it
/// came.
#[tokio::test]
async fn r15_a_check_decided_before_codes_were_kept_is_answered_from_its_event() {
    use sqlx::Connection;
    let t = common::server().await;
    let pid = t.consenting_person("吴八", "1955-08-08").await;
    let (cid, d) = decided_check(&t, &pid, "fail").await;
    let code = d["outcome"]["receipt_code"].as_str().unwrap().to_string();
    assert!(!code.is_empty());
    let url = format!("sqlite:{}", t.dir.join("facegate.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE staffed_checks SET receipt_code = NULL WHERE id = $1")
        .bind(&cid)
        .execute(&mut c)
        .await
        .unwrap();
    let id = uuid::Uuid::parse_str(&cid).unwrap();
    assert_eq!(
        t.state.store.staffed_check(id).await.unwrap().receipt_code,
        None,
        "as a check decided before codes were kept"
    );
    // Nothing was re-deployed, so the code made again from the event is
    // the one the decision gave.
    assert_eq!(poll(&t, &cid).await, code);
    let (s, kiosk) = t
        .call(
            "GET",
            &format!("/v1/staffed-checks/{cid}"),
            Some(&t.device),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{kiosk}");
    assert_eq!(kiosk["outcome"]["receipt_code"], code.as_str());
    assert_eq!(kiosk["outcome"]["outcome"], "fail");
}
