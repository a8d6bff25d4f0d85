//! ONNX Runtime plumbing: one process-wide environment loaded from the pinned
//! shared library, and a small pool of sessions per model so that an
//! [`crate::Engine`] can be used from many threads at once (`Session::run`
//! needs `&mut`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
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
/// its graph is rewritten for the NCHWc layout (channels padded to 16, `PRelu`
/// rewritten: see [`crate::onnx_graph`]). Neither changes what the model computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Tuning {
    pub(crate) level: GraphOptimizationLevel,
    pub(crate) nchwc_rewrite: bool,
}

impl Tuning {
    /// The plain setting: every optimisation the runtime has, the graph as shipped.
    pub(crate) const PLAIN: Tuning = Tuning {
        level: GraphOptimizationLevel::All,
        nchwc_rewrite: false,
    };

    /// The graph rewritten for the NCHWc layout, every optimisation on.
    pub(crate) const NCHWC: Tuning = Tuning {
        level: GraphOptimizationLevel::All,
        nchwc_rewrite: true,
    };

    /// The fastest setting per model, measured on one thread with ONNX Runtime
    /// 1.26 (medians of 200 calls, `bench/vision.md`):
    /// - `fr_feature` (33 `PRelu`s): the rewrite keeps the NCHWc layout, 6.13 → 5.15 ms;
    /// - `fr_liveness` (33 `PRelu`s, blocks 103, 13, 231 … channels wide): as
    ///   shipped 4.94 ms at `All` and 4.31 ms at `Level2` (no layout transforms);
    ///   rewritten (15 blocks padded) 3.09 ms at `All`;
    /// - the third model (MobileFaceNet, 33 `PRelu`s once folded, blocks already
    ///   multiples of 16): the rewrite keeps the NCHWc layout, 3.69 → 2.81 ms
    ///   (median of 60 calls, AMD EPYC, every value within 1e-5:
    ///   `mobilefacenet::tests::nchwc_rewrite_keeps_the_third_embedding_within_1e5`);
    /// - the other models have no `PRelu` and fit the blocks: as shipped (or
    ///   as built, for the second model) at `All`.
    ///
    /// `tuned: false` ([`crate::EngineOptions::ort_tuning`], which the CLI
    /// sets from `FACEGATE_ORT_TUNING=plain`) turns this off (for comparisons).
    pub(crate) fn for_model(name: &str, tuned: bool) -> Tuning {
        if !tuned {
            return Tuning::PLAIN;
        }
        match name {
            "fr_feature.onnx" | "fr_liveness.onnx" | crate::mobilefacenet::WEIGHTS => Tuning::NCHWC,
            _ => Tuning::PLAIN,
        }
    }
}

