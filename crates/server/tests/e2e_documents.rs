//! Browser test of the printable documents: runs
//! `tests/e2e/documents.test.mjs` (playwright-core driving Debian's
//! Chromium) against a real server. Each document — the filing pack and the
//! PIA in Chinese and English, and a person's evidence file — is rendered to
//! PDF with Chromium's print (`page.pdf`), checked for pages and for the
//! signature block on the last page, and read back with `pdftotext` (Debian
//! `poppler-utils`; that part skips, saying so, when it is absent) for the
//! processor's name and the headcount the API reports. axe-core checks the
//! new screens (receipt check, evidence file, the console's documents) in
//! Chinese, English and large text. Screenshots and PDFs go to
//! `test-artifacts/e2e/documents/`.
//!
//! Skips, saying why, when `FACEGATE_CHROMIUM` is unset, node is missing, or
//! `npm ci` has not been run in `tests/e2e` (scripts/test.sh does all three).

mod common;

use axum::http::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_print_to_pdf_in_chromium() {
    if let Some(why) = common::browser_skip_reason() {
        println!("SKIPPED document browser tests: {why}");
        return;
    }
    let t = common::server().await;
    // One person with decisions (enrolled, verified, refused by another
    // face), a portal session for the evidence file, a signage photo.
    let p = t.consenting_person("王芳", "1985-04-05").await;
    let (s, b) = t.face("/v1/enrol", &p, "obama.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t.face("/v1/verify", &p, "obama2.jpg").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let code = b["receipt_code"].as_str().unwrap().to_string();
    let portal = t.portal_token(&p).await;
    let jpeg = std::fs::read(facegate_assets::fixture("obama3.jpg").unwrap()).unwrap();
    let (s, b) = t
        .call(
            "PUT",
            "/v1/devices/gate-north-1/signage",
            Some(&t.admin),
            Some(json!({ "image": facegate_server::pipeline::encode_image(&jpeg) })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, f) = t.call("GET", "/v1/filing", Some(&t.auditor), None).await;
    let headcount = f["headcount"].as_i64().unwrap();
    assert!(headcount >= 1);

    let addr = common::listen(t.state.clone()).await;

    let root = common::repo_root();
    let artifacts = root.join("test-artifacts/e2e/documents");
    let out = tokio::process::Command::new("node")
        .arg(root.join("tests/e2e/documents.test.mjs"))
        .current_dir(root.join("tests/e2e"))
        .env("FACEGATE_BASE", format!("http://{addr}"))
        .env("FACEGATE_ADMIN_KEY", &t.admin)
        .env("FACEGATE_PORTAL_TOKEN", &portal)
        .env("FACEGATE_RECEIPT", &code)
        .env("FACEGATE_HEADCOUNT", headcount.to_string())
        .env("FACEGATE_PROCESSOR_ZH", "示例物业服务有限公司")
        .env(
            "FACEGATE_PROCESSOR_EN",
            "Example Property Services Co., Ltd.",
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
        "document browser scenarios failed (artefacts in {})",
        artifacts.display()
    );
    assert!(stdout.contains("all document scenarios passed"));
}
