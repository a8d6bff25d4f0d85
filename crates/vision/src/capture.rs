//! Entry points for a capture that does the least work: one face for
//! verify/enrol (counting faces from the detector before any embedding), and
//! a multi-frame active challenge that runs detection and landmarks on every
//! frame but the feature and liveness models only on the frames that need them.
//!
//! Costs, in model calls (one thread, AMD EPYC figures of `bench speed`:
//! detect 4.0 ms, landmarks 0.55, embed 5.4, liveness 3.5, pose 5.1, eyes 0.24):
//! - [`Engine::one_face`]: 1 detector call, then landmarks + embedding per
//!   candidate until the second recognisable face (a crowd with two or more
//!   sure detections is answered after the detector call alone);
//!   [`Engine::one_face_with`] and [`OneFaceOptions::VERIFY`] leave out the
//!   pose and eye models on that face (4 model calls instead of 7);
//! - [`Engine::challenge`]: per frame detect + landmarks + eyes + the
//!   landmark pose; `fr_pose` on the frames [`PoseFrames`] names (every frame,
//!   the first only, or until the yaws span a threshold); embedding on the
//!   first frame (same-person anchor) and on the best frame, passive liveness
//!   on the best frame only. Six frames cost about one full frame plus five
//!   times 5 ms (plus 5 ms for each frame that gets `fr_pose`), against six
//!   full frames before. With [`CaptureOptions::track`] (the default) the
//!   detector runs only on the anchor, last and best frames and where
//!   tracking is lost; the frames between follow the face with two landmark
//!   calls (see [`Engine::challenge`]).

use image::RgbImage;

use crate::stages::{align, five_points, sharpness};
use crate::{
    compare, BBox, Budget, Detection, Embedding, Engine, Face, OtherEmbeddings, Quality,
    VisionError,
};

/// What [`Engine::one_face`] found.
// One value per capture, moved once: boxing the face would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum OneFace {
    /// No recognisable face.
    None,
    /// Exactly one recognisable face, fully analysed.
    One(Face),
    /// At least this many faces (the work stopped at the count).
    Several(usize),
}

/// Where a challenge's head-pose cues come from.
///
/// Measured against `fr_pose` on 438 faces (300 files of
/// `../shared/eval/{detection/single_face, antispoof-frames/real, lfw-view1}`
/// and their mirror images; `examples/cue_agreement.rs`): the landmark yaw
/// differs by 6.5° (median; mean 8.7°, correlation 0.75, slope 0.62), pitch
/// by 9.9° (correlation 0.70), roll by 2.2°. The 64×64 landmark model is not
/// precise enough to stand in for `fr_pose` on a 12° head-turn threshold, so
/// the default stays the model; eye openness always comes from `fr_eye`
/// (0.24 ms a frame; the landmark eye aspect ratio correlates only 0.34 with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CueSource {
    /// Yaw, pitch and roll from the 68 landmarks (a rigid mean-face model, no
    /// model call); see [`pose_from_landmarks`]. Saves about 5 ms a frame.
    Landmarks,
    /// Yaw, pitch and roll from `fr_pose` on every frame.
    #[default]
    Models,
}

/// Which frames of a challenge get `fr_pose` (with [`CueSource::Models`]);
/// the others carry the landmark pose ([`pose_from_landmarks`]) and
/// [`FrameCues::pose_model`] `false`.
///
/// The decision a caller takes from the model's pose is the same with
/// [`PoseFrames::UntilYawSpan`] as with [`PoseFrames::Every`] when it only
/// asks whether the model yaws span a threshold: the span of a subset is at
/// most the span of the whole, and the model runs on every frame whenever
/// the subset falls short.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum PoseFrames {
    /// Every frame (5–6 ms a frame, one thread).
    #[default]
    Every,
    /// The first frame with a face only (the start-facing check of
    /// [`crate::challenge::judge`], whose yaw comes from the landmarks and
    /// whose pitch matters otherwise only for a nod).
    First,
    /// Frames in the order of their landmark yaw, extremes first, until the
    /// model yaws seen span at least this many degrees (a turn-the-head
    /// check): usually two model calls, every frame when the head did not
    /// turn that far.
    UntilYawSpan(f32),
}

impl PoseFrames {
    /// What [`crate::challenge::judge`] needs for `actions`: the model's
    /// pitch on every frame for a nod, else on the first frame only.
    pub fn for_actions(actions: &[crate::Action]) -> PoseFrames {
        if actions.contains(&crate::Action::Nod) {
            PoseFrames::Every
        } else {
            PoseFrames::First
        }
    }
}

/// Settings of [`Engine::challenge`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CaptureOptions {
    /// Where pose cues come from.
    pub cues: CueSource,
    /// Which frames get the pose model (with [`CueSource::Models`]).
    pub pose: PoseFrames,
    /// Passive liveness on the best frame.
    pub liveness: bool,
    /// Detector tracking ([`Engine::challenge`]): the full detector runs on
    /// the anchor frame, on the best (embedded) frame and whenever tracking
    /// is lost; the frames between find the face from the previous frame's
    /// box with the landmark model (two 0.5 ms calls instead of a 4 ms
    /// detector call). A track the detector does not confirm on the best
    /// frame is re-detected from the frame where it was lost, not the
    /// whole challenge. Off: the detector on every frame.
    pub track: bool,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            cues: CueSource::Models,
            pose: PoseFrames::Every,
            liveness: true,
            track: true,
        }
    }
}

/// A face followed from frame to frame: the last box and the detector
/// score of the last full detection, and where the detector's box sits
/// relative to the 68 landmarks (measured on the last full detection).
#[derive(Debug, Clone, Copy)]
struct Track {
    bbox: BBox,
    score: f32,
    /// Box centre offset from the landmarks' centroid and box side, in units
    /// of the landmarks' spread ([`spread`]).
    rel: [f32; 3],
}

/// A tracked face: its detector-like box (with the last detector score)
/// and its landmarks.
type Tracked = (Detection, Vec<[f32; 2]>);

