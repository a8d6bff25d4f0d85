//! A real server (SQLite file, real models) driven in process.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use facegate_server::{AppState, Role, ServerConfig};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

pub struct T {
    pub state: AppState,
    pub app: axum::Router,
    pub admin: String,
    pub device: String,
    pub auditor: String,
    pub dir: std::path::PathBuf,
    /// Whether dropping this removes `dir` (not for a restarted copy).
    pub owns_dir: bool,
}

/// A server running the demo scenario at `liveness = "passive"`: for the
/// tests about everything but liveness, which send one still frame (the
/// liveness tests run the demo as it ships, at `active`).
pub async fn server() -> T {
    server_with_manifest(Some(passive_demo())).await
}

/// The demo manifest as a second scenario, `residential-gate-east`.
pub fn east_manifest() -> String {
    let m = facegate_server::deploy::demo_manifest();
    let east = m.replacen(
        "id = \"residential-gate\"",
        "id = \"residential-gate-east\"",
        1,
    );
    assert_ne!(east, m, "the demo manifest's id line moved");
    east
}

/// The demo manifest with `liveness = "passive"`.
pub fn passive_demo() -> String {
    let m = facegate_core::deploy::passive_demo_manifest();
    assert!(
        m.contains("\nliveness = \"passive\""),
        "the demo is passive"
    );
    m
}

/// A fixture's bytes made unique to this call (a counter appended after the
/// image data, which decoders ignore), as two frames from a camera never
/// are the same bytes: the server refuses an exact replay of a frame.
pub fn fresh_frame(fixture: &str) -> Vec<u8> {
    unique(std::fs::read(facegate_assets::fixture(fixture).expect("fixture")).unwrap())
}

/// `bytes` with a per-call counter appended after the image data (see
/// [`fresh_frame`]).
pub fn unique(mut bytes: Vec<u8>) -> Vec<u8> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    bytes.extend_from_slice(format!("frame-{}-{n}", std::process::id()).as_bytes());
    bytes
}

/// A server running `manifest` (TOML) instead of the demo scenario.
pub async fn server_with_manifest(manifest: Option<String>) -> T {
    let dir = std::env::temp_dir().join(format!("facegate-server-test-{}", uuid::Uuid::now_v7()));
    let mut config = ServerConfig::new(&dir);
    if let Some(m) = manifest {
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("scenario.toml");
        std::fs::write(&path, m).unwrap();
        config.scenario = Some(path);
    }
    let state = AppState::open(config).await.expect("server opens");
    let admin = state
        .auth
        .issue(Role::Admin, None, "test", "test")
        .await
        .unwrap()
        .key;
    let device = state
        .auth
        .issue(
            Role::Device,
            Some(facegate_server::BoundDevice::of(
                &state.scenario(None).unwrap(),
                "gate-north-1",
            )),
            "test",
            "test",
        )
        .await
        .unwrap()
        .key;
    let auditor = state
        .auth
        .issue(Role::Auditor, None, "test", "test")
        .await
        .unwrap()
        .key;
    let app = facegate_server::routes::router(state.clone());
    T {
        state,
        app,
        admin,
        device,
        auditor,
        dir,
        owns_dir: true,
    }
}

impl T {
    /// The same data directory opened again, as a restarted `serve` (or a
    /// second one on the same database) would: same keys, fresh process state.
    pub async fn restart(&self) -> T {
        self.restart_with(|_| {}).await
    }

    /// [`T::restart`] with the configuration changed by `f` first.
    pub async fn restart_with(&self, f: impl FnOnce(&mut ServerConfig)) -> T {
        let mut config = ServerConfig::new(&self.dir);
        f(&mut config);
        let manifest = self.dir.join("scenario.toml");
        if manifest.exists() {
            config.scenario = Some(manifest);
        }
        let state = AppState::open(config).await.expect("server reopens");
        T {
            app: facegate_server::routes::router(state.clone()),
            state,
            admin: self.admin.clone(),
            device: self.device.clone(),
            auditor: self.auditor.clone(),
            dir: self.dir.clone(),
            owns_dir: false,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|v| ("application/json", v.to_string()));
        self.send(method, path, key, body).await
    }

