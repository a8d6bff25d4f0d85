//! One verification, end to end: facts about the person → `policy::authorize`
//! → `vision` (detect, quality, liveness, embed) → `gallery` → `store` event
//! with the receipt id. No HTTP here: the server decodes requests and maps
//! [`CoreError`] to statuses.

use std::sync::Arc;

use base64::Engine as _;
use facegate_policy as policy;
use facegate_store as store;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Core, CoreError, Deployed};

/// Parse a person id from a path or body (a malformed id is a 404, not a 500).
pub fn person_id(s: &str) -> Result<Uuid, CoreError> {
    Uuid::parse_str(s.trim()).map_err(|_| CoreError::NotFound("person".into()))
}

/// Evidence stored with a consent: what was shown and agreed to (R7, R9).
#[derive(Serialize, Deserialize, Default)]
pub struct ConsentEvidence {
    pub notice_version: String,
    pub terms: String,
    #[serde(default)]
    pub note: String,
}

/// A person's record; an erased person is not found.
pub async fn live_person(s: &Core, person: Uuid) -> Result<store::Person, CoreError> {
    let p = s.store.person(person).await?;
    if p.erased_at.is_some() {
        return Err(CoreError::NotFound("person".into()));
    }
    Ok(p)
}

/// Everything policy needs to know about a person in one scenario. The three
/// reads are independent, so they go to the store together rather than one
/// after another (this runs before every verification). The person's
/// guardians are read only when a consent in this scenario was given by a
/// guardian (their relationship is all that is read from them): one store
/// round trip fewer on every other verification.
pub async fn person_facts(
    s: &Core,
    d: &Deployed,
    person: Uuid,
) -> Result<policy::PersonFacts, CoreError> {
    let (p, consents, declined) = tokio::try_join!(
        live_person(s, person),
        async { s.store.consents(person).await.map_err(CoreError::from) },
        async {
            s.store
                .active_decline(person, d.store_id)
                .await
                .map_err(CoreError::from)
        },
    )?;
    let by_guardian = consents.iter().any(|c| {
        c.scenario_id == d.store_id && matches!(c.given_by, store::ConsentGiver::Guardian(_))
    });
    let guardians = if by_guardian {
        s.store.guardians(person).await?
    } else {
        Vec::new()
    };
    let mut facts = policy::PersonFacts {
        date_of_birth: p.identity.as_ref().and_then(|i| i.date_of_birth),
        last_face_refusal_at: declined,
        ..Default::default()
    };
    for c in consents.iter().filter(|c| c.scenario_id == d.store_id) {
        let ev: ConsentEvidence = serde_json::from_str(&c.evidence).unwrap_or_default();
        let given_by = match c.given_by {
            store::ConsentGiver::Subject => policy::ConsentGiver::Subject,
            store::ConsentGiver::Guardian(g) => policy::ConsentGiver::Guardian {
                guardian_id: g.to_string(),
                relationship: guardians
                    .iter()
                    .find(|x| x.id == g)
                    .map(|x| x.relationship.clone())
                    .unwrap_or_default(),
            },
        };
        let rec = policy::ConsentRecord {
            kind: c.kind.into(),
            scenario: d.scenario.id.clone(),
            notice_version: ev.notice_version,
            terms: ev.terms,
            given_at: c.given_at,
            withdrawn_at: c.withdrawn_at,
            channel: c.channel.clone(),
            evidence: c.id.to_string(),
            given_by: given_by.clone(),
        };
        if matches!(given_by, policy::ConsentGiver::Guardian { .. })
            && c.kind == store::ConsentKind::Processing
        {
            let newer = facts
                .guardian_consent
                .as_ref()
                .is_none_or(|g| g.given_at <= rec.given_at); // later in order wins a tie
            if newer {
                facts.guardian_consent = Some(rec.clone());
            }
        }
        facts.consents.push(rec);
    }
    Ok(facts)
}

