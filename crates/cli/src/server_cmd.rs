//! `facegate` subcommands for the server: `serve`, `enrol`, `verify`,
//! `identify`, `bench server`. The CLI commands run the same handlers as
//! the HTTP API, in process, so they pass the same policy checks and write
//! the same audit records.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use facegate_server::api::frontline;
use facegate_server::{AppState, Role, ServerConfig};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args, Clone)]
pub struct DataArgs {
    /// Data directory, database and identity key: the same flags and
    /// variables as the store commands (`facegate audit verify` …).
    #[command(flatten)]
    loc: crate::store_cmd::Location,
    /// Scenario manifest (TOML) [env FACEGATE_SCENARIO]; default: the built-in residential-gate demo (小区门禁).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// The device (manifest id) the images were captured on (R18); default: the scenario's first.
    #[arg(long)]
    device: Option<String>,
}

impl DataArgs {
    fn dir(&self) -> PathBuf {
        self.loc.dir()
    }

    /// Every setting read once, here; the server library takes values.
    fn config(&self) -> Result<ServerConfig> {
        let mut c = engine_config(self.dir())?;
        c.database_url = Some(self.loc.url());
        // FACEGATE_IDENTITY_KEY or --key-file, as `audit verify` reads them;
        // else the server's default file in the data directory.
        c.identity_key = Some(self.loc.keys(true)?);
        c.kek = std::env::var(facegate_gallery::KEK_ENV)
            .ok()
            .map(|v| facegate_gallery::Kek::from_hex(&zeroize::Zeroizing::new(v)))
            .transpose()
            .with_context(|| format!("{} must be 64 hex characters", facegate_gallery::KEK_ENV))?;
        c.scenario = self
            .scenario
            .clone()
            .or_else(|| std::env::var_os("FACEGATE_SCENARIO").map(PathBuf::from));
        Ok(c)
    }
}

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Start the HTTP API and the kiosk, portal and console (embedded SQLite and the demo scenario by default).
    Serve {
        #[command(flatten)]
        data: DataArgs,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// Issue a new admin key even if one exists.
        #[arg(long)]
        new_admin_key: bool,
        /// Replace the kiosk's device key (the old one is revoked).
        #[arg(long)]
        new_kiosk_key: bool,
        /// Connect this site to a governance hub (optional).
        #[command(flatten)]
        hub: crate::hub_cmd::SiteArgs,
    },
    /// Enrol a folder of face images in bulk; consent evidence comes from a CSV
    /// with columns `file,name,date_of_birth,channel,evidence` (header row required).
    Enrol {
        dir: PathBuf,
        #[arg(long)]
        consents: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        /// Print one JSON object per person.
        #[arg(long)]
        json: bool,
    },
    /// 1:1 verification of a face image against one enrolled person.
    Verify {
        image: PathBuf,
        #[arg(long)]
        person: String,
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        json: bool,
    },
    /// Bounded load run of 1:1 face verification, in process and then over HTTP on
    /// loopback (a throwaway data directory); prints throughput, errors and memory.
    ///
    /// With `--gates N`: the gate benchmark instead. N concurrent gates (1, 4, 8 …
    /// up to N) each send an active-challenge verify of `--frames` real fixture
    /// images over HTTP, back to back; prints p50/p99 latency and throughput per
    /// level, then the single-frame verify rate over HTTP (2 connections).
    LoadTest {
        /// Seconds per phase (per concurrency level with `--gates`).
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Concurrent workers (connections) per phase.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// Run the gate benchmark at 1, 4, 8 … gates, up to this many (0:
        /// only the single-frame verify phases).
        #[arg(long)]
        gates: Option<usize>,
        /// Frames per active-challenge request (2–8).
        #[arg(long, default_value_t = 6)]
        frames: usize,
        /// Scale the photos to this width (JPEG, quality 90), as a gate camera
        /// sends them; 0 sends the fixture files as they are (up to 2333×1434).
        #[arg(long, default_value_t = 640)]
        frame_width: u32,
        /// Hold each photo for this many frames, moved by a few pixels a
        /// frame, as a gate camera sends a person between poses (1: a new
        /// photo every frame).
        #[arg(long, default_value_t = 1)]
        hold: usize,
        #[arg(long)]
        json: bool,
    },
    /// 1:N identification of a face image (answers `unknown` below the calibrated threshold).
    Identify {
        image: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        json: bool,
    },
}

