//! The HTTP contract: every 4xx/5xx answer is the one JSON error body, also
//! where axum answers before any handler runs (an empty or malformed body,
//! a body that is not JSON or is too large, a bad path or query, an unknown
//! path, a wrong method); and the OpenAPI document served is the one checked
//! in, and lists every operation the router serves.

mod common;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use facegate_server::ErrorBody;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn raw(
    t: &common::T,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(k) = key {
        b = b.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    let req = match body {
        Some((ct, bytes)) => b.header(header::CONTENT_TYPE, ct).body(Body::from(bytes)),
        None => b.body(Body::empty()),
    }
    .unwrap();
    let resp = t.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, bytes)
}

/// The answer is `want`, as JSON, with an `ErrorBody` whose `error` is
/// `code` and whose messages are there in both languages.
fn assert_error(got: (StatusCode, HeaderMap, Vec<u8>), want: StatusCode, code: &str) -> ErrorBody {
    let (status, headers, bytes) = got;
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(status, want, "{text}");
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "content type {ct:?}: {text}"
    );
    let body: ErrorBody =
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not an ErrorBody ({e}): {text}"));
    assert_eq!(body.error, code, "{text}");
    assert!(!body.message_zh.trim().is_empty(), "{text}");
    assert!(!body.message_en.trim().is_empty(), "{text}");
    body
}

fn json(v: serde_json::Value) -> Option<(&'static str, Vec<u8>)> {
    Some(("application/json", v.to_string().into_bytes()))
}

