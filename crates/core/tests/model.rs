//! Model-based test of the decision core (issue 11): random sequences of
//! register, consent (repeats included), withdraw, enrol, verify by face and
//! by PIN, decline, opt back in, portal code (device and operator), erase,
//! clock advance + sweep, notice change (the scenario re-deployed with a
//! changed notice: a contact changed, or a material change of method), minors
//! (under 14: only a guardian's consent counts), and process restart (the
//! core re-opened on the same store), on SQLite and (with
//! FACEGATE_TEST_DATABASE_URL) PostgreSQL. After every step the store is
//! checked against the model:
//! - no template without an active processing consent (the guardian's for
//!   under-14s), and no template made since the notice changed without a
//!   consent under the notice in force;
//! - headcount = distinct persons with templates, and the model agrees;
//! - every refused face decision names the rule the model expects
//!   (R10 minor without a guardian's consent, R7 never consented, R8
//!   withdrawn, R9 consent under other terms, R17 declined, R5 consent under
//!   an older notice);
//! - no portal code from a device without a passing check there, and no
//!   decline from a device for a person who did not just pass another
//!   method there;
//! - the audit chain verifies: incrementally after every step (only the
//!   records the step wrote), and in full at the end.
//!
//! What a notice change does (MEASURES R5, R9): consents and templates given
//! under the old notice stay (the consent never lapses, nothing is deleted),
//! but no face decision is made for that person, enrolment included, until
//! they consent again under the notice in force: R5 when only the notice
//! text changed, R9 when purpose, method or data types changed. Giving
//! consent again supersedes the old record and keeps the templates.
//!
//! `FACEGATE_MBT_CASES` sets the number of sequences (default 500),
//! `FACEGATE_MBT_SEED` the first seed. Real models on real fixture images;
//! the face engine is loaded once and shared by every core.

use std::sync::Arc;

