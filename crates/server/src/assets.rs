//! The web UI, embedded in the binary: plain HTML, CSS and JavaScript with
//! no build step. zh-CN first with an English switch, a large-text /
//! high-contrast mode, and screen-reader labels (R6). Every label, value and
//! message the three apps show comes from one catalogue,
//! `assets/messages.json` (zh-CN and English for each key), served as
//! `/assets/messages.js`; the tests below fail on a key missing in either
//! language or used by a page without being in the catalogue.
//!
//! The pages are served only as embedded in the binary, in every build:
//! there is no second way to load them from disk (what the browser tests
//! check is what ships).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

const JS: &str = "text/javascript; charset=utf-8";

/// (file name, content type, bytes)
const FILES: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/app.css"),
    ),
    ("common.js", JS, include_str!("../assets/common.js")),
    ("kiosk.js", JS, include_str!("../assets/kiosk.js")),
    ("portal.js", JS, include_str!("../assets/portal.js")),
    ("console.js", JS, include_str!("../assets/console.js")),
    ("receipt.js", JS, include_str!("../assets/receipt.js")),
    ("docs.js", JS, include_str!("../assets/docs.js")),
    (
        "messages.json",
        "application/json",
        include_str!("../assets/messages.json"),
    ),
];

const PAGES: &[(&str, &str)] = &[
    ("index.html", include_str!("../assets/index.html")),
    ("kiosk.html", include_str!("../assets/kiosk.html")),
    ("portal.html", include_str!("../assets/portal.html")),
    ("console.html", include_str!("../assets/console.html")),
    ("receipt.html", include_str!("../assets/receipt.html")),
];

fn page(name: &str) -> Html<String> {
    let (_, body) = PAGES.iter().find(|(n, _)| *n == name).expect("known page");
    Html(body.to_string())
}

pub async fn index() -> Html<String> {
    page("index.html")
}

pub async fn kiosk() -> Html<String> {
    page("kiosk.html")
}

pub async fn portal() -> Html<String> {
    page("portal.html")
}

pub async fn console() -> Html<String> {
    page("console.html")
}

/// The public receipt check (no key needed).
pub async fn receipt() -> Html<String> {
    page("receipt.html")
}

