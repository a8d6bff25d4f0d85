//! The web UI, embedded in the binary: plain HTML, CSS and JavaScript with
//! no build step. zh-CN first with an English switch, a large-text /
//! high-contrast mode, and screen-reader labels (R6).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// (file name, content type, bytes)
const FILES: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/app.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/common.js"),
    ),
    (
        "kiosk.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/kiosk.js"),
    ),
    (
        "portal.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/portal.js"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/console.js"),
    ),
];

pub async fn index() -> Html<&'static str> {
    Html(include_str!("../assets/index.html"))
}

pub async fn kiosk() -> Html<&'static str> {
    Html(include_str!("../assets/kiosk.html"))
}

pub async fn portal() -> Html<&'static str> {
    Html(include_str!("../assets/portal.html"))
}

pub async fn console() -> Html<&'static str> {
    Html(include_str!("../assets/console.html"))
}

pub async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, ct, body)) => (
            [
                (header::CONTENT_TYPE, *ct),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