use facegate_core::ops::{Acting, Frames, Guardian, NewConsent, Who};
use facegate_core::{Core, CoreConfig, CoreError, NoObserver, PortalIssuer, SystemClock};
use facegate_store::{ChainCursor, ConsentGiver, ConsentKind, PersonIdentity, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

const DEVICE: &str = "gate-north-1";
const MAX_STEPS: usize = 40;

/// The demo at `liveness = "passive"`: the sequences send one still frame
/// (server-issued challenges have their own tests).
fn passive_demo() -> String {
    let m = facegate_core::deploy::passive_demo_manifest();
    assert!(m.contains("liveness = \"passive\""));
    m
}

/// The scenario as re-deployed by a notice change: the demo manifest, the
/// same with another contact number (the notice changes, the consent terms
/// do not: R5), and with one method fewer (a material change: R9).
fn manifests() -> Vec<String> {
    let base = passive_demo();
    let contact = base.replacen("021-5555 0100，", "021-5555 0199，", 1);
    let methods = base.replacen(
        "methods = [\"face\", \"pin\", \"card\", \"qr_code\", \"staffed_check\"]",
        "methods = [\"face\", \"pin\", \"card\", \"staffed_check\"]",
        1,
    );
    assert!(
        contact != base && methods != base,
        "the manifest variants differ"
    );
    vec![base, contact, methods]
}
/// Which notice each manifest shows, and which consent terms it asks for.
const NOTICE: [usize; 3] = [0, 1, 2];
const TERMS: [usize; 3] = [0, 0, 1];

#[derive(Debug, Clone, Copy, PartialEq)]
enum ConsentState {
    Never,
    Active,
    Withdrawn,
}

#[derive(Debug, Clone)]
struct P {
    id: Uuid,
    face: usize,
    /// Under 14 for the whole run (born 2016).
    minor: bool,
    /// The manifest variant in force when the consent was given.
    consent_variant: usize,
    /// Passed an alternative (PIN) at the device.
    alt_passed: bool,
    erased: bool,
    consent: ConsentState,
    declined: bool,
    enrolled: bool,
    pin: bool,
    passed_at_device: bool,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    /// Face, under 14.
    Register(usize, bool),
    /// Person, by a guardian.
    Consent(usize, bool),
    Withdraw(usize),
    Enrol(usize),
    VerifyFace(usize),
    SetPin(usize),
    VerifyPin(usize, bool),
    /// Person, by the device (else by an operator).
    Decline(usize, bool),
    OptIn(usize),
    PortalDevice(usize),
    PortalOperator(usize),
    Erase(usize),
    Sweep(i64),
    NoticeChange(usize),
    Restart,
}

fn gen_op(rng: &mut StdRng, n: usize) -> Op {
    let p = if n == 0 { 0 } else { rng.gen_range(0..n) };
    if n == 0 {
        return Op::Register(rng.gen_range(0..2), rng.gen_bool(0.3));
    }
    match rng.gen_range(0..32) {
        0..=2 => Op::Register(rng.gen_range(0..2), rng.gen_bool(0.3)),
        3..=6 => Op::Consent(p, rng.gen_bool(0.6)),
        7 => Op::Withdraw(p),
        8..=11 => Op::Enrol(p),
        12..=15 => Op::VerifyFace(p),
        16 => Op::SetPin(p),
        17..=18 => Op::VerifyPin(p, rng.gen_bool(0.7)),
        19..=20 => Op::Decline(p, rng.gen_bool(0.7)),
        21 => Op::OptIn(p),
        22..=23 => Op::PortalDevice(p),
        24 => Op::PortalOperator(p),
        25 => Op::Erase(p),
        26..=27 => Op::Sweep([10, 100, 400][rng.gen_range(0..3)]),
        28..=29 => Op::NoticeChange(rng.gen_range(0..3)),
        _ => Op::Restart,
    }
}

struct World {
    core: Core,
    url: String,
    dir: std::path::PathBuf,
    engine: Arc<facegate_vision::Engine>,
    /// Raw fixture bytes; each capture sends them with a unique suffix
    /// (as a camera never sends the same bytes twice: a replay is refused).
    images: Arc<Vec<Vec<u8>>>,
    manifests: Arc<Vec<String>>,
    /// The manifest variant deployed now.
    variant: usize,
    /// When the notice in force was deployed (templates made since need a
    /// consent under it).
    notice_since: chrono::DateTime<chrono::Utc>,
    /// How far the audit chain has been verified.
    chain: ChainCursor,
}

async fn open(
    url: &str,
    dir: &std::path::Path,
    engine: Arc<facegate_vision::Engine>,
    master: [u8; 32],
    manifest: &str,
) -> Core {
    Core::open_with_engine(
        CoreConfig {
            data_dir: dir.to_path_buf(),
            database_url: Some(url.to_string()),
            identity_key: Some(facegate_store::StoreKeys::from_master(&master)),
            kek: None,
            manifest: manifest.to_string(),
            engine_threads: 1,
            engine_ort_tuning: true,
            engine_flush_denormals: true,
            recognition: facegate_core::Recognition::Pair,
            capture: Default::default(),
        },
        Arc::new(SystemClock),
        Arc::new(NoObserver),
        Some(engine),
    )
    .await
    .expect("core opens")
}

fn who() -> Who<'static> {
    Who {
        actor: "device:mbt",
        device: Some(DEVICE),
    }
}

/// The rule a face decision (enrol or verify) for `p` must be refused with
/// while `variant` is deployed, in policy's order: the person's consent
/// (R10 for a minor without a guardian's, R7, R8, R9), then a decline (R17),
/// then the notice (R5).
fn expected_face_rule(p: &P, variant: usize) -> Option<&'static str> {
    match p.consent {
        ConsentState::Never if p.minor => Some("R10"),
        ConsentState::Never => Some("R7"),
        ConsentState::Withdrawn => Some("R8"),
        ConsentState::Active if TERMS[p.consent_variant] != TERMS[variant] => Some("R9"),
        ConsentState::Active if p.declined => Some("R17"),
        ConsentState::Active if NOTICE[p.consent_variant] != NOTICE[variant] => Some("R5"),
        ConsentState::Active => None,
    }
}

