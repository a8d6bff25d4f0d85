//! Active liveness: per-frame cues (head yaw and pitch, eye openness, mouth
//! opening), a judge that checks an ordered sequence of actions against a
//! run of frames, and the framing rule that tells a person to step back
//! before the passive model scores a face with too little context.
//!
//! Everything here is a pure function of a [`Face`] (or of numbers): no
//! model runs, no I/O. The server issues the sequence
//! ([`Action::random_sequence`]), the client films it, the engine analyses
//! each frame, [`FrameCues::from_face`] reduces each face to four numbers,
//! and [`judge`] says whether the frames show the actions in that order.
//!
//! Signs are those of the person in front of an unmirrored camera: "turn
//! left" is the person's own left, which moves the nose towards the image's
//! right.
//!
//! The thresholds were measured on real images; the numbers and commands
//! are in `BENCHMARKS.md`, section "Liveness".
//!
//! How a capture path uses it (the nonce, deadline, device and person
//! binding, and replay refusal belong to the caller):
//!
//! ```no_run
//! use facegate_vision::challenge::{framing, judge, Action, FrameCues, Framing};
//! use facegate_vision::LIVENESS_THRESHOLD;
//!
//! let engine = facegate_vision::Engine::new(Default::default())?;
//! // Issued with the nonce, stored server-side, shown to the person.
//! let actions = Action::random_sequence(&mut rand::thread_rng());
//! let frames: Vec<Vec<u8>> = Vec::new(); // the request's frames, in capture order
//! let mut cues = Vec::new();
//! let mut best = None; // the most frontal frame: the one to score and embed
//! for bytes in &frames {
//!     let img = facegate_vision::decode(bytes, &Default::default())?;
//!     let faces = engine.analyze_image(&img)?;
//!     let [face] = faces.as_slice() else {
//!         continue; // no face, or several: the caller refuses or skips
//!     };
//!     let c = FrameCues::from_face(face).expect("pose and eye stages on");
//!     if best.as_ref().is_none_or(|(b, _, _): &(FrameCues, _, _)| c.yaw.abs() < b.yaw.abs()) {
//!         best = Some((c, face.clone(), (img.width(), img.height())));
//!     }
//!     cues.push(c);
//! }
//! if let Err(why) = judge(&actions, &cues) {
//!     // refuse: why.message_zh(), why.message_en() (which action was missing)
//! }
//! if let Some((_, face, (w, h))) = best {
//!     if framing(&face.bbox, w, h) == Framing::StepBack {
//!         // answer Framing::STEP_BACK_ZH / STEP_BACK_EN; never score it
//!     } else if face.liveness.unwrap_or(0.0) < LIVENESS_THRESHOLD {
//!         // refuse: looks like a photo or a screen
//!     }
//! }
//! # Ok::<(), facegate_vision::VisionError>(())
//! ```

pub mod clip;

use crate::{BBox, Face};

/// Passive liveness: a face whose P(live) ([`Face::liveness`]) is below this
/// is refused as a photo or a screen (a face that fills the frame is not
/// scored at all: see [`framing`]).
///
/// Chosen on whole webcam frames (`../shared/eval/antispoof-frames`: 120 live,
/// 120 printed-photo and 1 screen attack) by
/// `facegate bench pad --images ../shared/eval/antispoof-frames --target-bpcer 0.02 --target-apcer 0.01`:
/// the thresholds meeting each target were 0.0871 (APCER ≤ 1 %) and 0.9906
/// (BPCER ≤ 2 %); this is the "recommended" one half-way between them in
/// log-odds (0.7605), rounded. At it: APCER 0 %, BPCER 0 % (lowest live score
/// 0.973, highest attack 0.087). The set holds ~24 live and ~33 attack
/// sessions from one webcam: rerun that command on your own captures.
pub const LIVENESS_THRESHOLD: f32 = 0.76;

/// One action a person is asked to perform in front of the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Turn the head to the person's own left.
    TurnLeft,
    /// Turn the head to the person's own right.
    TurnRight,
    /// Close both eyes and open them again.
    Blink,
    /// Lower the head and raise it again.
    Nod,
    /// Open the mouth wide.
    OpenMouth,
}

impl Action {
    /// Every action, in a fixed order.
    pub const ALL: [Action; 5] = [
        Action::TurnLeft,
        Action::TurnRight,
        Action::Blink,
        Action::Nod,
        Action::OpenMouth,
    ];

