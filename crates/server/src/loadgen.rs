//! A bounded load run of 1:1 face verification: first the in-process
//! pipeline (the same handler, called directly), then the same requests over
//! HTTP on loopback with keep-alive connections. Used by `facegate load-test`;
//! it prints figures, it asserts nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::api::frontline::{self, FaceInput};
use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::pipeline::{self, Challenge};
use crate::state::{AppState, ServerConfig};

/// What one run measured.
#[derive(Debug, serde::Serialize)]
pub struct LoadReport {
    pub seconds: f64,
    pub concurrency: usize,
    pub in_process_ok: u64,
    pub in_process_errors: u64,
    pub in_process_per_s: f64,
    pub http_ok: u64,
    pub http_errors: u64,
    pub http_per_s: f64,
    /// http_per_s ÷ in_process_per_s.
    pub ratio: f64,
    /// Resident memory (kB) at the start, middle and end of the HTTP phase.
    pub rss_kb: [u64; 3],
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Enrol `enrol_image`, then verify `probe_image` against it for `seconds`
/// in process and `seconds` over HTTP, with `concurrency` workers each.
pub async fn run(
    data_dir: &std::path::Path,
    enrol_image: &[u8],
    probe_image: &[u8],
    seconds: u64,
    concurrency: usize,
) -> Result<LoadReport, ApiError> {
    let s = AppState::open(ServerConfig::new(data_dir)).await?;
    let op = Caller::Key {
        key_id: "load".into(),
        role: Role::Operator,
        device_id: None,
    };
    let p = crate::api::people::create(
        axum::extract::State(s.clone()),
        op.clone(),
        axum::Json(
            serde_json::from_value(
                serde_json::json!({"display_name": "load", "date_of_birth": "1970-01-01"}),
            )
            .map_err(ApiError::internal)?,
        ),
    )
    .await?
    .0;
    let d = s.scenario(None)?;
    let _consent = frontline::give_consent(
        axum::extract::State(s.clone()),
        op.clone(),
        axum::Json(
            serde_json::from_value(
                serde_json::json!({"person_id": p.id, "notice_version": d.notice_version}),
            )
            .map_err(ApiError::internal)?,
        ),
    )
    .await?;
    let input = |img: &[u8]| FaceInput {
        person_id: p.id.clone(),
        scenario: None,
        device_id: Some("gate-north-1".into()),
        images: vec![pipeline::encode_image(img)],
        challenge: Challenge::None,
        notice_version: None,
    };
    let _enrolled = frontline::enrol(
        axum::extract::State(s.clone()),
        op.clone(),
        axum::Json(input(enrol_image)),
    )
    .await?;
    let dur = Duration::from_secs(seconds);

    // In process.
    let (ok, err) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let t0 = Instant::now();
    let mut tasks = vec![];
    for _ in 0..concurrency {
        let (s, op, ok, err) = (s.clone(), op.clone(), ok.clone(), err.clone());
        let probe = input(probe_image);
        tasks.push(tokio::spawn(async move {
            while t0.elapsed() < dur {
                let req = FaceInput {
                    images: probe.images.clone(),
                    person_id: probe.person_id.clone(),
                    scenario: None,
                    device_id: probe.device_id.clone(),
                    challenge: Challenge::None,
                    notice_version: None,
                };
                match frontline::verify(
                    axum::extract::State(s.clone()),
                    op.clone(),
                    axum::Json(req),
                )
                .await
                {
                    Ok(o) if o.0.outcome == "pass" => ok.fetch_add(1, Ordering::Relaxed),
                    _ => err.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let in_secs = t0.elapsed().as_secs_f64();
    let (in_ok, in_err) = (ok.load(Ordering::Relaxed), err.load(Ordering::Relaxed));

    // Over HTTP on loopback.
    let key = s
        .auth
        .issue(
            Role::Device,
            Some("gate-north-1".into()),
            "load test",
            "server:load-test",
        )
        .await?
        .key;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(ApiError::internal)?;
    let addr = listener.local_addr().map_err(ApiError::internal)?;
    let server = tokio::spawn(crate::serve(s.clone(), listener));
    let body = serde_json::to_vec(&serde_json::json!({
        "person_id": p.id, "device_id": "gate-north-1",
        "images": [pipeline::encode_image(probe_image)],
    }))
    .map_err(ApiError::internal)?;
    let mut request = format!(
        "POST /v1/verify HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let request = Arc::new(request);
    let (ok, err) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut rss = [rss_kb(), 0, 0];
    let t0 = Instant::now();
    let mut tasks = vec![];
    for _ in 0..concurrency {
        let (ok, err, request) = (ok.clone(), err.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
                err.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let _ = stream.set_nodelay(true);
            let mut r = BufReader::new(stream);
            while t0.elapsed() < dur {
                if r.get_mut().write_all(&request).await.is_err() {
                    err.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let mut status = String::new();
                if r.read_line(&mut status).await.unwrap_or(0) == 0 {
                    err.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut buf = vec![0u8; len];
                if r.read_exact(&mut buf).await.is_err() {
                    err.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                const PASS: &[u8] = b"\"outcome\":\"pass\"";
                let pass = status.contains(" 200 ") && buf.windows(PASS.len()).any(|w| w == PASS);
                if pass {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    err.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(dur / 2).await;
    rss[1] = rss_kb();
    for t in tasks {
        let _ = t.await;
    }
    let http_secs = t0.elapsed().as_secs_f64();
    rss[2] = rss_kb();
    server.abort();
    let (h_ok, h_err) = (ok.load(Ordering::Relaxed), err.load(Ordering::Relaxed));
    let in_rate = in_ok as f64 / in_secs;
    let http_rate = h_ok as f64 / http_secs;
    Ok(LoadReport {
        seconds: seconds as f64,
        concurrency,
        in_process_ok: in_ok,
        in_process_errors: in_err,
        in_process_per_s: in_rate,
        http_ok: h_ok,
        http_errors: h_err,
        http_per_s: http_rate,
        ratio: if in_rate > 0.0 {
            http_rate / in_rate
        } else {
            0.0
        },
        rss_kb: rss,
    })
}