fn rule(e: &CoreError) -> Option<String> {
    match e {
        CoreError::Refused(r) => Some(r.rule.to_string()),
        _ => None,
    }
}

/// Run one sequence; returns the ops run (for the failure message).
async fn run_sequence(w: &mut World, seed: u64, master: [u8; 32]) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let steps = rng.gen_range(1..=MAX_STEPS);
    let mut people: Vec<P> = Vec::new();
    let mut trace = Vec::new();
    for step in 0..steps {
        let op = gen_op(&mut rng, people.len());
        trace.push(op);
        let fail = |msg: String| format!("seed {seed}, step {step}, ops {trace:?}: {msg}");
        let c = &w.core;
        let d = c.scenario(None).map_err(|e| fail(e.to_string()))?;
        let sent: Vec<Vec<String>> = (0..w.images.len())
            .map(|face| {
                let mut b = w.images[face].clone();
                b.extend_from_slice(format!("mbt-{seed}-{step}").as_bytes());
                vec![base64_std(&b)]
            })
            .collect();
        let frames = |face: usize| Frames {
            images_b64: &sent[face],
            nonce: None,
            operator_import: false,
        };
        match op {
            Op::Register(face, minor) => {
                let p = c
                    .store
                    .add_person(
                        c.processor_id,
                        &PersonIdentity {
                            display_name: format!("P{}", people.len()),
                            contact: None,
                            date_of_birth: chrono::NaiveDate::from_ymd_opt(
                                if minor { 2016 } else { 1980 },
                                1,
                                1,
                            ),
                        },
                        "operator:mbt",
                    )
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                people.push(P {
                    id: p.id,
                    face,
                    minor,
                    consent_variant: w.variant,
                    alt_passed: false,
                    erased: false,
                    consent: ConsentState::Never,
                    declined: false,
                    enrolled: false,
                    pin: false,
                    passed_at_device: false,
                });
            }
            Op::Consent(i, by_guardian) => {
                let p = &mut people[i];
                let guardian = (p.minor && by_guardian).then_some(Guardian {
                    name: "G. Parent",
                    relationship: "mother",
                    contact: None,
                });
                let r = c
                    .give_consent(
                        &d,
                        p.id,
                        who(),
                        NewConsent {
                            kind: ConsentKind::Processing,
                            notice_version: &d.notice_version,
                            channel: None,
                            evidence: "tapped agree",
                            guardian,
                        },
                    )
                    .await;
                match (p.erased, p.minor && !by_guardian, r) {
                    (true, _, Err(CoreError::NotFound(_))) => {}
                    (false, true, Err(e)) if rule(&e).as_deref() == Some("R10") => {}
                    (false, false, Ok(_)) => {
                        p.consent = ConsentState::Active;
                        p.consent_variant = w.variant;
                        p.declined = false;
                    }
                    (e, no_guardian, r) => {
                        return Err(fail(format!(
                            "consent (erased {e}, minor without guardian {no_guardian}): {r:?}"
                        )))
                    }
                }
            }
            Op::Withdraw(i) => {
                let p = &mut people[i];
                if p.consent == ConsentState::Active && !p.erased {
                    let active = c
                        .store
                        .active_consent(p.id, d.store_id, ConsentKind::Processing)
                        .await
                        .map_err(|e| fail(e.to_string()))?
                        .ok_or_else(|| fail("model says active, store has none".into()))?;
                    c.withdraw_consent(
                        active.id,
                        facegate_core::ops::Acting::Operator,
                        "kiosk",
                        "operator:mbt",
                    )
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                    p.consent = ConsentState::Withdrawn;
                    p.enrolled = false;
                }
            }
            Op::Enrol(i) | Op::VerifyFace(i) => {
                let p = &mut people[i];
                let enrol = matches!(op, Op::Enrol(_));
                let r = if enrol {
                    // The kiosk shows the notice before enrolment and sends
                    // its version. (Without it, policy today answers R4
                    // before R7/R8: the refusal order is the policy
                    // crate's to fix.)
                    c.enrol_face(
                        &d,
                        p.id,
                        who(),
                        frames(p.face),
                        Some(d.notice_version.clone()),
                    )
                    .await
                } else {
                    c.verify_face(
                        &d,
                        p.id,
                        who(),
                        frames(p.face),
                        Some(d.notice_version.clone()),
                    )
                    .await
                };
                let expected_rule = expected_face_rule(p, w.variant);
                match (p.erased, expected_rule, r) {
                    (true, _, Err(CoreError::NotFound(_))) => {}
                    (false, Some(want), Err(e)) => {
                        let got = rule(&e);
                        if got.as_deref() != Some(want) {
                            return Err(fail(format!("face refused as {got:?}, expected {want}")));
                        }
                    }
                    (false, None, Ok(o)) => {
                        if enrol {
                            p.enrolled = true;
                        } else {
                            let want = if p.enrolled { "pass" } else { "fail" };
                            if o.outcome != want {
                                return Err(fail(format!("verify {} expected {want}", o.outcome)));
                            }
                            if o.outcome == "pass" {
                                p.passed_at_device = true;
                            }
                        }
                    }
                    (e, want, r) => {
                        return Err(fail(format!(
                            "face step (erased {e}, expected {want:?}): {:?}",
                            r.map(|o| o.outcome)
                        )))
                    }
                }
            }
            Op::SetPin(i) => {
                let p = &mut people[i];
                let r = c.add_credential(&d, p.id, who(), "pin", "246810").await;
                match (p.erased, r) {
                    (true, Err(CoreError::NotFound(_))) => {}
                    (false, Ok(_)) => p.pin = true,
                    (e, r) => {
                        return Err(fail(format!(
                            "set pin (erased {e}): {:?}",
                            r.map(|o| o.outcome)
                        )))
                    }
                }
            }
            Op::VerifyPin(i, right) => {
                let p = &mut people[i];
                let secret = if right { "246810" } else { "000000" };
                let r = c.verify_credential(&d, p.id, who(), "pin", secret, 5).await;
                match (p.erased, r) {
                    (true, Err(CoreError::NotFound(_))) => {}
                    (false, Err(CoreError::Locked { .. })) => {}
                    (false, Ok(o)) => {
                        let want = if right && p.pin { "pass" } else { "fail" };
                        if o.outcome != want {
                            return Err(fail(format!("pin {} expected {want}", o.outcome)));
                        }
                        if o.outcome == "pass" {
                            p.passed_at_device = true;
                            p.alt_passed = true;
                        }
                    }
                    (e, r) => {
                        return Err(fail(format!(
                            "pin (erased {e}): {:?}",
                            r.map(|o| o.outcome)
                        )))
                    }
                }
            }
            Op::Decline(i, by_device) => {
                let p = &mut people[i];
                let (acting, actor) = if by_device {
                    (
                        Acting::Device(facegate_core::DeviceAt {
                            name: DEVICE,
                            scenario: None,
                        }),
                        "device:mbt",
                    )
                } else {
                    (Acting::Operator, "operator:mbt")
                };
                let r = c.decline_face(p.id, &d, acting, "kiosk", actor).await;
                // A device records a decline only for the person who just
                // passed another method at it (R17 cannot be turned into a
                // denial of service on anyone).
                let may = !by_device || p.alt_passed;
                match (p.erased, may, r) {
                    (true, _, Err(CoreError::NotFound(_))) => {}
                    (false, true, Ok(_)) => p.declined = true,
                    (false, false, Err(CoreError::Forbidden(_))) => {}
                    (e, may, r) => {
                        return Err(fail(format!("decline (erased {e}, may {may}): {r:?}")))
                    }
                }
            }
            Op::OptIn(i) => {
                let p = &mut people[i];
                let r = c.opt_back_in(p.id, &d, "kiosk", "device:mbt").await;
                match (p.erased, r) {
                    (true, Err(CoreError::NotFound(_))) => {}
                    (false, Ok(lifted)) => {
                        if lifted != p.declined {
                            return Err(fail(format!(
                                "opt-in lifted {lifted}, model declined {}",
                                p.declined
                            )));
                        }
                        p.declined = false;
                    }
                    (e, r) => return Err(fail(format!("opt-in (erased {e}): {r:?}"))),
                }
            }
            Op::PortalDevice(i) | Op::PortalOperator(i) => {
                let p = &people[i];
                let issuer = match op {
                    Op::PortalDevice(_) => PortalIssuer::Device(facegate_core::DeviceAt {
                        name: DEVICE,
                        scenario: None,
                    }),
                    _ => PortalIssuer::Operator {
                        identity_check: Some("居民身份证 checked (mbt)"),
                    },
                };
                let basis = c.portal_code_basis(p.id, issuer).await;
                let may = matches!(op, Op::PortalOperator(_)) || p.passed_at_device;
                match (may, basis) {
                    (true, Ok(b)) => {
                        let r = c
                            .store
                            .put_portal_code(
                                &format!("{seed}-{step}"),
                                p.id,
                                chrono::Utc::now() + chrono::Duration::minutes(15),
                                b,
                                "mbt",
                            )
                            .await;
                        match (p.erased, r) {
                            (true, Err(_)) | (false, Ok(())) => {}
                            (e, r) => return Err(fail(format!("portal code (erased {e}): {r:?}"))),
                        }
                    }
                    (false, Err(CoreError::Forbidden(_))) => {}
                    (may, r) => return Err(fail(format!("portal code basis (may {may}): {r:?}"))),
                }
            }
            Op::Erase(i) => {
                let p = &mut people[i];
                if !p.erased {
                    c.erase_person(p.id, "operator:mbt")
                        .await
                        .map_err(|e| fail(e.to_string()))?;
                    p.erased = true;
                    p.enrolled = false;
                }
            }
            Op::Sweep(days) => {
                c.sweep_at(chrono::Utc::now() + chrono::Duration::days(days))
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                // The demo scenario: 90 days without use, 365 days at most.
                if days >= 90 {
                    for p in &mut people {
                        p.enrolled = false;
                    }
                }
            }
            Op::NoticeChange(k) => {
                let before = (d.notice_version.clone(), d.scenario.consent_terms());
                let nd = c
                    .deploy_scenario(&w.manifests[k])
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                // The model's idea of the variants is the system's.
                let after = (nd.notice_version.clone(), nd.scenario.consent_terms());
                if (before.0 == after.0) != (NOTICE[w.variant] == NOTICE[k])
                    || (before.1 == after.1) != (TERMS[w.variant] == TERMS[k])
                {
                    return Err(fail(format!(
                        "variant {} -> {k}: notice/terms changes differ from the model",
                        w.variant
                    )));
                }
                if NOTICE[w.variant] != NOTICE[k] {
                    w.notice_since = chrono::Utc::now();
                }
                w.variant = k;
            }
            Op::Restart => {
                let core = open(
                    &w.url,
                    &w.dir,
                    w.engine.clone(),
                    master,
                    &w.manifests[w.variant],
                )
                .await;
                w.core = core;
            }
        }
        let d = w.core.scenario(None).map_err(|e| fail(e.to_string()))?;
        check(&w.core.store, &d.notice_version, w.notice_since, &people)
            .await
            .map_err(|m| format!("seed {seed}, step {step}, ops {trace:?}: {m}"))?;
        // The audit chain after every step: only what the step wrote.
        w.chain = match w.core.store.verify_chain_since(&w.chain).await {
            Ok(Ok(c)) => c,
            Ok(Err(f)) => return Err(fail(format!("the audit chain does not verify: {f}"))),
            Err(e) => return Err(fail(e.to_string())),
        };
    }
    // And the whole chain, anchors included, at the end.
    let full = w
        .core
        .store
        .verify_chain()
        .await
        .map_err(|e| format!("seed {seed}: {e}"))?;
    if !full.is_intact() {
        return Err(format!(
            "seed {seed}: the audit chain does not verify: {full:?}"
        ));
    }
    Ok(())
}