/// Centroid and mean distance from it of a set of landmarks.
fn spread(lm: &[[f32; 2]]) -> ([f32; 2], f32) {
    let n = lm.len().max(1) as f32;
    let c = lm
        .iter()
        .fold([0.0, 0.0], |a, p| [a[0] + p[0], a[1] + p[1]]);
    let c = [c[0] / n, c[1] / n];
    let s = lm.iter().map(|&p| dist(p, c)).sum::<f32>() / n;
    (c, s.max(1e-3))
}

impl Track {
    fn new(bbox: BBox, score: f32, lm: &[[f32; 2]]) -> Track {
        let (c, s) = spread(lm);
        let side = bbox.height();
        let (cx, cy) = ((bbox.x1 + bbox.x2) / 2.0, (bbox.y1 + bbox.y2) / 2.0);
        Track {
            bbox,
            score,
            rel: [(cx - c[0]) / s, (cy - c[1]) / s, side / s],
        }
    }

    /// The detector-like box these landmarks imply.
    fn box_of(&self, lm: &[[f32; 2]]) -> BBox {
        let (c, s) = spread(lm);
        let (cx, cy) = (c[0] + self.rel[0] * s, c[1] + self.rel[1] * s);
        let half = self.rel[2] * s / 2.0;
        BBox {
            x1: cx - half,
            y1: cy - half,
            x2: cx + half,
            y2: cy + half,
        }
    }
}

/// Centre distance of two boxes over `a`'s side, and the ratio of their sides.
fn box_change(a: &BBox, b: &BBox) -> (f32, f32) {
    let side = a.height().max(1e-3);
    let d = dist(
        [(a.x1 + a.x2) / 2.0, (a.y1 + a.y2) / 2.0],
        [(b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0],
    );
    (d / side, b.height() / side)
}

/// How far a tracked face may move between two frames (in box sides) and
/// change size, before the full detector is asked instead.
const TRACK_MAX_MOVE: f32 = 0.15;
const TRACK_MAX_SCALE: f32 = 1.1;
/// How close the second landmark pass must land to the first (in box sides
/// and size ratio): a face the landmark model really sees converges.
const TRACK_MAX_DRIFT: f32 = 0.03;

/// What [`Engine::one_face_with`] computes for the one face besides the
/// embedding (which always runs: its norm is the recognisability gate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneFaceOptions {
    /// Passive liveness (`fr_liveness`).
    pub liveness: bool,
    /// Head pose (`fr_pose`, 5–6 ms): [`Quality::yaw`] and friends.
    pub pose: bool,
    /// Eye openness (`fr_eye`, two calls).
    pub eyes: bool,
}

impl Default for OneFaceOptions {
    /// Everything the engine's options load ([`Engine::one_face`]).
    fn default() -> Self {
        OneFaceOptions {
            liveness: true,
            pose: true,
            eyes: true,
        }
    }
}

impl OneFaceOptions {
    /// What a single-frame verify or enrolment decides on: the embedding,
    /// the face box and passive liveness; no pose or eye model.
    pub const VERIFY: OneFaceOptions = OneFaceOptions {
        liveness: true,
        pose: false,
        eyes: false,
    };
}

/// The cues of one frame of a challenge: what a liveness check (turn the
/// head, blink, open the mouth) reads.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FrameCues {
    pub bbox: BBox,
    pub det_score: f32,
    /// Shorter side of the face box inside the image, in pixels.
    pub face_px: f32,
    /// Head yaw in degrees (positive: the face turns towards the image's left… as `fr_pose`).
    pub yaw: f32,
    /// Head pitch in degrees (sign as `fr_pose`).
    pub pitch: f32,
    /// Head roll in degrees (sign as `fr_pose`).
    pub roll: f32,
    /// P(open) of the eye on the image's left (`fr_eye`).
    pub left_eye_open: f32,
    /// P(open) of the eye on the image's right (`fr_eye`).
    pub right_eye_open: f32,
    /// Eye aspect ratio of the left eye from landmarks (about 0.3 open, < 0.15 closed).
    pub left_eye_ratio: f32,
    /// Eye aspect ratio of the right eye.
    pub right_eye_ratio: f32,
    /// Mouth opening: inner-lip gap over mouth width (about 0 closed, > 0.3 wide open).
    pub mouth_open: f32,
    /// Whether `yaw`, `pitch` and `roll` are `fr_pose`'s (else the landmark
    /// pose, [`pose_from_landmarks`]; see [`PoseFrames`]).
    pub pose_model: bool,
    pub landmarks68: Vec<[f32; 2]>,
}

/// What a challenge found, frame by frame.
#[derive(Debug)]
pub enum CaptureResult {
    /// No recognisable face in the first frame with a face.
    NoFace,
    /// A frame showed more than one face (the work stopped there).
    SeveralFaces { frame: usize, faces: usize },
    /// One person across the frames.
    Captured(Box<Captured>),
}

/// The frames of a successful challenge.
#[derive(Debug)]
pub struct Captured {
    /// Cues per frame (`None`: no face found in that frame).
    pub frames: Vec<Option<FrameCues>>,
    /// The first frame with a recognisable face (the same-person anchor).
    pub first: usize,
    /// The best frame (most frontal, sharpest), fully analysed.
    pub best: usize,
    /// The first frame's face, with its embedding (no liveness, pose from the cues).
    pub first_face: Face,
    /// The best frame's face, with embedding and passive liveness.
    pub best_face: Face,
    /// Cosine similarity of the first and best frames' embeddings (1 when
    /// they are the same frame); compare with [`crate::DEFAULT_THRESHOLD`].
    pub similarity: f32,
    /// Every frame's face box is the previous frame's face by
    /// [`same_face`] (no jump between frames without an embedding; not
    /// required by the server, whose gates may send sparse frames).
    pub continuous: bool,
    /// Frames where the detector did not confirm a tracked face and the
    /// frame loop resumed with the detector ([`Engine::challenge`]); empty
    /// without tracking or when every check confirmed the track.
    pub lost: Vec<usize>,
}

