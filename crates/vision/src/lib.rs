//! Pixels to faces: facegate's face engine.
//!
//! `facegate-vision` turns image bytes into [`Face`]s: it decodes (JPEG, PNG,
//! WebP, with size limits and EXIF orientation), detects every face, finds 68
//! landmarks, aligns the face to the ArcFace 112×112 template, computes a
//! 512-d unit-length [`Embedding`], and measures quality (size, sharpness,
//! head pose, eye openness) and passive liveness. It knows nothing about
//! people, consent or storage; `gallery` and `server` build on it.
//!
//! The models are the ONNX files of `faceplugin-face-recognition-js@0.0.1`,
//! run through ONNX Runtime (`ort`, loaded dynamically from the pinned
//! `onnxruntime==1.26.0` wheel); `facegate-assets` fetches and checks both.
//!
//! ```no_run
//! let engine = facegate_vision::Engine::new(Default::default())?;
//! let a = engine.analyze(&std::fs::read("a.jpg").unwrap())?;
//! let b = engine.analyze(&std::fs::read("b.jpg").unwrap())?;
//! let (ea, eb) = (a[0].embedding.as_ref().unwrap(), b[0].embedding.as_ref().unwrap());
//! let same = facegate_vision::compare(ea, eb) >= facegate_vision::DEFAULT_THRESHOLD;
//! # Ok::<(), facegate_vision::VisionError>(())
//! ```

mod budget;
mod capture;
pub mod challenge;
mod cpu;
mod decode;
mod denormals;
mod dlib_resnet;
mod embedding;
mod export;
mod imgops;
mod mobilefacenet;
mod onnx_graph;
mod runtime;
mod stages;

pub use budget::Budget;
pub use capture::{
    pose_from_landmarks, same_face, CaptureOptions, CaptureResult, Captured, CueSource,
    FrameCues as CaptureCues, OneFace, OneFaceOptions, PoseFrames, SAME_FACE_IOU,
};
pub use challenge::{Action, ChallengeFailure, FrameCues, Framing, LIVENESS_THRESHOLD};
pub use cpu::CpuInfo;
pub use decode::{decode, header_dimensions, DecodeLimits};
pub use denormals::{flushing_denormals, set_flush_denormals};
pub use dlib_resnet::{
    chip as dlib_chip, compare_second, SecondEmbedding, FUSED_MODEL_ID, SECOND_DIM, SECOND_MODEL_ID,
};
pub use embedding::{compare, Embedding, DEFAULT_THRESHOLD, EMBEDDING_DIM, MODEL_ID};
pub use export::{export_models, ExportedModel, SECOND_ONNX, THIRD_ONNX};
pub use image::RgbImage;
pub use imgops::{similarity, warp_affine, Affine};
pub use mobilefacenet::{compare_third, ThirdEmbedding, THIRD_DIM, THIRD_MODEL_ID};
pub use stages::{align, five_points, Detection, ARCFACE_TEMPLATE};

use runtime::Model;

/// Everything that can go wrong between bytes and faces.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// The input is not an image format the engine accepts.
    #[error("unsupported image: {0}")]
    UnsupportedFormat(String),
    /// The input exceeds a byte or pixel limit.
    #[error("image too large: {0}")]
    TooLarge(String),
    /// The input is truncated or corrupt.
    #[error("corrupt image: {0}")]
    Corrupt(String),
    /// A model or the runtime library could not be provided.
    #[error("model files unavailable: {0}")]
    Asset(String),
    /// ONNX Runtime failed to load or run a model.
    #[error("inference failed: {0}")]
    Runtime(String),
    /// An embedding vector is malformed.
    #[error("invalid embedding: {0}")]
    InvalidEmbedding(String),
    /// The request's [`Budget`] ran out (deadline) or was cancelled (the
    /// client went away); the work stopped between two stages.
    #[error("stopped: {0}")]
    Stopped(String),
}

/// A box in image pixels: `(x1, y1)` top-left, `(x2, y2)` bottom-right.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn width(&self) -> f32 {
        self.x2 - self.x1
    }
    pub fn height(&self) -> f32 {
        self.y2 - self.y1
    }
    /// Intersection over union with another box.
    pub fn iou(&self, o: &BBox) -> f32 {
        let iw = (self.x2.min(o.x2) - self.x1.max(o.x1)).max(0.0);
        let ih = (self.y2.min(o.y2) - self.y1.max(o.y1)).max(0.0);
        let inter = iw * ih;
        let union = self.width() * self.height() + o.width() * o.height() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }
    fn clamp_to(&self, w: u32, h: u32) -> BBox {
        let (w, h) = (w as f32, h as f32);
        BBox {
            x1: self.x1.clamp(0.0, w),
            y1: self.y1.clamp(0.0, h),
            x2: self.x2.clamp(0.0, w),
            y2: self.y2.clamp(0.0, h),
        }
    }
}