/// The CLI acts as an operator at the capturing device; it calls the core,
/// never an HTTP handler.
fn cli_who(device: Option<&str>) -> facegate_core::ops::Who<'_> {
    facegate_core::ops::Who {
        actor: "operator:cli",
        device,
    }
}

/// One frame, no challenge (the CLI reads still images): a passive-only
/// capture, which a scenario requiring `active` liveness refuses (R20).
fn frames(images: &[String]) -> facegate_core::ops::Frames<'_> {
    facegate_core::ops::Frames {
        images_b64: images,
        nonce: None,
        operator_import: false,
    }
}

/// Photos handed in with signed consent forms, imported by the operator
/// (bulk enrolment): see [`facegate_core::ops::Frames::operator_import`].
fn imported(images: &[String]) -> facegate_core::ops::Frames<'_> {
    facegate_core::ops::Frames {
        operator_import: true,
        ..frames(images)
    }
}

/// A server configuration in `dir` with the engine settings of the
/// environment ([`crate::engine_options`], and `FACEGATE_RECOGNITION`:
/// `first`, `pair` (the default) or `three`, see
/// [`facegate_core::Recognition`]).
fn engine_config(dir: PathBuf) -> Result<ServerConfig> {
    let e = crate::engine_options();
    let mut c = ServerConfig::new(dir);
    (c.engine_ort_tuning, c.engine_flush_denormals) = (e.ort_tuning, e.flush_denormals);
    if let Ok(v) = std::env::var("FACEGATE_RECOGNITION") {
        c.recognition = facegate_core::Recognition::parse(&v)
            .with_context(|| format!("FACEGATE_RECOGNITION={v}: expected first, pair or three"))?;
    }
    Ok(c)
}

