//! Liveness the server decides (issue 15), through the HTTP API with the
//! real models: server-issued challenges (nonce, order, deadline, device and
//! person binding, once), replay refusal, and the level each scenario
//! requires. Every refusal names R20 (Art. 14) in Chinese and English.

mod common;

use axum::http::StatusCode;
use facegate_vision::challenge::{clip, Action};
use serde_json::{json, Value};

/// The demo scenario as it ships: `liveness` unset, so `active`.
async fn active_server() -> common::T {
    common::server_with_manifest(Some(facegate_core::deploy::demo_manifest())).await
}

fn assert_r20(s: StatusCode, b: &Value) {
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["rule"], "R20", "{b}");
    assert_eq!(b["article"], "Art. 14", "{b}");
    assert!(
        !b["message_zh"].as_str().unwrap_or("").is_empty()
            && !b["message_en"].as_str().unwrap_or("").is_empty(),
        "{b}"
    );
}

/// A challenge for `person` (or 1:N) at gate-north-1, with the device key.
async fn challenge(t: &common::T, person: Option<&str>) -> (String, Vec<Action>) {
    let (s, b) = t
        .call(
            "POST",
            "/v1/challenges",
            Some(&t.device),
            Some(json!({"device_id": "gate-north-1", "person_id": person})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["required"], "active", "{b}");
    let actions: Vec<Action> = b["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| serde_json::from_value(a["action"].clone()).unwrap())
        .collect();
    assert!((2..=3).contains(&actions.len()), "{b}");
    (b["nonce"].as_str().unwrap().to_string(), actions)
}

/// Ask for challenges until one the fixture photos can perform (one turn
/// and an open mouth: the fixtures hold no blink or nod). The server's
/// choice is random and not steered: the camera side waits for one it can do.
async fn performable_challenge(t: &common::T, person: Option<&str>) -> (String, Vec<Action>) {
    for _ in 0..200 {
        let (nonce, actions) = challenge(t, person).await;
        if clip::fixture_clip(&actions).unwrap().is_some() {
            return (nonce, actions);
        }
    }
    panic!("no performable challenge in 200 tries");
}

/// JPEG frames that perform `actions` in order (made from the fixtures).
fn frames_doing(actions: &[Action]) -> Vec<String> {
    clip::fixture_clip(actions)
        .unwrap()
        .expect("performable")
        .iter()
        .map(|img| {
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
                .encode_image(img)
                .unwrap();
            facegate_server::pipeline::encode_image(&common::unique(out))
        })
        .collect()
}

async fn capture(
    t: &common::T,
    path: &str,
    person: Option<&str>,
    images: &[String],
    nonce: Option<&str>,
) -> (StatusCode, Value) {
    t.call(
        "POST",
        path,
        Some(&t.device),
        Some(json!({"person_id": person, "device_id": "gate-north-1",
                    "images": images, "challenge_nonce": nonce})),
    )
    .await
}

#[tokio::test]
async fn r20_a_scenario_requiring_active_refuses_a_passive_only_request_from_any_device_key() {
    let t = active_server().await;
    let p = t.consenting_person("Obama", "1961-08-04").await;
    let south = t
        .state
        .auth
        .issue(
            facegate_server::Role::Device,
            Some(facegate_server::BoundDevice::of(
                &t.state.scenario(None).unwrap(),
                "gate-south-1",
            )),
            "test",
            "test",
        )
        .await
        .unwrap()
        .key;
    let frame = facegate_server::pipeline::encode_image(&common::fresh_frame("obama.jpg"));
    for (key, device) in [
        (&t.device, "gate-north-1"),
        (&south, "gate-south-1"),
        (&t.admin, "gate-north-1"),
    ] {
        // (1:N is not registered for this scenario: R3 refuses it first.)
        for path in ["/v1/enrol", "/v1/verify"] {
            // Without a nonce, and with the old client-chosen `challenge: "none"`.
            for body in [
                json!({"person_id": p, "device_id": device, "images": [frame]}),
                json!({"person_id": p, "device_id": device, "images": [frame], "challenge": "none"}),
            ] {
                let (s, b) = t.call("POST", path, Some(key), Some(body)).await;
                assert_r20(s, &b);
                assert!(b["message_en"].as_str().unwrap().contains("active"), "{b}");
            }
        }
    }
    // The refusals were recorded (a receipt each) and nothing was enrolled.
    assert_eq!(t.state.store.headcount().await.unwrap().count, 0);
}

#[tokio::test]
async fn r20_a_performed_challenge_passes_and_the_same_frames_in_the_wrong_order_are_refused() {
    let t = active_server().await;
    let p = t.consenting_person("Obama", "1961-08-04").await;
    // The actions in the order asked: enrolled.
    let (nonce, actions) = performable_challenge(&t, Some(&p)).await;
    let (s, b) = capture(
        &t,
        "/v1/enrol",
        Some(&p),
        &frames_doing(&actions),
        Some(&nonce),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{actions:?}: {b}");
    assert_eq!(b["outcome"], "enrolled", "{b}");
    // The same actions in the other order: refused, naming the missing step.
    let (nonce, actions) = performable_challenge(&t, Some(&p)).await;
    let mut reversed = actions.clone();
    reversed.reverse();
    let (s, b) = capture(
        &t,
        "/v1/verify",
        Some(&p),
        &frames_doing(&reversed),
        Some(&nonce),
    )
    .await;
    assert_r20(s, &b);
    // The nonce is spent: the right frames with it are refused too.
    let (s, b) = capture(
        &t,
        "/v1/verify",
        Some(&p),
        &frames_doing(&actions),
        Some(&nonce),
    )
    .await;
    assert_r20(s, &b);
    assert!(
        b["message_en"].as_str().unwrap().contains("already used"),
        "{b}"
    );
    // A fresh challenge performed in order passes verification.
    let (nonce, actions) = performable_challenge(&t, Some(&p)).await;
    let (s, b) = capture(
        &t,
        "/v1/verify",
        Some(&p),
        &frames_doing(&actions),
        Some(&nonce),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{actions:?}: {b}");
    assert_eq!(b["outcome"], "pass", "{b}");
}

#[tokio::test]
async fn r20_a_sequence_of_one_static_photo_fails_every_active_challenge() {
    let t = active_server().await;
    let p = t.consenting_person("Obama", "1961-08-04").await;
    for _ in 0..6 {
        let (nonce, actions) = challenge(&t, Some(&p)).await;
        // The photo held still: distinct bytes each frame (no replay), the
        // same picture.
        let frames: Vec<String> = (0..6)
            .map(|_| facegate_server::pipeline::encode_image(&common::fresh_frame("obama.jpg")))
            .collect();
        let (s, b) = capture(&t, "/v1/enrol", Some(&p), &frames, Some(&nonce)).await;
        assert_r20(s, &b);
        assert!(
            b["message_en"].as_str().unwrap().contains("was not seen"),
            "{actions:?}: {b}"
        );
    }
    assert_eq!(t.state.store.headcount().await.unwrap().count, 0);
}

#[tokio::test]
async fn r20_a_nonce_is_taken_once_and_only_by_its_device_and_person() {
    let t = active_server().await;
    let p = t.consenting_person("Obama", "1961-08-04").await;
    let other = t.consenting_person("Biden", "1942-11-20").await;
    // Issued to gate-south-1 (by an operator), sent by gate-north-1's key.
    let (s, b) = t
        .call(
            "POST",
            "/v1/challenges",
            Some(&t.admin),
            Some(json!({"device_id": "gate-south-1", "person_id": p})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let south_nonce = b["nonce"].as_str().unwrap().to_string();
    let actions: Vec<Action> = b["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| serde_json::from_value(a["action"].clone()).unwrap())
        .collect();
    let frames: Vec<String> = (0..4)
        .map(|_| facegate_server::pipeline::encode_image(&common::fresh_frame("obama.jpg")))
        .collect();
    let (s, b) = capture(&t, "/v1/enrol", Some(&p), &frames, Some(&south_nonce)).await;
    assert_r20(s, &b);
    assert!(
        b["message_en"].as_str().unwrap().contains("another device"),
        "{actions:?}: {b}"
    );
    // A device key cannot ask for another device's challenge either.
    let (s, b) = t
        .call(
            "POST",
            "/v1/challenges",
            Some(&t.device),
            Some(json!({"device_id": "gate-south-1", "person_id": p})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    // Issued for one person, sent for another.
    let (nonce, _) = challenge(&t, Some(&p)).await;
    let (s, b) = capture(
        &t,
        "/v1/enrol",
        Some(&other),
        &frames_fresh(4),
        Some(&nonce),
    )
    .await;
    assert_r20(s, &b);
    assert!(b["message_en"].as_str().unwrap().contains("person"), "{b}");
    // Used once (it failed), then again: unknown or already used.
    let (s, b) = capture(&t, "/v1/enrol", Some(&p), &frames_fresh(4), Some(&nonce)).await;
    assert_r20(s, &b);
    assert!(
        b["message_en"].as_str().unwrap().contains("already used"),
        "{b}"
    );
    // A made-up nonce.
    let (s, b) = capture(&t, "/v1/enrol", Some(&p), &frames_fresh(4), Some("00ff")).await;
    assert_r20(s, &b);
}

fn frames_fresh(n: usize) -> Vec<String> {
    (0..n)
        .map(|_| facegate_server::pipeline::encode_image(&common::fresh_frame("obama.jpg")))
        .collect()
}

#[tokio::test]
async fn r20_frames_after_the_deadline_are_refused() {
    let t = active_server().await;
    let p = t.consenting_person("Obama", "1961-08-04").await;
    let (nonce, actions) = performable_challenge(&t, Some(&p)).await;
    // Time passes: the deadline is moved into the past behind the server's
    // back (the server's clock is the system's).
    {
        use sqlx::Connection;
        let url = format!("sqlite:{}", t.dir.join("facegate.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let past = (chrono::Utc::now() - chrono::Duration::seconds(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let n = sqlx::query("UPDATE liveness_challenges SET expires_at = $1")
            .bind(past)
            .execute(&mut c)
            .await
            .unwrap()
            .rows_affected();
        assert!(n >= 1);
    }
    let (s, b) = capture(
        &t,
        "/v1/enrol",
        Some(&p),
        &frames_doing(&actions),
        Some(&nonce),
    )
    .await;
    assert_r20(s, &b);
    assert!(
        b["message_en"].as_str().unwrap().contains("deadline"),
        "{b}"
    );
}

#[tokio::test]
async fn r20_a_replayed_capture_request_is_refused() {
    // Passive scenario: one frame is enough, so the replay is the only
    // difference between the two requests.
    let t = common::server().await;
    let p = t.consenting_person("Obama", "1961-08-04").await;
    let (s, b) = t.face("/v1/enrol", &p, "obama.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let frame = facegate_server::pipeline::encode_image(&common::fresh_frame("obama2.jpg"));
    let (s, b) = capture(
        &t,
        "/v1/verify",
        Some(&p),
        std::slice::from_ref(&frame),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["outcome"], "pass", "{b}");
    // The same request again: refused, and after a restart too (the hashes
    // are in the store).
    let (s, b) = capture(
        &t,
        "/v1/verify",
        Some(&p),
        std::slice::from_ref(&frame),
        None,
    )
    .await;
    assert_r20(s, &b);
    assert!(b["message_en"].as_str().unwrap().contains("replay"), "{b}");
    let t2 = t.restart().await;
    let (s, b) = capture(
        &t2,
        "/v1/verify",
        Some(&p),
        std::slice::from_ref(&frame),
        None,
    )
    .await;
    assert_r20(s, &b);
    // One replayed frame among new ones is enough.
    let fresh = facegate_server::pipeline::encode_image(&common::fresh_frame("obama2.jpg"));
    let (s, b) = capture(&t2, "/v1/verify", Some(&p), &[fresh, frame], None).await;
    assert_r20(s, &b);
    // Only keyed hashes are kept, and the sweep removes them after the window.
    assert!(t2.state.store.capture_frame_hash_count().await.unwrap() >= 2);
    let later = chrono::Utc::now()
        + chrono::Duration::seconds(facegate_core::liveness::REPLAY_WINDOW_SECONDS + 1);
    t2.state.store.sweep_liveness(later).await.unwrap();
    assert_eq!(t2.state.store.capture_frame_hash_count().await.unwrap(), 0);
}