    /// A random challenge: 2 or 3 different actions in a random order, at
    /// least one of them a head movement (turn or nod): `fr_eye` flickers
    /// between open and closed on some webcam frames (glasses, narrow eyes),
    /// so a blink alone is weak evidence, and a mouth opening is the
    /// easiest to fake with a cut-out photo.
    pub fn random_sequence<R: rand::Rng + ?Sized>(rng: &mut R) -> Vec<Action> {
        use rand::seq::SliceRandom;
        let n = rng.gen_range(2..=3);
        let mut all = Action::ALL;
        all.shuffle(rng);
        let mut seq = all[..n].to_vec();
        if !seq.iter().any(|a| a.is_head_movement()) {
            let i = rng.gen_range(0..n);
            seq[i] = *[Action::TurnLeft, Action::TurnRight, Action::Nod]
                .choose(rng)
                .expect("non-empty");
        }
        seq
    }

    /// Turns and nods.
    pub fn is_head_movement(self) -> bool {
        matches!(self, Action::TurnLeft | Action::TurnRight | Action::Nod)
    }

    /// The instruction shown (and read aloud) to the person, in Chinese.
    pub fn prompt_zh(self) -> &'static str {
        match self {
            Action::TurnLeft => "请向左转头",
            Action::TurnRight => "请向右转头",
            Action::Blink => "请眨眨眼",
            Action::Nod => "请点点头",
            Action::OpenMouth => "请张张嘴",
        }
    }

    /// The instruction shown (and read aloud) to the person, in English.
    pub fn prompt_en(self) -> &'static str {
        match self {
            Action::TurnLeft => "turn your head to your left",
            Action::TurnRight => "turn your head to your right",
            Action::Blink => "blink",
            Action::Nod => "nod",
            Action::OpenMouth => "open your mouth",
        }
    }

    /// The action's name in Chinese (for messages).
    pub fn name_zh(self) -> &'static str {
        match self {
            Action::TurnLeft => "向左转头",
            Action::TurnRight => "向右转头",
            Action::Blink => "眨眼",
            Action::Nod => "点头",
            Action::OpenMouth => "张嘴",
        }
    }

    /// The action's name in English (for messages).
    pub fn name_en(self) -> &'static str {
        match self {
            Action::TurnLeft => "turn left",
            Action::TurnRight => "turn right",
            Action::Blink => "blink",
            Action::Nod => "nod",
            Action::OpenMouth => "open mouth",
        }
    }
}

/// The cues of one face in one frame: what [`judge`] needs, nothing more
/// (no image, no embedding).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FrameCues {
    /// Head yaw in degrees; positive when the head is turned to the person's
    /// own left (the nose towards the image's right). From the landmarks (see
    /// [`landmark_yaw`]): steadier than `fr_pose`'s yaw, which got the
    /// direction of `obama2.jpg` wrong and jitters by up to 19° on a person
    /// sitting still.
    pub yaw: f32,
    /// Head pitch in degrees; positive when the head is lowered (chin down).
    /// `fr_pose`'s pitch.
    pub pitch: f32,
    /// Eye openness, 0 (both closed) to 1 (open): the larger of the two
    /// eyes' P(open) from `fr_eye`, so "closed" means both eyes are closed.
    pub eyes_open: f32,
    /// Mouth opening: the gap between the inner lips over the distance from
    /// the eyes' midpoint to the mouth's midpoint (see [`mouth_opening`]).
    /// 0–0.13 with the lips together or talking quietly, 0.3–0.7 wide open.
    pub mouth_open: f32,
}

impl FrameCues {
    /// The cues of a face, or `None` when the engine ran without the pose or
    /// eye stage (or the landmarks are missing).
    pub fn from_face(face: &Face) -> Option<FrameCues> {
        let q = &face.quality;
        FrameCues::from_parts(
            &face.landmarks68,
            q.pitch?,
            [q.left_eye_open?, q.right_eye_open?],
        )
    }

    /// The cues from the stages' outputs: the 68 landmarks
    /// ([`crate::Engine::landmarks`]), `fr_pose`'s pitch as
    /// [`crate::Engine::pose`] returns it (`[1]`), and both eyes' P(open)
    /// ([`crate::Engine::eyes`]); for a capture path that runs the stages
    /// itself. `None` without 68 landmarks.
    pub fn from_parts(
        landmarks68: &[[f32; 2]],
        pose_pitch: f32,
        eyes: [f32; 2],
    ) -> Option<FrameCues> {
        Some(FrameCues {
            yaw: landmark_yaw(landmarks68)?,
            pitch: PITCH_SIGN * pose_pitch,
            eyes_open: eyes[0].max(eyes[1]),
            mouth_open: mouth_opening(landmarks68)?,
        })
    }
}

