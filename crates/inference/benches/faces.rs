//! Face detection time against faces per image: the whole image alone (one run) and with the
//! tiles and confirmations the detector adds (`inference::blazeface`), on photos of
//! ../shared/data/faces and on made group pictures (a grid of n portraits on one canvas).
//! One session with one thread, as a loaded server gives each model. Run:
//! `cargo bench -p inference --bench faces` (ROUNDS=n changes the rounds, default 10).

use inference::blazeface::{self, Square};
use inference::{Model, ModelOptions, Runtime};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/faces")
}

fn load(path: &str) -> image::RgbImage {
    let bytes = std::fs::read(data().join(path)).expect("../shared/data/faces (the bench needs it)");
    media::decode(&bytes, media::Sampling::default()).unwrap().frames.remove(0).image
}

/// n portraits in a grid on a canvas 1600 pixels wide: a group picture with small faces.
fn group(n: u32) -> image::RgbImage {
    let portrait = load("face_recognition/examples/obama.jpg");
    let columns = (f64::from(n).sqrt().ceil()) as u32;
    let rows = n.div_ceil(columns);
    let cell = 1600 / columns;
    let tile = image::imageops::resize(&portrait, cell, cell * 5 / 4, image::imageops::FilterType::Triangle);
    let mut canvas = image::RgbImage::from_pixel(1600, rows * cell * 5 / 4, image::Rgb([200, 200, 200]));
    for i in 0..n {
        let (x, y) = ((i % columns) * cell, (i / columns) * cell * 5 / 4);
        image::imageops::replace(&mut canvas, &tile, i64::from(x), i64::from(y));
    }
    canvas
}

fn p50(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(10);
    let artifacts = inference::cache_dir().join("artifacts");
    let runtime = Runtime::load(&artifacts.join("lib/libonnxruntime.so.1.31.1")).expect("run scripts/fetch.py");
    let options = ModelOptions { sessions: 1, threads: 1, max_batch: 16, queue_capacity: 256, memory_arena: false };
    let model =
        Model::load(&runtime, &artifacts.join("models/face-detection-full.onnx"), &blazeface::INPUT, options).unwrap();
    let pictures: Vec<(String, image::RgbImage)> = vec![
        ("obama_small.jpg (320x240)".into(), load("face_recognition/examples/obama_small.jpg")),
        ("obama.jpg (portrait)".into(), load("face_recognition/examples/obama.jpg")),
        ("two_people.jpg".into(), load("face_recognition/examples/two_people.jpg")),
        ("obama_and_biden.jpg".into(), load("face_recognition/examples/knn_examples/test/obama_and_biden.jpg")),
        ("group of 4".into(), group(4)),
        ("group of 16".into(), group(16)),
        ("group of 36".into(), group(36)),
        ("group of 64".into(), group(64)),
    ];
    println!("face detection, {rounds} rounds per row, one session of one thread; ms");
    println!("| picture | size | faces found | whole image only p50 | detector p50 (tiles, confirmations) |");
    println!("|---|---|---|---|---|");
    for (name, picture) in &pictures {
        let (w, h) = picture.dimensions();
        let faces = blazeface::detect(&model, picture, None).unwrap().len();
        let whole = p50((0..rounds)
            .map(|_| {
                let t = Instant::now();
                let output = model.run(blazeface::preprocess(picture, Square::letterbox(w, h))).unwrap();
                blazeface::suppress(blazeface::decode(&output, Square::letterbox(w, h)).unwrap());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect());
        let full = p50((0..rounds)
            .map(|_| {
                let t = Instant::now();
                blazeface::detect(&model, picture, None).unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect());
        println!("| {name} | {w}x{h} | {faces} | {whole:.1} | {full:.1} |");
    }
}