/// The gate benchmark (`load-test --gates N`).
async fn gate_benchmark(
    seconds: u64,
    max_gates: usize,
    frames: usize,
    frame_width: u32,
    hold: usize,
    json: bool,
) -> Result<()> {
    anyhow::ensure!((2..=8).contains(&frames), "--frames must be 2 to 8");
    anyhow::ensure!(hold >= 1, "--hold must be at least 1");
    let dir = std::env::temp_dir().join(format!("facegate-gates-{}", std::process::id()));
    // Real photos of one person, in turn: the gate's frames.
    let photos = ["obama.jpg", "obama2.jpg", "obama3.jpg"]
        .iter()
        .map(|n| {
            let bytes = std::fs::read(facegate_assets::fixture(n)?)?;
            if frame_width == 0 {
                return Ok(bytes);
            }
            let img = image::load_from_memory(&bytes)?.to_rgb8();
            let h = (img.height() as u64 * frame_width as u64 / img.width() as u64) as u32;
            let small = image::imageops::resize(
                &img,
                frame_width,
                h,
                image::imageops::FilterType::Triangle,
            );
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
                .encode_image(&small)?;
            Ok(out)
        })
        .collect::<Result<Vec<_>>>()?;
    // Frame k shows photo (k / hold) mod 3, moved by (6, 3) px for each
    // frame it has been held.
    let seq: Vec<Vec<u8>> = (0..frames)
        .map(|k| {
            let (photo, step) = (&photos[(k / hold) % photos.len()], (k % hold) as i64);
            if step == 0 {
                return Ok(photo.clone());
            }
            let img = image::load_from_memory(photo)?.to_rgb8();
            let mut moved =
                image::RgbImage::from_pixel(img.width(), img.height(), image::Rgb([40, 40, 40]));
            image::imageops::overlay(&mut moved, &img, 6 * step, 3 * step);
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
                .encode_image(&moved)?;
            Ok(out)
        })
        .collect::<Result<Vec<_>>>()?;
    // `--gates 0`: the single-frame phases alone (the multi-frame levels skipped).
    let mut levels: Vec<usize> = [1, 4, 8].into_iter().filter(|&g| g <= max_gates).collect();
    if max_gates > 0 && !levels.contains(&max_gates) {
        levels.push(max_gates);
    }
    let r = facegate_server::loadgen::run_gates(
        engine_config(dir.clone())?,
        &photos[0],
        &seq,
        &levels,
        seconds,
    )
    .await
    .map_err(api_err);
    let _ = std::fs::remove_dir_all(&dir);
    let r = r?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    println!("{}", r.cpu);
    println!(
        "gate benchmark: verify of {} frames without a server-issued challenge (obama.jpg, obama2.jpg, obama3.jpg in turn, each held {hold} frame(s), {}; {} bytes a request) over HTTP on loopback, {} s per level",
        r.frames,
        if frame_width == 0 {
            "as fetched".to_string()
        } else {
            format!("scaled to {frame_width} px wide")
        },
        r.request_bytes,
        r.seconds_per_level
    );
    let row = |name: String, l: &facegate_server::loadgen::GateLevel| {
        println!(
            "{name:<14} p50 {:7.1} ms  p99 {:7.1} ms  max {:7.1} ms  {:6.2} requests/s  CPU {:6.1} ms/request  {:5.1} model calls/request  ({} answered, {} pass, {} refused, {} errors)",
            l.p50_ms,
            l.p99_ms,
            l.max_ms,
            l.per_s,
            l.cpu_ms_per_request,
            l.model_calls_per_request,
            l.answered,
            l.passed,
            l.refused,
            l.errors
        )
    };
    for l in &r.levels {
        row(format!("{} gate(s)", l.gates), l);
    }
    row("single frame".into(), &r.single_frame);
    if let Some(f) = &r.first_refusal {
        println!("first refusal: {f}");
    }
    println!(
        "the same {} frames straight into the engine (blocking pool, no HTTP, no decision):",
        r.frames
    );
    for (((full, every), least), untracked) in r
        .engine_full
        .iter()
        .zip(&r.engine_pose_every_frame)
        .zip(&r.engine_least_work)
        .zip(&r.engine_untracked)
    {
        row(format!("{} gate(s) full", full.gates), full);
        row(format!("{} gate(s) pose6", every.gates), every);
        row(format!("{} gate(s) untrack", untracked.gates), untracked);
        row(format!("{} gate(s) least", least.gates), least);
    }
    row("1 frame, all".into(), &r.engine_single_all_cues);
    row("1 frame, verify".into(), &r.engine_single_verify);
    println!(
        "  full: every frame fully analysed (Engine::analyze); pose6: Engine::challenge_bytes with fr_pose on every frame; untrack: the server's capture options without detector tracking (the detector on every frame); least: the server's capture options (fr_pose only where the decision reads it, detector tracking)\n  1 frame: Engine::one_face_bytes with every cue, and with OneFaceOptions::VERIFY (no pose or eye model), 2 callers"
    );
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        // Every worker and blocking thread (the engine runs on the blocking
        // pool) flushes subnormal floats: see facegate_vision::set_flush_denormals.
        .on_thread_start(facegate_vision::set_flush_denormals)
        .enable_all()
        .build()?)
}

/// The capturing device: `--device`, else the scenario's first device.
fn device_of(s: &AppState, data: &DataArgs) -> Option<String> {
    data.device.clone().or_else(|| {
        s.scenario(None)
            .ok()
            .and_then(|d| d.scenario.devices.first().map(|x| x.id.clone()))
    })
}

async fn open(data: &DataArgs) -> Result<AppState> {
    std::fs::create_dir_all(data.dir())
        .with_context(|| format!("creating {}", data.dir().display()))?;
    AppState::open(data.config()?)
        .await
        .map_err(api_err)
        .with_context(|| format!("opening facegate data in {}", data.dir().display()))
}

/// An API error for the terminal: a refusal in policy's own words (rule and
/// article in English and Chinese), anything else in both languages.
fn api_err(e: facegate_server::ApiError) -> anyhow::Error {
    match &e {
        facegate_server::ApiError::Internal(m) => anyhow::anyhow!("internal error: {m}"),
        facegate_server::ApiError::Refused(r) => anyhow::anyhow!("{r}"),
        _ => {
            let b = e.body();
            anyhow::anyhow!("{} / {}", b.message_en, b.message_zh)
        }
    }
}