pub async fn file(Path(name): Path<String>) -> Response {
    let headers = |ct: &'static str| {
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "no-cache"),
        ]
    };
    if name == "messages.js" {
        // The catalogue as a script, so every page has it before it runs.
        let json = FILES
            .iter()
            .find(|(n, _, _)| *n == "messages.json")
            .unwrap()
            .2;
        let body = format!("window.FG_MESSAGES = {json};\n");
        return (headers(JS), body).into_response();
    }
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, ct, body)) => (headers(ct), *body).into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn catalogue() -> BTreeMap<String, BTreeMap<String, String>> {
        let json = FILES
            .iter()
            .find(|(n, _, _)| *n == "messages.json")
            .unwrap()
            .2;
        serde_json::from_str(json).expect("messages.json is a map of {zh, en}")
    }

    /// The embedded pages are what is served, whatever the environment
    /// says: the old debug switch `FACEGATE_ASSETS_DIR` no longer swaps in
    /// files from disk.
    #[tokio::test]
    async fn pages_are_served_only_as_embedded() {
        let dir = std::env::temp_dir().join(format!("fg-assets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("kiosk.html"), "not the embedded page").unwrap();
        std::fs::write(dir.join("app.css"), "not the embedded css").unwrap();
        std::env::set_var("FACEGATE_ASSETS_DIR", &dir);
        let served = kiosk().await.0;
        let css = file(Path("app.css".to_string())).await;
        std::env::remove_var("FACEGATE_ASSETS_DIR");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(served, include_str!("../assets/kiosk.html"));
        let body = axum::body::to_bytes(css.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&body[..], include_str!("../assets/app.css").as_bytes());
    }

    /// Every entry has a non-empty zh and en text, and nothing else.
    #[test]
    fn every_message_is_in_both_languages() {
        let cat = catalogue();
        assert!(cat.len() > 100, "the catalogue holds the apps' strings");
        let mut bad = vec![];
        for (k, v) in &cat {
            let langs: BTreeSet<&str> = v.keys().map(|s| s.as_str()).collect();
            if langs != BTreeSet::from(["en", "zh"]) || v.values().any(|s| s.trim().is_empty()) {
                bad.push(k.clone());
            }
            // A Chinese text with no Chinese in it is an untranslated value
            // (numbers-only or placeholder-only texts excepted).
            let zh = &v["zh"];
            let has_han = zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
            let has_word = zh.chars().filter(|c| c.is_ascii_alphabetic()).count() > 3;
            if !has_han && has_word && !k.starts_with("lang_") {
                bad.push(format!("{k} (zh has no Chinese: {zh:?})"));
            }
        }
        assert!(bad.is_empty(), "entries missing a language: {bad:?}");
    }

    /// Keys named in the pages (`data-t`, `data-t-label`, `data-t-ph`) and
    /// in the scripts (`t("…")`) are all in the catalogue.
    #[test]
    fn every_key_used_is_in_the_catalogue() {
        let cat = catalogue();
        let mut used = BTreeSet::new();
        let texts = PAGES
            .iter()
            .map(|(n, b)| (*n, *b))
            .chain(FILES.iter().map(|(n, _, b)| (*n, *b)));
        for (name, body) in texts {
            if name == "messages.json" {
                continue;
            }
            for pat in [
                "data-t=\"",
                "data-t-label=\"",
                "data-t-ph=\"",
                "t(\"",
                "T(\"",
            ] {
                for (i, _) in body.match_indices(pat) {
                    // `t("` only as the catalogue's own `t` / `FG.t` (`T` in
                    // the console), not
                    // the end of `get("` or `setAttribute("`.
                    if (pat == "t(\"" || pat == "T(\"") && i > 0 {
                        let before = body[..i].chars().next_back().unwrap();
                        if before.is_ascii_alphanumeric()
                            || before == '_'
                            || (before == '.' && !body[..i].ends_with("FG."))
                        {
                            continue;
                        }
                    }
                    let rest = &body[i + pat.len()..];
                    let key: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    // `t("prefix_" + value)`: the values are checked below.
                    if !key.is_empty() && !rest[key.len()..].starts_with("\" +") {
                        used.insert((name, key));
                    }
                }
            }
            // `setT(el, "key"…)` and the portal's / console's `ok("id", "key"…)`.
            for pat in ["setT(", "ok(\""] {
                for (i, _) in body.match_indices(pat) {
                    let rest = &body[i + pat.len()..];
                    let Some(j) = rest.find(", \"") else { continue };
                    if j > 40 || rest[..j].contains(';') {
                        continue;
                    }
                    let rest = &rest[j + 3..];
                    let key: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !key.is_empty()
                        && rest[key.len()..].starts_with('"')
                        && !rest[key.len()..].starts_with("\" +")
                    {
                        used.insert((name, key));
                    }
                }
            }
        }
        assert!(used.len() > 100, "found the keys in use ({})", used.len());
        let missing: Vec<_> = used.iter().filter(|(_, k)| !cat.contains_key(k)).collect();
        assert!(
            missing.is_empty(),
            "keys used but not in messages.json: {missing:?}"
        );
    }

    /// The values the server sends that the apps show (methods, results,
    /// consent kinds, statuses, audit events, alert levels, placements) each
    /// have a label in both languages: no raw `pin`, `no_match`, `open`.
    #[test]
    fn every_server_value_shown_has_a_label() {
        let cat = catalogue();
        let values: &[(&str, &[&str])] = &[
            (
                "method",
                &[
                    "face",
                    "pin",
                    "card",
                    "qr",
                    "qr_code",
                    "staffed_check",
                    "id_document",
                    "national_network_id",
                ],
            ),
            (
                "result",
                &[
                    "match", "no_match", "refused", "enrolled", "pass", "fail", "known", "unknown",
                ],
            ),
            (
                "consent",
                &["processing", "transmission", "image_retention"],
            ),
            ("given_by", &["subject", "guardian"]),
            ("req_kind", &["access", "copy", "delete", "correct"]),
            ("req_status", &["open", "done", "rejected"]),
            ("complaint_status", &["open", "resolved"]),
            ("lvl", &["ok", "watch", "warning", "filing_due"]),
            ("pia", &["current", "stale", "missing"]),
            ("mode", &["verification", "identification"]),
            ("severity", &["error", "warning", "note"]),
            ("role", &["admin", "operator", "auditor", "device"]),
            (
                "actor",
                &["admin", "operator", "auditor", "device", "person", "server"],
            ),
            (
                "placement",
                &[
                    "public_area",
                    "non_public",
                    "hotel_room",
                    "bathhouse",
                    "changing_room",
                    "toilet",
                    "shower_room",
                    "fitting_room",
                    "lactation_room",
                    "dormitory_room",
                ],
            ),
            (
                "event",
                &[
                    "verification",
                    "enrol",
                    "consent_given",
                    "consent_withdrawn",
                    "person_added",
                    "person_corrected",
                    "person_erased",
                    "guardian_added",
                    "credential_issued",
                    "credential_revoked",
                    "request_received",
                    "request_closed",
                    "complaint_received",
                    "complaint_resolved",
                    "face_data_deleted",
                    "retention_sweep",
                    "retention_sweep_done",
                    "scenario_version",
                    "notice_published",
                    "pia_version",
                    "device_added",
                    "device_retired",
                    "filing_recorded",
                    "filing_filed",
                    "processor_added",
                    "template_resealed",
                    "templates_read",
                    "data_key_retired",
                    "recovered",
                    "tick",
                    "api_key_issued",
                    "api_key_revoked",
                    "data_key_stored",
                    "face_declined",
                    "face_opted_in",
                    "portal_code_issued",
                    "portal_session_opened",
                ],
            ),
        ];
        let mut missing = vec![];
        for (prefix, vs) in values {
            for v in *vs {
                let k = format!("{prefix}_{v}");
                if !cat.contains_key(&k) {
                    missing.push(k);
                }
            }
        }
        assert!(
            missing.is_empty(),
            "server values without a label: {missing:?}"
        );
    }
}