/// `fr_pose` reports pitch positive when the head is raised.
const PITCH_SIGN: f32 = -1.0;

/// Degrees per unit of nose offset (see [`landmark_yaw`]): the least-squares
/// slope of `fr_pose`'s yaw on the offset over the 4,992 faces of LFW View 1.
const YAW_DEG_PER_OFFSET: f32 = 84.0;

/// Head yaw from the 68 landmarks, in degrees (positive: the person's own
/// left, the nose towards the image's right): the nose tip's horizontal
/// offset from the midline of the eye and mouth corners, over the eye
/// width, scaled to degrees. Mirroring a face flips its sign (in 99.6 % of
/// LFW faces with a clear turn), and a flat photo turned in front of the
/// camera hardly changes it (the offset and the eye width shrink together).
pub fn landmark_yaw(lm: &[[f32; 2]]) -> Option<f32> {
    if lm.len() < 68 {
        return None;
    }
    let mid = (lm[36][0] + lm[45][0] + lm[48][0] + lm[54][0]) / 4.0;
    let width = (lm[45][0] - lm[36][0]).abs();
    (width > 0.0).then(|| YAW_DEG_PER_OFFSET * (lm[30][0] - mid) / width)
}

/// The inner-lip gap over the eye-to-mouth distance (see
/// [`FrameCues::mouth_open`]); `None` without 68 landmarks.
pub fn mouth_opening(lm: &[[f32; 2]]) -> Option<f32> {
    if lm.len() < 68 {
        return None;
    }
    let d = |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    let mid = |ix: &[usize]| {
        let n = ix.len() as f32;
        let s = ix
            .iter()
            .fold([0.0, 0.0], |s, &i| [s[0] + lm[i][0], s[1] + lm[i][1]]);
        [s[0] / n, s[1] / n]
    };
    let gap = (d(lm[61], lm[67]) + d(lm[62], lm[66]) + d(lm[63], lm[65])) / 3.0;
    let eyes = mid(&[36, 39, 42, 45]);
    let mouth = mid(&[48, 54]);
    let scale = d(eyes, mouth);
    (scale > 0.0).then(|| gap / scale)
}

/// The thresholds of [`judge`]. Movements are measured from the first
/// frame (the person facing the camera); the eye thresholds are absolute
/// probabilities.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Thresholds {
    /// The first frame must face the camera: |yaw| and |pitch| at most this (degrees).
    pub start_max_angle: f32,
    /// A turn: yaw moves at least this far (degrees) from the first frame to
    /// the side asked for.
    pub turn_deg: f32,
    /// A nod: pitch moves down at least this far (degrees) from the first
    /// frame, then comes back up by at least half of it.
    pub nod_deg: f32,
    /// Eyes count as open at or above this.
    pub eye_open: f32,
    /// Eyes count as closed at or below this.
    pub eye_closed: f32,
    /// An open mouth: [`FrameCues::mouth_open`] rises at least this much from the first frame.
    pub mouth_delta: f32,
}

/// The thresholds, measured on real images (`examples/cues.rs` over
/// `../shared/eval`; figures in `BENCHMARKS.md`, "Liveness"):
/// - turn 15°: a person sitting still (NUAA live, 24 sessions of up to 8
///   frames) moves the landmark yaw by at most 7.6° (median 2.9°); a head
///   turned as in `obama2.jpg` and its mirror image differ by 22.5°.
/// - nod 15° down, then 7.5° back up: `fr_pose`'s pitch jitters by up to
///   14.6° (median 6.0°) on the same still sessions, hence the return.
/// - eyes: `fr_eye` is bimodal on LFW (5th percentile 0.01, 25th 0.97); its
///   "closed" calls there are closed or downcast eyes.
/// - mouth +0.2: lips together or talking move the opening by at most 0.12
///   in the still sessions; LFW's 99th percentile is 0.46, speaking
///   (`obama2.jpg`) 0.32 against 0.05 with the mouth shut (`obama3.jpg`).
pub const THRESHOLDS: Thresholds = Thresholds {
    start_max_angle: 25.0,
    turn_deg: 15.0,
    nod_deg: 15.0,
    eye_open: 0.6,
    eye_closed: 0.3,
    mouth_delta: 0.2,
};