/// Whether policy lets a 1:N answer name `person` (verification by
/// `method` at `device`), asked silently: a refusal must not tell the
/// presenter the person exists, so it comes back as `None` (answered
/// "unknown"), as does a person no longer in the store. For a face the
/// notice is the one the person last agreed to; for a card or code the
/// one shown at the kiosk now (as for every credential check).
///
/// Policy reads none of the person's facts (consents, decline, age) for a
/// method that does not touch the face (R15, R17: the alternative is never
/// blocked by them), so for such a method only the person's existence is
/// read, not their consents and decline.
pub async fn quiet_grants(
    s: &Core,
    d: &Deployed,
    person: Uuid,
    method: policy::Method,
    device: Option<policy::DeviceFacts>,
) -> Result<Option<String>, CoreError> {
    let facts = if method.is_face() {
        person_facts(s, d, person).await
    } else {
        live_person(s, person)
            .await
            .map(|_| policy::PersonFacts::default())
    };
    let facts = match facts {
        Ok(f) => f,
        Err(CoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let notice_version = if method.is_face() {
        acknowledged_notice(&facts)
    } else {
        Some(d.notice_version.clone())
    };
    Ok(policy::authorize_with_notice(
        &d.scenario,
        &d.notice_version,
        &policy::Processing {
            action: policy::Action::Verify,
            method,
            purpose_id: d.scenario.purpose_id.clone(),
            person: facts,
            device,
            at: s.now(),
            notice_version,
            pia: d.pia_status,
        },
    )
    .ok()
    .map(|p| p.grants))
}

/// The notice version the person last agreed to (for steps after consent).
pub fn acknowledged_notice(facts: &policy::PersonFacts) -> Option<String> {
    facts
        .consents
        .iter()
        .chain(facts.guardian_consent.iter())
        .filter(|c| c.kind == policy::ConsentKind::Processing && c.withdrawn_at.is_none())
        .max_by_key(|c| c.given_at)
        .map(|c| c.notice_version.clone())
}

/// What the engine computes for a challenge's frames: the pose model only
/// on the frames the judge reads it from (every frame for a nod, the first
/// otherwise: yaw, eyes and mouth come from the landmarks on every frame).
pub fn capture_options(actions: &[facegate_vision::Action]) -> facegate_vision::CaptureOptions {
    facegate_vision::CaptureOptions {
        pose: facegate_vision::PoseFrames::for_actions(actions),
        ..Default::default()
    }
}

/// What the engine found, reduced to what a decision needs. The embedding is
/// wiped when this is dropped (it is `facegate_vision::Embedding`).
pub struct Capture {
    pub embedding: facegate_vision::Embedding,
    /// The other models' embeddings of the same face, when the engine ran
    /// them ([`crate::CoreConfig::recognition`]) …
    pub others: Option<facegate_vision::OtherEmbeddings>,
    /// … or their inputs, kept to run them when a decision needs them
    /// ([`Capture::run_others`]).
    pub deferred: Option<facegate_vision::Deferred>,
    pub liveness: Option<f32>,
    /// The challenge's actions the frames showed, in order (none for a
    /// passive-only capture).
    pub actions: Vec<facegate_vision::challenge::Action>,
    pub frames: usize,
}

impl Capture {
    /// The other models' embeddings as the gallery reads them (fusion
    /// order: second, then third, each the engine has); `None` without any.
    pub fn other_parts(&self) -> Option<Vec<&[f32]>> {
        let o = self.others.as_ref()?;
        let parts: Vec<&[f32]> = o
            .second
            .iter()
            .map(|e| e.as_slice())
            .chain(o.third.iter().map(|e| e.as_slice()))
            .collect();
        (!parts.is_empty()).then_some(parts)
    }

    /// Whether the other models can still be run on this face.
    pub fn can_run_others(&self) -> bool {
        self.others.is_none() && self.deferred.is_some()
    }

    /// Runs the deferred second and third models (off the async runtime);
    /// afterwards [`Capture::other_parts`] has them. Nothing to do when they
    /// ran already or the engine has none.
    pub async fn run_others(&mut self, s: &Core) -> Result<(), CoreError> {
        let Some(d) = self.deferred.take() else {
            return Ok(());
        };
        let engine = Arc::clone(&s.engine);
        let others = tokio::task::spawn_blocking(move || engine.run_deferred(&d))
            .await
            .map_err(CoreError::internal)?
            .map_err(vision_error)?;
        self.others = Some(others);
        s.observe("facegate_other_embeddings_total", &[]);
        Ok(())
    }
}

/// Minimum passive-liveness probability (class "live"), chosen on data by
/// `facegate bench pad` (see `facegate_vision::LIVENESS_THRESHOLD`).
pub const LIVENESS_MIN: f32 = facegate_vision::LIVENESS_THRESHOLD;
/// The most wall-clock time one capture request may spend in the engine
/// (decode and models for all its frames, up to 8): past it the work stops
/// at the next stage and the request is refused. A 6-frame challenge costs
/// about 85 ms of one core; the bound leaves room for a loaded machine.
pub const CAPTURE_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// Cancels the engine's work when the request's future is dropped.
struct CancelOnDrop(facegate_vision::Budget);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
/// Minimum face size in pixels for enrolment.
pub const ENROL_MIN_FACE_PX: f32 = 80.0;

fn decode_b64(s: &str, max_bytes: usize) -> Result<Vec<u8>, CoreError> {
    let s = s.trim();
    // A `data:` URL's header (`data:image/jpeg;base64,`); plain base64 is
    // not searched (base64 has no ';' or ','), which saved a scan of the
    // whole image text on every frame.
    let s = match s.starts_with("data:").then(|| s.find(";base64,")).flatten() {
        Some(i) => &s[i + 8..],
        None => s,
    };
    if s.len() / 4 * 3 > max_bytes {
        return Err(CoreError::TooLarge("image".into()));
    }
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| {
            CoreError::bad(
                "图片编码无效（应为 base64）。",
                "the image is not valid base64",
            )
        })
}

fn vision_error(e: facegate_vision::VisionError) -> CoreError {
    use facegate_vision::VisionError as V;
    match e {
        V::Stopped(m) => CoreError::bad(
            format!("检测超时已停止，请重试：{m}"),
            format!("the check ran past its time bound and was stopped; try again ({m})"),
        ),
        V::TooLarge(m) => CoreError::TooLarge(m),
        V::UnsupportedFormat(m) | V::Corrupt(m) => CoreError::bad(
            format!("无法读取图片：{m}"),
            format!("cannot read the image: {m}"),
        ),
        e => CoreError::internal(e),
    }
}

/// The engine's work on a capture's frames (on a blocking thread): one frame
/// with [`facegate_vision::OneFaceOptions::VERIFY`], several with the
/// challenge's capture `options`. The best face, its frame and the cues the
/// challenge judge reads.
fn analyse(
    engine: &facegate_vision::Engine,
    images: &[Vec<u8>],
    options: Option<facegate_vision::CaptureOptions>,
    budget: &facegate_vision::Budget,
) -> Result<
    (
        facegate_vision::Face,
        usize,
        Vec<facegate_vision::challenge::FrameCues>,
    ),
    CoreError,
> {
    use facegate_vision::{CaptureResult, OneFace};
    let several = || {
        CoreError::bad(
            "画面中有多张人脸，请一人一次。",
            "more than one face in view; one person at a time",
        )
    };
    let no_face = || {
        CoreError::bad(
            "未检测到人脸，请正对摄像头，或选择其他方式。",
            "no face found; face the camera, or choose another method",
        )
    };
    if images.len() == 1 {
        // One frame: the detector counts faces first and the work stops
        // at the second, before any landmark or embedding.
        return match engine.one_face_bytes_with(
            &images[0],
            &facegate_vision::OneFaceOptions::VERIFY,
            budget,
        ) {
            Ok(OneFace::One(f)) => Ok((f, 0, Vec::new())),
            Ok(OneFace::None) => Err(no_face()),
            Ok(OneFace::Several(_)) => Err(several()),
            Err(e) => Err(vision_error(e)),
        };
    }
    // Several frames: detection, landmarks, pose and eyes on every frame;
    // embedding on the first and the best only, liveness on the best.
    let options = options.unwrap_or_else(|| capture_options(&[]));
    let refs: Vec<&[u8]> = images.iter().map(|v| v.as_slice()).collect();
    let c = match engine.challenge_bytes(&refs, &options, budget) {
        Ok(CaptureResult::Captured(c)) => c,
        Ok(CaptureResult::NoFace) => return Err(no_face()),
        Ok(CaptureResult::SeveralFaces { .. }) => return Err(several()),
        Err(e) => return Err(vision_error(e)),
    };
    // The anchor and the best frame must be one person. (`c.continuous`,
    // the boxes overlapping frame to frame, is not required: a gate
    // that sends sparse frames of a moving person has gaps.)
    if c.similarity < facegate_vision::DEFAULT_THRESHOLD {
        return Err(CoreError::bad(
            "检测过程中更换了人，请重新开始。",
            "the person changed during the check; start again",
        ));
    }
    // The frames with a face, in capture order, reduced to the cues
    // the challenge judge reads.
    let cues: Vec<facegate_vision::challenge::FrameCues> = c
        .frames
        .iter()
        .flatten()
        .filter_map(|f| {
            facegate_vision::challenge::FrameCues::from_parts(
                &f.landmarks68,
                f.pitch,
                [f.left_eye_open, f.right_eye_open],
            )
        })
        .collect();
    let best_index = c.best;
    Ok((c.best_face, best_index, cues))
}

/// Analyse 1–8 frames off the async runtime; the images are dropped here and
/// never stored (only keyed hashes of their bytes, for a short window, to
/// refuse a replay). Checks the liveness level the scenario requires at the
/// device, the challenge `nonce` names (once, in time, bound to this
/// device, scenario and person), one face per frame, the same person across
/// frames, the challenge's actions in order, and returns the best frame's
/// embedding.
async fn capture(
    a: &Attempt<'_>,
    frames: crate::ops::Frames<'_>,
    min_face_px: f32,
) -> Result<Capture, CoreError> {
    let s = a.s;
    let images_b64 = frames.images_b64;
    if images_b64.is_empty() || images_b64.len() > 8 {
        return Err(CoreError::bad(
            "请提供 1 到 8 张图像。",
            "send between 1 and 8 images",
        ));
    }
    let max = s.limits.max_image_bytes;
    let max_px = s.limits.max_image_pixels;
    let mut images = Vec::with_capacity(images_b64.len());
    for b in images_b64 {
        images.push(decode_b64(b, max)?);
    }
    // Every frame's header before any decode: a file that declares too many
    // pixels (in any accepted format) costs microseconds, not a decode.
    let mut dims = Vec::with_capacity(images.len());
    for img in &images {
        let (_, w, h) = facegate_vision::header_dimensions(img).map_err(vision_error)?;
        if u64::from(w) * u64::from(h) > max_px {
            return Err(CoreError::TooLarge(format!("{w}×{h} pixels")));
        }
        dims.push((w, h));
    }
    // The bound on one request's work: the engine checks it between frames
    // and stages, and the guard cancels it when this future is dropped (the
    // client went away, or the capture was refused while the engine ran).
    let budget = facegate_vision::Budget::within(CAPTURE_BUDGET);
    let _cancel_on_drop = CancelOnDrop(budget.clone());
    let images = Arc::new(images);
    let n = images.len();
    let t0 = std::time::Instant::now();
    // The server decides how live the capture must be shown to be, before
    // any pixel is analysed (the level, the challenge, replay). A single
    // frame without a challenge reads no challenge from the store: its level
    // is checked first, then the engine starts while the frame's hash is
    // recorded against replay (a store write, with its fsync), and the
    // replay answer is awaited before the engine's, so a replay is refused
    // exactly as before.
    let (plan, analysis) = if frames.operator_import {
        let plan = crate::liveness::LivenessPlan {
            required: policy::LivenessLevel::Passive,
            actions: None,
        };
        (plan, None)
    } else if n == 1 && frames.nonce.is_none() {
        let plan = s.passive_plan(a.d, a.device)?;
        let engine = Arc::clone(&s.engine);
        let (imgs, b) = (Arc::clone(&images), budget.clone());
        let task = tokio::task::spawn_blocking(move || analyse(&engine, &imgs, None, &b));
        s.refuse_replay(&images).await?;
        (plan, Some(task))
    } else {
        let plan = s
            .plan_liveness(a.d, a.device, a.person, &images, frames.nonce)
            .await?;
        (plan, None)
    };
    if plan.actions.is_some() && n < 2 {
        return Err(crate::liveness::refusal(
            "an active liveness challenge needs the frames that show its actions (2 to 8)",
            "动作活体检测需要提交完成动作的多帧图像（2 到 8 张）",
        ));
    }
    let analysis = match analysis {
        Some(task) => task,
        None => {
            let engine = Arc::clone(&s.engine);
            let options = capture_options(plan.actions.as_deref().unwrap_or(&[]));
            let (imgs, b) = (Arc::clone(&images), budget.clone());
            tokio::task::spawn_blocking(move || analyse(&engine, &imgs, Some(options), &b))
        }
    };
    let (best, best_index, cues) = analysis.await.map_err(CoreError::internal)??;
    s.observe("facegate_frames_analyzed_total", &[]);
    tracing::debug!(ms = t0.elapsed().as_millis() as u64, frames = n, "analyzed");

    if let Some(actions) = &plan.actions {
        if let Err(why) = facegate_vision::challenge::judge(actions, &cues) {
            s.observe("facegate_liveness_failures_total", &[]);
            return Err(crate::liveness::refusal(why.message_en(), why.message_zh()));
        }
    }
    if best.quality.face_px < min_face_px {
        return Err(CoreError::bad(
            "人脸太小，请靠近摄像头。",
            "the face is too small; come closer to the camera",
        ));
    }
    // The passive model needs the context around the face: a face that
    // fills the frame is never scored, the person is asked to step back.
    let (w, h) = dims[best_index];
    let (w, h) = if best.bbox.x2 > w as f32 + 1.0 || best.bbox.y2 > h as f32 + 1.0 {
        (h, w) // EXIF-rotated: the header's sides are swapped
    } else {
        (w, h)
    };
    // `none`: the device's own certified PAD sensor vouches (policy allows
    // it only there); the passive model is not asked.
    let passive = plan.required != policy::LivenessLevel::None;
    if passive
        && facegate_vision::challenge::framing(&best.bbox, w, h)
            == facegate_vision::Framing::StepBack
    {
        return Err(CoreError::bad(
            facegate_vision::Framing::STEP_BACK_ZH,
            facegate_vision::Framing::STEP_BACK_EN,
        ));
    }
    if let Some(l) = best.liveness.filter(|_| passive) {
        if l < LIVENESS_MIN {
            s.observe("facegate_liveness_failures_total", &[]);
            return Err(CoreError::bad(
                "未通过活体检测（疑似照片或屏幕），请本人正对摄像头，或选择其他方式。",
                "liveness check failed (looks like a photo or a screen); face the camera in person, or choose another method",
            ));
        }
    }
    let embedding = best
        .embedding
        .ok_or_else(|| CoreError::internal("engine returned no embedding"))?;
    let others = (best.second_embedding.is_some() || best.third_embedding.is_some()).then(|| {
        facegate_vision::OtherEmbeddings {
            second: best.second_embedding,
            third: best.third_embedding,
        }
    });
    Ok(Capture {
        embedding,
        others,
        deferred: best.deferred,
        liveness: best.liveness,
        actions: plan.actions.unwrap_or_default(),
        frames: n,
    })
}

/// One front-line decision: which scenario, about whom, at which device, by
/// whom. Policy is asked and the receipt written through it, so every
/// handler records its decisions (refusals included) the same way.
pub struct Attempt<'a> {
    pub s: &'a Core,
    pub d: &'a Deployed,
    /// The person the receipt is about (for identification: the one found).
    pub person: Option<Uuid>,
    pub device: Option<&'a str>,
    pub actor: String,
    /// The model (or fusion) whose scale the recorded score and threshold
    /// are on ([`Attempt::scored_by`]); kept with the event.
    pub score_model: Option<String>,
}