/// Quality cues of one face: what a capture check or an active liveness
/// challenge (turn your head, blink) needs.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quality {
    /// Shorter side of the face box inside the image, in pixels.
    pub face_px: f32,
    /// L2 norm of the raw `fr_feature` output before normalisation: a
    /// recognisability score (as in MagFace). Clear frontal faces score 3–4.5;
    /// non-faces (a cat, a coffee cup, texture) and faces too blurred, dark or
    /// turned away to recognise score below 2.5.
    pub embedding_norm: f32,
    /// Variance of the Laplacian of the aligned 112×112 grey face (higher is sharper; below ~50 is blurred).
    pub sharpness: f32,
    /// Head yaw in degrees (`fr_pose`), `None` when the pose stage is off.
    pub yaw: Option<f32>,
    /// Head pitch in degrees.
    pub pitch: Option<f32>,
    /// Head roll in degrees.
    pub roll: Option<f32>,
    /// Probability (0..1) that the eye on the image's left (landmarks 36–41) is open (`fr_eye`).
    pub left_eye_open: Option<f32>,
    /// Probability (0..1) that the eye on the image's right (landmarks 42–47) is open.
    pub right_eye_open: Option<f32>,
}

/// The second and third models' inputs for one face, kept when their runs
/// are deferred ([`EngineOptions::defer_other_embeddings`]): dlib's 150×150
/// chip and the 112×112 aligned face. Face information: the pixels are wiped
/// when this is dropped, and `Debug` prints none of them.
#[derive(Clone)]
pub struct Deferred {
    pub(crate) dlib_chip: Option<image::RgbImage>,
    pub(crate) aligned: Option<image::RgbImage>,
}

impl Drop for Deferred {
    fn drop(&mut self) {
        for img in [&mut self.dlib_chip, &mut self.aligned]
            .into_iter()
            .flatten()
        {
            zeroize::Zeroize::zeroize(&mut **img);
        }
    }
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Deferred(second {}, third {}, redacted)",
            self.dlib_chip.is_some(),
            self.aligned.is_some()
        )
    }
}

/// The second and third embeddings of one face, each where the engine
/// loads its model ([`Engine::other_embeddings`]).
#[derive(Debug, Clone, Default)]
pub struct OtherEmbeddings {
    pub second: Option<SecondEmbedding>,
    pub third: Option<ThirdEmbedding>,
}

/// One face found in an image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Face {
    /// The (square) face box, clamped to the image.
    pub bbox: BBox,
    /// Detector confidence, 0..1.
    pub det_score: f32,
    /// The 68 landmarks (iBUG 300-W order) in image pixels.
    pub landmarks68: Vec<[f32; 2]>,
    /// Eye centres, nose tip, mouth corners, in image pixels (the alignment points).
    pub landmarks5: [[f32; 2]; 5],
    /// The identity embedding; never serialised (templates are not logged).
    #[serde(skip)]
    pub embedding: Option<Embedding>,
    /// The second, independent embedding (dlib's ResNet descriptor), when
    /// [`EngineOptions::second_embedding`] is on; never serialised.
    #[serde(skip)]
    pub second_embedding: Option<SecondEmbedding>,
    /// The third, independent embedding (MobileFaceNet), when
    /// [`EngineOptions::third_embedding`] is on; never serialised.
    #[serde(skip)]
    pub third_embedding: Option<ThirdEmbedding>,
    /// With [`EngineOptions::defer_other_embeddings`]: what the second and
    /// third models need, kept for [`Engine::other_embeddings`] instead of
    /// running them now; never serialised.
    #[serde(skip)]
    pub deferred: Option<Deferred>,
    pub quality: Quality,
    /// Passive liveness: probability that the face is live (not a photo or screen).
    pub liveness: Option<f32>,
}