    /// [`T::call`] with a body of any content type (e.g. a TOML manifest).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<(&str, String)>,
    ) -> (StatusCode, Value) {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        let req = match body {
            Some((content_type, text)) => b
                .header("content-type", content_type)
                .body(Body::from(text))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v)
    }

    /// Upload and deploy a manifest as an operator; it must be deployed.
    pub async fn deploy(&self, manifest: String) -> Value {
        let (s, b) = self
            .send(
                "POST",
                "/v1/scenarios",
                Some(&self.admin),
                Some(("application/toml", manifest)),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }

    pub async fn notice_version(&self) -> String {
        let (_, n) = self.call("GET", "/v1/notice", None, None).await;
        n["version"].as_str().unwrap().to_string()
    }

    /// A new key for device `device` of scenario `scenario` (a device key
    /// acts in its own scenario only), issued by the admin.
    pub async fn device_key(&self, scenario: &str, device: &str) -> String {
        let (s, k) = self
            .call(
                "POST",
                "/v1/keys",
                Some(&self.admin),
                Some(json!({"role": "device", "device_id": device, "scenario": scenario})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{k}");
        assert_eq!(k["scenario"], scenario, "{k}");
        k["key"].as_str().unwrap().to_string()
    }

    /// A card, QR code or wedge read presented alone at a device
    /// (`POST /v1/identify/credential`), with the given device key.
    pub async fn present_credential(
        &self,
        key: &str,
        device_id: &str,
        kind: &str,
        secret: &str,
    ) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/v1/identify/credential",
            Some(key),
            Some(json!({"device_id": device_id, "kind": kind, "secret": secret})),
        )
        .await
    }

    /// A person with a processing consent (given at the kiosk).
    pub async fn consenting_person(&self, name: &str, dob: &str) -> String {
        let (s, p) = self
            .call(
                "POST",
                "/v1/persons",
                Some(&self.admin),
                Some(json!({"display_name": name, "date_of_birth": dob})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        let id = p["id"].as_str().unwrap().to_string();
        let nv = self.notice_version().await;
        let (s, c) = self
            .call(
                "POST",
                "/v1/consents",
                Some(&self.device),
                Some(json!({"person_id": id, "notice_version": nv, "device_id": "gate-north-1"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{c}");
        id
    }

    /// A portal session token for `person`, from a code an operator issued
    /// after checking the person's identity.
    pub async fn portal_token(&self, person: &str) -> String {
        let (s, code) = self
            .call(
                "POST",
                &format!("/v1/persons/{person}/portal-code"),
                Some(&self.admin),
                Some(json!({"identity_check": "居民身份证 checked at the office (test)"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{code}");
        let (s, sess) = self
            .call(
                "POST",
                "/v1/portal/session",
                None,
                Some(json!({"code": code["code"]})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{sess}");
        sess["token"].as_str().unwrap().to_string()
    }

    /// The person's consents, as an admin reads them.
    pub async fn consents(&self, person: &str) -> Value {
        let (s, cs) = self
            .call(
                "GET",
                &format!("/v1/persons/{person}/consents"),
                Some(&self.admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{cs}");
        cs
    }

    /// Enrol `person` at gate-north-1 with a server-issued challenge the
    /// fixture photos can perform (asking again until one comes: the
    /// photos hold one turn and an open mouth, no blink or nod).
    pub async fn enrol_with_challenge(&self, person: &str) -> (StatusCode, Value) {
        use facegate_vision::challenge::{clip, Action};
        for _ in 0..200 {
            let (s, c) = self
                .call(
                    "POST",
                    "/v1/challenges",
                    Some(&self.device),
                    Some(json!({"device_id": "gate-north-1", "person_id": person})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{c}");
            let actions: Vec<Action> = c["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| serde_json::from_value(a["action"].clone()).unwrap())
                .collect();
            let Some(imgs) = clip::fixture_clip(&actions).unwrap() else {
                continue;
            };
            let images: Vec<String> = imgs
                .iter()
                .map(|img| {
                    let mut out = Vec::new();
                    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
                        .encode_image(img)
                        .unwrap();
                    facegate_server::pipeline::encode_image(&unique(out))
                })
                .collect();
            return self
                .call(
                    "POST",
                    "/v1/enrol",
                    Some(&self.device),
                    Some(json!({"person_id": person, "device_id": "gate-north-1",
                                "images": images, "challenge_nonce": c["nonce"]})),
                )
                .await;
        }
        panic!("no performable challenge in 200 tries");
    }

    pub async fn face(&self, path: &str, person: &str, fixture: &str) -> (StatusCode, Value) {
        let bytes = fresh_frame(fixture);
        self.call(
            "POST",
            path,
            Some(&self.device),
            Some(json!({"person_id": person, "device_id": "gate-north-1",
                        "images": [facegate_server::pipeline::encode_image(&bytes)]})),
        )
        .await
    }
}

impl Drop for T {
    fn drop(&mut self) {
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The repository's root folder.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Why the browser tests cannot run here (Chromium, node or the npm
/// modules missing), or `None`.
pub fn browser_skip_reason() -> Option<String> {
    let chromium = match std::env::var("FACEGATE_CHROMIUM") {
        Ok(c) if !c.is_empty() => c,
        _ => {
            return Some(
                "FACEGATE_CHROMIUM is not set (scripts/test.sh sets it to Debian's chromium)"
                    .into(),
            )
        }
    };
    if !std::path::Path::new(&chromium).exists() {
        return Some(format!("FACEGATE_CHROMIUM={chromium} does not exist"));
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
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

/// Serve `state` over HTTP on a free loopback port; its address.
pub async fn listen(state: AppState) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { facegate_server::serve(state, listener).await });
    addr
}