/// What [`Engine::complete`] adds to a gated face.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Extras {
    liveness: bool,
    pose: bool,
    eyes: bool,
    /// The second embedding (when the engine loads the second model).
    second: bool,
}

impl Extras {
    pub(crate) const ALL: Extras = Extras {
        liveness: true,
        pose: true,
        eyes: true,
        second: true,
    };
}

/// A detection that passed the recognisability gate.
pub(crate) struct Gated {
    lm: Vec<[f32; 2]>,
    five: [[f32; 2]; 5],
    aligned: RgbImage,
    embedding: Embedding,
    norm: f32,
}

/// Euclidean distance of two points.
fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// Eye aspect ratio (Soukupová & Čech 2016) of the eye whose six landmarks
/// start at `i` (36 left, 42 right).
fn eye_ratio(lm: &[[f32; 2]], i: usize) -> f32 {
    let w = dist(lm[i], lm[i + 3]).max(1e-3);
    (dist(lm[i + 1], lm[i + 5]) + dist(lm[i + 2], lm[i + 4])) / (2.0 * w)
}

/// Mouth opening: the inner lips' gap (62–66) over the mouth width (48–54).
fn mouth_open(lm: &[[f32; 2]]) -> f32 {
    dist(lm[62], lm[66]) / dist(lm[48], lm[54]).max(1e-3)
}

/// Head pose `[yaw, pitch, roll]` in degrees from 68 landmarks, with a rigid
/// mean face (the 3-D points commonly used for PnP head pose, in mm: eye
/// outer corners at x = ±225, 135 behind the nose tip; eyes 170 above it,
/// mouth corners 150 below and 125 behind). Under weak perspective the nose
/// tip's offset from the eye/mouth midline, over the half eye span, is
/// `0.6·tan(yaw)`; its height between the eye and mouth lines moves with
/// `sin(pitch)`; roll is the eye line's angle. Signs follow `fr_pose`
/// (checked by `landmark_pose_agrees_with_fr_pose` in the tests).
pub fn pose_from_landmarks(lm: &[[f32; 2]]) -> [f32; 3] {
    let (le, re, nose) = (lm[36], lm[45], lm[30]);
    let (lm_, rm) = (lm[48], lm[54]);
    let eye_mid = [(le[0] + re[0]) / 2.0, (le[1] + re[1]) / 2.0];
    let mouth_mid = [(lm_[0] + rm[0]) / 2.0, (lm_[1] + rm[1]) / 2.0];
    let roll = (re[1] - le[1]).atan2(re[0] - le[0]);
    // Into the face's frame: undo roll about the eye midpoint.
    let (c, s) = (roll.cos(), roll.sin());
    let unroll = |p: [f32; 2]| {
        let (x, y) = (p[0] - eye_mid[0], p[1] - eye_mid[1]);
        [x * c + y * s, -x * s + y * c]
    };
    let (n, m) = (unroll(nose), unroll(mouth_mid));
    let half_span = dist(le, re).max(1e-3) / 2.0;
    // The midline at the nose's height, between the eye and mouth midpoints.
    let t = if m[1].abs() > 1e-3 { n[1] / m[1] } else { 0.5 };
    let mid_x = m[0] * t;
    let yaw = ((n[0] - mid_x) / half_span / 0.6).atan();
    // Nose tip 170 below the eyes of 320 between eyes and mouth (0.53) when
    // level; it rises by 130/320 · sin(pitch) (the nose sticks out 130 more
    // than the eye/mouth plane).
    let rel = if m[1].abs() > 1e-3 { n[1] / m[1] } else { 0.53 };
    let pitch = ((0.53 - rel) / 0.41).clamp(-1.0, 1.0).asin();
    let deg = 180.0 / std::f32::consts::PI;
    [-yaw * deg, pitch * deg, roll * deg]
}

/// What the full detector found on a tracked frame.
enum Redetected {
    /// The tracked face, with the detector's box and the cues from it.
    Same(Detection, FrameCues),
    /// More than one sure face.
    Several(usize),
    /// Not the tracked face.
    Lost,
}

/// The least intersection over union of two boxes that are one face: the
/// same face on consecutive frames, and the tracker's box against the
/// detector's on one frame. The one rule for both, chosen between what one
/// face gives and what two faces give:
/// - one face moving as far as tracking allows between two frames
///   ([`TRACK_MAX_MOVE`] and [`TRACK_MAX_SCALE`]) keeps an IoU of about 0.6,
///   and the tracker's box against the detector's on a partly covered face
///   was measured at 0.50 (a bar over the eyes; 0.83–0.90 uncovered);
///   a person at a gate who moves half a box side between two sparse
///   frames keeps 0.33;
/// - two people's faces cannot share much of a box: two equal boxes whose
///   centres are 0.8 of a side apart (heads touching) have an IoU of 0.11.
///
/// So 0.3: one face passes with margin, a neighbour's face is refused with
/// margin. (It replaces 0.1 for the frame-to-frame rule, which a neighbour
/// cheek to cheek could pass, and 0.5 for the re-detection, which a partly
/// covered face could fail.) Tested by `same_face_is_one_rule`.
pub const SAME_FACE_IOU: f32 = 0.3;

/// Whether two boxes are one face (on consecutive frames, or the tracker's
/// and the detector's on one frame): see [`SAME_FACE_IOU`].
pub fn same_face(a: &BBox, b: &BBox) -> bool {
    a.iou(b) >= SAME_FACE_IOU
}