/// Why a challenge failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChallengeFailure {
    /// No frame with a face to judge.
    NoFrames,
    /// The first frame does not face the camera (the movements are measured
    /// from it).
    NotFacingAtStart,
    /// The action at position `step` (0-based) of the sequence was not seen
    /// after the actions before it.
    Missing { step: usize, action: Action },
}

impl ChallengeFailure {
    /// What went wrong, in Chinese, for the person.
    pub fn message_zh(&self) -> String {
        match self {
            ChallengeFailure::NoFrames => "未检测到人脸，请正对摄像头后重试。".into(),
            ChallengeFailure::NotFacingAtStart => "开始时请正对摄像头，然后按提示做动作。".into(),
            ChallengeFailure::Missing { step, action } => format!(
                "未检测到第 {} 个动作“{}”，请按提示的顺序完成动作后重试，或选择其他方式。",
                step + 1,
                action.name_zh()
            ),
        }
    }

    /// What went wrong, in English, for the person.
    pub fn message_en(&self) -> String {
        match self {
            ChallengeFailure::NoFrames => "no face found; face the camera and try again".into(),
            ChallengeFailure::NotFacingAtStart => {
                "start facing the camera, then follow the prompts".into()
            }
            ChallengeFailure::Missing { step, action } => format!(
                "action {} (\"{}\") was not seen; do the actions in the order shown and try again, \
                 or choose another method",
                step + 1,
                action.name_en()
            ),
        }
    }
}

impl std::fmt::Display for ChallengeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.message_zh(), self.message_en())
    }
}

impl std::error::Error for ChallengeFailure {}

/// Whether `frames` (in capture order, one face each) show `actions` in
/// that order, with the default [`THRESHOLDS`].
pub fn judge(actions: &[Action], frames: &[FrameCues]) -> Result<(), ChallengeFailure> {
    judge_with(&THRESHOLDS, actions, frames)
}

/// [`judge`] with explicit thresholds. The first frame is the reference: it
/// must face the camera. Each action must then be seen in the frames after
/// the one that completed the previous action (a blink may start on that
/// frame: its eyes must be open before they close).
pub fn judge_with(
    t: &Thresholds,
    actions: &[Action],
    frames: &[FrameCues],
) -> Result<(), ChallengeFailure> {
    let Some(start) = frames.first() else {
        return Err(ChallengeFailure::NoFrames);
    };
    if !(start.yaw.abs() <= t.start_max_angle && start.pitch.abs() <= t.start_max_angle) {
        return Err(ChallengeFailure::NotFacingAtStart);
    }
    // The frame that completed the previous action (the start at first).
    let mut last = 0;
    for (step, &action) in actions.iter().enumerate() {
        match seen(t, action, start, &frames[last..]) {
            Some(done) => last += done,
            None => return Err(ChallengeFailure::Missing { step, action }),
        }
    }
    Ok(())
}

/// The index (in `rest`, ≥ 1) of the frame that completes `action`, if
/// any; `rest[0]` is the frame that completed the previous action.
fn seen(t: &Thresholds, action: Action, start: &FrameCues, rest: &[FrameCues]) -> Option<usize> {
    let first = |pred: &dyn Fn(&FrameCues) -> bool, from: usize| {
        rest.get(from..)?.iter().position(pred).map(|i| i + from)
    };
    match action {
        Action::TurnLeft => first(&|f| f.yaw - start.yaw >= t.turn_deg, 1),
        Action::TurnRight => first(&|f| start.yaw - f.yaw >= t.turn_deg, 1),
        Action::OpenMouth => first(&|f| f.mouth_open - start.mouth_open >= t.mouth_delta, 1),
        Action::Blink => {
            let open = first(&|f| f.eyes_open >= t.eye_open, 0)?;
            let closed = first(&|f| f.eyes_open <= t.eye_closed, open + 1)?;
            first(&|f| f.eyes_open >= t.eye_open, closed + 1)
        }
        Action::Nod => {
            let down = first(&|f| f.pitch - start.pitch >= t.nod_deg, 1)?;
            // Back up by half the threshold from the deepest point seen before it.
            let mut deepest = rest[down].pitch;
            rest[down + 1..]
                .iter()
                .position(|f| {
                    deepest = deepest.max(f.pitch);
                    deepest - f.pitch >= t.nod_deg / 2.0
                })
                .map(|i| i + down + 1)
        }
    }
}

