//! OCR accuracy on ../shared/data/ocr, next to rapidocr's own (the PyPI package that ships the
//! same PP-OCR models, run with its defaults in the reference virtualenv) on the same images in
//! the same run, with both times. Accuracy = 1 - character error rate, whitespace ignored:
//! for the rapidocr set each ground-truth line against the closest line read; for whole pages
//! the lines read, in order, against the page. Prints a table; fails if ours is more than one
//! point below the package's on any set. Skipped, saying so, when ../shared is absent.
//! `cargo test -p inference --release --test ocr -- --nocapture`
//!
//! The golden files hold every line read on each image when they were last written
//! (`IMS_WRITE_OCR_GOLDEN=1`): `tests/ocr-golden.json` for the OCR test images,
//! `tests/ocr-golden-photos.json` for the photos and drawings of ../shared/data/safe (where text
//! is small, incidental or absent: what a shortcut for images without text could miss). A change
//! that speeds reading up must not lose any of them.

#[path = "../../../tests/support/shared.rs"]
mod shared;

use inference::ocr::Ocr;
use inference::{ModelOptions, Runtime};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn artifacts() -> PathBuf {
    inference::cache_dir().join("artifacts")
}

/// What an image should read as.
enum Truth {
    /// Lines that must each be found among the lines read.
    Lines(Vec<String>),
    /// The whole text, in reading order.
    Page(String),
    /// Nothing.
    Empty,
}

struct Case {
    set: &'static str,
    image: PathBuf,
    truth: Truth,
}

fn chars(text: &str) -> Vec<char> {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == cb { previous } else { 1 + previous.min(row[j]).min(row[j + 1]) };
            previous = current;
        }
    }
    row[b.len()]
}

/// 1 - CER of `read` against `truth`, at least 0.
fn accuracy(truth: &str, read: &str) -> f64 {
    let t = chars(truth);
    if t.is_empty() {
        return if chars(read).is_empty() { 1.0 } else { 0.0 };
    }
    (1.0 - edit_distance(&t, &chars(read)) as f64 / t.len() as f64).max(0.0)
}

fn score(truth: &Truth, lines: &[String]) -> f64 {
    match truth {
        Truth::Lines(expected) => {
            let best = |e: &String| lines.iter().map(|l| accuracy(e, l)).fold(0.0, f64::max);
            expected.iter().map(best).sum::<f64>() / expected.len() as f64
        }
        Truth::Page(text) => accuracy(text, &lines.join(" ")),
        Truth::Empty => {
            if lines.iter().all(|l| chars(l).is_empty()) {
                1.0
            } else {
                0.0
            }
        }
    }
}

/// The test images with their ground truth; scripts the models do not read (Cyrillic,
/// Devanagari, Tamil, Telugu, Hebrew) are left out.
fn cases(data: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let latin_or_cjk = |s: &str| s.chars().all(|c| (c as u32) < 0x0370 || ('\u{2000}'..='\u{FFEF}').contains(&c));
    for line in std::fs::read_to_string(data.join("rapidocr/gt.jsonl")).unwrap().lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let image = data.join("rapidocr").join(entry["image"].as_str().unwrap());
        let truth = match &entry["text"] {
            Value::Null => Truth::Empty,
            Value::String(s) if latin_or_cjk(s) => Truth::Lines(vec![s.clone()]),
            Value::Array(lines) => Truth::Lines(lines.iter().map(|l| l.as_str().unwrap().to_string()).collect()),
            _ => continue,
        };
        cases.push(Case { set: "rapidocr", image, truth });
    }
    for line in std::fs::read_to_string(data.join("rendered/gt.jsonl")).unwrap().lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let image = data.join(entry["image"].as_str().unwrap().trim_start_matches("ocr/"));
        cases.push(Case { set: "rendered", image, truth: Truth::Page(entry["text"].as_str().unwrap().to_string()) });
    }
    let testing = data.join("tesseract-test/testing");
    for (image, text) in [("phototest.tif", "phototest.gold.txt"), ("eurotext.tif", "eurotext.txt")] {
        let truth = Truth::Page(std::fs::read_to_string(testing.join(text)).unwrap());
        cases.push(Case { set: "english pages", image: testing.join(image), truth });
    }
    // pytesseract's test page in several formats: tesseract's phototest page (its gt.txt says so;
    // test-european.jpg is another page).
    let pytesseract = data.join("pytesseract");
    if let Ok(gt) = std::fs::read_to_string(testing.join("phototest.gold.txt")) {
        let mut images: Vec<PathBuf> = std::fs::read_dir(pytesseract.join("tests/data"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_stem().is_some_and(|n| n == "test" || n == "test_la" || n == "test-small"))
            .collect();
        images.sort();
        for image in images {
            cases.push(Case { set: "english pages", image, truth: Truth::Page(gt.clone()) });
        }
    }
    cases
}