/// The state of a challenge's frame loop after each frame, so that the
/// loop can resume from any frame (where a track was lost) without
/// redoing the frames before it, and what the detector found on each frame
/// it saw (kept across a resume: no frame is detected twice, nor are the
/// cues of the same detection made twice).
struct Scan {
    /// The detector's hits per frame it saw.
    seen: Vec<Option<Vec<Detection>>>,
    /// The cues made from a detection per frame (the last one chosen there).
    made: Vec<Option<(Detection, FrameCues)>>,
    /// Frames the detector must see (where a track was lost).
    force: Vec<bool>,
    /// Cues per frame (`None`: no face).
    cues: Vec<Option<FrameCues>>,
    /// The face's box per frame (the detector's, or the tracker's).
    dets: Vec<Option<Detection>>,
    /// Which frames the full detector saw.
    detected: Vec<bool>,
    /// The face followed after each frame.
    tracks: Vec<Option<Track>>,
    /// The anchor: the first frame with a recognisable face, gated.
    anchor: Option<(usize, Detection, Gated)>,
}

impl Scan {
    fn new(n: usize) -> Scan {
        Scan {
            seen: vec![None; n],
            made: vec![None; n],
            force: vec![false; n],
            cues: Vec::with_capacity(n),
            dets: Vec::with_capacity(n),
            detected: Vec::with_capacity(n),
            tracks: Vec::with_capacity(n),
            anchor: None,
        }
    }

    /// Mark frame `i` seen by the detector with its face `d` and cues `c`.
    fn confirm(&mut self, i: usize, d: Detection, c: FrameCues) {
        self.tracks[i] = Some(Track::new(d.bbox, d.score, &c.landmarks68));
        (self.dets[i], self.cues[i], self.detected[i]) = (Some(d), Some(c), true);
    }

    /// Forget every frame from `i` on.
    fn truncate(&mut self, i: usize) {
        self.cues.truncate(i);
        self.dets.truncate(i);
        self.detected.truncate(i);
        self.tracks.truncate(i);
        if self.anchor.as_ref().is_some_and(|a| a.0 >= i) {
            self.anchor = None;
        }
    }

    fn push(&mut self, face: Option<(Detection, FrameCues)>, detected: bool, track: Option<Track>) {
        let (d, c) = face.unzip();
        self.dets.push(d);
        self.cues.push(c);
        self.detected.push(detected);
        self.tracks.push(track);
    }

    /// The last face box before frame `i`.
    fn prev(&self, i: usize) -> Option<BBox> {
        self.dets[..i].iter().rev().flatten().next().map(|d| d.bbox)
    }
}

/// The best frame from `first` on: the most frontal (|yaw| + |pitch|/2),
/// then the detector score; by the pose every frame has from the same
/// source (the landmark pose unless the model ran on every frame). The
/// earliest frame within 0.01 (degrees) of the most frontal: frames that
/// tie (a face held still) keep their order whatever the rounding of a
/// tracked frame's landmarks adds.
fn best_frame(cues: &[Option<FrameCues>], first: usize, pose: PoseFrames) -> usize {
    let frontal = |c: &FrameCues| {
        let (yaw, pitch) = if pose == PoseFrames::Every {
            (c.yaw, c.pitch)
        } else {
            let p = pose_from_landmarks(&c.landmarks68);
            (p[0], p[1])
        };
        yaw.abs() + pitch.abs() / 2.0 - c.det_score
    };
    let score = |i: usize| cues[i].as_ref().map(frontal);
    let most = (first..cues.len())
        .filter_map(score)
        .fold(f32::INFINITY, f32::min);
    (first..cues.len())
        .find(|&i| score(i).is_some_and(|s| s <= most + 0.01))
        .unwrap_or(first)
}

impl Engine {
    /// Landmarks, alignment and the embedding of a detection; `None` when it
    /// fails the recognisability gate.
    pub(crate) fn gated(
        &self,
        img: &RgbImage,
        det: &Detection,
    ) -> Result<Option<Gated>, VisionError> {
        let lm = self.landmarks(img, &det.bbox)?;
        self.gated_with(img, det, lm)
    }

    fn gated_with(
        &self,
        img: &RgbImage,
        det: &Detection,
        lm: Vec<[f32; 2]>,
    ) -> Result<Option<Gated>, VisionError> {
        let five = five_points(&lm);
        let aligned = align(img, &five);
        let (embedding, norm) = self.embed_with_norm(&aligned)?;
        let gate = if det.score >= self.opts.confident_detection {
            self.opts.min_embedding_norm_confident
        } else {
            self.opts.min_embedding_norm
        };
        Ok((norm >= gate).then_some(Gated {
            lm,
            five,
            aligned,
            embedding,
            norm,
        }))
    }

    /// The second and third embeddings of a face this engine found, each
    /// where the engine loads its model: the ones already computed, or the
    /// deferred models run now on the kept chips
    /// ([`EngineOptions::defer_other_embeddings`]). Both `None` when the
    /// face was found without them (e.g. the anchor frame of a challenge).
    pub fn other_embeddings(&self, face: &Face) -> Result<OtherEmbeddings, VisionError> {
        match &face.deferred {
            Some(d) => self.run_deferred(d),
            None => Ok(OtherEmbeddings {
                second: face.second_embedding.clone(),
                third: face.third_embedding.clone(),
            }),
        }
    }

    /// The second and third models run on a face's kept inputs
    /// ([`Face::deferred`]), each whose input was kept.
    pub fn run_deferred(&self, d: &crate::Deferred) -> Result<OtherEmbeddings, VisionError> {
        crate::set_flush_denormals();
        Ok(OtherEmbeddings {
            second: d
                .dlib_chip
                .as_ref()
                .map(|c| self.embed_second_chip(c))
                .transpose()?,
            third: d
                .aligned
                .as_ref()
                .map(|a| self.embed_third(a))
                .transpose()?,
        })
    }

    /// Whether this engine loads the second and the third embedding model.
    pub fn other_models(&self) -> (bool, bool) {
        (self.second.is_some(), self.third.is_some())
    }