pub fn run(cmd: Cmd) -> Result<()> {
    let rt = runtime()?;
    match cmd {
        Cmd::Serve {
            data,
            bind,
            new_admin_key,
            new_kiosk_key,
            hub,
        } => rt.block_on(serve(data, bind, new_admin_key, new_kiosk_key, hub)),
        Cmd::Enrol {
            dir,
            consents,
            data,
            json,
        } => rt.block_on(enrol(&dir, &consents, &data, json)),
        Cmd::Verify {
            image,
            person,
            data,
            json,
        } => rt.block_on(async {
            let s = open(&data).await?;
            let bytes = std::fs::read(&image).with_context(|| image.display().to_string())?;
            let device = device_of(&s, &data);
            let d = s.scenario(None).map_err(|e| api_err(e.into()))?;
            let pid = facegate_core::pipeline::person_id(&person).map_err(|e| api_err(e.into()))?;
            let images = [facegate_server::pipeline::encode_image(&bytes)];
            let out = s
                .core
                .verify_face(&d, pid, cli_who(device.as_deref()), frames(&images), None)
                .await
                .map_err(|e| api_err(e.into()))?;
            print_outcome(
                &facegate_server::api::frontline::Outcome::signed(&s, out),
                json,
            )
        }),
        Cmd::LoadTest {
            seconds,
            gates: Some(gates),
            frames,
            frame_width,
            hold,
            json,
            ..
        } => rt.block_on(gate_benchmark(
            seconds,
            gates,
            frames,
            frame_width,
            hold,
            json,
        )),
        Cmd::LoadTest {
            seconds,
            concurrency,
            json,
            ..
        } => rt.block_on(async {
            let dir = std::env::temp_dir().join(format!("facegate-load-{}", std::process::id()));
            let a = std::fs::read(facegate_assets::fixture("obama.jpg")?)?;
            let b = std::fs::read(facegate_assets::fixture("obama2.jpg")?)?;
            let r = facegate_server::loadgen::run(
                engine_config(dir.clone())?,
                &a,
                &b,
                seconds,
                concurrency.max(1),
            )
            .await
            .map_err(api_err);
            let _ = std::fs::remove_dir_all(&dir);
            let r = r?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "1:1 verify, obama2.jpg against obama.jpg, {} workers, {} s per phase",
                    r.concurrency, r.seconds
                );
                println!(
                    "in-process pipeline: {:.1} verifications/s ({} ok, {} errors)",
                    r.in_process_per_s, r.in_process_ok, r.in_process_errors
                );
                println!(
                    "HTTP on loopback:    {:.1} verifications/s ({} ok, {} errors)",
                    r.http_per_s, r.http_ok, r.http_errors
                );
                println!("ratio http/in-process = {:.3}", r.ratio);
                println!(
                    "RSS during HTTP phase: start {} kB, middle {} kB, end {} kB",
                    r.rss_kb[0], r.rss_kb[1], r.rss_kb[2]
                );
            }
            Ok(())
        }),
        Cmd::Identify { image, data, json } => rt.block_on(async {
            let s = open(&data).await?;
            let bytes = std::fs::read(&image).with_context(|| image.display().to_string())?;
            let device = device_of(&s, &data);
            let d = s.scenario(None).map_err(|e| api_err(e.into()))?;
            let images = [facegate_server::pipeline::encode_image(&bytes)];
            let out = s
                .core
                .identify(&d, cli_who(device.as_deref()), frames(&images))
                .await
                .map_err(|e| api_err(e.into()))?;
            print_outcome(
                &facegate_server::api::frontline::Outcome::signed(&s, out),
                json,
            )
        }),
    }
}

fn print_outcome(o: &frontline::Outcome, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(o)?);
    } else {
        println!(
            "{} ({}) person {} score {} threshold {}\nreceipt {}\nsigned receipt {}",
            o.outcome,
            o.method,
            o.person_id.as_deref().unwrap_or("-"),
            o.score
                .map(|x| format!("{x:.3}"))
                .unwrap_or_else(|| "-".into()),
            o.threshold
                .map(|x| format!("{x:.3}"))
                .unwrap_or_else(|| "-".into()),
            o.receipt_id,
            o.receipt_code
        );
    }
    Ok(())
}