/// How a face sits in the frame, before the passive model scores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// Enough of the surroundings is in view for the passive model.
    Ok,
    /// The face fills the frame: the passive model needs the context around
    /// the face (paper, screen or device edges), so the face is not scored
    /// and the person is asked to step back.
    StepBack,
}

impl Framing {
    /// The instruction for [`Framing::StepBack`], in Chinese.
    pub const STEP_BACK_ZH: &'static str = "请后退一些，让摄像头看到您的头部和肩膀。";
    /// The instruction for [`Framing::StepBack`], in English.
    pub const STEP_BACK_EN: &'static str =
        "step back a little so that the camera sees your head and shoulders";
}

/// How much the passive model's context crop (the face box enlarged 2.7×)
/// had to shrink to fit the frame: 2.7 when it fits, 1.0 when the face box
/// alone fills the frame.
pub fn context_scale(bbox: &BBox, width: u32, height: u32) -> f32 {
    let (w, h) = (width as f32, height as f32);
    let (bw, bh) = (bbox.width().max(1.0), bbox.height().max(1.0));
    ((w - 1.0) / bw).min((h - 1.0) / bh).clamp(0.0, 2.7)
}

/// The context scale below which a face is not scored and the person is
/// asked to step back (see [`framing`]). Measured with `examples/cues.rs`:
/// on whole webcam frames (`../shared/eval/antispoof-frames`, 241 images)
/// the scale is never below 1.41; on tight face crops
/// (`../shared/eval/antispoof`, 960 faces found) 941 lie below 1.25 and
/// the rest at 1.38 or more (small faces inside a larger crop). 1.3 sits in
/// that gap.
pub const STEP_BACK_BELOW: f32 = 1.3;