#[tokio::test]
async fn an_empty_or_malformed_json_body_is_400_with_the_error_body() {
    let t = common::server().await;
    let empty = raw(
        &t,
        "POST",
        "/v1/persons",
        Some(&t.admin),
        Some(("application/json", vec![])),
    )
    .await;
    assert_error(empty, StatusCode::BAD_REQUEST, "bad_request");
    let bad = raw(
        &t,
        "POST",
        "/v1/persons",
        Some(&t.admin),
        Some(("application/json", b"{\"display_name\": ".to_vec())),
    )
    .await;
    let b = assert_error(bad, StatusCode::BAD_REQUEST, "bad_request");
    assert!(b.message_en.contains("JSON"), "{b:?}");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415_with_the_error_body() {
    let t = common::server().await;
    let r = raw(
        &t,
        "POST",
        "/v1/persons",
        Some(&t.admin),
        Some(("text/plain", b"display_name=Ann".to_vec())),
    )
    .await;
    assert_error(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    // No content type at all, where a body is required.
    let r = raw(&t, "POST", "/v1/persons", Some(&t.admin), None).await;
    assert_error(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
}

#[tokio::test]
async fn a_missing_field_a_wrong_type_or_a_bad_date_is_422_with_the_error_body() {
    let t = common::server().await;
    let r = raw(
        &t,
        "POST",
        "/v1/persons",
        Some(&t.admin),
        json(serde_json::json!({})),
    )
    .await;
    let b = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
    assert!(b.message_en.contains("display_name"), "{b:?}");
    let r = raw(
        &t,
        "POST",
        "/v1/persons",
        Some(&t.admin),
        json(serde_json::json!({"display_name": 7})),
    )
    .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
    let r = raw(
        &t,
        "POST",
        "/v1/persons",
        Some(&t.admin),
        json(serde_json::json!({"display_name": "Ann", "date_of_birth": "1990-02-31"})),
    )
    .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_with_the_error_body_json_or_not() {
    let t = common::server().await;
    let big = "A".repeat(9 * 1024 * 1024);
    let r = raw(
        &t,
        "POST",
        "/v1/enrol",
        Some(&t.admin),
        json(serde_json::json!({"person_id": uuid::Uuid::nil(), "images": [big]})),
    )
    .await;
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    // A manifest is read as plain text, not through the JSON extractor.
    let r = raw(
        &t,
        "POST",
        "/v1/scenarios",
        Some(&t.admin),
        Some(("application/toml", big.into_bytes())),
    )
    .await;
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
}

#[tokio::test]
async fn a_manifest_that_is_not_utf8_is_400_with_the_error_body() {
    let t = common::server().await;
    let r = raw(
        &t,
        "POST",
        "/v1/scenarios",
        Some(&t.admin),
        Some(("application/toml", vec![0xff, 0xfe, 0x00, 0x41])),
    )
    .await;
    assert_error(r, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn a_bad_query_or_path_is_400_with_the_error_body() {
    let t = common::server().await;
    let r = raw(&t, "GET", "/v1/audit?limit=many", Some(&t.auditor), None).await;
    let b = assert_error(r, StatusCode::BAD_REQUEST, "bad_request");
    assert!(b.message_en.contains("limit"), "{b:?}");
    // A path segment that is not UTF-8 once percent-decoded.
    let r = raw(&t, "GET", "/v1/persons/%FF%FE", Some(&t.admin), None).await;
    assert_error(r, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn an_unknown_path_is_404_with_the_error_body() {
    let t = common::server().await;
    let r = raw(&t, "GET", "/v1/no-such-thing", Some(&t.admin), None).await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found");
    let r = raw(&t, "GET", "/nowhere", None, None).await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found");
    let r = raw(&t, "GET", "/assets/no-such-file.js", None, None).await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_wrong_method_is_405_with_the_error_body_and_allow() {
    let t = common::server().await;
    let r = raw(&t, "DELETE", "/v1/persons", Some(&t.admin), None).await;
    let allow =
        r.1.get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
    assert_error(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(allow.contains("POST"), "Allow: {allow:?}");
}

#[tokio::test]
async fn no_key_is_401_with_the_error_body() {
    let t = common::server().await;
    let r = raw(&t, "GET", "/v1/dashboard", None, None).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn the_document_served_is_the_one_checked_in() {
    let t = common::server().await;
    let (s, _, served) = raw(&t, "GET", "/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let checked_in = std::fs::read_to_string(path).unwrap();
    assert!(
        String::from_utf8_lossy(&served) == checked_in,
        "the served document differs from crates/server/openapi.json: run FACEGATE_UPDATE_OPENAPI=1 cargo test -p facegate-server --test api openapi"
    );
}

/// Every operation in the document is served (neither 404 nor 405 from
/// the router), and every error it can answer has the error body.
#[tokio::test]
async fn every_documented_operation_is_routed_and_its_errors_are_error_bodies() {
    let t = common::server().await;
    let doc: serde_json::Value =
        serde_json::from_str(&facegate_server::openapi::document()).unwrap();
    let mut n = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            n += 1;
            for (status, resp) in op["responses"].as_object().unwrap() {
                let code: u16 = status.parse().unwrap();
                if code < 400 {
                    continue;
                }
                let resp = match resp.get("$ref").and_then(|r| r.as_str()) {
                    Some(r) => &doc["components"]["responses"][r.rsplit('/').next().unwrap()],
                    None => resp,
                };
                let schema = resp["content"]["application/json"]["schema"]["$ref"]
                    .as_str()
                    .unwrap_or("");
                // Two answers that are reports, not errors: the linter's
                // diagnostics, and health's own status for load balancers.
                let lint = path == "/v1/scenarios" && code == 422;
                let health = path == "/health" && code == 503;
                assert!(
                    schema.ends_with("/ErrorBody")
                        || (lint && schema.ends_with("/LintResult"))
                        || (health && schema.ends_with("/Health")),
                    "{method} {path} {status} is not documented with ErrorBody: {resp}"
                );
            }
            // Called with no key and no body: never the router's 404 or 405.
            let concrete = path.replace("{id}", &uuid::Uuid::nil().to_string());
            let (s, _, _) = raw(&t, &method.to_uppercase(), &concrete, None, None).await;
            assert!(
                s != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed"
            );
            if s == StatusCode::NOT_FOUND {
                let (s, _, b) =
                    raw(&t, &method.to_uppercase(), &concrete, Some(&t.admin), None).await;
                let b: ErrorBody = serde_json::from_slice(&b).unwrap();
                assert!(
                    s != StatusCode::NOT_FOUND || b.message_en != "Not found: no such path.",
                    "{method} {path} is documented but not routed"
                );
            }
        }
    }
    assert!(n >= 35, "only {n} operations documented");
}