    /// A gated face with the cues the options and `extras` ask for.
    pub(crate) fn complete(
        &self,
        img: &RgbImage,
        det: &Detection,
        g: Gated,
        extras: Extras,
    ) -> Result<Face, VisionError> {
        let liveness = match &self.liveness {
            Some(_) if extras.liveness => Some(self.liveness(img, &det.bbox)?),
            _ => None,
        };
        let (yaw, pitch, roll) = match &self.pose {
            Some(_) if extras.pose => {
                let p = self.pose(img, &det.bbox)?;
                (Some(p[0]), Some(p[1]), Some(p[2]))
            }
            _ => (None, None, None),
        };
        let (left_eye_open, right_eye_open) = match &self.eye {
            Some(_) if extras.eyes => {
                let e = self.eyes(img, &g.lm)?;
                (Some(e[0]), Some(e[1]))
            }
            _ => (None, None),
        };
        // The other embeddings now, or their inputs kept for later.
        let defer = self.opts.defer_other_embeddings;
        let others = extras.second && (self.second.is_some() || self.third.is_some());
        let deferred = (others && defer).then(|| crate::Deferred {
            dlib_chip: self
                .second
                .as_ref()
                .map(|_| crate::dlib_resnet::chip(img, &g.lm)),
            aligned: self.third.as_ref().map(|_| g.aligned.clone()),
        });
        let second_embedding = match &self.second {
            Some(_) if others && !defer => Some(self.embed_second(img, &g.lm)?),
            _ => None,
        };
        let third_embedding = match &self.third {
            Some(_) if others && !defer => Some(self.embed_third(&g.aligned)?),
            _ => None,
        };
        let bbox = det.bbox.clamp_to(img.width(), img.height());
        Ok(Face {
            bbox,
            det_score: det.score,
            landmarks68: g.lm,
            landmarks5: g.five,
            embedding: self.opts.embedding.then_some(g.embedding),
            second_embedding,
            third_embedding,
            deferred,
            quality: Quality {
                face_px: bbox.width().min(bbox.height()),
                sharpness: sharpness(&g.aligned),
                embedding_norm: g.norm,
                yaw,
                pitch,
                roll,
                left_eye_open,
                right_eye_open,
            },
            liveness,
        })
    }

    /// Detector hits the engine is sure are faces (score at or above
    /// `confident_detection`): counted before any embedding.
    fn sure(&self, dets: &[Detection]) -> usize {
        dets.iter()
            .filter(|d| d.score >= self.opts.confident_detection)
            .count()
    }

    /// The one face of a verify or enrol image, doing the least work when
    /// there is more than one: after the detector, two or more sure detections
    /// answer [`OneFace::Several`] at once (no landmark or embedding call);
    /// otherwise candidates are gated one by one (landmarks + embedding) and
    /// the work stops at the second recognisable face. Only the one face gets
    /// liveness, pose and eyes. The budget is checked between stages. When
    /// nothing is found upright and `try_rotations` is on, the turned image
    /// is analysed as [`Engine::analyze_image`] does.
    pub fn one_face(&self, img: &RgbImage, budget: &Budget) -> Result<OneFace, VisionError> {
        self.one_face_with(img, &OneFaceOptions::default(), budget)
    }

    /// [`Engine::one_face`] computing only the cues `opts` asks for on the
    /// one face ([`OneFaceOptions::VERIFY`]: no pose or eye model, what a
    /// single-frame verify decides on). Detection, the face count, the
    /// embedding and liveness are the same as [`Engine::one_face`]'s.
    pub fn one_face_with(
        &self,
        img: &RgbImage,
        opts: &OneFaceOptions,
        budget: &Budget,
    ) -> Result<OneFace, VisionError> {
        crate::set_flush_denormals();
        budget.check()?;
        let dets = self.detect(img)?;
        let sure = self.sure(&dets);
        if sure >= 2 {
            return Ok(OneFace::Several(sure));
        }
        let mut found: Option<(Detection, Gated)> = None;
        for d in &dets {
            budget.check()?;
            if let Some(g) = self.gated(img, d)? {
                if found.is_some() {
                    return Ok(OneFace::Several(2));
                }
                found = Some((*d, g));
            }
        }
        budget.check()?;
        if let Some((d, g)) = found {
            let extras = Extras {
                liveness: opts.liveness,
                pose: opts.pose,
                eyes: opts.eyes,
                second: true,
            };
            return Ok(OneFace::One(self.complete(img, &d, g, extras)?));
        }
        if !dets.is_empty() || !self.opts.try_rotations {
            return Ok(OneFace::None);
        }
        let mut faces = self.analyze_image(img)?;
        Ok(match faces.len() {
            0 => OneFace::None,
            1 => OneFace::One(faces.remove(0)),
            n => OneFace::Several(n),
        })
    }

    /// [`Engine::one_face`] on image bytes (decoded with the engine's limits).
    pub fn one_face_bytes(&self, bytes: &[u8], budget: &Budget) -> Result<OneFace, VisionError> {
        self.one_face_bytes_with(bytes, &OneFaceOptions::default(), budget)
    }

    /// [`Engine::one_face_with`] on image bytes (decoded with the engine's limits).
    pub fn one_face_bytes_with(
        &self,
        bytes: &[u8],
        opts: &OneFaceOptions,
        budget: &Budget,
    ) -> Result<OneFace, VisionError> {
        budget.check()?;
        let img = crate::decode(bytes, &self.opts.decode_limits)?;
        self.one_face_with(&img, opts, budget)
    }

