//! Browser tests: runs `tests/e2e/kiosk.test.mjs` (playwright-core driving
//! Debian's Chromium) against a real server on loopback. Chromium's fake
//! camera plays a video made here from fixture faces (obama.jpg, obama2.jpg:
//! the same man with the head turned differently), so the kiosk's capture and
//! turn-your-head liveness step run for real. Every screen of the three apps
//! is checked with axe-core in both languages and large text, and saved as a
//! screenshot under `test-artifacts/e2e/` (listed in its `index.txt`).
//!
//! Skips, saying why, when `FACEGATE_CHROMIUM` is unset, node is missing, or
//! `npm ci` has not been run in `tests/e2e` (scripts/test.sh does all three).

mod common;

use std::path::Path;

use axum::http::StatusCode;
use serde_json::json;

/// The fake camera's pictures, 640×480 PNG files made from the fixture
/// photos (see `facegate_vision::challenge::clip`): `still` and `still2`
/// (obama.jpg and obama2.jpg, which the camera alternates between when no
/// action is asked), and the frames that perform a challenge: `o3` (turned
/// slightly to his left), its mirror `m3`, `o2` (mouth open) and its
/// mirror `m2`. The page draws them on a canvas stream (kiosk.test.mjs);
/// returns the JSON map name → file.
fn fake_camera_faces(dir: &Path) -> String {
    use facegate_vision::challenge::{clip, Action};
    let frames = |a: &[Action]| clip::fixture_clip(a).unwrap().expect("performable");
    let left = frames(&[Action::TurnLeft, Action::OpenMouth]); // m3, o3, o2
    let right = frames(&[Action::TurnRight, Action::OpenMouth]); // o3, m3, m2
    let photo = |name: &str| {
        image::open(facegate_assets::fixture(name).expect("fixture"))
            .unwrap()
            .to_rgb8()
    };
    let mut map = serde_json::Map::new();
    for (name, img) in [
        ("still", photo("obama.jpg")),
        ("still2", photo("obama2.jpg")),
        ("o3", left[1].clone()),
        ("m3", left[0].clone()),
        ("o2", left[2].clone()),
        ("m2", right[2].clone()),
    ] {
        let path = dir.join(format!("{name}.png"));
        clip::letterbox(&img, 640, 480).save(&path).unwrap();
        map.insert(name.into(), json!(path.display().to_string()));
    }
    serde_json::Value::Object(map).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_portal_console_in_chromium() {
    if let Some(why) = common::browser_skip_reason() {
        println!("SKIPPED browser tests: {why}");
        return;
    }
    let t = common::server().await;
    let mk = |name: &str, dob: &str| json!({"display_name": name, "date_of_birth": dob});
    let mut ids = vec![];
    let twelve = {
        use chrono::Datelike;
        let d = chrono::Utc::now().date_naive();
        d.with_year(d.year() - 12).unwrap().to_string()
    };
    for body in [
        mk("李雷", "1988-02-03"),
        mk("韩梅梅", "1990-07-08"),
        mk("小明", &twelve),
    ] {
        let (s, p) = t
            .call("POST", "/v1/persons", Some(&t.admin), Some(body))
            .await;
        assert_eq!(s, StatusCode::OK);
        ids.push(p["id"].as_str().unwrap().to_string());
    }
    let addr = common::listen(t.state.clone()).await;

    // A second server running the demo as it ships (liveness = active),
    // with one resident enrolled through a performed challenge: the kiosk's
    // challenge step runs against it.
    let ta = common::server_with_manifest(Some(facegate_server::deploy::demo_manifest())).await;
    let active_person = ta.consenting_person("王芳", "1985-05-06").await;
    let (s, b) = ta.enrol_with_challenge(&active_person).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let addr_a = common::listen(ta.state.clone()).await;

    let work = t.dir.join("e2e");
    std::fs::create_dir_all(&work).unwrap();
    let faces = fake_camera_faces(&work);
    let root = common::repo_root();
    let artifacts = root.join("test-artifacts/e2e");
    let out = tokio::process::Command::new("node")
        .arg(root.join("tests/e2e/kiosk.test.mjs"))
        .current_dir(root.join("tests/e2e"))
        .env("FACEGATE_BASE", format!("http://{addr}"))
        .env("FACEGATE_DEVICE_KEY", &t.device)
        .env("FACEGATE_ADMIN_KEY", &t.admin)
        .env(
            "FACEGATE_PEOPLE",
            json!({"adult": ids[0], "second": ids[1], "child": ids[2]}).to_string(),
        )
        .env("FACEGATE_FACES", &faces)
        .env(
            "FACEGATE_ACTIVE",
            json!({"base": format!("http://{addr_a}"), "device_key": ta.device, "person": active_person})
                .to_string(),
        )
        .env("FACEGATE_ARTIFACTS", &artifacts)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "browser scenarios failed (screenshots in {})",
        artifacts.display()
    );
    assert!(stdout.contains("all browser scenarios passed"));
}