async fn check(
    store: &Store,
    notice_in_force: &str,
    notice_since: chrono::DateTime<chrono::Utc>,
    people: &[P],
) -> Result<(), String> {
    let scenario = store.scenarios().await.map_err(|e| e.to_string())?[0].scenario_id;
    let made_since: std::collections::HashSet<Uuid> = store
        .scenario_template_links(scenario)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|(_, _, at)| *at >= notice_since)
        .map(|(_, person, _)| person)
        .collect();
    let mut with_templates = 0;
    for p in people {
        let n = store
            .template_count(p.id, scenario)
            .await
            .map_err(|e| e.to_string())?;
        if n > 0 {
            with_templates += 1;
            let active = store
                .active_consent(p.id, scenario, ConsentKind::Processing)
                .await
                .map_err(|e| e.to_string())?;
            let Some(active) = active else {
                return Err(format!(
                    "person {} has a template without active consent",
                    p.id
                ));
            };
            if p.minor && !matches!(active.given_by, ConsentGiver::Guardian(_)) {
                return Err(format!(
                    "minor {} has a template without a guardian's consent",
                    p.id
                ));
            }
            let ev: facegate_core::pipeline::ConsentEvidence =
                serde_json::from_str(&active.evidence).map_err(|e| e.to_string())?;
            if made_since.contains(&p.id) && ev.notice_version != notice_in_force {
                return Err(format!(
                    "person {} has a template made under the notice in force without consent under it",
                    p.id
                ));
            }
        }
        if (n > 0) != p.enrolled {
            return Err(format!(
                "model enrolled {} but store holds {n} templates",
                p.enrolled
            ));
        }
    }
    let h = store.headcount().await.map_err(|e| e.to_string())?.count;
    if h != with_templates {
        return Err(format!(
            "headcount {h} but {with_templates} persons have templates"
        ));
    }
    Ok(())
}

