//! A bounded load run of 1:1 face verification: first the in-process
//! pipeline (the same handler, called directly), then the same requests over
//! HTTP on loopback with keep-alive connections; and the gate benchmark
//! ([`run_gates`]): N concurrent gates sending multi-frame active-challenge
//! verifies. Used by `facegate load-test`; it prints figures, it asserts nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::api::frontline::{self, FaceInput};
use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::pipeline;
use crate::state::{AppState, ServerConfig};

/// Frames as a camera sends them: every request's frames end in a tail of
/// their own, because the server refuses a frame it saw in a recent capture
/// (an exact replay, R20 / Art. 14) and a camera never sends the same bytes
/// twice. Image decoders stop at the end marker, so the tail changes no
/// pixel. Each frame is padded to a multiple of 3 bytes once, so its base64
/// and the tail's join without re-encoding the frame per request.
#[derive(Clone)]
struct FreshFrames {
    prefixes: Arc<Vec<String>>,
    counter: Arc<AtomicU64>,
}

impl FreshFrames {
    fn new(frames: &[Vec<u8>]) -> FreshFrames {
        let prefixes = frames
            .iter()
            .map(|f| {
                let mut b = f.clone();
                b.resize(f.len().div_ceil(3) * 3, 0);
                pipeline::encode_image(&b)
            })
            .collect();
        FreshFrames {
            prefixes: Arc::new(prefixes),
            counter: Arc::new(AtomicU64::new(rand::random::<u32>() as u64)),
        }
    }

    /// The frames of the next request, base64.
    fn next(&self) -> Vec<String> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        (0..self.prefixes.len())
            .map(|i| {
                let mut tail = [0u8; 12];
                tail[..8].copy_from_slice(&n.to_le_bytes());
                tail[8..].copy_from_slice(&(i as u32).to_le_bytes());
                format!("{}{}", self.prefixes[i], pipeline::encode_image(&tail))
            })
            .collect()
    }
}

/// A `POST /v1/verify` for `person_id` at `gate-north-1` with the next fresh
/// frames, as the bytes a gate writes on its keep-alive connection.
fn verify_request(
    addr: std::net::SocketAddr,
    key: &str,
    person_id: &str,
    frames: &FreshFrames,
) -> Vec<u8> {
    let body = serde_json::to_vec(&serde_json::json!({
        "person_id": person_id, "device_id": "gate-north-1", "images": frames.next(),
    }))
    .unwrap_or_default();
    let mut r = format!(
        "POST /v1/verify HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(&body);
    r
}

/// Builds each request a gate sends.
type RequestFn = Arc<dyn Fn() -> Vec<u8> + Send + Sync>;

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

/// CPU time this process has used (user + system), in milliseconds, from
/// `/proc/self/stat` (clock ticks of 10 ms); 0 where that file is missing.
/// Divided by the requests answered it is the cost of a request, which
/// (unlike latency) does not grow when other processes share the cores.
pub fn process_cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at field 3.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime is field 14, stime field 15; USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) * 10.0
}

/// What a phase cost: the process's CPU time and the engine's model calls
/// at its start, turned into per-request figures at its end.
struct Cost {
    cpu_ms: f64,
    calls: u64,
    engine: Arc<facegate_vision::Engine>,
}

impl Cost {
    fn start(engine: &Arc<facegate_vision::Engine>) -> Cost {
        Cost {
            cpu_ms: process_cpu_ms(),
            calls: engine.model_calls(),
            engine: engine.clone(),
        }
    }

    /// Stamps CPU ms and model calls per request on `l`.
    fn finish(self, mut l: GateLevel) -> GateLevel {
        let n = (l.answered + l.refused).max(1) as f64;
        l.cpu_ms_per_request = (process_cpu_ms() - self.cpu_ms) / n;
        l.model_calls_per_request = (self.engine.model_calls() - self.calls) as f64 / n;
        l
    }
}

