//! R19 with R18: an operator adds and revokes devices without editing a
//! manifest. The core amends the deployed manifest, lints it (a private
//! place is refused naming R19 and its article, for every caller) and
//! deploys it as a new version, so the filing pack lists what is in force;
//! a revoked device's keys stop working at once, on every instance, and a
//! restart keeps the amendments.

mod common;

use axum::http::StatusCode;
use serde_json::json;

async fn present(t: &common::T, key: &str) -> StatusCode {
    t.present_credential(key, "gate-east-1", "card", "00000001")
        .await
        .0
}

#[tokio::test]
async fn r19_devices_are_added_and_revoked_through_the_core_and_private_places_refused() {
    let t = common::server().await;
    let add = |body: serde_json::Value| {
        let t = &t;
        async move {
            t.call("POST", "/v1/devices", Some(&t.admin), Some(body))
                .await
        }
    };
    // A private place is refused on the server, naming R19 and its article.
    let (s, e) =
        add(json!({"id": "wc-1", "placement": "non_public", "location_zh": "一楼卫生间内"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["rule"], "R19", "{e}");
    assert!(e["article"].as_str().is_some_and(|a| !a.is_empty()), "{e}");
    assert!(
        e["article_zh"].as_str().is_some_and(|a| !a.is_empty()),
        "{e}"
    );
    assert!(!e["message_zh"].as_str().unwrap().is_empty());
    // A device may not add devices.
    let (s, _) = t
        .call(
            "POST",
            "/v1/devices",
            Some(&t.device),
            Some(json!({"id": "gate-x", "placement": "non_public", "location_zh": "东门"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (s, v) = add(json!({"id": "gate-east-1", "placement": "non_public", "location_zh": "东门人行通道", "location_en": "East gate, pedestrian lane"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) =
        add(json!({"id": "gate-east-1", "placement": "non_public", "location_zh": "东门"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, devs) = t.call("GET", "/v1/devices", Some(&t.admin), None).await;
    let east = devs
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "gate-east-1")
        .cloned()
        .expect("listed");
    assert_eq!(east["active"], true);
    assert_eq!(east["status"], "ok");
    // The filing pack is made from the deployed manifest: it lists the device.
    let (s, pack) = t
        .call(
            "GET",
            "/v1/documents/filing-pack?lang=zh",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        pack.as_str().unwrap().contains("东门人行通道"),
        "the pack lists the new device"
    );

    // A key for the new device works…
    let (s, k) = t
        .call(
            "POST",
            "/v1/keys",
            Some(&t.admin),
            Some(json!({"role": "device", "device_id": "gate-east-1", "label": "east"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{k}");
    let key = k["key"].as_str().unwrap().to_string();
    let t2 = t.restart().await;
    assert_eq!(present(&t, &key).await, StatusCode::OK);
    assert_eq!(present(&t2, &key).await, StatusCode::OK);
    // …until the device is revoked: at once, on both instances.
    let (s, v) = t
        .call(
            "POST",
            "/v1/scenarios/residential-gate/devices/gate-east-1/revoke",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(present(&t, &key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(present(&t2, &key).await, StatusCode::UNAUTHORIZED);
    let (s, _) = t
        .call(
            "POST",
            "/v1/scenarios/residential-gate/devices/gate-east-1/revoke",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // A restart keeps the amended manifest (the device, now inactive).
    let t3 = t.restart().await;
    let (_, devs) = t3.call("GET", "/v1/devices", Some(&t3.admin), None).await;
    let east = devs
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "gate-east-1")
        .cloned()
        .expect("still listed after a restart");
    assert_eq!(east["active"], false);
}

#[tokio::test]
async fn r19_a_private_place_is_refused_alike_by_the_device_route_and_the_deploy() {
    // One lint, one answer: the same finding (a device inside a toilet) is
    // the same refusal, with the same status, whether an operator adds the
    // device or the amended manifest is deployed directly. Before, the
    // device route refused it (403, naming R19) and the deploy answered a
    // bad request (400) for the very manifest.
    let t = common::server().await;
    let (s, e) = t
        .call(
            "POST",
            "/v1/devices",
            Some(&t.admin),
            Some(json!({"id": "wc-1", "placement": "non_public", "location_zh": "一楼卫生间内"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["rule"], "R19", "{e}");
    let d = t.state.scenario(None).unwrap();
    let manifest = format!(
        "{}\n\n[[devices]]\nid = \"wc-1\"\nplacement = \"non_public\"\nlocation = {{ zh = \"一楼卫生间内\" }}\n",
        d.manifest.trim_end()
    );
    let err = t.state.core.deploy_scenario(&manifest).await.err().unwrap();
    let api = facegate_server::ApiError::from(err);
    let body = api.body();
    assert_eq!(api.status(), StatusCode::FORBIDDEN, "{body:?}");
    assert_eq!(body.rule.as_deref(), Some("R19"));
    // The one message (its line numbers aside: the console's copy carries
    // a first line naming its base).
    for m in [body.message_en.as_str(), e["message_en"].as_str().unwrap()] {
        assert!(
            m.starts_with("the scenario manifest has errors: R19 / Art. 13 (line "),
            "{m}"
        );
    }
    assert!(
        body.message_zh.contains("R19 / 第十三条"),
        "{}",
        body.message_zh
    );
}

/// A device key belongs to one device of one scenario. Two scenarios each
/// with a `gate-north-1`: a key of one may not act as the other's (refused
/// with the JSON error body), and revoking the device in one scenario
/// revokes only that scenario's keys: the other's keep working.
#[tokio::test]
async fn a_device_key_acts_and_is_revoked_in_its_own_scenario_only() {
    let t = common::server().await;
    t.deploy(common::east_manifest()).await;
    // Without `scenario`, the server's scenario (as for any request).
    let (s, k) = t
        .call(
            "POST",
            "/v1/keys",
            Some(&t.admin),
            Some(json!({"role": "device", "device_id": "gate-north-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{k}");
    assert_eq!(k["device_id"], "gate-north-1", "{k}");
    assert_eq!(k["scenario"], "residential-gate", "{k}");
    let west = k["key"].as_str().unwrap().to_string();
    let east = t.device_key("residential-gate-east", "gate-north-1").await;
    let (_, keys) = t.call("GET", "/v1/keys", Some(&t.admin), None).await;
    let listed = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|x| east.starts_with(&format!("fgk_{}_", x["id"].as_str().unwrap())))
        .cloned()
        .expect("listed");
    assert_eq!(listed["scenario"], "residential-gate-east", "{listed}");
    // A key for a device of a scenario that is not deployed is refused.
    let (s, e) = t
        .call(
            "POST",
            "/v1/keys",
            Some(&t.admin),
            Some(json!({"role": "device", "device_id": "gate-north-1", "scenario": "nowhere"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    // Only a device the scenario declares gets a key (R19: its place and
    // notice are in the manifest).
    for (device, scenario) in [
        ("gate-nowhere-9", None),
        ("gate-nowhere-9", Some("residential-gate-east")),
    ] {
        let mut body = json!({"role": "device", "device_id": device});
        if let Some(sc) = scenario {
            body["scenario"] = json!(sc);
        }
        let (s, e) = t.call("POST", "/v1/keys", Some(&t.admin), Some(body)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{device}: {e}");
        assert!(e.to_string().contains(device), "{e}");
    }
    // Only a device key names a scenario.
    let (s, e) = t
        .call(
            "POST",
            "/v1/keys",
            Some(&t.admin),
            Some(json!({"role": "auditor", "scenario": "residential-gate"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");

    let read = |key: &str, scenario: Option<&str>| {
        let (t, key) = (&t, key.to_string());
        let mut body = json!({"device_id": "gate-north-1", "kind": "card", "secret": "00000001"});
        if let Some(sc) = scenario {
            body["scenario"] = json!(sc);
        }
        async move {
            t.call("POST", "/v1/identify/credential", Some(&key), Some(body))
                .await
        }
    };
    // Each key acts in its own scenario: named, or by default.
    for (key, own) in [
        (&west, "residential-gate"),
        (&east, "residential-gate-east"),
    ] {
        for scenario in [None, Some(own)] {
            let (s, v) = read(key, scenario).await;
            assert_eq!(s, StatusCode::OK, "{own} {scenario:?}: {v}");
            assert_eq!(v["outcome"], "unknown", "{v}");
        }
    }
    // Neither acts as the same-named device of the other scenario.
    for (key, other) in [
        (&west, "residential-gate-east"),
        (&east, "residential-gate"),
    ] {
        let (s, e) = read(key, Some(other)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{other}: {e}");
        assert_eq!(e["error"], "forbidden", "{e}");
        assert!(!e["message_zh"].as_str().unwrap().is_empty(), "{e}");
        assert!(e["message_en"].as_str().unwrap().contains(other), "{e}");
    }

    // Revoking the west scenario's gate-north-1 revokes its keys only.
    let (s, v) = t
        .call(
            "POST",
            "/v1/scenarios/residential-gate/devices/gate-north-1/revoke",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for key in [&west, &t.device] {
        assert_eq!(read(key, None).await.0, StatusCode::UNAUTHORIZED);
    }
    let (s, v) = read(&east, None).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the east scenario's key still works: {v}"
    );
    // So on a restarted instance too: a restart deploys again every
    // scenario deployed before it, not only the configured manifest.
    let t2 = t.restart().await;
    let (s, v) = t2
        .call(
            "POST",
            "/v1/identify/credential",
            Some(&east),
            Some(json!({"device_id": "gate-north-1", "kind": "card", "secret": "00000001"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["outcome"], "unknown", "{v}");
}

/// A device key that migration 11 could give no scenario (its device name
/// was in several scenarios, or none) is refused with the JSON error body
/// until a new key is issued: it never acts in whichever scenario is asked.
#[tokio::test]
async fn a_device_key_without_a_scenario_is_refused() {
    let t = common::server().await;
    let secret = "legacysecret";
    t.state
        .store
        .add_api_key(
            &facegate_store::ApiKeyRecord {
                id: "legacy1".into(),
                role: "device".into(),
                device_id: Some("gate-north-1".into()),
                scenario_id: None,
                label: "written before keys had a scenario".into(),
                secret_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(secret)),
                created_at: chrono::Utc::now(),
                revoked_at: None,
            },
            "test",
        )
        .await
        .unwrap();
    let (s, e) = t
        .present_credential(
            &format!("fgk_legacy1_{secret}"),
            "gate-north-1",
            "card",
            "00000001",
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"], "forbidden", "{e}");
    assert!(
        e["message_en"]
            .as_str()
            .unwrap()
            .contains("issue a new key"),
        "{e}"
    );
    assert!(!e["message_zh"].as_str().unwrap().is_empty(), "{e}");
}

/// A device acts for a person only after that person passed a check at
/// that very device: a same-named device of another scenario does not
/// count (before, the device was looked up by name across scenarios, so
/// the east gate's key could issue a portal code, or withdraw a consent,
/// for someone who had just passed at the west gate of the same name).
#[tokio::test]
async fn a_device_acts_only_for_who_passed_at_that_device_not_a_same_named_one() {
    let t = common::server().await;
    t.deploy(common::east_manifest()).await;
    let east = t.device_key("residential-gate-east", "gate-north-1").await;
    let p = t.consenting_person("Obama", "1961-08-04").await;
    let (s, b) = t
        .call("POST", "/v1/credentials", Some(&t.device), Some(json!({"person_id": p, "device_id": "gate-north-1", "kind": "pin", "secret": "246810"})))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t
        .call(
            "POST",
            "/v1/verify/credential",
            Some(&t.device),
            Some(json!({"person_id": p, "device_id": "gate-north-1", "secret": "246810"})),
        )
        .await;
    assert_eq!(
        (s, b["outcome"].as_str()),
        (StatusCode::OK, Some("pass")),
        "{b}"
    );
    let portal_code = |key: &str| {
        let (t, key, p) = (&t, key.to_string(), p.clone());
        async move {
            t.call(
                "POST",
                &format!("/v1/persons/{p}/portal-code"),
                Some(&key),
                Some(json!({"device_id": "gate-north-1"})),
            )
            .await
        }
    };
    let (s, b) = portal_code(&east).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "the east gate did not check them: {b}"
    );
    assert_eq!(b["error"], "forbidden", "{b}");
    let (s, b) = portal_code(&t.device).await;
    assert_eq!(s, StatusCode::OK, "the west gate did: {b}");
    // Nor may the east gate withdraw their consent.
    let cs = t.consents(&p).await;
    let cid = cs[0]["id"].as_str().unwrap();
    let (s, b) = t
        .call(
            "POST",
            &format!("/v1/consents/{cid}/withdraw"),
            Some(&east),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(t.consents(&p).await[0]["withdrawn_at"].is_null());
}