/// Engine settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// ONNX Runtime intra-op threads per model call (1 suits a server running
    /// many requests at once; 2 lowers the latency of a single request).
    pub intra_threads: usize,
    /// Minimum detector confidence.
    pub det_threshold: f32,
    /// IoU above which overlapping detections are merged.
    pub nms_iou: f32,
    /// Keep embeddings in the result (the feature model always runs: its
    /// output norm is the recognisability gate).
    pub embedding: bool,
    /// The recognisability gate: a detection whose raw embedding norm
    /// ([`Quality::embedding_norm`]) is below this is dropped as a non-face
    /// or an unrecognisable face. Chosen on `../shared/eval/detection`: the
    /// false detections in no-face images (a cat, a coffee cup, stars) score
    /// 1.4–2.35 (detector 0.75–0.97); clear faces 2.6–4.7.
    pub min_embedding_norm: f32,
    /// A lower gate for detections the detector is sure of (score ≥
    /// `confident_detection`): small, soft faces such as LFW's 250×250
    /// thumbnails score 2.2–2.5 at detector scores ≥ 0.996.
    pub min_embedding_norm_confident: f32,
    /// Detector score at or above which `min_embedding_norm_confident` applies.
    pub confident_detection: f32,
    /// Group-photo mode: also scan the image with a 15 % margin and 2×2
    /// overlapping tiles (6 detector runs instead of 1), for small faces and
    /// faces cut by the border.
    pub detect_tiles: bool,
    /// Also compute the second embedding ([`Face::second_embedding`]).
    pub second_embedding: bool,
    /// Also compute the third embedding ([`Face::third_embedding`]).
    pub third_embedding: bool,
    /// Load the second and third models but do not run them on a face:
    /// keep their inputs ([`Face::deferred`], two small chips of the face)
    /// so the caller runs them with [`Engine::other_embeddings`] only when
    /// a decision needs them (the gallery's cascade). Off by default.
    pub defer_other_embeddings: bool,
    /// Compute passive liveness.
    pub liveness: bool,
    /// Compute head pose.
    pub pose: bool,
    /// Compute eye openness.
    pub eyes: bool,
    /// When nothing is found upright, also look at the image turned by 90°, 180° and 270°
    /// (a phone held sideways without an EXIF tag).
    pub try_rotations: bool,
    /// Limits for [`Engine::analyze`].
    pub decode_limits: DecodeLimits,
    /// ONNX Runtime settings per model as measured fastest (the NCHWc rewrite
    /// for `fr_feature` and `fr_liveness`); `false` runs every model as
    /// shipped at every optimisation, for comparisons (the CLI sets it from
    /// `FACEGATE_ORT_TUNING=plain`).
    pub ort_tuning: bool,
    /// Subnormal weights set to zero at load and FTZ/DAZ on every thread that
    /// runs a model; `false` loads the models as shipped and runs them with
    /// IEEE subnormals, to measure what the flush saves (the CLI sets it from
    /// `FACEGATE_DENORMALS=keep`).
    pub flush_denormals: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            intra_threads: 1,
            det_threshold: 0.5,
            min_embedding_norm: 2.5,
            min_embedding_norm_confident: 2.0,
            confident_detection: 0.995,
            detect_tiles: false,
            nms_iou: 0.4,
            embedding: true,
            second_embedding: false,
            third_embedding: false,
            defer_other_embeddings: false,
            liveness: true,
            pose: true,
            eyes: true,
            try_rotations: true,
            decode_limits: DecodeLimits::default(),
            ort_tuning: true,
            flush_denormals: true,
        }
    }
}

/// The face engine: the loaded models and their settings. `Send + Sync`; share
/// one engine (e.g. in an `Arc`) between threads: each model keeps a small pool
/// of ONNX Runtime sessions, so concurrent calls do not wait on each other.
pub struct Engine {
    opts: EngineOptions,
    detect: Model,
    landmark: Model,
    feature: Model,
    second: Option<Model>,
    third: Option<Model>,
    liveness: Option<Model>,
    pose: Option<Model>,
    eye: Option<Model>,
}

impl Engine {
    /// Loads the models the options ask for (fetching them if missing).
    pub fn new(opts: EngineOptions) -> Result<Engine, VisionError> {
        let (t, tuned, flush) = (opts.intra_threads, opts.ort_tuning, opts.flush_denormals);
        let one = |name| Model::load(name, t, tuned, flush);
        let load = |on: bool, name| if on { one(name).map(Some) } else { Ok(None) };
        Ok(Engine {
            detect: one("fr_detect.onnx")?,
            landmark: one("fr_landmark.onnx")?,
            feature: one("fr_feature.onnx")?,
            second: if opts.second_embedding {
                let (path, graph) = dlib_resnet::onnx_from_weights()?;
                Some(Model::from_graph_with(
                    dlib_resnet::WEIGHTS,
                    path,
                    graph,
                    t,
                    flush,
                    runtime::Tuning::for_model(dlib_resnet::WEIGHTS, tuned),
                )?)
            } else {
                None
            },
            third: if opts.third_embedding {
                let (path, graph) = mobilefacenet::onnx_from_weights()?;
                Some(Model::from_graph_with(
                    mobilefacenet::WEIGHTS,
                    path,
                    graph,
                    t,
                    flush,
                    runtime::Tuning::for_model(mobilefacenet::WEIGHTS, tuned),
                )?)
            } else {
                None
            },
            liveness: load(opts.liveness, "fr_liveness.onnx")?,
            pose: load(opts.pose, "fr_pose.onnx")?,
            eye: load(opts.eyes, "fr_eye.onnx")?,
            opts,
        })
    }