/// A throwaway server state in `config.data_dir` with one consenting person
/// enrolled from `enrol_image` at `gate-north-1` (through the same handlers
/// a client reaches), the operator caller that did it, and the person's id.
async fn enrolled_state(
    mut config: ServerConfig,
    display_name: &str,
    enrol_image: &[u8],
) -> Result<(AppState, Caller, String), ApiError> {
    // The demo scenario at `liveness = "passive"`: a load generator's fixture
    // photos cannot perform a server-chosen random action sequence (that
    // path is tested, not timed); the frames are analysed as a challenge's
    // are, the judge (landmark arithmetic) aside.
    std::fs::create_dir_all(&config.data_dir).map_err(ApiError::internal)?;
    let manifest = config.data_dir.join("load-test-scenario.toml");
    let demo = facegate_core::deploy::passive_demo_manifest();
    std::fs::write(&manifest, demo).map_err(ApiError::internal)?;
    config.scenario = Some(manifest);
    let s = AppState::open(config).await?;
    let op = Caller::Key {
        key_id: "load".into(),
        role: Role::Operator,
        device_id: None,
        scenario_id: None,
    };
    let p = crate::api::people::create(
        axum::extract::State(s.clone()),
        op.clone(),
        crate::Json(
            serde_json::from_value(
                serde_json::json!({"display_name": display_name, "date_of_birth": "1970-01-01"}),
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
        crate::Json(
            serde_json::from_value(
                serde_json::json!({"person_id": p.id, "notice_version": d.notice_version}),
            )
            .map_err(ApiError::internal)?,
        ),
    )
    .await?;
    let _enrolled = frontline::enrol(
        axum::extract::State(s.clone()),
        op.clone(),
        crate::Json(FaceInput {
            person_id: p.id.clone(),
            scenario: None,
            device_id: Some("gate-north-1".into()),
            images: vec![pipeline::encode_image(enrol_image)],
            challenge_nonce: None,
            notice_version: None,
        }),
    )
    .await?;
    Ok((s, op, p.id))
}

/// Enrol `enrol_image`, then verify `probe_image` against it for `seconds`
/// in process and `seconds` over HTTP, with `concurrency` workers each.
pub async fn run(
    config: ServerConfig,
    enrol_image: &[u8],
    probe_image: &[u8],
    seconds: u64,
    concurrency: usize,
) -> Result<LoadReport, ApiError> {
    let (s, op, person_id) = enrolled_state(config, "load", enrol_image).await?;
    let probe = FreshFrames::new(&[probe_image.to_vec()]);
    let dur = Duration::from_secs(seconds);

    // In process.
    let (ok, err) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let t0 = Instant::now();
    let mut tasks = vec![];
    for _ in 0..concurrency {
        let (s, op, ok, err) = (s.clone(), op.clone(), ok.clone(), err.clone());
        let (probe, person_id) = (probe.clone(), person_id.clone());
        tasks.push(tokio::spawn(async move {
            while t0.elapsed() < dur {
                let req = FaceInput {
                    images: probe.next(),
                    person_id: person_id.clone(),
                    scenario: None,
                    device_id: Some("gate-north-1".into()),
                    challenge_nonce: None,
                    notice_version: None,
                };
                match frontline::verify(
                    axum::extract::State(s.clone()),
                    op.clone(),
                    crate::Json(req),
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
            Some(crate::BoundDevice::of(&*s.scenario(None)?, "gate-north-1")),
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
    let request: RequestFn = {
        let (key, person_id, probe) = (key.clone(), person_id.clone(), probe.clone());
        Arc::new(move || verify_request(addr, &key, &person_id, &probe))
    };
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
                if r.get_mut().write_all(&request()).await.is_err() {
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

// ------------------------------------------------------------ gate benchmark

/// One concurrency level of the gate benchmark.
#[derive(Debug, serde::Serialize)]
pub struct GateLevel {
    /// Concurrent gates (keep-alive connections), each sending its next
    /// request as soon as the last is answered.
    pub gates: usize,
    /// Requests answered 200 (any outcome).
    pub answered: u64,
    /// Of those, outcome "pass".
    pub passed: u64,
    /// Requests answered 4xx (a refusal the pipeline gave, e.g. the liveness
    /// step not completed): they did the full work too.
    pub refused: u64,
    /// Transport errors and 5xx.
    pub errors: u64,
    /// Latency of every answered or refused request, in milliseconds.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Requests per second, all gates together.
    pub per_s: f64,
    /// CPU time of the whole process (server, engine, and the loopback
    /// client, which only writes prepared bytes and reads the answer) over
    /// the requests answered or refused, in milliseconds.
    pub cpu_ms_per_request: f64,
    /// Model calls over the requests answered or refused.
    pub model_calls_per_request: f64,
}

/// What [`run_gates`] measured.
#[derive(Debug, serde::Serialize)]
pub struct GatesReport {
    pub cpu: String,
    pub frames: usize,
    pub seconds_per_level: f64,
    /// The body of one request, in bytes.
    pub request_bytes: usize,
    pub levels: Vec<GateLevel>,
    /// Single-frame verify (no challenge) over HTTP, 2 connections.
    pub single_frame: GateLevel,
    /// Why the first refused request was refused (to tell a completed
    /// challenge from one the frames could not complete).
    pub first_refusal: Option<String>,
    /// The same frames straight into the engine on the blocking pool, no HTTP,
    /// no decision: every frame fully analysed (`Engine::analyze`, the
    /// capture path before the least-work API) and the least-work path
    /// (`Engine::challenge_bytes` with the server's options for the challenge).
    pub engine_full: Vec<GateLevel>,
    pub engine_least_work: Vec<GateLevel>,
    /// The least-work path with `fr_pose` on every frame (the server's
    /// capture options before the pose model ran only where the decision
    /// reads it).
    pub engine_pose_every_frame: Vec<GateLevel>,
    /// The least-work path without detector tracking (the detector on every
    /// frame: the server's capture before tracking).
    pub engine_untracked: Vec<GateLevel>,
    /// The first frame alone into the engine, 2 callers: `Engine::one_face`
    /// with every cue (pose, eyes: the single-frame path before) and with
    /// `OneFaceOptions::VERIFY` (what the server's verify runs now).
    pub engine_single_all_cues: GateLevel,
    pub engine_single_verify: GateLevel,
}

/// `gates` concurrent callers run `work` on the blocking pool back to back for `dur`.
async fn engine_level(
    gates: usize,
    dur: Duration,
    work: Arc<dyn Fn() -> bool + Send + Sync>,
) -> GateLevel {
    let t0 = Instant::now();
    let mut tasks = vec![];
    for _ in 0..gates {
        let work = work.clone();
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut ok, mut errors) = (Vec::new(), 0u64, 0u64);
            loop {
                let t = Instant::now();
                let w = work.clone();
                match tokio::task::spawn_blocking(move || w()).await {
                    Ok(true) => {
                        ok += 1;
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    _ => errors += 1,
                }
                if t0.elapsed() >= dur {
                    break;
                }
            }
            (lat, ok, errors)
        }));
    }
    let (mut lat, mut ok, mut errors) = (vec![], 0, 0);
    for t in tasks {
        if let Ok((l, o, e)) = t.await {
            lat.extend(l);
            ok += o;
            errors += e;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    GateLevel {
        gates,
        answered: ok,
        passed: ok,
        refused: 0,
        errors,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(f64::NAN),
        per_s: ok as f64 / secs,
        cpu_ms_per_request: 0.0,
        model_calls_per_request: 0.0,
    }
}

/// One request on a keep-alive connection: the status code and the body.
async fn round_trip(
    r: &mut BufReader<tokio::net::TcpStream>,
    request: &[u8],
) -> Option<(u16, Vec<u8>)> {
    r.get_mut().write_all(request).await.ok()?;
    let mut status = String::new();
    if r.read_line(&mut status).await.ok()? == 0 {
        return None;
    }
    let code = status.split_whitespace().nth(1)?.parse().ok()?;
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).await.ok()? == 0 {
            return None;
        }
        if h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await.ok()?;
    Some((code, buf))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `gates` connections send `request` back to back for `dur`.
async fn level(
    addr: std::net::SocketAddr,
    request: RequestFn,
    gates: usize,
    dur: Duration,
    first_refusal: Arc<std::sync::Mutex<Option<String>>>,
) -> GateLevel {
    const PASS: &[u8] = b"\"outcome\":\"pass\"";
    let t0 = Instant::now();
    let mut tasks = vec![];
    for _ in 0..gates {
        let (request, first_refusal) = (request.clone(), first_refusal.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut answered, mut passed, mut refused, mut errors) =
                (Vec::new(), 0u64, 0u64, 0u64, 0u64);
            let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
                return (lat, answered, passed, refused, errors + 1);
            };
            let _ = stream.set_nodelay(true);
            let mut r = BufReader::new(stream);
            // At least one request, then until the time is up.
            loop {
                let req = request();
                let t = Instant::now();
                match round_trip(&mut r, &req).await {
                    Some((200, body)) => {
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                        answered += 1;
                        if body.windows(PASS.len()).any(|w| w == PASS) {
                            passed += 1;
                        }
                    }
                    Some((code, body)) if (400..500).contains(&code) => {
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                        refused += 1;
                        let mut f = first_refusal.lock().unwrap_or_else(|p| p.into_inner());
                        if f.is_none() {
                            *f = Some(format!("{code} {}", String::from_utf8_lossy(&body)));
                        }
                    }
                    Some(_) => errors += 1,
                    None => return (lat, answered, passed, refused, errors + 1),
                }
                if t0.elapsed() >= dur {
                    break;
                }
            }
            (lat, answered, passed, refused, errors)
        }));
    }
    let (mut lat, mut answered, mut passed, mut refused, mut errors) = (vec![], 0, 0, 0, 0);
    for t in tasks {
        if let Ok((l, a, p, r, e)) = t.await {
            lat.extend(l);
            answered += a;
            passed += p;
            refused += r;
            errors += e;
        } else {
            errors += 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    GateLevel {
        gates,
        answered,
        passed,
        refused,
        errors,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(f64::NAN),
        per_s: (answered + refused) as f64 / secs,
        cpu_ms_per_request: 0.0,
        model_calls_per_request: 0.0,
    }
}

/// The gate benchmark: enrols `enrol_image` in a throwaway data directory,
/// starts the server on loopback, and for each count in `gates` runs that
/// many concurrent gates, each sending an active-challenge verify of
/// `frames` (base64 in `images`, `challenge` set) back to back for
/// `seconds`; then a single-frame verify (first frame, no challenge) on two
/// connections. Uses only the public HTTP API (`POST /v1/verify`) with a
/// device key, as a gate would.
pub async fn run_gates(
    config: ServerConfig,
    enrol_image: &[u8],
    frames: &[Vec<u8>],
    gates: &[usize],
    seconds: u64,
) -> Result<GatesReport, ApiError> {
    let (s, _op, person_id) = enrolled_state(config, "gate load", enrol_image).await?;
    let key = s
        .auth
        .issue(
            Role::Device,
            Some(crate::BoundDevice::of(&*s.scenario(None)?, "gate-north-1")),
            "gate load test",
            "server:load-test",
        )
        .await?
        .key;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(ApiError::internal)?;
    let addr = listener.local_addr().map_err(ApiError::internal)?;
    let server = tokio::spawn(crate::serve(s.clone(), listener));
    let request = |images: &[Vec<u8>]| -> RequestFn {
        let (key, person_id, fresh) = (key.clone(), person_id.clone(), FreshFrames::new(images));
        Arc::new(move || verify_request(addr, &key, &person_id, &fresh))
    };
    let multi = request(frames);
    let single = request(&frames[..1]);
    let dur = Duration::from_secs(seconds);
    let first_refusal = Arc::new(std::sync::Mutex::new(None));
    // Warm-up: one request of each kind (sessions, caches).
    level(
        addr,
        multi.clone(),
        1,
        Duration::ZERO,
        first_refusal.clone(),
    )
    .await;
    level(
        addr,
        single.clone(),
        1,
        Duration::ZERO,
        first_refusal.clone(),
    )
    .await;
    let mut levels = Vec::new();
    for &g in gates {
        let cost = Cost::start(&s.engine);
        let l = level(addr, multi.clone(), g.max(1), dur, first_refusal.clone()).await;
        levels.push(cost.finish(l));
    }
    let cost = Cost::start(&s.engine);
    let single_frame = cost.finish(level(addr, single, 2, dur, first_refusal.clone()).await);
    server.abort();
    // The engine alone: what the least-work capture API changes.
    let frames_arc: Arc<Vec<Vec<u8>>> = Arc::new(frames.to_vec());
    let (engine, f) = (s.engine.clone(), frames_arc.clone());
    let full: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(move || {
        f.iter()
            .all(|b| engine.analyze(b).is_ok_and(|faces| faces.len() == 1))
    });
    let (engine, f) = (s.engine.clone(), frames_arc.clone());
    // The options the server's capture uses for a head-turn challenge.
    let capture = facegate_core::pipeline::capture_options(&[
        facegate_vision::Action::TurnLeft,
        facegate_vision::Action::TurnRight,
    ]);
    let least: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(move || {
        let refs: Vec<&[u8]> = f.iter().map(Vec::as_slice).collect();
        let budget = facegate_vision::Budget::unlimited();
        matches!(
            engine.challenge_bytes(&refs, &capture, &budget),
            Ok(facegate_vision::CaptureResult::Captured(_))
        )
    });
    let (engine, f) = (s.engine.clone(), frames_arc.clone());
    let untracked_opts = facegate_vision::CaptureOptions {
        track: false,
        ..capture
    };
    let untracked: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(move || {
        let refs: Vec<&[u8]> = f.iter().map(Vec::as_slice).collect();
        let budget = facegate_vision::Budget::unlimited();
        matches!(
            engine.challenge_bytes(&refs, &untracked_opts, &budget),
            Ok(facegate_vision::CaptureResult::Captured(_))
        )
    });
    let (engine, f) = (s.engine.clone(), frames_arc.clone());
    let every: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(move || {
        let refs: Vec<&[u8]> = f.iter().map(Vec::as_slice).collect();
        let budget = facegate_vision::Budget::unlimited();
        matches!(
            engine.challenge_bytes(&refs, &Default::default(), &budget),
            Ok(facegate_vision::CaptureResult::Captured(_))
        )
    });
    let (mut engine_full, mut engine_least_work, mut engine_pose_every_frame) =
        (vec![], vec![], vec![]);
    let mut engine_untracked = vec![];
    for &g in gates {
        let cost = Cost::start(&s.engine);
        engine_full.push(cost.finish(engine_level(g.max(1), dur, full.clone()).await));
        let cost = Cost::start(&s.engine);
        engine_pose_every_frame.push(cost.finish(engine_level(g.max(1), dur, every.clone()).await));
        let cost = Cost::start(&s.engine);
        engine_least_work.push(cost.finish(engine_level(g.max(1), dur, least.clone()).await));
        let cost = Cost::start(&s.engine);
        engine_untracked.push(cost.finish(engine_level(g.max(1), dur, untracked.clone()).await));
    }
    let one = |opts: facegate_vision::OneFaceOptions| -> Arc<dyn Fn() -> bool + Send + Sync> {
        let (engine, f) = (s.engine.clone(), frames_arc.clone());
        Arc::new(move || {
            matches!(
                engine.one_face_bytes_with(&f[0], &opts, &facegate_vision::Budget::unlimited()),
                Ok(facegate_vision::OneFace::One(_))
            )
        })
    };
    let cost = Cost::start(&s.engine);
    let engine_single_all_cues = cost.finish(engine_level(2, dur, one(Default::default())).await);
    let cost = Cost::start(&s.engine);
    let engine_single_verify =
        cost.finish(engine_level(2, dur, one(facegate_vision::OneFaceOptions::VERIFY)).await);
    let first_refusal = first_refusal
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    Ok(GatesReport {
        cpu: facegate_vision::CpuInfo::detect().to_string(),
        frames: frames.len(),
        seconds_per_level: seconds as f64,
        request_bytes: multi().len(),
        levels,
        single_frame,
        first_refusal,
        engine_full,
        engine_least_work,
        engine_pose_every_frame,
        engine_untracked,
        engine_single_all_cues,
        engine_single_verify,
    })
}