/// Whether a face in a `width`×`height` frame can be scored by the passive
/// model, or the person must step back. Chosen on data: see `BENCHMARKS.md`,
/// section "Liveness".
pub fn framing(bbox: &BBox, width: u32, height: u32) -> Framing {
    if context_scale(bbox, width, height) < STEP_BACK_BELOW {
        Framing::StepBack
    } else {
        Framing::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn still() -> FrameCues {
        FrameCues {
            yaw: 2.0,
            pitch: 4.0,
            eyes_open: 0.97,
            mouth_open: 0.03,
        }
    }

    /// Frames that perform `a`, starting and ending at `base`.
    fn perform(a: Action, base: FrameCues, size: f32) -> Vec<FrameCues> {
        let with = |f: &dyn Fn(&mut FrameCues)| {
            let mut c = base;
            f(&mut c);
            c
        };
        let t = THRESHOLDS;
        let moved = match a {
            Action::TurnLeft => vec![with(&|c| c.yaw += t.turn_deg * size)],
            Action::TurnRight => vec![with(&|c| c.yaw -= t.turn_deg * size)],
            Action::Nod => vec![with(&|c| c.pitch += t.nod_deg * size)],
            Action::OpenMouth => vec![with(&|c| c.mouth_open += t.mouth_delta * size)],
            Action::Blink => vec![with(&|c| c.eyes_open = 0.05)],
        };
        [moved, vec![base]].concat()
    }

    fn clip(seq: &[Action], base: FrameCues, size: f32) -> Vec<FrameCues> {
        let mut frames = vec![base];
        for &a in seq {
            frames.extend(perform(a, base, size));
        }
        frames
    }

    fn cues() -> impl Strategy<Value = FrameCues> {
        (-20f32..20.0, -20f32..20.0, 0f32..1.0, 0f32..0.3).prop_map(|(y, p, e, m)| FrameCues {
            yaw: y,
            pitch: p,
            eyes_open: e,
            mouth_open: m,
        })
    }

    fn sequence() -> impl Strategy<Value = Vec<Action>> {
        (any::<u64>()).prop_map(|seed| {
            use rand::SeedableRng;
            Action::random_sequence(&mut rand::rngs::StdRng::seed_from_u64(seed))
        })
    }

    #[test]
    fn performed_sequence_passes_and_names_the_missing_action() {
        let seq = [Action::TurnLeft, Action::Blink, Action::OpenMouth];
        assert_eq!(judge(&seq, &clip(&seq, still(), 1.5)), Ok(()));
        let partial = clip(&seq[..2], still(), 1.5);
        let err = judge(&seq, &partial).unwrap_err();
        assert_eq!(
            err,
            ChallengeFailure::Missing {
                step: 2,
                action: Action::OpenMouth
            }
        );
        assert!(err.message_zh().contains("张嘴") && err.message_en().contains("open mouth"));
    }

    #[test]
    fn movements_below_threshold_fail() {
        for a in Action::ALL {
            if a == Action::Blink {
                continue;
            }
            let r = judge(&[a], &clip(&[a], still(), 0.8));
            assert!(r.is_err(), "{a:?} at 80 % of its threshold passed");
        }
    }

    #[test]
    fn a_head_turned_away_at_the_start_is_refused() {
        let mut f = clip(&[Action::TurnLeft], still(), 1.5);
        f[0].yaw = 40.0;
        assert_eq!(
            judge(&[Action::TurnLeft], &f),
            Err(ChallengeFailure::NotFacingAtStart)
        );
        assert_eq!(judge(&[Action::Nod], &[]), Err(ChallengeFailure::NoFrames));
    }

    #[test]
    fn a_nod_must_come_back_up() {
        let mut f = vec![still()];
        f.push(FrameCues {
            pitch: still().pitch + 20.0,
            ..still()
        });
        assert!(judge(&[Action::Nod], &f).is_err());
        f.push(still());
        assert_eq!(judge(&[Action::Nod], &f), Ok(()));
    }

    proptest! {
        #[test]
        fn random_sequences_have_2_or_3_distinct_actions_with_a_head_movement(seq in sequence()) {
            prop_assert!((2..=3).contains(&seq.len()));
            let mut d = seq.clone();
            d.sort_by_key(|a| *a as u8);
            d.dedup();
            prop_assert_eq!(d.len(), seq.len());
            prop_assert!(seq.iter().any(|a| a.is_head_movement()));
        }

        #[test]
        fn one_still_frame_repeated_fails_every_challenge(c in cues(), n in 1usize..12, seq in sequence()) {
            let frames = vec![c; n];
            for a in Action::ALL {
                prop_assert!(judge(&[a], &frames).is_err());
            }
            prop_assert!(judge(&seq, &frames).is_err());
        }

        #[test]
        fn a_performed_sequence_passes(base in cues(), seq in sequence(), size in 1.05f32..3.0) {
            let base = FrameCues { eyes_open: base.eyes_open.max(0.7), ..base };
            prop_assert_eq!(judge(&seq, &clip(&seq, base, size)), Ok(()));
        }

        #[test]
        fn the_same_actions_in_another_order_fail(base in cues(), seq in sequence(), size in 1.05f32..3.0) {
            let base = FrameCues { eyes_open: base.eyes_open.max(0.7), ..base };
            let mut other = seq.clone();
            other.reverse();
            let r = judge(&seq, &clip(&other, base, size));
            prop_assert!(r.is_err(), "{:?} passed when performed as {:?}", seq, other);
            // The action that fails is one the performed order put too early.
            match r {
                Err(ChallengeFailure::Missing { step, .. }) => prop_assert!(step >= 1),
                e => prop_assert!(false, "unexpected {:?}", e),
            }
        }

        #[test]
        fn extra_frames_between_actions_do_not_matter(base in cues(), seq in sequence(), pad in 0usize..4) {
            let base = FrameCues { eyes_open: base.eyes_open.max(0.7), ..base };
            let mut frames = vec![base; pad + 1];
            for &a in &seq {
                frames.extend(perform(a, base, 1.5));
                frames.extend(vec![base; pad]);
            }
            prop_assert_eq!(judge(&seq, &frames), Ok(()));
        }
    }

    #[test]
    fn step_back_when_the_face_fills_the_frame() {
        let b = |side: f32| BBox {
            x1: 100.0,
            y1: 50.0,
            x2: 100.0 + side,
            y2: 50.0 + side,
        };
        assert_eq!(framing(&b(200.0), 640, 480), Framing::Ok);
        assert_eq!(framing(&b(400.0), 640, 480), Framing::StepBack);
        assert_eq!(framing(&b(150.0), 160, 160), Framing::StepBack);
        assert!((context_scale(&b(100.0), 640, 480) - 2.7).abs() < 1e-6);
    }
}
