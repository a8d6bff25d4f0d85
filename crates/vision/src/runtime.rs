//! ONNX Runtime plumbing: one process-wide environment loaded from the pinned
//! shared library, and a small pool of sessions per model so that an
//! [`crate::Engine`] can be used from many threads at once (`Session::run`
//! needs `&mut`).

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

use crate::VisionError;

static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();

/// The process-wide ONNX Runtime environment, loaded on first use from
/// `facegate_assets::onnxruntime_library()` (fetched if missing).
pub(crate) fn environment() -> Result<&'static Environment, VisionError> {
    let env = ENV.get_or_init(|| {
        let lib = facegate_assets::onnxruntime_library().map_err(|e| e.to_string())?;
        let builder = ort::init_from(&lib)
            .map_err(|e| format!("could not load ONNX Runtime from {}: {e}", lib.display()))?;
        builder
            .with_name("facegate")
            .build()
            .map_err(|e| format!("could not create the ONNX Runtime environment: {e}"))
    });
    env.as_ref().map_err(|e| VisionError::Runtime(e.clone()))
}

/// How a model is handed to the runtime: the optimisation level and whether
/// its `PRelu`s are rewritten for the NCHWc layout (see [`crate::onnx_graph`]).
/// Neither changes what the model computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Tuning {
    pub(crate) level: GraphOptimizationLevel,
    pub(crate) rewrite_prelu: bool,
}

impl Tuning {
    /// The plain setting: every optimisation the runtime has, the graph as shipped.
    pub(crate) const PLAIN: Tuning = Tuning {
        level: GraphOptimizationLevel::All,
        rewrite_prelu: false,
    };

    /// The fastest setting per model, measured on one thread with ONNX Runtime
    /// 1.26 (medians of 200 calls, `bench/vision.md`):
    /// - `fr_feature`: the `PRelu` rewrite keeps the NCHWc layout, 6.13 → 5.15 ms;
    /// - `fr_liveness`: its 103- and 13-channel convolutions do not fit NCHWc's
    ///   16-channel blocks, and the reorders around them cost more than the layout
    ///   saves, so it runs without the layout transforms (`Level2`): 4.94 → 4.31 ms
    ///   (the rewrite does not help it: 5.03 ms);
    /// - the other models are fastest as shipped at `All`.
    ///
    /// `FACEGATE_ORT_TUNING=plain` turns this off (for comparisons).
    pub(crate) fn for_model(name: &str) -> Tuning {
        if std::env::var("FACEGATE_ORT_TUNING").as_deref() == Ok("plain") {
            return Tuning::PLAIN;
        }
        match name {
            "fr_feature.onnx" => Tuning {
                rewrite_prelu: true,
                ..Tuning::PLAIN
            },
            "fr_liveness.onnx" => Tuning {
                level: GraphOptimizationLevel::Level2,
                rewrite_prelu: false,
            },
            _ => Tuning::PLAIN,
        }
    }
}

/// One model: its file, its session settings and the idle sessions.
pub(crate) struct Model {
    name: &'static str,
    path: PathBuf,
    tuning: Tuning,
    /// The rewritten graph, when the tuning rewrites it.
    bytes: Option<Vec<u8>>,
    intra_threads: usize,
    idle: Mutex<Vec<Session>>,
}

impl Model {
    /// Loads the named model and builds one session (so that a broken model
    /// or runtime fails at start-up, not on the first request).
    pub(crate) fn load(name: &'static str, intra_threads: usize) -> Result<Model, VisionError> {
        Model::load_tuned(name, intra_threads, Tuning::for_model(name))
    }

    /// [`Model::load`] with the given tuning.
    pub(crate) fn load_tuned(
        name: &'static str,
        intra_threads: usize,
        tuning: Tuning,
    ) -> Result<Model, VisionError> {
        let path = facegate_assets::model(name).map_err(|e| VisionError::Asset(e.to_string()))?;
        let bytes = if tuning.rewrite_prelu {
            let raw = std::fs::read(&path)
                .map_err(|e| VisionError::Asset(format!("cannot read {}: {e}", path.display())))?;
            let (patched, _) = crate::onnx_graph::rewrite_prelu(&raw)
                .map_err(|e| VisionError::Runtime(format!("{name}: {e}")))?;
            Some(patched)
        } else {
            None
        };
        let m = Model {
            name,
            path,
            tuning,
            bytes,
            intra_threads,
            idle: Mutex::new(Vec::new()),
        };
        let s = m.build()?;
        m.idle.lock().unwrap_or_else(|p| p.into_inner()).push(s);
        Ok(m)
    }

    fn build(&self) -> Result<Session, VisionError> {
        let env = environment()?;
        let err = |e: &dyn std::fmt::Display| VisionError::Runtime(format!("{}: {e}", self.name));
        let mut b = Session::builder(env)
            .map_err(|e| err(&e))?
            .with_optimization_level(self.tuning.level)
            .map_err(|e| err(&e))?
            .with_intra_threads(self.intra_threads.max(1))
            .map_err(|e| err(&e))?
            .with_inter_threads(1)
            .map_err(|e| err(&e))?;
        match &self.bytes {
            Some(bytes) => b.commit_from_memory(bytes).map_err(|e| err(&e)),
            None => b.commit_from_file(&self.path).map_err(|e| err(&e)),
        }
    }