/// The models, loaded once: ONNX Runtime allows one environment per process.
fn ocr() -> &'static Ocr {
    static OCR: std::sync::OnceLock<(Runtime, Ocr)> = std::sync::OnceLock::new();
    &OCR.get_or_init(|| {
        let artifacts = artifacts();
        let runtime = Runtime::load(&artifacts.join("lib/libonnxruntime.so.1.31.1")).unwrap();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let options =
            ModelOptions { sessions: 1, threads: cores, max_batch: 8, queue_capacity: 64, memory_arena: false };
        let ocr = Ocr::load(&runtime, &artifacts.join("models"), options).unwrap();
        (runtime, ocr)
    })
    .1
}

/// The image as the server decodes it; images under the API's 50-pixel minimum (a few
/// single-line crops) through the `image` crate.
fn load(path: &Path) -> Option<image::RgbImage> {
    let bytes = std::fs::read(path).ok()?;
    match media::decode(&bytes, media::Sampling::default()) {
        Ok(mut decoded) => Some(decoded.frames.remove(0).image),
        Err(_) => image::load_from_memory(&bytes).ok().map(|i| i.to_rgb8()),
    }
}

#[test]
fn ocr_reads_as_well_as_rapidocr_and_faster() {
    let data = workspace().join("../shared/data/ocr");
    if !data.exists() {
        shared::absent("the OCR test images");
        return;
    }
    let ocr = ocr();
    let cases: Vec<(Case, image::RgbImage)> =
        cases(&data).into_iter().filter_map(|c| load(&c.image).map(|i| (c, i))).collect();
    let python = std::env::var("IMS_REFERENCE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| inference::cache_dir().join("reference-venv/bin/python"));
    let reference: Option<Value> = python.exists().then(|| {
        let output = std::process::Command::new(&python)
            .arg(workspace().join("tests/reference/python/ocr.py"))
            .args(cases.iter().map(|(c, _)| &c.image))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    });
    if reference.is_none() {
        println!("(the reference virtualenv is missing: run scripts/test.sh to compare with rapidocr)");
    }

    // Per set: (our accuracy sum, our seconds, their accuracy sum, their seconds, images).
    let mut sets: Vec<(&str, f64, f64, f64, f64, usize)> = Vec::new();
    let mut golden = Golden::open("ocr-golden.json");
    for (case, image) in &cases {
        ocr.read(image).unwrap(); // warm-up, as the reference warms up
        let start = Instant::now();
        let lines: Vec<String> = ocr.read(image).unwrap().into_iter().map(|l| l.text).collect();
        let seconds = start.elapsed().as_secs_f64();
        golden.check(&case.image.strip_prefix(&data).unwrap().to_string_lossy(), &lines);
        let ours = score(&case.truth, &lines);
        let theirs = reference.as_ref().map(|r| {
            let entry = &r[case.image.to_str().unwrap()];
            let lines: Vec<String> =
                entry["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect();
            (score(&case.truth, &lines), entry["seconds"].as_f64().unwrap())
        });
        println!(
            "{:<60} ours {:.3} {:>6.0} ms   rapidocr {}",
            case.image.strip_prefix(&data).unwrap().display(),
            ours,
            seconds * 1000.0,
            theirs.map_or("-".into(), |(a, s)| format!("{a:.3} {:>6.0} ms", s * 1000.0))
        );
        let (their_accuracy, their_seconds) = theirs.unwrap_or((0.0, 0.0));
        match sets.iter_mut().find(|s| s.0 == case.set) {
            Some(s) => {
                s.1 += ours;
                s.2 += seconds;
                s.3 += their_accuracy;
                s.4 += their_seconds;
                s.5 += 1;
            }
            None => sets.push((case.set, ours, seconds, their_accuracy, their_seconds, 1)),
        }
    }
    println!("\n| set | images | ours: accuracy | ours: ms per image | rapidocr: accuracy | rapidocr: ms per image |");
    println!("|---|---|---|---|---|---|");
    for (set, ours, seconds, theirs, their_seconds, n) in &sets {
        let n = *n as f64;
        println!(
            "| {set} | {n} | {:.3} | {:.0} | {} | {} |",
            ours / n,
            seconds / n * 1000.0,
            reference.as_ref().map_or("-".into(), |_| format!("{:.3}", theirs / n)),
            reference.as_ref().map_or("-".into(), |_| format!("{:.0}", their_seconds / n * 1000.0)),
        );
        if reference.is_some() {
            assert!(ours / n >= theirs / n - 0.01, "{set}: ours {:.3} vs rapidocr {:.3}", ours / n, theirs / n);
        }
        assert!(ours / n >= 0.8, "{set}: accuracy {:.3}", ours / n);
    }
    golden.finish();
}

/// Every line read on each image when the file was last written, and what is read now.
struct Golden {
    file: PathBuf,
    lines: Value,
    read_now: serde_json::Map<String, Value>,
    lost: Vec<String>,
}

impl Golden {
    fn open(name: &str) -> Golden {
        let file = workspace().join("crates/inference/tests").join(name);
        let lines = std::fs::read(&file).map_or(Value::Null, |b| serde_json::from_slice(&b).unwrap());
        Golden { file, lines, read_now: serde_json::Map::new(), lost: Vec::new() }
    }

    fn check(&mut self, image: &str, read: &[String]) {
        for line in self.lines[image].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !read.iter().any(|l| l == line) {
                self.lost.push(format!("{image}: {line}"));
            }
        }
        self.read_now.insert(image.to_string(), serde_json::json!(read));
    }

    /// Writes the file under `IMS_WRITE_OCR_GOLDEN=1`; otherwise fails if a line was lost.
    fn finish(self) {
        if std::env::var("IMS_WRITE_OCR_GOLDEN").is_ok_and(|v| v == "1") {
            std::fs::write(&self.file, serde_json::to_string_pretty(&self.read_now).unwrap() + "\n").unwrap();
            println!("wrote {}", self.file.display());
        } else {
            assert!(self.lines.is_object(), "{} is missing (IMS_WRITE_OCR_GOLDEN=1 writes it)", self.file.display());
            assert!(self.lost.is_empty(), "{} golden lines no longer read:\n{}", self.lost.len(), self.lost.join("\n"));
        }
    }
}

#[test]
fn photos_read_no_less_than_before() {
    let data = workspace().join("../shared/data/safe");
    if !data.exists() {
        shared::absent("the safe photos");
        return;
    }
    let mut golden = Golden::open("ocr-golden-photos.json");
    let mut read = 0;
    for path in shared::files_under(&data) {
        // An animation's first frame stands for it; what the decoder refuses (a video) is skipped.
        let Some(image) = load(&path) else { continue };
        let lines: Vec<String> = ocr().read(&image).unwrap().into_iter().map(|l| l.text).collect();
        golden.check(&path.strip_prefix(&data).unwrap().to_string_lossy(), &lines);
        read += 1;
    }
    assert!(read >= 30, "only {read} photos decoded");
    golden.finish();
}

#[test]
fn a_long_image_is_read_in_tiles_without_losing_its_text() {
    let data = workspace().join("../shared/data/ocr/rendered");
    if !data.exists() {
        shared::absent("the OCR test images");
        return;
    }
    // Four rendered lines far apart on a 760 x 4000 page: read whole, the detector would shrink
    // it to 182 x 960 and the 64-pixel lines to 15 pixels.
    let mut page = image::RgbImage::from_pixel(760, 4000, image::Rgb([255, 255, 255]));
    let mut fonts: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    fonts.sort();
    for (i, font) in fonts.iter().enumerate() {
        let line = image::open(font).unwrap().to_rgb8();
        image::imageops::replace(&mut page, &line, 0, 200 + i as i64 * 1000);
    }
    let lines = ocr().read(&page).unwrap();
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
    for (i, line) in lines.iter().enumerate() {
        assert!(accuracy("内容审核测试 Content moderation 123", &line.text) >= 0.9, "{texts:?}");
        let top = line.quad[0][1];
        assert!((top - (200.0 + i as f64 * 1000.0)).abs() < 40.0, "line {i} at y {top}");
    }
}