async fn serve(
    data: DataArgs,
    bind: SocketAddr,
    new_admin_key: bool,
    new_kiosk_key: bool,
    hub: crate::hub_cmd::SiteArgs,
) -> Result<()> {
    println!("facegate: opening {} …", data.dir().display());
    std::fs::create_dir_all(data.dir())
        .with_context(|| format!("creating {}", data.dir().display()))?;
    let mut config = data.config()?;
    config.manifest_text = crate::hub_cmd::hub_bootstrap(&config, &hub).await?;
    let s = AppState::open(config)
        .await
        .map_err(api_err)
        .with_context(|| format!("opening facegate data in {}", data.dir().display()))?;
    let d = s.scenario(None).map_err(|e| api_err(e.into()))?;
    let mut printed_admin = None;
    if new_admin_key || !s.auth.has_admin().await.map_err(api_err)? {
        printed_admin = Some(
            s.auth
                .issue(
                    Role::Admin,
                    None,
                    "first admin (facegate serve)",
                    "cli:serve",
                )
                .await
                .map_err(api_err)?,
        );
    }
    // The kiosk page of the first device gets a key at the first start; it is
    // kept in the store, so a restart leaves the gate running. A new one
    // (revoking the old) only with --new-kiosk-key.
    let device = d.scenario.devices.first().map(|x| x.id.clone());
    let mut kiosk_key = None;
    if let Some(dev) = &device {
        let existing: Vec<_> = s
            .auth
            .list()
            .await
            .map_err(api_err)?
            .into_iter()
            .filter(|k| k.label == "kiosk (facegate serve)" && !k.revoked)
            .collect();
        if new_kiosk_key || existing.is_empty() {
            for k in existing {
                s.auth.revoke(&k.id, "cli:serve").await.map_err(api_err)?;
            }
            kiosk_key = Some(
                s.auth
                    .issue(
                        Role::Device,
                        Some(facegate_server::BoundDevice::of(&d, dev)),
                        "kiosk (facegate serve)",
                        "cli:serve",
                    )
                    .await
                    .map_err(api_err)?,
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    let addr = listener.local_addr()?;
    println!(
        "scenario: {} / {} (notice {})",
        d.scenario.name.zh,
        d.scenario.name.get(facegate_policy::Lang::En),
        &d.notice_version[..12.min(d.notice_version.len())]
    );
    println!(
        "recognition: {} (FACEGATE_RECOGNITION=first|pair|three)",
        s.core.recognition.describe()
    );
    match (&device, &kiosk_key) {
        (Some(dev), Some(k)) => {
            println!("kiosk:   http://{addr}/kiosk#device={dev}&key={}", k.key)
        }
        (Some(_), None) => println!(
            "kiosk:   key issued at an earlier start, still valid (use --new-kiosk-key to replace it)"
        ),
        _ => {}
    }
    println!("portal:  http://{addr}/portal");
    println!("console: http://{addr}/console");
    match &printed_admin {
        Some(k) => println!(
            "admin key (shown once; paste it into the console): {}",
            k.key
        ),
        None => println!("admin key: issued at first start (use --new-admin-key for another)"),
    }
    println!("API:     http://{addr}/v1/openapi.json   metrics: http://{addr}/metrics");
    let extra = crate::hub_cmd::spawn_site_sync(s.core.clone(), &hub).await?;
    facegate_server::serve_with(s, listener, extra).await?;
    Ok(())
}

struct Row {
    file: String,
    name: String,
    dob: Option<chrono::NaiveDate>,
    channel: String,
    evidence: String,
}

fn read_consents(path: &Path) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .context("the consents CSV is empty")?
        .split(',')
        .map(|h| h.trim().to_lowercase())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(fi), Some(ni)) = (col("file"), col("name")) else {
        bail!("the consents CSV needs a header with at least `file,name` (and optionally date_of_birth,channel,evidence)");
    };
    let (di, ci, ei) = (col("date_of_birth"), col("channel"), col("evidence"));
    let mut rows = vec![];
    for (n, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |i: Option<usize>| i.and_then(|i| f.get(i)).copied().unwrap_or("");
        let dob = match get(di) {
            "" => None,
            s => Some(
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").with_context(|| {
                    format!("line {}: date_of_birth {s:?} is not YYYY-MM-DD", n + 2)
                })?,
            ),
        };
        let evidence = get(ei).to_string();
        if evidence.is_empty() {
            bail!(
                "line {}: no consent evidence for {} (R7 / Art. 6: each person needs a separate consent record)",
                n + 2,
                get(Some(fi))
            );
        }
        rows.push(Row {
            file: get(Some(fi)).into(),
            name: get(Some(ni)).into(),
            dob,
            channel: match get(ci) {
                "" => "paper".into(),
                c => c.into(),
            },
            evidence,
        });
    }
    Ok(rows)
}