impl<'a> Attempt<'a> {
    /// Notes the scale the gallery's answer is on: the fusion's log-odds
    /// (`fused`) or the first model's cosine.
    pub fn scored_by(&mut self, fused: bool) -> Result<(), CoreError> {
        self.score_model = Some(if fused {
            crate::deploy::spec(self.s.recognition)?
                .fused_model_id
                .clone()
        } else {
            crate::deploy::model_id()
        });
        Ok(())
    }

    pub fn new(
        s: &'a Core,
        d: &'a Deployed,
        person: Option<Uuid>,
        device: Option<&'a str>,
        actor: &str,
    ) -> Self {
        Attempt {
            s,
            d,
            person,
            device,
            actor: actor.to_string(),
            score_model: None,
        }
    }

    /// Ask policy now whether `action` by `method` may happen. A refusal is
    /// counted and given a receipt (the person may contest it) before it is
    /// returned, so no handler can forget to record it.
    pub async fn authorize(
        &self,
        action: policy::Action,
        method: policy::Method,
        facts: policy::PersonFacts,
        notice_version: Option<String>,
    ) -> Result<policy::Permit, CoreError> {
        let d = self.d;
        let device = match self.device {
            Some(id) => Some(
                d.scenario
                    .device(id)
                    .ok_or_else(|| CoreError::NotFound(format!("device {id}")))?
                    .facts(),
            ),
            None => None,
        };
        let p = policy::Processing {
            action,
            method,
            purpose_id: d.scenario.purpose_id.clone(),
            person: facts,
            device,
            at: self.s.now(),
            notice_version,
            pia: d.pia_status,
        };
        // R17 on the server: after a decline, face is not used for this
        // person within the quiet period unless they opted back in (the
        // decline is then lifted in the store). Policy words the refusal.
        let face_step = matches!(action, policy::Action::Enrol | policy::Action::Verify)
            && method == policy::Method::Face
            && p.person.last_face_refusal_at.is_some();
        let decided = if face_step {
            let prompt = policy::Processing {
                action: policy::Action::PromptFace,
                ..p.clone()
            };
            // Consent and the other rules first (R7/R8 name a withdrawal
            // before anything else), then the quiet period.
            policy::authorize_with_notice(&d.scenario, &d.notice_version, &p).and_then(|permit| {
                policy::authorize_with_notice(&d.scenario, &d.notice_version, &prompt)
                    .map(|_| permit)
            })
        } else {
            policy::authorize_with_notice(&d.scenario, &d.notice_version, &p)
        };
        match decided {
            Ok(permit) => Ok(permit),
            Err(r) => {
                // The refusal's receipt is part of the decision: if it cannot
                // be written, the request fails rather than going unrecorded.
                let rule = r.rule.to_string();
                self.record(method.key(), "refused", None, None, Some(&rule))
                    .await?;
                Err(r.into())
            }
        }
    }

