//! Signed receipts through the API: every decision's answer carries a code
//! signed by the deployment; it verifies offline with the public key alone,
//! through the public check, and after a restart (the key is derived from
//! the identity key, not held in process memory); an altered code fails.

mod common;

use axum::http::StatusCode;
use facegate_core::receipts;
use serde_json::json;

#[tokio::test]
async fn a_decision_receipt_verifies_offline_and_an_altered_one_fails() {
    let t = common::server().await;
    let p = t.consenting_person("Obama", "1961-08-04").await;
    let (s, b) = t.face("/v1/enrol", &p, "obama.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t.face("/v1/verify", &p, "obama2.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let code = b["receipt_code"].as_str().unwrap().to_string();
    assert!(code.starts_with("FG1-"), "{b}");
    assert!(code.len() < 260, "a short code: {} chars", code.len());

    // The public key, asked without any credentials.
    let (s, k) = t.call("GET", "/v1/receipts/public-key", None, None).await;
    assert_eq!(s, StatusCode::OK, "{k}");
    let pk = k["public_key"].as_str().unwrap().to_string();
    // The notice names the same key.
    let (_, n) = t.call("GET", "/v1/notice", None, None).await;
    assert_eq!(n["receipt_public_key"].as_str(), Some(pk.as_str()));

    // Offline: only the code and the public key.
    let key = receipts::parse_public_key(&pk).unwrap();
    let r = receipts::verify(&code, &key).unwrap();
    assert_eq!(r.receipt_id.to_string(), b["receipt_id"].as_str().unwrap());
    assert_eq!(r.decision, "match");
    assert_eq!(r.method, "face");
    assert_eq!(r.device.as_deref(), Some("gate-north-1"));
    assert_eq!(r.scenario, "residential-gate");
    let pseudonym = r.person.clone().expect("a pseudonym");
    assert!(!pseudonym.contains(&p), "a pseudonym, not the person id");

    // The public check (no key needed) agrees; one altered byte fails.
    let (s, v) = t
        .call(
            "POST",
            "/v1/receipts/verify",
            None,
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(
        (s, v["valid"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{v}"
    );
    assert_eq!(v["receipt"]["receipt_id"], b["receipt_id"]);
    let mut bytes = receipts::code_bytes(&code).unwrap();
    bytes[20] ^= 1;
    let altered = receipts::code_from_bytes(&bytes);
    let (s, v) = t
        .call(
            "POST",
            "/v1/receipts/verify",
            None,
            Some(json!({ "code": altered })),
        )
        .await;
    assert_eq!(
        (s, v["valid"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{v}"
    );
    assert!(!v["message_zh"].as_str().unwrap().is_empty());
    assert!(receipts::verify(&altered, &key).is_err());

    // The QR image of the code; a non-code is refused with the JSON error body.
    let (s, svg) = t
        .call("GET", &format!("/v1/receipts/qr?code={code}"), None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(svg.as_str().unwrap().contains("<svg"), "{svg}");
    let (s, e) = t
        .call("GET", "/v1/receipts/qr?code=hello", None, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["message_zh"].is_string() && e["message_en"].is_string());

    // An alternative method gets a receipt from the same key.
    let (s, b2) = t
        .call("POST", "/v1/credentials", Some(&t.device), Some(json!({"person_id": p, "device_id": "gate-north-1", "kind": "pin", "secret": "246810"})))
        .await;
    assert_eq!(s, StatusCode::OK, "{b2}");
    let (s, b2) = t
        .call("POST", "/v1/verify/credential", Some(&t.device), Some(json!({"person_id": p, "device_id": "gate-north-1", "kind": "pin", "secret": "246810"})))
        .await;
    assert_eq!(s, StatusCode::OK, "{b2}");
    let r2 = receipts::verify(b2["receipt_code"].as_str().unwrap(), &key).unwrap();
    assert_eq!(r2.method, "pin");
    assert_eq!(
        r2.person.as_deref(),
        Some(pseudonym.as_str()),
        "one pseudonym per person"
    );

    // The person's evidence file: every decision with its receipt (the same
    // code the kiosk showed), notice versions, the filing number and the key.
    let tok = t.portal_token(&p).await;
    let (s, ev) = t.call("GET", "/v1/me/evidence", Some(&tok), None).await;
    assert_eq!(s, StatusCode::OK, "{ev}");
    assert_eq!(ev["public_key"].as_str(), Some(pk.as_str()));
    assert_eq!(ev["person_pseudonym"].as_str(), Some(pseudonym.as_str()));
    assert!(ev.get("filing_number").is_some());
    assert!(!ev["notices"].as_array().unwrap().is_empty(), "{ev}");
    let decisions = ev["decisions"].as_array().unwrap();
    assert!(decisions.len() >= 3, "{ev}");
    let same = decisions
        .iter()
        .find(|d| d["receipt_id"] == b["receipt_id"])
        .expect("the verification is in the file");
    assert_eq!(same["receipt_code"].as_str(), Some(code.as_str()));
    assert!(same["notice_version"].is_i64(), "{same}");
    for d in decisions {
        receipts::verify(d["receipt_code"].as_str().unwrap(), &key).unwrap();
    }
    assert!(ev["consents"][0]["notice_version"].is_i64(), "{ev}");
    // Only a portal session has one.
    let (s, _) = t.call("GET", "/v1/me/evidence", Some(&t.admin), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // After a restart: the same key, so the old receipt still verifies.
    let t2 = t.restart().await;
    let (_, k2) = t2.call("GET", "/v1/receipts/public-key", None, None).await;
    assert_eq!(k2["public_key"].as_str().unwrap(), pk);
    let (_, v) = t2
        .call(
            "POST",
            "/v1/receipts/verify",
            None,
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(v["valid"], true, "{v}");
}

/// R21 / R13: the filing pack and the PIA as official documents, one
/// language each, with the processor's officers, the headcount the API
/// reports, the receipts' public key, the signage photo and a signature
/// block at the end.
#[tokio::test]
async fn r21_official_documents_show_officers_headcount_signage_and_signature() {
    let t = common::server().await;
    let (_, f) = t.call("GET", "/v1/filing", Some(&t.auditor), None).await;
    let headcount = f["headcount"].as_i64().unwrap();
    let (_, k) = t.call("GET", "/v1/receipts/public-key", None, None).await;
    let pk = k["public_key"].as_str().unwrap().to_string();

    // A real JPEG as the signage photo of a device; a non-image is refused.
    let jpeg = std::fs::read(facegate_assets::fixture("obama.jpg").unwrap()).unwrap();
    let b64 = facegate_server::pipeline::encode_image(&jpeg);
    let (s, b) = t
        .call(
            "PUT",
            "/v1/devices/gate-north-1/signage",
            Some(&t.admin),
            Some(json!({ "image": format!("data:image/jpeg;base64,{b64}") })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["content_type"], "image/jpeg");
    let (s, b) = t
        .call(
            "PUT",
            "/v1/devices/gate-north-1/signage",
            Some(&t.admin),
            Some(json!({ "image": "aGVsbG8gd29ybGQ=" })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    // Read by the vision crate's sniff: a JPEG signature with no header
    // behind it, and a BMP, are not signage photos.
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[0; 60]);
    for bytes in [vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4], bmp] {
        let (s, b) = t
            .call(
                "PUT",
                "/v1/devices/gate-north-1/signage",
                Some(&t.admin),
                Some(json!({ "image": facegate_server::pipeline::encode_image(&bytes) })),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    }
    let (s, _) = t
        .call(
            "PUT",
            "/v1/devices/nope/signage",
            Some(&t.admin),
            Some(json!({ "image": b64 })),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .call(
            "PUT",
            "/v1/devices/gate-north-1/signage",
            Some(&t.auditor),
            Some(json!({ "image": b64 })),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    for (path, lang) in [
        ("/v1/documents/filing-pack", "zh"),
        ("/v1/documents/filing-pack", "en"),
        ("/v1/documents/pia", "zh"),
        ("/v1/documents/pia", "en"),
    ] {
        let (s, html) = t
            .call(
                "GET",
                &format!("{path}?lang={lang}"),
                Some(&t.auditor),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{path} {lang}: {html}");
        let html = html.as_str().unwrap();
        let want: &[&str] = if lang == "zh" {
            &[
                "法定代表人",
                "个人信息保护负责人",
                "示例物业服务有限公司",
                "签字、盖章与日期",
                "@page",
            ]
        } else {
            &[
                "Legal representative",
                "Person in charge of personal information protection",
                "Example Property Services",
                "Signature, seal and date",
                "@page",
            ]
        };
        for w in want {
            assert!(html.contains(w), "{path} {lang} lacks {w}");
        }
        assert!(html.contains(&pk), "{path} {lang} lacks the receipt key");
        if path.ends_with("filing-pack") {
            assert!(
                html.contains(&format!("<td>{headcount}</td>")),
                "{path} {lang} lacks the headcount"
            );
            assert!(
                html.contains("<img class=\"signage\" src=\"data:image/jpeg;base64,"),
                "{path} {lang}: no signage photo"
            );
        }
        let sign = html.find("id=\"signature-block\"").unwrap();
        assert_eq!(
            html[sign..].matches("<h2>").count(),
            1,
            "the signature block is last"
        );
    }
    let (s, _) = t
        .call("GET", "/v1/documents/pia?lang=fr", Some(&t.auditor), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Both filing packs (the console's and the official document) state
    // the system's operating procedures (Art. 15's fourth content), from
    // the one set of inputs; before, both were built with none.
    let procedures = facegate_server::deploy::operating_procedures();
    assert!(!procedures.is_empty());
    for path in [
        "/v1/filing/pack",
        "/v1/documents/filing-pack?lang=zh",
        "/v1/documents/filing-pack?lang=en",
    ] {
        let (s, html) = t.call("GET", path, Some(&t.auditor), None).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        let html = html.as_str().unwrap();
        for p in &procedures {
            let head = p.split(':').next().unwrap();
            assert!(html.contains(head), "{path} lacks the procedure {head:?}");
        }
    }
}

#[tokio::test]
async fn the_evidence_file_matches_each_record_against_its_own_scenarios_notices() {
    // The default scenario's notice changes (version 2); a second scenario
    // is deployed (its notice is version 1). A person consents and is
    // checked in both: each consent and decision names its own scenario and
    // the version of that scenario's notice (before, every record was read
    // against the default scenario's notices: version 2 for all).
    let t = common::server().await;
    let demo = facegate_server::deploy::demo_manifest();
    let changed = demo.replacen("021-5555 0100，", "021-5555 0199，", 1);
    assert_ne!(changed, demo, "the demo manifest's contact moved");
    for m in [changed, common::east_manifest()] {
        t.deploy(m).await;
    }
    let p = t.consenting_person("Obama", "1961-08-04").await;
    // Each scenario's gate-north-1 is its own device, with its own key.
    let east = t.device_key("residential-gate-east", "gate-north-1").await;
    let key = |scenario: &str| {
        if scenario == "residential-gate-east" {
            east.clone()
        } else {
            t.device.clone()
        }
    };
    let (_, n) = t
        .call(
            "GET",
            "/v1/notice?scenario=residential-gate-east",
            None,
            None,
        )
        .await;
    assert_eq!(n["scenario"], "residential-gate-east", "{n}");
    let (s, c) = t
        .call(
            "POST",
            "/v1/consents",
            Some(&east),
            Some(
                json!({"person_id": p, "notice_version": n["version"], "device_id": "gate-north-1",
                        "scenario": "residential-gate-east"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    for scenario in ["residential-gate", "residential-gate-east"] {
        let (s, b) = t
            .call("POST", "/v1/credentials", Some(&key(scenario)), Some(json!({"person_id": p, "device_id": "gate-north-1", "kind": "pin", "secret": "246810", "scenario": scenario})))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, b) = t
            .call("POST", "/v1/verify/credential", Some(&key(scenario)), Some(json!({"person_id": p, "device_id": "gate-north-1", "kind": "pin", "secret": "246810", "scenario": scenario})))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let tok = t.portal_token(&p).await;
    let (s, ev) = t.call("GET", "/v1/me/evidence", Some(&tok), None).await;
    assert_eq!(s, StatusCode::OK, "{ev}");
    let want = |scenario: &str| if scenario == "residential-gate" { 2 } else { 1 };
    let decisions = ev["decisions"].as_array().unwrap();
    for scenario in ["residential-gate", "residential-gate-east"] {
        let mine: Vec<_> = decisions
            .iter()
            .filter(|d| d["scenario"] == scenario)
            .collect();
        assert!(!mine.is_empty(), "{scenario}: {ev}");
        for d in mine {
            assert_eq!(d["notice_version"], want(scenario), "{d}");
        }
    }
    let consents = ev["consents"].as_array().unwrap();
    assert_eq!(consents.len(), 2, "{ev}");
    for c in consents {
        assert_eq!(
            c["notice_version"],
            want(c["scenario"].as_str().unwrap()),
            "{c}"
        );
    }
    // Both scenarios' notices are in the file, each naming its scenario.
    let notices = ev["notices"].as_array().unwrap();
    for (scenario, version) in [
        ("residential-gate", 1),
        ("residential-gate", 2),
        ("residential-gate-east", 1),
    ] {
        assert!(
            notices
                .iter()
                .any(|n| n["scenario"] == scenario && n["version"] == version),
            "{scenario} v{version}: {ev}"
        );
    }
}

#[tokio::test]
async fn a_receipt_names_its_device_through_the_deployments_device_index() {
    // Every deployed scenario indexes its devices both ways (made once at
    // deploy): the receipt's device name is one look-up, not a scan of the
    // device map on every decision.
    let t = common::server().await;
    t.deploy(common::east_manifest()).await;
    for d in t.state.scenarios.read().unwrap().iter() {
        assert!(!d.devices.is_empty());
        assert_eq!(d.devices.len(), d.device_names.len(), "{}", d.scenario.id);
        for (name, id) in &d.devices {
            assert_eq!(d.device_names.get(id), Some(name), "{}", d.scenario.id);
        }
    }
    let p = t.consenting_person("Obama", "1961-08-04").await;
    let east = t.device_key("residential-gate-east", "gate-north-1").await;
    let (s, b) = t
        .call("POST", "/v1/credentials", Some(&east), Some(json!({"person_id": p, "device_id": "gate-north-1", "kind": "pin", "secret": "246810", "scenario": "residential-gate-east"})))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, k) = t.call("GET", "/v1/receipts/public-key", None, None).await;
    let key = receipts::parse_public_key(k["public_key"].as_str().unwrap()).unwrap();
    let r = receipts::verify(b["receipt_code"].as_str().unwrap(), &key).unwrap();
    assert_eq!(r.scenario, "residential-gate-east");
    assert_eq!(r.device.as_deref(), Some("gate-north-1"));
}

/// R19's signage evidence belongs to one device of one scenario: when two
/// deployed scenarios both have a `gate-north-1`, an upload that does not
/// name the scenario is refused (naming both), and one that names it lands
/// on that scenario's device, never on the same-named gate of the other.
#[tokio::test]
async fn r19_a_signage_photo_lands_on_the_named_scenarios_device_not_a_same_named_one() {
    let t = common::server().await;
    t.deploy(common::east_manifest()).await;
    let east = t
        .state
        .scenario(Some("residential-gate-east"))
        .unwrap()
        .devices["gate-north-1"];
    let home = t.state.scenario(None).unwrap();
    let (home_id, home_dev) = (home.scenario.id.clone(), home.devices["gate-north-1"]);
    assert_ne!(east, home_dev);
    // The same rule wherever a device is named without its scenario: a
    // shared name is neither scenario's device, never the first found.
    let unscoped = facegate_core::DeviceAt {
        name: "gate-north-1",
        scenario: None,
    };
    assert_eq!(t.state.device_at(unscoped), None);
    let at_east = facegate_core::DeviceAt {
        scenario: Some(
            t.state
                .scenario(Some("residential-gate-east"))
                .unwrap()
                .store_id,
        ),
        ..unscoped
    };
    assert_eq!(t.state.device_at(at_east), Some(east));
    let jpeg = std::fs::read(facegate_assets::fixture("obama.jpg").unwrap()).unwrap();
    let body = json!({ "image": facegate_server::pipeline::encode_image(&jpeg) });
    let (s, e) = t
        .call(
            "PUT",
            "/v1/devices/gate-north-1/signage",
            Some(&t.admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let said = e.to_string();
    assert!(
        said.contains("residential-gate-east") && said.contains(&home_id),
        "{e}"
    );
    assert!(t.state.store.signage_photos().await.unwrap().is_empty());
    let (s, b) = t
        .call(
            "PUT",
            "/v1/devices/gate-north-1/signage?scenario=residential-gate-east",
            Some(&t.admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["scenario"], "residential-gate-east");
    let photos = t.state.store.signage_photos().await.unwrap();
    assert_eq!(
        photos.iter().map(|p| p.device_id).collect::<Vec<_>>(),
        vec![east]
    );
    let (s, e) = t
        .call(
            "PUT",
            "/v1/devices/gate-north-1/signage?scenario=no-such-scenario",
            Some(&t.admin),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
}