    /// Model calls made so far, all models together (a measure of the work
    /// a request cost that does not depend on the machine).
    pub fn model_calls(&self) -> u64 {
        [&self.detect, &self.landmark, &self.feature]
            .into_iter()
            .chain(&self.second)
            .chain(&self.third)
            .chain(&self.liveness)
            .chain(&self.pose)
            .chain(&self.eye)
            .map(|m| m.calls())
            .sum()
    }

    /// Model calls made so far, per model file.
    pub fn model_calls_by_model(&self) -> Vec<(&'static str, u64)> {
        [&self.detect, &self.landmark, &self.feature]
            .into_iter()
            .chain(&self.second)
            .chain(&self.third)
            .chain(&self.liveness)
            .chain(&self.pose)
            .chain(&self.eye)
            .map(|m| (m.name, m.calls()))
            .collect()
    }

    /// How many subnormal weights the load set to zero, per model.
    pub fn flushed_weights(&self) -> Vec<(&'static str, usize)> {
        [&self.detect, &self.landmark, &self.feature]
            .into_iter()
            .chain(&self.liveness)
            .chain(&self.pose)
            .chain(&self.eye)
            .map(|m| (m.name, m.flushed))
            .collect()
    }

    /// The options this engine was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Decodes `bytes` (see [`decode`]) and analyses the image.
    pub fn analyze(&self, bytes: &[u8]) -> Result<Vec<Face>, VisionError> {
        set_flush_denormals();
        let img = decode(bytes, &self.opts.decode_limits)?;
        self.analyze_image(&img)
    }

    /// Finds and analyses every face in an image, largest-confidence first.
    pub fn analyze_image(&self, img: &RgbImage) -> Result<Vec<Face>, VisionError> {
        set_flush_denormals();
        let faces = self.faces(img)?;
        if !faces.is_empty() || !self.opts.try_rotations {
            return Ok(faces);
        }
        for quarter in [1u8, 3, 2] {
            let turned = match quarter {
                1 => image::imageops::rotate90(img),
                2 => image::imageops::rotate180(img),
                _ => image::imageops::rotate270(img),
            };
            let found = self.faces(&turned)?;
            if found.is_empty() {
                continue;
            }
            let (w, h) = (img.width() as f32, img.height() as f32);
            // Maps a point of the turned image back to the original.
            let back = |p: [f32; 2]| match quarter {
                1 => [p[1], h - p[0]],
                2 => [w - p[0], h - p[1]],
                _ => [w - p[1], p[0]],
            };
            let mut faces = Vec::with_capacity(found.len());
            for mut f in found {
                let (a, b) = (back([f.bbox.x1, f.bbox.y1]), back([f.bbox.x2, f.bbox.y2]));
                f.bbox = BBox {
                    x1: a[0].min(b[0]),
                    y1: a[1].min(b[1]),
                    x2: a[0].max(b[0]),
                    y2: a[1].max(b[1]),
                };
                f.landmarks68.iter_mut().for_each(|p| *p = back(*p));
                f.landmarks5.iter_mut().for_each(|p| *p = back(*p));
                if let Some(r) = f.quality.roll.as_mut() {
                    *r += match quarter {
                        1 => -90.0,
                        2 => 180.0,
                        _ => 90.0,
                    };
                    if *r > 180.0 {
                        *r -= 360.0;
                    }
                }
                faces.push(f);
            }
            return Ok(faces);
        }
        Ok(Vec::new())
    }

    /// Detection, then the per-face pipeline, keeping the faces that pass the
    /// recognisability gate.
    fn faces(&self, img: &RgbImage) -> Result<Vec<Face>, VisionError> {
        let mut faces = Vec::new();
        for d in self.detect(img)? {
            if let Some(f) = self.face(img, &d)? {
                faces.push(f);
            }
        }
        Ok(faces)
    }

    /// The full per-face pipeline after detection; `None` when the detection
    /// fails the recognisability gate.
    fn face(&self, img: &RgbImage, det: &Detection) -> Result<Option<Face>, VisionError> {
        match self.gated(img, det)? {
            Some(g) => self.complete(img, det, g, capture::Extras::ALL).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn engine_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Engine>();
        check::<super::Embedding>();
    }
}