    /// The face capture of this attempt (see [`capture`]): a refusal (R20:
    /// liveness level, challenge, replay) is counted and given a receipt
    /// before it is returned, like a policy refusal.
    pub async fn capture(
        &self,
        frames: crate::ops::Frames<'_>,
        min_face_px: f32,
    ) -> Result<Capture, CoreError> {
        match capture(self, frames, min_face_px).await {
            Err(CoreError::Refused(r)) => {
                let rule = r.rule.to_string();
                self.record("face", "refused", None, None, Some(&rule))
                    .await?;
                Err(CoreError::Refused(r))
            }
            other => other,
        }
    }

    /// Record a verification event (never a biometric) and return it: its id
    /// is the receipt.
    pub async fn record(
        &self,
        method: &str,
        result: &str,
        score: Option<f32>,
        threshold: Option<f32>,
        refusal: Option<&str>,
    ) -> Result<store::VerificationEvent, CoreError> {
        self.observe(method, result, refusal);
        let e = self.event(method, result, score, threshold, refusal);
        Ok(self.s.store.record_verification(&e, &self.actor).await?)
    }

    /// Counts a recorded decision in the metrics.
    pub(crate) fn observe(&self, method: &str, result: &str, refusal: Option<&str>) {
        let s = self.s;
        s.observe(
            "facegate_verifications_total",
            &[("method", method), ("result", result)],
        );
        if let Some(rule) = refusal {
            s.observe("facegate_refusals_total", &[("rule", rule)]);
        }
    }

    /// The event [`Attempt::record`] writes, for a caller that writes it in
    /// a transaction of its own (a guard's decision,
    /// [`Core::decide_staffed_check`]).
    pub(crate) fn event(
        &self,
        method: &str,
        result: &str,
        score: Option<f32>,
        threshold: Option<f32>,
        refusal: Option<&str>,
    ) -> store::NewVerificationEvent {
        store::NewVerificationEvent {
            person_id: self.person,
            scenario_id: self.d.store_id,
            device_id: self.device.and_then(|id| self.d.devices.get(id).copied()),
            method: method.into(),
            result: result.into(),
            score: score.map(f64::from),
            threshold: threshold.map(f64::from),
            refusal_rule: refusal.map(str::to_string),
            score_model: score.and(self.score_model.clone()),
        }
    }
}