/// The key of one CSV row: what identifies it across runs.
fn row_key(scenario: &str, image: &[u8], r: &Row) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [
        scenario.as_bytes(),
        &Sha256::digest(image)[..],
        r.name.as_bytes(),
        r.dob.map(|d| d.to_string()).unwrap_or_default().as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    format!("csv:{}", hex::encode(h.finalize()))
}

async fn enrol(dir: &Path, consents: &Path, data: &DataArgs, json: bool) -> Result<()> {
    let rows = read_consents(consents)?;
    let s = open(data).await?;
    let d = s.scenario(None).map_err(|e| api_err(e.into()))?;
    let device = device_of(&s, data);
    let bar = ProgressBar::new(rows.len() as u64);
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} {msg} ({eta})",
    )?);
    let (mut ok, mut failed, mut skipped) = (0, 0, 0);
    for r in rows {
        let res: Result<Option<frontline::Outcome>> = async {
            let bytes = std::fs::read(dir.join(&r.file)).with_context(|| r.file.clone())?;
            // The row's key: scenario, file content, name and date of birth.
            // A restarted run finds the person an earlier run registered for
            // it and skips a row whose face is already enrolled.
            let key = row_key(&d.scenario.id, &bytes, &r);
            let (p, _) = s
                .store
                .person_for_row(
                    &key,
                    s.processor_id,
                    &facegate_store::PersonIdentity {
                        display_name: r.name.clone(),
                        contact: None,
                        date_of_birth: r.dob,
                    },
                    "cli:enrol",
                )
                .await?;
            if s.store.template_count(p.id, d.store_id).await? > 0 {
                return Ok(None);
            }
            let who = cli_who(device.as_deref());
            s.core
                .give_consent(
                    &d,
                    p.id,
                    who,
                    facegate_core::ops::NewConsent {
                        kind: facegate_store::ConsentKind::Processing,
                        notice_version: &d.notice_version,
                        channel: Some(&r.channel),
                        evidence: &r.evidence,
                        guardian: None,
                    },
                )
                .await
                .map_err(|e| api_err(e.into()))?;
            let images = [facegate_server::pipeline::encode_image(&bytes)];
            let out = s
                .core
                .enrol_face(&d, p.id, who, imported(&images), None)
                .await
                .map_err(|e| api_err(e.into()))?;
            Ok(Some(facegate_server::api::frontline::Outcome::signed(
                &s, out,
            )))
        }
        .await;
        let res = match res {
            Ok(None) => {
                skipped += 1;
                if json {
                    bar.suspend(|| println!("{}", serde_json::json!({"file": r.file, "ok": true, "skipped": "already enrolled"})));
                }
                bar.inc(1);
                continue;
            }
            Ok(Some(o)) => Ok(o),
            Err(e) => Err(e),
        };
        match res {
            Ok(o) => {
                ok += 1;
                if json {
                    bar.suspend(|| println!("{}", serde_json::json!({"file": r.file, "ok": true, "person_id": o.person_id, "receipt_id": o.receipt_id})));
                }
            }
            Err(e) => {
                failed += 1;
                bar.suspend(|| {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({"file": r.file, "ok": false, "error": e.to_string()})
                        );
                    } else {
                        eprintln!("{}: {e:#}", r.file);
                    }
                });
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if !json {
        println!("enrolled {ok}, already enrolled {skipped}, failed {failed}");
    }
    if failed > 0 {
        bail!("{failed} of {} could not be enrolled", ok + failed);
    }
    Ok(())
}
