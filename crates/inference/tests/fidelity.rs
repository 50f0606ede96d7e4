//! The project's scores equal the reference package's own on the same pixels (within 1e-3):
//! nsfwjs 4.4.0 run under Node with TensorFlow.js (tests/reference/nsfwjs, installed by
//! scripts/test.sh) against our ONNX conversion and pre-processing on ONNX Runtime.
//! Images: ../shared/data/safe (skipped, saying so, when ../shared is absent).

use base64::Engine;
use inference::{nsfwjs, Model, Runtime};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn artifacts() -> PathBuf {
    std::env::var("IMS_CACHE_DIR").map(PathBuf::from).unwrap_or_else(|_| workspace().join(".cache")).join("artifacts")
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

#[test]
fn nsfwjs_scores_match_nsfwjs_itself() {
    let safe = workspace().join("../shared/data/safe");
    if !safe.exists() {
        println!("SKIPPED: ../shared/data is absent, so there are no reference images");
        return;
    }
    let reference = workspace().join("tests/reference/nsfwjs");
    assert!(
        reference.join("node_modules").exists(),
        "tests/reference/nsfwjs/node_modules is missing: run scripts/test.sh"
    );
    let runtime = Runtime::load(&artifacts().join("lib/libonnxruntime.so.1.31.1")).expect("run scripts/fetch.py");
    let model = Model::load(&runtime, &artifacts().join("models/nsfwjs-mobilenet-v2.onnx"), 1, 2).unwrap();

    let mut paths = Vec::new();
    images(&safe, &mut paths);
    paths.sort();
    let frames: Vec<(PathBuf, image::RgbImage)> = paths
        .into_iter()
        .filter_map(|p| {
            let decoded = media::decode(&std::fs::read(&p).unwrap(), media::Sampling::default()).ok()?;
            Some((p, decoded.frames.into_iter().next()?.image))
        })
        .collect();
    assert!(frames.len() >= 5, "too few reference images decoded");

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
    let mut child = Command::new("node")
        .arg("classify.js")
        .current_dir(&reference)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(serde_json::to_string(&job).unwrap().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let expected: Vec<Vec<f32>> = serde_json::from_slice(&output.stdout).unwrap();

    let mut worst = 0f32;
    for ((path, image), reference) in frames.iter().zip(&expected) {
        let ours = nsfwjs::classify(&model, image).unwrap();
        let diff = ours.0.iter().zip(reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        println!("{:<60} diff {diff:.2e} ours {:?}", path.strip_prefix(&safe).unwrap().display(), ours.0);
        worst = worst.max(diff);
        assert!(diff <= 1e-3, "{}: ours {:?}, nsfwjs {reference:?}", path.display(), ours.0);
    }
    println!("{} images, largest difference {worst:.2e}", frames.len());
}