    /// The tracked face in `img`, found from the previous frame's box with
    /// two landmark passes: landmarks on the previous box give a new box
    /// (where the detector's box sat relative to the landmarks), landmarks
    /// on that box must land where the first pass did. `None` (ask the
    /// detector) when the face moved or changed size too much, or the
    /// passes disagree (no face the landmark model follows).
    fn track(&self, img: &RgbImage, t: &Track) -> Result<Option<Tracked>, VisionError> {
        let lm1 = self.landmarks(img, &t.bbox)?;
        let b1 = t.box_of(&lm1);
        let (moved, scale) = box_change(&t.bbox, &b1);
        let (w, h) = (img.width() as f32, img.height() as f32);
        let (cx, cy) = ((b1.x1 + b1.x2) / 2.0, (b1.y1 + b1.y2) / 2.0);
        if !(moved <= TRACK_MAX_MOVE
            && (1.0 / TRACK_MAX_SCALE..=TRACK_MAX_SCALE).contains(&scale)
            && (0.0..w).contains(&cx)
            && (0.0..h).contains(&cy))
        {
            return Ok(None);
        }
        let lm2 = self.landmarks(img, &b1)?;
        let (drift, scale2) = box_change(&b1, &t.box_of(&lm2));
        if !(drift <= TRACK_MAX_DRIFT && (scale2 - 1.0).abs() <= TRACK_MAX_DRIFT) {
            return Ok(None);
        }
        Ok(Some((
            Detection {
                bbox: b1,
                score: t.score,
            },
            lm2,
        )))
    }

    /// The cues of one frame's face: its landmarks (given, or found in the
    /// box) and what they give, `fr_eye`, and `fr_pose` with
    /// [`CueSource::Models`]. The one place a frame's cues are made, for a
    /// detected, a tracked and a re-detected frame alike.
    fn cues(
        &self,
        img: &RgbImage,
        det: &Detection,
        lm: Option<Vec<[f32; 2]>>,
        source: CueSource,
    ) -> Result<FrameCues, VisionError> {
        let lm = match lm {
            Some(lm) => lm,
            None => self.landmarks(img, &det.bbox)?,
        };
        let pose_model = source == CueSource::Models && self.pose.is_some();
        let [yaw, pitch, roll] = if pose_model {
            self.pose(img, &det.bbox)?
        } else {
            pose_from_landmarks(&lm)
        };
        let [le, re] = match &self.eye {
            Some(_) => self.eyes(img, &lm)?,
            None => [f32::NAN; 2],
        };
        let bbox = det.bbox.clamp_to(img.width(), img.height());
        Ok(FrameCues {
            bbox,
            det_score: det.score,
            face_px: bbox.width().min(bbox.height()),
            yaw,
            pitch,
            roll,
            left_eye_open: le,
            right_eye_open: re,
            left_eye_ratio: eye_ratio(&lm, 36),
            right_eye_ratio: eye_ratio(&lm, 42),
            mouth_open: mouth_open(&lm),
            pose_model,
            landmarks68: lm,
        })
    }

    /// A multi-frame active challenge (turn the head, blink, open the mouth)
    /// with the least work: every frame gets detection, landmarks and cues
    /// ([`FrameCues`]: yaw, pitch, roll, eye openness, mouth opening); the
    /// first frame with a recognisable face is gated as in
    /// [`Engine::one_face`] and embedded (the same-person anchor); the best
    /// frame (most frontal, then sharpest by detector score) is embedded and
    /// gets passive liveness. Frames between them are tied to the anchor by
    /// box overlap (`continuous`, [`same_face`]). Two or more sure detections
    /// in a frame the detector sees stop the work
    /// ([`CaptureResult::SeveralFaces`]). The budget is checked between
    /// frames and stages.
    ///
    /// With [`CaptureOptions::track`] the detector sees the anchor frame (and
    /// the frames before it), the last frame, the best (embedded) frame and
    /// every frame where tracking was lost; the other frames find the face
    /// from the previous frame's box (two landmark calls,
    /// about 1 ms, instead of the detector's 4 ms) when it has the previous
    /// frame's size. So a second person is caught on the first, the embedded
    /// and the last frame, and on any frame where the tracked face jumps or
    /// the picture size changes; one who passes through only frames in
    /// between is not (the decision reads only the tracked face's cues
    /// there).
    ///
    /// The best frame is always seen by the detector; should it not confirm
    /// the tracked face there, the track was lost somewhere since the last
    /// detected frame: the detector checks the tracked frames from there in
    /// order, each one it confirms gets the detector's box and cues, and at
    /// the first it does not (the frame where the track was lost) the frame
    /// loop resumes with the detector, as without tracking, and re-seeds the
    /// track there. The frames before it are kept. Every frame the detector
    /// sees again may stop the work on a second face. ([`Captured::lost`]
    /// names the frames where the loop resumed.)
    pub fn challenge(
        &self,
        frames: &[RgbImage],
        opts: &CaptureOptions,
        budget: &Budget,
    ) -> Result<CaptureResult, VisionError> {
        crate::set_flush_denormals();
        // The pose source inside the frame loop: the model on every frame,
        // or the landmarks first and the model afterwards where needed.
        let per_frame = match opts.pose {
            PoseFrames::Every => opts.cues,
            _ => CueSource::Landmarks,
        };
        let n = frames.len();
        let mut s = Scan::new(n);
        let mut lost: Vec<usize> = Vec::new();
        let mut from = 0;
        let best = loop {
            s.truncate(from);
            if let Some(stop) = self.scan(frames, opts, per_frame, from, &mut s, budget)? {
                return Ok(stop);
            }
            let Some(first) = s.anchor.as_ref().map(|a| a.0) else {
                return Ok(CaptureResult::NoFace);
            };
            let best = best_frame(&s.cues, first, opts.pose);
            if !opts.track || s.detected[best] {
                break best;
            }
            // The embedded frame gets the full detector too: its embedding
            // and liveness are those of the detector's box, and a second
            // person there stops the work.
            budget.check()?;
            match self.redetect(frames, best, per_frame, &mut s)? {
                Redetected::Same(d, c) => {
                    s.confirm(best, d, c);
                    break best;
                }
                Redetected::Several(faces) => {
                    return Ok(CaptureResult::SeveralFaces { frame: best, faces })
                }
                Redetected::Lost => {}
            }
            // The track was lost on the way from the last detected frame:
            // the detector checks the tracked frames since then in order;
            // the loop resumes with the detector from the first it does not
            // confirm (the embedded frame when it confirms them all),
            // re-seeding the track there.
            let seed = (0..best).rev().find(|&i| s.detected[i]).unwrap_or(first);
            let mut at = best;
            for i in seed + 1..best {
                budget.check()?;
                match self.redetect(frames, i, per_frame, &mut s)? {
                    Redetected::Same(d, c) => s.confirm(i, d, c),
                    Redetected::Several(faces) => {
                        return Ok(CaptureResult::SeveralFaces { frame: i, faces })
                    }
                    Redetected::Lost => {
                        at = i;
                        break;
                    }
                }
            }
            s.force[at] = true;
            lost.push(at);
            from = at;
        };
        let Scan {
            mut cues,
            dets: dets_of,
            anchor,
            ..
        } = s;
        let (first, first_det, first_g) = anchor.expect("the loop ends with an anchor");
        if opts.pose != PoseFrames::Every && opts.cues == CueSource::Models && self.pose.is_some() {
            self.model_pose_where_needed(frames, &dets_of, &mut cues, opts.pose, budget)?;
        }
        let boxes: Vec<&BBox> = dets_of.iter().flatten().map(|d| &d.bbox).collect();
        let continuous = boxes.windows(2).all(|w| same_face(w[0], w[1]));
        budget.check()?;
        let first_face = self.complete(
            &frames[first],
            &first_det,
            Gated {
                embedding: first_g.embedding.clone(),
                lm: first_g.lm.clone(),
                five: first_g.five,
                aligned: first_g.aligned.clone(),
                norm: first_g.norm,
            },
            Extras {
                liveness: opts.liveness && best == first,
                pose: false,
                eyes: false,
                second: best == first,
            },
        )?;
        let (best, best_face) = if best == first {
            (first, first_face.clone())
        } else {
            let d = dets_of[best].expect("a frame with cues has a detection");
            let lm = cues[best].as_ref().unwrap().landmarks68.clone();
            budget.check()?;
            match self.gated_with(&frames[best], &d, lm)? {
                Some(g) => {
                    budget.check()?;
                    let face = self.complete(
                        &frames[best],
                        &d,
                        g,
                        Extras {
                            liveness: opts.liveness,
                            pose: false,
                            eyes: false,
                            second: true,
                        },
                    )?;
                    (best, face)
                }
                // Not recognisable there: the anchor frame is the best one.
                None => {
                    let mut f = first_face.clone();
                    if opts.liveness && self.liveness.is_some() {
                        f.liveness = Some(self.liveness(&frames[first], &first_det.bbox)?);
                    }
                    (first, f)
                }
            }
        };
        let with_cues = |mut f: Face, c: &FrameCues| {
            if c.pose_model {
                f.quality.yaw = Some(c.yaw);
                f.quality.pitch = Some(c.pitch);
                f.quality.roll = Some(c.roll);
            }
            f.quality.left_eye_open = Some(c.left_eye_open);
            f.quality.right_eye_open = Some(c.right_eye_open);
            f
        };
        let first_face = with_cues(first_face, cues[first].as_ref().unwrap());
        let best_face = with_cues(best_face, cues[best].as_ref().unwrap());
        let similarity = match (&first_face.embedding, &best_face.embedding) {
            (Some(a), Some(b)) if best != first => compare(a, b),
            _ => 1.0,
        };
        Ok(CaptureResult::Captured(Box::new(Captured {
            frames: cues,
            first,
            best,
            first_face,
            best_face,
            similarity,
            continuous,
            lost,
        })))
    }

