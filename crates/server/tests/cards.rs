//! R15 with R6/R9: a card or QR code identifies a resident on its own at
//! the kiosk (no resident number first), completing the check as that
//! method with a signed receipt; the console issues, replaces and revokes
//! cards; a device's misses are counted in the store and survive a restart,
//! and an unknown card is answered in the same shape as a known one.

mod common;

use axum::http::StatusCode;
use facegate_core::receipts;
use serde_json::{json, Value};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// The console issues `pid` a card numbered `secret` (replacing any active
/// one): enrolled, with its receipt.
async fn issue_card(t: &common::T, pid: &str, secret: &str) -> Value {
    let (s, o) = t
        .call(
            "POST",
            &format!("/v1/persons/{pid}/cards"),
            Some(&t.admin),
            Some(json!({"kind": "card", "secret": secret})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(o["outcome"], "enrolled", "{o}");
    o
}

#[tokio::test]
async fn r15_a_card_alone_identifies_a_resident_and_unknown_cards_are_throttled() {
    let t = common::server().await;
    let pid = t.consenting_person("李四", "1950-02-02").await;
    let present = |secret: &'static str| {
        let t = &t;
        async move {
            t.present_credential(&t.device, "gate-north-1", "card", secret)
                .await
        }
    };
    // The console issues a card; only its keyed hash is kept.
    issue_card(&t, &pid, "0004512345").await;
    // A device may not issue through the console's route.
    let (s, _) = t
        .call(
            "POST",
            &format!("/v1/persons/{pid}/cards"),
            Some(&t.device),
            Some(json!({"kind": "card", "secret": "0004577777", "device_id": "gate-north-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The card alone: a pass as method `card`, with only the person id.
    let (s, known) = present("0004512345").await;
    assert_eq!(s, StatusCode::OK, "{known}");
    assert_eq!(known["outcome"], "pass");
    assert_eq!(known["method"], "card");
    assert_eq!(known["person_id"], pid.as_str());
    assert!(!known["grants"].as_str().unwrap().is_empty(), "{known}");
    let text = known.to_string();
    assert!(!text.contains("李四") && !text.contains("1950"), "{text}");
    let (_, k) = t.call("GET", "/v1/receipts/public-key", None, None).await;
    let key = receipts::parse_public_key(k["public_key"].as_str().unwrap()).unwrap();
    let r = receipts::verify(known["receipt_code"].as_str().unwrap(), &key).unwrap();
    assert_eq!(r.method, "card");
    assert_eq!(r.decision, "match");
    assert_eq!(r.device.as_deref(), Some("gate-north-1"));

    // What a reader typed, not saying whether card or QR (the kiosk's
    // wedge): looked up as each kind the scenario offers.
    let (s, w) = t
        .present_credential(&t.device, "gate-north-1", "wedge", "0004512345")
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(w["outcome"], "pass");
    assert_eq!(w["method"], "card");

    // An unknown card: the same answer shape, no person, a receipt too.
    let (s, unknown) = present("0004500000").await;
    assert_eq!(s, StatusCode::OK, "{unknown}");
    assert_eq!(unknown["outcome"], "unknown");
    assert!(unknown["person_id"].is_null(), "{unknown}");
    assert_eq!(keys(&known), keys(&unknown));
    let r = receipts::verify(unknown["receipt_code"].as_str().unwrap(), &key).unwrap();
    assert_eq!(r.decision, "unknown");
    assert!(r.person.is_none());
    // A PIN identifies no one on its own.
    let (s, _) = t
        .present_credential(&t.device, "gate-north-1", "pin", "1234")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // The console lists cards without their numbers; replacing revokes
    // the old one at once.
    let (s, list) = t
        .call(
            "GET",
            &format!("/v1/persons/{pid}/cards"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert!(!list.to_string().contains("0004512345"), "{list}");
    issue_card(&t, &pid, "0004599999").await;
    let (_, list) = t
        .call(
            "GET",
            &format!("/v1/persons/{pid}/cards"),
            Some(&t.admin),
            None,
        )
        .await;
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert!(!list[0]["revoked_at"].is_null(), "the old card is revoked");
    assert!(list[1]["revoked_at"].is_null());
    let (_, o) = present("0004512345").await;
    assert_eq!(o["outcome"], "unknown", "a replaced card no longer opens");
    let (_, o) = present("0004599999").await;
    assert_eq!(o["outcome"], "pass", "{o}");
    // Revoked in the console: it stops identifying at once.
    let new_id = list[1]["id"].as_str().unwrap();
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/v1/persons/{pid}/cards/{new_id}"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, o) = present("0004599999").await;
    assert_eq!(o["outcome"], "unknown");
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/v1/persons/{pid}/cards/{new_id}"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A guesser is stopped: misses are counted per device in the store
    // (three so far), a good card does not reset them, and the lock-out
    // survives a restart.
    issue_card(&t, &pid, "0004588888").await;
    let mut misses = 3;
    let mut locked = false;
    for i in 0..20 {
        let guess: &'static str = Box::leak(format!("99{i:08}").into_boxed_str());
        let (s, _) = present(guess).await;
        if i == 2 {
            let (s, o) = present("0004588888").await;
            assert_eq!(s, StatusCode::OK, "{o}");
            assert_eq!(o["outcome"], "pass");
        }
        if s == StatusCode::TOO_MANY_REQUESTS {
            locked = true;
            break;
        }
        assert_eq!(s, StatusCode::OK);
        misses += 1;
    }
    assert!(locked, "the device is locked out");
    assert_eq!(misses, facegate_core::cards::DEVICE_MISSES);
    let t2 = t.restart().await;
    let (s, e) = t2
        .present_credential(&t.device, "gate-north-1", "card", "0004588888")
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{e}");
    // The passes are the person's receipts, as every other check's.
    let tok = t2.portal_token(&pid).await;
    let (_, me) = t2.call("GET", "/v1/me", Some(&tok), None).await;
    let passes = me["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["method"] == "card" && e["result"] == "match")
        .count();
    assert_eq!(passes, 4, "{me}");
}

#[tokio::test]
async fn r15_a_scenario_wide_lock_out_does_not_spend_a_devices_own_misses() {
    // The scenario's whole identifier space is used up (by other devices);
    // lookups at this device are refused and charge nothing to it: once the
    // scenario's lock ends, the device still has its full allowance.
    let t = common::server().await;
    let d = t.state.scenario(None).unwrap();
    let who = facegate_core::ops::Who {
        actor: "device:gate-north-1",
        device: Some("gate-north-1"),
    };
    let (by_key, space_key) = facegate_core::cards::counter_keys(&d, who);
    let rule = facegate_store::AttemptPolicy::per_15_minutes(facegate_core::cards::SCENARIO_MISSES);
    for _ in 0..facegate_core::cards::SCENARIO_MISSES {
        t.state
            .store
            .reserve_attempt(&space_key, rule, t.state.now())
            .await
            .unwrap();
    }
    for i in 0..facegate_core::cards::DEVICE_MISSES + 2 {
        let (s, e) = t
            .present_credential(&t.device, "gate-north-1", "card", &format!("77{i:08}"))
            .await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{e}");
    }
    assert_eq!(
        t.state.store.attempt_failures(&by_key).await.unwrap(),
        0,
        "the device's own misses are untouched"
    );
}

#[tokio::test]
async fn r19_a_card_read_at_a_device_the_scenario_lacks_is_refused_before_it_is_counted() {
    // Face identification refuses a device its scenario does not have; a
    // card read did not (it was answered `unknown` and charged to a counter
    // of that device id). Now both refuse it, and nothing is counted.
    let t = common::server().await;
    let (s, e) = t
        .present_credential(&t.admin, "gate-nowhere-9", "card", "0004512345")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let d = t.state.scenario(None).unwrap();
    let who = facegate_core::ops::Who {
        actor: "device:gate-nowhere-9",
        device: Some("gate-nowhere-9"),
    };
    let (by_key, space_key) = facegate_core::cards::counter_keys(&d, who);
    assert_eq!(t.state.store.attempt_failures(&by_key).await.unwrap(), 0);
    assert_eq!(t.state.store.attempt_failures(&space_key).await.unwrap(), 0);
}

/// A card's holder who declined face (R17) and then withdrew their consent
/// to face processing (R8) still passes by card: policy asks nothing of the
/// person for a method that does not touch the face, so the card hit reads
/// none of those facts, and the decision is the one it always was.
#[tokio::test]
async fn r15_r17_a_card_passes_whatever_the_holder_decided_about_face() {
    let t = common::server().await;
    let pid = t.consenting_person("周七", "1960-07-07").await;
    issue_card(&t, &pid, "0004599999").await;
    let present = || t.present_credential(&t.device, "gate-north-1", "card", "0004599999");
    let (s, v) = present().await;
    assert_eq!(
        (s, v["outcome"].clone()),
        (StatusCode::OK, json!("pass")),
        "{v}"
    );
    let grants = v["grants"].clone();

    let (s, v) = t
        .call(
            "POST",
            "/v1/decline-face",
            Some(&t.admin),
            Some(json!({"person_id": pid})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = present().await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["outcome"], "pass", "after declining face: {v}");
    assert_eq!(v["grants"], grants);

    let consent = t.consents(&pid).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = t
        .call(
            "POST",
            &format!("/v1/consents/{consent}/withdraw"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = present().await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["outcome"], "pass", "after withdrawing consent: {v}");
    assert_eq!(v["grants"], grants);
    assert_eq!(v["person_id"], pid.as_str());
}
