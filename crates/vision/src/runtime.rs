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

/// One model: its file, its session settings and the idle sessions.
pub(crate) struct Model {
    name: &'static str,
    path: PathBuf,
    intra_threads: usize,
    idle: Mutex<Vec<Session>>,
}

impl Model {
    /// Loads the named model and builds one session (so that a broken model
    /// or runtime fails at start-up, not on the first request).
    pub(crate) fn load(name: &'static str, intra_threads: usize) -> Result<Model, VisionError> {
        let path = facegate_assets::model(name).map_err(|e| VisionError::Asset(e.to_string()))?;
        let m = Model {
            name,
            path,
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
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| err(&e))?
            .with_intra_threads(self.intra_threads.max(1))
            .map_err(|e| err(&e))?
            .with_inter_threads(1)
            .map_err(|e| err(&e))?;
        b.commit_from_file(&self.path).map_err(|e| err(&e))
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