    /// The challenge's frame loop from frame `from` on, into `s` (which
    /// holds the frames before it). `Some` when the work stops (a second
    /// face).
    #[allow(clippy::too_many_arguments)]
    fn scan(
        &self,
        frames: &[RgbImage],
        opts: &CaptureOptions,
        per_frame: CueSource,
        from: usize,
        s: &mut Scan,
        budget: &Budget,
    ) -> Result<Option<CaptureResult>, VisionError> {
        for (i, img) in frames.iter().enumerate().skip(from) {
            budget.check()?;
            // The last frame always gets the detector (a second person who
            // came in during the challenge is seen there).
            // A frame of another size is from another source, not motion.
            let last_frame = i + 1 == frames.len();
            let same_size = i > 0 && frames[i - 1].dimensions() == img.dimensions();
            let track = if i > 0 { s.tracks[i - 1] } else { None };
            let trackable = opts.track && !last_frame && same_size && !s.force[i];
            if let Some(t) = track.filter(|_| trackable && s.anchor.is_some()) {
                if let Some((d, lm)) = self.track(img, &t)? {
                    budget.check()?;
                    let c = self.cues(img, &d, Some(lm), per_frame)?;
                    s.push(Some((d, c)), false, Some(Track { bbox: d.bbox, ..t }));
                    continue;
                }
            }
            let dets = self.hits(img, i, s)?;
            let sure = self.sure(&dets);
            if sure >= 2 {
                return Ok(Some(CaptureResult::SeveralFaces {
                    frame: i,
                    faces: sure,
                }));
            }
            let chosen = if s.anchor.is_none() {
                // The anchor frame: gate every candidate, stop at the second face.
                let mut found: Option<(Detection, Gated)> = None;
                for d in &dets {
                    budget.check()?;
                    if let Some(g) = self.gated(img, d)? {
                        if found.is_some() {
                            return Ok(Some(CaptureResult::SeveralFaces { frame: i, faces: 2 }));
                        }
                        found = Some((*d, g));
                    }
                }
                match found {
                    Some((d, g)) => {
                        let lm = g.lm.clone();
                        s.anchor = Some((i, d, g));
                        Some((d, Some(lm)))
                    }
                    None => None,
                }
            } else {
                // Later frames: the detection that continues the face (or the
                // most confident one), no embedding.
                let prev = s.prev(i);
                dets.iter()
                    .find(|d| prev.as_ref().is_some_and(|p| same_face(p, &d.bbox)))
                    .or_else(|| dets.first())
                    .map(|d| (*d, None))
            };
            match chosen {
                Some((d, lm)) => {
                    budget.check()?;
                    let c = self.detected_cues(img, i, &d, lm, per_frame, s)?;
                    let t = Track::new(d.bbox, d.score, &c.landmarks68);
                    s.push(Some((d, c)), true, Some(t));
                }
                None => s.push(None, true, None),
            }
        }
        Ok(None)
    }