    /// Runs the model and returns every output, flattened, in model order.
    pub(crate) fn run_all(
        &self,
        shape: &[usize],
        input: &[f32],
    ) -> Result<Vec<Vec<f32>>, VisionError> {
        self.run(shape, input, &[])
    }

    /// Runs the model on one float input of the given shape and returns the
    /// named outputs (all outputs in model order when `names` is empty), flattened.
    pub(crate) fn run(
        &self,
        shape: &[usize],
        input: &[f32],
        names: &[&str],
    ) -> Result<Vec<Vec<f32>>, VisionError> {
        let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut session = match taken {
            Some(s) => s,
            None => self.build()?,
        };
        let result = (|| {
            let tensor = TensorRef::from_array_view((shape.to_vec(), input))?;
            let outputs = session.run(ort::inputs![tensor])?;
            let mut out = Vec::with_capacity(outputs.len());
            if names.is_empty() {
                for i in 0..outputs.len() {
                    let (_, data) = outputs[i].try_extract_tensor::<f32>()?;
                    out.push(data.to_vec());
                }
            } else {
                for name in names {
                    let value = outputs.get(name).ok_or_else(|| {
                        ort::Error::new(format!("the model has no output named {name:?}"))
                    })?;
                    let (_, data) = value.try_extract_tensor::<f32>()?;
                    out.push(data.to_vec());
                }
            }
            Ok::<_, ort::Error>(out)
        })();
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(session);
        result.map_err(|e| VisionError::Runtime(format!("{}: {e}", self.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Engine, EngineOptions};

    /// The faces of the fixtures, as the engine finds them: (image, box, aligned crop).
    fn fixture_faces(e: &Engine) -> Vec<(image::RgbImage, crate::BBox, image::RgbImage)> {
        let mut out = vec![];
        for name in ["obama.jpg", "obama2.jpg", "biden.jpg", "astronaut.png"] {
            let path = facegate_assets::fixture(name).expect("fixture available");
            let img = crate::decode(&std::fs::read(path).unwrap(), &Default::default()).unwrap();
            for d in e.detect(&img).unwrap() {
                let lm = e.landmarks(&img, &d.bbox).unwrap();
                let aligned = crate::align(&img, &crate::five_points(&lm));
                out.push((img.clone(), d.bbox, aligned));
            }
        }
        assert!(out.len() >= 4, "every fixture has a face");
        out
    }

    fn engine_with(feature: Tuning, liveness: Tuning) -> Engine {
        let mut e = Engine::new(EngineOptions {
            pose: false,
            eyes: false,
            ..Default::default()
        })
        .expect("engine loads");
        e.feature = Model::load_tuned("fr_feature.onnx", 1, feature).unwrap();
        e.liveness = Some(Model::load_tuned("fr_liveness.onnx", 1, liveness).unwrap());
        e
    }

    #[test]
    fn prelu_rewrite_gives_identical_embeddings() {
        let path = facegate_assets::model("fr_feature.onnx").unwrap();
        let (_, rewritten) = crate::onnx_graph::rewrite_prelu(&std::fs::read(path).unwrap())
            .expect("the shipped model parses");
        assert_eq!(rewritten, 33, "every PRelu of fr_feature is rewritten");

        let tuned = Tuning {
            rewrite_prelu: true,
            ..Tuning::PLAIN
        };
        let plain = engine_with(Tuning::PLAIN, Tuning::PLAIN);
        let fast = engine_with(tuned, Tuning::PLAIN);
        for (_, _, aligned) in fixture_faces(&plain) {
            let (a, na) = plain.embed_with_norm(&aligned).unwrap();
            let (b, nb) = fast.embed_with_norm(&aligned).unwrap();
            // Bit for bit: the rewrite computes each value with the same single rounding.
            let differ = a
                .as_slice()
                .iter()
                .zip(b.as_slice())
                .filter(|(x, y)| x.to_bits() != y.to_bits());
            assert_eq!(differ.count(), 0, "embedding values differ");
            assert_eq!(na.to_bits(), nb.to_bits(), "raw norm {na} vs {nb}");
        }
    }

    #[test]
    fn liveness_without_layout_transforms_scores_the_same() {
        let plain = engine_with(Tuning::PLAIN, Tuning::PLAIN);
        let fast = engine_with(Tuning::PLAIN, Tuning::for_model("fr_liveness.onnx"));
        for (img, bbox, _) in fixture_faces(&plain) {
            let a = plain.liveness(&img, &bbox).unwrap();
            let b = fast.liveness(&img, &bbox).unwrap();
            // Other kernels sum in another order: equal to float rounding, not bit for bit.
            assert!((a - b).abs() < 1e-4, "P(live) {a} vs {b}");
        }
    }
}
