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

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use axum::http::StatusCode;
use serde_json::json;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn skip_reason() -> Option<String> {
    let chromium = match std::env::var("FACEGATE_CHROMIUM") {
        Ok(c) if !c.is_empty() => c,
        _ => {
            return Some(
                "FACEGATE_CHROMIUM is not set (scripts/test.sh sets it to Debian's chromium)"
                    .into(),
            )
        }
    };
    if !Path::new(&chromium).exists() {
        return Some(format!("FACEGATE_CHROMIUM={chromium} does not exist"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed".into());
    }
    for module in ["playwright-core", "axe-core"] {
        if !repo_root()
            .join("tests/e2e/node_modules")
            .join(module)
            .exists()
        {
            return Some(format!(
                "tests/e2e/node_modules/{module} is missing: run `npm ci` in tests/e2e"
            ));
        }
    }
    None
}

/// A 640×480 Y4M video alternating between two fixture faces every half second.
fn fake_camera_video(out: &Path) {
    let (w, h) = (640u32, 480u32);
    let frame = |name: &str| {
        let img = image::open(facegate_assets::fixture(name).expect("fixture"))
            .unwrap()
            .to_rgb8();
        let scale = (w as f32 / img.width() as f32).min(h as f32 / img.height() as f32);
        let (nw, nh) = (
            (img.width() as f32 * scale) as u32,
            (img.height() as f32 * scale) as u32,
        );
        let small = image::imageops::resize(&img, nw, nh, image::imageops::FilterType::Triangle);
        let mut canvas = image::RgbImage::from_pixel(w, h, image::Rgb([40, 40, 40]));
        image::imageops::overlay(
            &mut canvas,
            &small,
            ((w - nw) / 2) as i64,
            ((h - nh) / 2) as i64,
        );
        // RGB → I420 (BT.601, full range as C420jpeg says).
        let mut y = vec![0u8; (w * h) as usize];
        let mut u = vec![0u8; (w * h / 4) as usize];
        let mut v = vec![0u8; (w * h / 4) as usize];
        for (x, yy, p) in canvas.enumerate_pixels() {
            let [r, g, b] = p.0.map(|c| c as f32);
            y[(yy * w + x) as usize] = (0.299 * r + 0.587 * g + 0.114 * b)
                .round()
                .clamp(0.0, 255.0) as u8;
            if x % 2 == 0 && yy % 2 == 0 {
                let i = ((yy / 2) * (w / 2) + x / 2) as usize;
                u[i] = (128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b)
                    .round()
                    .clamp(0.0, 255.0) as u8;
                v[i] = (128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b)
                    .round()
                    .clamp(0.0, 255.0) as u8;
            }
        }
        [y, u, v].concat()
    };
    let a = frame("obama.jpg");
    let b = frame("obama2.jpg");
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    writeln!(f, "YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg").unwrap();
    for i in 0..40 {
        f.write_all(b"FRAME\n").unwrap();
        f.write_all(if (i / 5) % 2 == 0 { &a } else { &b }).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_portal_console_in_chromium() {
    if let Some(why) = skip_reason() {
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = t.state.clone();
    tokio::spawn(async move { facegate_server::serve(state, listener).await });

    let work = t.dir.join("e2e");
    std::fs::create_dir_all(&work).unwrap();
    let video = work.join("camera.y4m");
    fake_camera_video(&video);
    let root = repo_root();
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
        .env("FACEGATE_VIDEO", &video)
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