    /// The detector's hits on frame `i` (run once per frame: kept in `s`).
    fn hits(&self, img: &RgbImage, i: usize, s: &mut Scan) -> Result<Vec<Detection>, VisionError> {
        if let Some(h) = &s.seen[i] {
            return Ok(h.clone());
        }
        let h = self.detect(img)?;
        s.seen[i] = Some(h.clone());
        Ok(h)
    }

    /// [`Engine::cues`] of a detection on frame `i`, made once per detection.
    fn detected_cues(
        &self,
        img: &RgbImage,
        i: usize,
        d: &Detection,
        lm: Option<Vec<[f32; 2]>>,
        source: CueSource,
        s: &mut Scan,
    ) -> Result<FrameCues, VisionError> {
        if let Some((d0, c)) = &s.made[i] {
            if d0 == d {
                return Ok(c.clone());
            }
        }
        let c = self.cues(img, d, lm, source)?;
        s.made[i] = Some((*d, c.clone()));
        Ok(c)
    }

    /// The full detector on tracked frame `i`: its face (the detection that
    /// is the tracked face, [`same_face`]) with the cues from the detector's
    /// box, as without tracking.
    fn redetect(
        &self,
        frames: &[RgbImage],
        i: usize,
        per_frame: CueSource,
        s: &mut Scan,
    ) -> Result<Redetected, VisionError> {
        let img = &frames[i];
        let dets = self.hits(img, i, s)?;
        let sure = self.sure(&dets);
        if sure >= 2 {
            return Ok(Redetected::Several(sure));
        }
        let Some(t) = s.dets[i] else {
            return Ok(Redetected::Lost);
        };
        let Some(d) = dets.iter().find(|d| same_face(&t.bbox, &d.bbox)).copied() else {
            return Ok(Redetected::Lost);
        };
        let c = self.detected_cues(img, i, &d, None, per_frame, s)?;
        Ok(Redetected::Same(d, c))
    }

    /// `fr_pose` on the frames `which` names (see [`PoseFrames`]),
    /// replacing their landmark pose.
    fn model_pose_where_needed(
        &self,
        frames: &[RgbImage],
        dets: &[Option<Detection>],
        cues: &mut [Option<FrameCues>],
        which: PoseFrames,
        budget: &Budget,
    ) -> Result<(), VisionError> {
        let with_face: Vec<usize> = (0..cues.len()).filter(|&i| cues[i].is_some()).collect();
        let run = |i: usize, cues: &mut [Option<FrameCues>]| -> Result<f32, VisionError> {
            budget.check()?;
            let d = dets[i].expect("a frame with cues has a detection");
            let [yaw, pitch, roll] = self.pose(&frames[i], &d.bbox)?;
            let c = cues[i].as_mut().expect("a frame with a face");
            (c.yaw, c.pitch, c.roll, c.pose_model) = (yaw, pitch, roll, true);
            Ok(yaw)
        };
        match which {
            PoseFrames::Every => {
                for &i in &with_face {
                    run(i, cues)?;
                }
            }
            PoseFrames::First => {
                if let Some(&i) = with_face.first() {
                    run(i, cues)?;
                }
            }
            PoseFrames::UntilYawSpan(span) => {
                // The extremes of the landmark yaw first, then always the
                // frame farthest (in landmark yaw) from those already done:
                // a repeated frame comes last.
                let lm_yaw: Vec<f32> = cues
                    .iter()
                    .map(|c| c.as_ref().map_or(0.0, |c| c.yaw))
                    .collect();
                let mut left = with_face.clone();
                let mut queue: Vec<usize> = Vec::with_capacity(left.len());
                while !left.is_empty() {
                    let k = if queue.len() < 2 {
                        let pick = |a: &usize, b: &usize| lm_yaw[*a].total_cmp(&lm_yaw[*b]);
                        let i = if queue.is_empty() {
                            left.iter().min_by(|a, b| pick(a, b))
                        } else {
                            left.iter().max_by(|a, b| pick(a, b))
                        };
                        let i = *i.expect("not empty");
                        left.iter().position(|&j| j == i).expect("in the list")
                    } else {
                        let gap = |i: usize| {
                            queue
                                .iter()
                                .map(|&q| (lm_yaw[q] - lm_yaw[i]).abs())
                                .fold(f32::INFINITY, f32::min)
                        };
                        (0..left.len())
                            .max_by(|&a, &b| gap(left[a]).total_cmp(&gap(left[b])))
                            .expect("not empty")
                    };
                    queue.push(left.remove(k));
                }
                let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
                for i in queue {
                    let y = run(i, cues)?;
                    (min, max) = (min.min(y), max.max(y));
                    if max - min >= span {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// [`Engine::challenge`] on image bytes: each frame is decoded (with the
    /// engine's limits, header checked first) just before it is analysed, so
    /// a cancelled request stops decoding too.
    pub fn challenge_bytes(
        &self,
        frames: &[&[u8]],
        opts: &CaptureOptions,
        budget: &Budget,
    ) -> Result<CaptureResult, VisionError> {
        // Every frame's header first: an oversized frame refuses the request
        // before any decode.
        for f in frames {
            let (format, w, h) = crate::header_dimensions(f)?;
            let px = u64::from(w) * u64::from(h);
            if px > self.opts.decode_limits.max_pixels {
                return Err(VisionError::TooLarge(format!(
                    "the {format:?} header claims {w}×{h} = {px} pixels; the limit is {}",
                    self.opts.decode_limits.max_pixels
                )));
            }
        }
        let mut imgs = Vec::with_capacity(frames.len());
        for f in frames {
            budget.check()?;
            imgs.push(crate::decode(f, &self.opts.decode_limits)?);
        }
        self.challenge(&imgs, opts, budget)
    }
}