fn cases() -> u64 {
    std::env::var("FACEGATE_MBT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

fn first_seed() -> u64 {
    std::env::var("FACEGATE_MBT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

async fn run_all(backend: &str, url_for: impl Fn(u64) -> String, drop_db: impl Fn(&str)) {
    let engine = Arc::new(
        tokio::task::spawn_blocking(|| {
            facegate_vision::Engine::new(facegate_vision::EngineOptions {
                intra_threads: 1,
                // The production engine: the pair, decisions by the
                // fusion's cascade.
                second_embedding: true,
                defer_other_embeddings: true,
                ..Default::default()
            })
        })
        .await
        .unwrap()
        .expect("engine"),
    );
    let images: Arc<Vec<Vec<u8>>> = Arc::new(
        ["obama.jpg", "biden.jpg"]
            .iter()
            .map(|f| std::fs::read(facegate_assets::fixture(f).expect("fixture")).unwrap())
            .collect(),
    );
    let manifests = Arc::new(manifests());
    let t0 = std::time::Instant::now();
    let n = cases();
    for seed in first_seed()..first_seed() + n {
        let dir = std::env::temp_dir().join(format!("facegate-mbt-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = if backend == "sqlite" {
            format!("sqlite:{}", dir.join("facegate.db").display())
        } else {
            url_for(seed)
        };
        let master: [u8; 32] = rand::random();
        let core = open(&url, &dir, engine.clone(), master, &manifests[0]).await;
        let mut w = World {
            core,
            url,
            dir: dir.clone(),
            engine: engine.clone(),
            images: images.clone(),
            manifests: manifests.clone(),
            variant: 0,
            notice_since: chrono::Utc::now(),
            chain: ChainCursor::default(),
        };
        let r = run_sequence(&mut w, seed, master).await;
        let url = w.url.clone();
        drop(w);
        let _ = std::fs::remove_dir_all(&dir);
        drop_db(&url);
        if let Err(m) = r {
            panic!("{backend}: {m}");
        }
    }
    println!(
        "{backend}: {n} sequences of up to {MAX_STEPS} steps in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

fn base64_std(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_based_sequences_sqlite() {
    run_all("sqlite", |_| unreachable!(), |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_based_sequences_postgres() {
    let Ok(base) = std::env::var("FACEGATE_TEST_DATABASE_URL") else {
        println!("SKIP postgres: FACEGATE_TEST_DATABASE_URL is not set (scripts/test.sh sets it)");
        return;
    };
    // One fresh schema set per sequence would need a database each; the
    // store's tables are per database, so each sequence gets its own.
    let base = Arc::new(base);
    let base2 = base.clone();
    run_all(
        "postgres",
        move |seed| fresh_pg_db(&base, seed),
        move |url| drop_pg_db(&base2, url),
    )
    .await;
}

/// Runs one statement on the server's maintenance connection (`base`), on a
/// thread of its own: the test's runtime may be busy.
fn on_base(base: &str, sql: String) {
    let base = base.to_string();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&base).await.expect("connect");
                sqlx::Executor::execute(&mut c, sql.as_str())
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            })
    })
    .join()
    .unwrap();
}

/// Drops the database a sequence used (each sequence made its own, and 500
/// of them were left behind on a developer's server before this).
fn drop_pg_db(base: &str, url: &str) {
    let path = url.split('?').next().unwrap_or_default();
    let name = path.rsplit('/').next().unwrap_or_default();
    assert!(
        name.starts_with("fg_mbt_"),
        "not a model-test database: {name}"
    );
    on_base(base, format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}

fn fresh_pg_db(base: &str, seed: u64) -> String {
    let name = format!("fg_mbt_{}_{seed}", Uuid::new_v4().simple());
    on_base(base, format!("CREATE DATABASE {name}"));
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h.to_string(), format!("?{q}")),
        None => (base.to_string(), String::new()),
    };
    let scheme_end = head.find("://").unwrap() + 3;
    let host_end = head[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(head.len());
    format!("{}/{name}{query}", &head[..host_end])
}

async fn engine() -> Arc<facegate_vision::Engine> {
    Arc::new(
        tokio::task::spawn_blocking(|| {
            facegate_vision::Engine::new(facegate_vision::EngineOptions {
                intra_threads: 1,
                // The production engine: the pair, decisions by the
                // fusion's cascade.
                second_embedding: true,
                defer_other_embeddings: true,
                ..Default::default()
            })
        })
        .await
        .unwrap()
        .expect("engine"),
    )
}

/// A fixture as one frame, with a unique suffix (a camera never sends the
/// same bytes twice; an exact replay is refused, R20).
fn image(name: &str) -> Vec<String> {
    let mut b = std::fs::read(facegate_assets::fixture(name).expect("fixture")).unwrap();
    b.extend_from_slice(Uuid::now_v7().as_bytes());
    vec![base64_std(&b)]
}

async fn consenting(c: &Core, name: &str) -> Uuid {
    let d = c.scenario(None).unwrap();
    let p = c
        .store
        .add_person(
            c.processor_id,
            &PersonIdentity {
                display_name: name.into(),
                contact: None,
                date_of_birth: chrono::NaiveDate::from_ymd_opt(1980, 1, 1),
            },
            "operator:test",
        )
        .await
        .unwrap();
    c.give_consent(
        &d,
        p.id,
        who(),
        NewConsent {
            kind: ConsentKind::Processing,
            notice_version: &d.notice_version,
            channel: None,
            evidence: "tapped agree",
            guardian: None,
        },
    )
    .await
    .unwrap();
    p.id
}

/// Two cores on one store (two instances): the galleries follow the store,
/// not their start-up, and both seal under one data key per scenario.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cores_on_one_store_share_galleries_and_one_data_key() {
    let dir = std::env::temp_dir().join(format!("facegate-two-cores-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("facegate.db").display());
    let master: [u8; 32] = rand::random();
    let e = engine().await;
    let base = passive_demo();
    // One KEK and identity key, as two instances are configured.
    let a = open(&url, &dir, e.clone(), master, &base).await;
    let b = open(&url, &dir, e.clone(), master, &base).await;
    let d = a.scenario(None).unwrap();
    fn frames(i: &[String]) -> Frames<'_> {
        Frames {
            images_b64: i,
            nonce: None,
            operator_import: false,
        }
    }
    let p = consenting(&a, "Obama").await;
    a.enrol_face(&d, p, who(), frames(&image("obama.jpg")), None)
        .await
        .unwrap();
    // Enrolled on A: B verifies the person without a restart.
    let o = b
        .verify_face(&d, p, who(), frames(&image("obama2.jpg")), None)
        .await
        .unwrap();
    assert_eq!(o.outcome, "pass");
    // Withdrawn on A and consented again: the template is gone on B too
    // (B's gallery dropped it; without it the face no longer matches).
    let active = a
        .store
        .active_consent(p, d.store_id, ConsentKind::Processing)
        .await
        .unwrap()
        .unwrap();
    a.withdraw_consent(active.id, Acting::Operator, "kiosk", "operator:test")
        .await
        .unwrap();
    consenting_again(&a, p).await;
    let o = b
        .verify_face(&d, p, who(), frames(&image("obama2.jpg")), None)
        .await
        .unwrap();
    assert_eq!(o.outcome, "fail", "B still held the withdrawn template");
    // Enrolled on B this time: one data key for the scenario, A's.
    b.enrol_face(&d, p, who(), frames(&image("obama.jpg")), None)
        .await
        .unwrap();
    let o = a
        .verify_face(&d, p, who(), frames(&image("obama2.jpg")), None)
        .await
        .unwrap();
    assert_eq!(o.outcome, "pass");
    assert_eq!(a.store.wrapped_keys().await.unwrap().len(), 1);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

async fn consenting_again(c: &Core, p: Uuid) {
    let d = c.scenario(None).unwrap();
    c.give_consent(
        &d,
        p,
        who(),
        NewConsent {
            kind: ConsentKind::Processing,
            notice_version: &d.notice_version,
            channel: None,
            evidence: "tapped agree again",
            guardian: None,
        },
    )
    .await
    .unwrap();
}

/// Regression (found while adding the notice-change step): after a notice
/// change, enrolment sent with the new notice's version went ahead on a
/// consent given under the old notice. The stored consent is the
/// acknowledgement: R5 until the person consents again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r5_enrolment_after_a_notice_change_waits_for_consent_under_the_new_notice() {
    let dir = std::env::temp_dir().join(format!("facegate-r5-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("facegate.db").display());
    let m = manifests();
    let c = open(&url, &dir, engine().await, rand::random(), &m[0]).await;
    let p = consenting(&c, "Obama").await;
    let d = c.deploy_scenario(&m[1]).await.unwrap();
    let img = image("obama.jpg");
    let frames = Frames {
        images_b64: &img,
        nonce: None,
        operator_import: false,
    };
    let r = c
        .enrol_face(&d, p, who(), frames, Some(d.notice_version.clone()))
        .await;
    assert_eq!(r.err().as_ref().and_then(rule).as_deref(), Some("R5"));
    consenting_again(&c, p).await;
    let o = c
        .enrol_face(&d, p, who(), frames, Some(d.notice_version.clone()))
        .await
        .unwrap();
    assert_eq!(o.outcome, "enrolled");
    let _ = std::fs::remove_dir_all(&dir);
}