#[cfg(test)]
thread_local! {
    /// The MXCSR a model call on this thread ran with (tests check FTZ/DAZ).
    pub(crate) static LAST_RUN_MXCSR: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// One model: its graph (as handed to the runtime), its session settings and
/// the idle sessions.
pub(crate) struct Model {
    pub(crate) name: &'static str,
    tuning: Tuning,
    /// The graph after the load-time rewrites (subnormal weights flushed,
    /// and the NCHWc rewrite when the tuning asks for it).
    bytes: Vec<u8>,
    /// Subnormal weights set to zero at load, and FTZ/DAZ on every thread
    /// that runs the model (`false` only in tests that compare against the
    /// model as shipped).
    flush: bool,
    /// How many subnormal initializer values the load flushed.
    pub(crate) flushed: usize,
    intra_threads: usize,
    idle: Mutex<Vec<Session>>,
    /// Model calls so far (tests count the work a request costs).
    calls: AtomicU64,
}

impl Model {
    /// Loads the named model and builds one session (so that a broken model
    /// or runtime fails at start-up, not on the first request).
    ///
    /// `flush: false` ([`crate::EngineOptions::flush_denormals`], which the
    /// CLI sets from `FACEGATE_DENORMALS=keep`) loads the model as shipped and
    /// runs it with IEEE subnormals (FTZ/DAZ cleared), to measure what the
    /// flush saves; `tuned` as in [`Tuning::for_model`].
    pub(crate) fn load(
        name: &'static str,
        intra_threads: usize,
        tuned: bool,
        flush: bool,
    ) -> Result<Model, VisionError> {
        Model::load_with(name, intra_threads, Tuning::for_model(name, tuned), flush)
    }

    /// [`Model::load`] with the given tuning.
    #[cfg(test)]
    pub(crate) fn load_tuned(
        name: &'static str,
        intra_threads: usize,
        tuning: Tuning,
    ) -> Result<Model, VisionError> {
        Model::load_with(name, intra_threads, tuning, true)
    }

    /// [`Model::load_tuned`], with subnormals flushed (`flush`) or left as shipped.
    pub(crate) fn load_with(
        name: &'static str,
        intra_threads: usize,
        tuning: Tuning,
        flush: bool,
    ) -> Result<Model, VisionError> {
        let path = facegate_assets::model(name).map_err(|e| VisionError::Asset(e.to_string()))?;
        let mut bytes = std::fs::read(&path)
            .map_err(|e| VisionError::Asset(format!("cannot read {}: {e}", path.display())))?;
        let graph_err =
            |e: crate::onnx_graph::GraphError| VisionError::Runtime(format!("{name}: {e}"));
        let mut flushed = 0;
        if flush {
            (bytes, flushed) = crate::onnx_graph::flush_denormals(&bytes).map_err(graph_err)?;
            tracing::debug!(model = name, flushed, "subnormal weights set to zero");
        }
        if tuning.nchwc_rewrite {
            (bytes, _, _) = crate::onnx_graph::for_nchwc(&bytes).map_err(graph_err)?;
        }
        let m = Model {
            name,
            tuning,
            bytes,
            flush,
            flushed,
            intra_threads,
            idle: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
        };
        let s = m.build()?;
        m.idle.lock().unwrap_or_else(|p| p.into_inner()).push(s);
        Ok(m)
    }

    /// A model whose ONNX graph was built in memory (from weights in another
    /// format, read from `_path`), every optimisation on; subnormal weights
    /// flushed like every other model's (see [`Model::load`]).
    #[cfg(test)]
    pub(crate) fn from_graph(
        name: &'static str,
        path: PathBuf,
        graph: Vec<u8>,
        intra_threads: usize,
    ) -> Result<Model, VisionError> {
        Model::from_graph_with(name, path, graph, intra_threads, true, Tuning::PLAIN)
    }

    /// [`Model::from_graph`], with subnormals flushed (`flush`) or left as
    /// shipped (see [`Model::load`]), and the given tuning (the NCHWc rewrite
    /// after the flush, as [`Model::load`] does it).
    pub(crate) fn from_graph_with(
        name: &'static str,
        _path: PathBuf,
        graph: Vec<u8>,
        intra_threads: usize,
        flush: bool,
        tuning: Tuning,
    ) -> Result<Model, VisionError> {
        let mut bytes = graph;
        let mut flushed = 0;
        let graph_err =
            |e: crate::onnx_graph::GraphError| VisionError::Runtime(format!("{name}: {e}"));
        if flush {
            (bytes, flushed) = crate::onnx_graph::flush_denormals(&bytes).map_err(graph_err)?;
            tracing::debug!(model = name, flushed, "subnormal weights set to zero");
        }
        if tuning.nchwc_rewrite {
            (bytes, _, _) = crate::onnx_graph::for_nchwc(&bytes).map_err(graph_err)?;
        }
        let m = Model {
            name,
            tuning,
            bytes,
            flush,
            flushed,
            intra_threads,
            idle: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
        };
        let s = m.build()?;
        m.idle.lock().unwrap_or_else(|p| p.into_inner()).push(s);
        Ok(m)
    }

    /// Model calls so far.
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
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
        if self.flush {
            // FTZ/DAZ on the runtime's own intra-op threads (the caller's
            // thread is set in `run`).
            b = b
                .with_config_entry("session.set_denormal_as_zero", "1")
                .map_err(|e| err(&e))?;
        }
        b.commit_from_memory(&self.bytes).map_err(|e| err(&e))
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
        if self.flush {
            crate::denormals::set_flush_denormals();
        } else {
            crate::denormals::keep_denormals();
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        #[cfg(test)]
        LAST_RUN_MXCSR.with(|c| c.set(crate::denormals::mxcsr()));
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

    /// How many blocks the NCHWc rewrite pads and how many `PRelu`s it rewrites
    /// in the shipped model.
    fn rewrites_of(name: &str) -> (usize, usize) {
        let path = facegate_assets::model(name).unwrap();
        let (_, padded, rewritten) = crate::onnx_graph::for_nchwc(&std::fs::read(path).unwrap())
            .expect("the shipped model parses");
        (padded, rewritten)
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
        let (padded, rewritten) = rewrites_of("fr_feature.onnx");
        assert_eq!(
            (padded, rewritten),
            (0, 33),
            "every PRelu of fr_feature is rewritten"
        );

        let plain = engine_with(Tuning::PLAIN, Tuning::PLAIN);
        let fast = engine_with(Tuning::NCHWC, Tuning::PLAIN);
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
    fn padded_and_rewritten_liveness_scores_the_same() {
        let (padded, rewritten) = rewrites_of("fr_liveness.onnx");
        assert_eq!(
            (padded, rewritten),
            (15, 33),
            "fr_liveness blocks padded, PRelus rewritten"
        );

        let plain = engine_with(Tuning::PLAIN, Tuning::PLAIN);
        let fast = engine_with(Tuning::PLAIN, Tuning::NCHWC);
        for (img, bbox, _) in fixture_faces(&plain) {
            let a = plain.liveness(&img, &bbox).unwrap();
            let b = fast.liveness(&img, &bbox).unwrap();
            // Wider blocks sum in another order: equal to float rounding, not bit for bit.
            assert!((a - b).abs() < 1e-5, "P(live) {a} vs {b}");
        }
    }

    const ALL: [&str; 6] = crate::export::SHIPPED;

    /// Every model as shipped: subnormal weights kept, FTZ/DAZ cleared on the
    /// calling thread, the runtime's denormal option off.
    fn shipped_engine() -> Engine {
        let mut e = Engine::new(Default::default()).expect("engine loads");
        let m = |name: &'static str| {
            Model::load_with(name, 1, Tuning::for_model(name, true), false).unwrap()
        };
        e.detect = m(ALL[0]);
        e.landmark = m(ALL[1]);
        e.feature = m(ALL[2]);
        e.liveness = Some(m(ALL[3]));
        e.pose = Some(m(ALL[4]));
        e.eye = Some(m(ALL[5]));
        e
    }

    #[test]
    fn flushing_subnormals_keeps_embeddings_and_liveness_within_1e5() {
        let flushed = Engine::new(Default::default()).expect("engine loads");
        let counts: Vec<(&str, usize)> = flushed.flushed_weights();
        for (name, n) in &counts {
            println!("{name}: {n} subnormal weights set to zero");
        }
        assert_eq!(counts.len(), ALL.len(), "every model is checked");
        let feature = counts
            .iter()
            .find(|(n, _)| *n == "fr_feature.onnx")
            .unwrap()
            .1;
        assert!(feature > 0, "fr_feature ships subnormal weights");

        let shipped = shipped_engine();
        assert!(shipped.flushed_weights().iter().all(|(_, n)| *n == 0));
        let mut compared = 0;
        for (img, bbox, aligned) in fixture_faces(&flushed) {
            let (a, na) = shipped.embed_with_norm(&aligned).unwrap();
            assert!(
                !crate::denormals::flushing_denormals(),
                "the shipped path keeps IEEE subnormals"
            );
            let (b, nb) = flushed.embed_with_norm(&aligned).unwrap();
            assert!(crate::denormals::flushing_denormals());
            let worst = a
                .as_slice()
                .iter()
                .zip(b.as_slice())
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "embedding component differs by {worst}");
            assert!((na - nb).abs() < 1e-5 * na, "raw norm {na} vs {nb}");
            let (la, lb) = (
                shipped.liveness(&img, &bbox).unwrap(),
                flushed.liveness(&img, &bbox).unwrap(),
            );
            assert!((la - lb).abs() < 1e-5, "P(live) {la} vs {lb}");
            compared += 1;
        }
        assert!(compared >= 4);
    }

    #[test]
    fn every_model_call_runs_with_ftz_and_daz() {
        let e = Engine::new(Default::default()).expect("engine loads");
        let path = facegate_assets::fixture("obama.jpg").unwrap();
        let bytes = std::fs::read(path).unwrap();
        // A fresh thread, bits cleared, as a host's thread would start.
        std::thread::scope(|s| {
            s.spawn(|| {
                crate::denormals::keep_denormals();
                LAST_RUN_MXCSR.with(|c| c.set(0));
                let faces = e.analyze(&bytes).unwrap();
                assert_eq!(faces.len(), 1);
                let seen = LAST_RUN_MXCSR.with(|c| c.get());
                let both = crate::denormals::FTZ | crate::denormals::DAZ;
                assert_eq!(seen & both, both, "MXCSR inside the model call: {seen:#x}");
            });
        });
    }
}
