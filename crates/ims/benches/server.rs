//! The whole path through the real server: `ims serve` (release) on a fresh data folder, driven
//! by signed TC3 `ImageModeration` calls over HTTP.
//!
//! - speed: 1, 4 and 8 clients, a photo without text, the same photo with a caption and a page
//!   with text, under the default policy and one with OCR off; what each reads; p50 / p99 /
//!   images per second per row, beside rapidocr (the Python package of the same OCR models, OCR
//!   alone) on the photo and the page; then the mean time of every stage (`ims_stage_seconds`,
//!   read from `/metrics`);
//! - memory: every file of ../shared/data/robustness (about 1,900 hostile files: broken,
//!   truncated, bombs, animations) at 4 clients, then a burst of the largest images the limits
//!   allow at 8 clients; the server's resident memory before, at the peak of each phase and a
//!   minute after the traffic ends;
//! - views (only when asked, `PHASES=views`): one client on long images (photos stacked 2.5:1,
//!   4:1 and 10:1) and collages (2 x 2 and 3 x 3 photos), beside the photo, each examined in
//!   several views (windows, tiles);
//! - tls (only when asked, `PHASES=tls`): one client, a second server with a self-signed
//!   certificate beside the plain one: `/healthz` on a new connection each time (the handshake's
//!   cost) and on one kept-alive connection (the per-request cost), and the photo moderated on a
//!   new connection each time, over HTTP and over HTTPS.
//! - storage (only when asked, `PHASES=storage`): the photo under a policy with OCR off (so
//!   that the store's share shows) on two servers, one on SQLite and one on PostgreSQL (a
//!   throwaway local server, `store::testing`), at 1 and 8 clients, with the mean time of the
//!   stages that write to the store.
//! - analysis (only when asked, `PHASES=analysis`): each tiia action (`AssessQuality`,
//!   `CropImage`, `DetectLabel`, `RecognizeCar`, `SearchImage` in a group of 200 pictures) at
//!   1 and 4 clients on one photo, beside `ImageModeration` of it with and without a policy's
//!   `Objects`; and the mean time of `CreateImage` filing those 200 pictures one by one.
//! - console (only when asked, `PHASES=console`): 100,000 results written into the history of
//!   a server on SQLite and of one on PostgreSQL, then the console's pages through the real
//!   server (signed in, a new connection each time): the overview, Results with each filter, a
//!   deep page, a result, its thumbnail, the review queue; p50 and the slowest of `ROUNDS` loads.
//!
//! `cargo bench -p ims --bench server` (`ROUNDS=N` calls per client and row, default 12;
//! `PHASES=speed`, `memory` or `views`, comma-separated, picks them; speed and memory by
//! default). Needs ../shared/data and the artifacts of scripts/fetch.py; environment variables
//! reach the server (`IMS_INFERENCE__MEMORY_ARENA`, `GLIBC_TUNABLES`...), so each memory lever
//! can be measured without a rebuild. `IMS_BENCH_BEFORE=<an older ims binary>` runs the speed
//! and views phases on that binary first, then on this build: a before and after in one run.

#[path = "../../../tests/support/shared.rs"]
#[allow(dead_code)] // the bench skips without ../shared in its own words, even under CI=true
mod shared;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    endpoint: String,
    secret_id: String,
    secret_key: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(binary: &Path) -> Server {
    start_with(binary, &[])
}

fn start_with(binary: &Path, env: &[(&str, &Path)]) -> Server {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary)
        .arg("--data-dir")
        .arg(data.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("IMS_CONFIG")
        .envs(env.iter().copied())
        .env("IMS_LOG__LEVEL", "warn")
        .env("IMS_INFERENCE__ARTIFACTS_DIR", inference::cache_dir().join("artifacts"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ims serve starts");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut endpoint, mut secret_id, mut secret_key) = (String::new(), String::new(), String::new());
    let mut line = String::new();
    while secret_key.is_empty() {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "ims serve exited early");
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("ims listening on ") {
            endpoint = rest.split_once("://").unwrap().1.to_string();
        } else if let Some(rest) = line.strip_prefix("SecretId:") {
            secret_id = rest.trim().to_string();
        } else if let Some(rest) = line.strip_prefix("SecretKey:") {
            secret_key = rest.trim().to_string();
        }
    }
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    Server { child, endpoint, secret_id, secret_key, _data: data }
}

/// One HTTP/1.1 exchange; the body of the answer.
fn exchange(endpoint: &str, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(endpoint).unwrap();
    stream.write_all(request).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer");
    bytes[split + 4..].to_vec()
}

fn call(server: &Server, action: &str, params: &Value) -> Value {
    let answer: Value =
        serde_json::from_slice(&exchange(&server.endpoint, signed(server, action, params).as_bytes())).unwrap();
    answer["Response"].clone()
}

/// A signed TC3 call, HTTP/1.1, the connection closed after it; an ims call, or a tiia one
/// for tiia's actions (their version says which service a call is for).
fn signed(server: &Server, action: &str, params: &Value) -> String {
    let tiia = protocol::schema::Version::V20190529;
    let version = if tiia.definition().action(action).is_some() { tiia.as_str() } else { "2020-12-29" };
    let body = params.to_string();
    let now = chrono::Utc::now();
    let authorization = protocol::sign::tc3_authorization(
        &server.secret_id,
        &server.secret_key,
        now.timestamp(),
        &now.format("%Y-%m-%d").to_string(),
        &server.endpoint,
        "application/json",
        body.as_bytes(),
    );
    format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nX-TC-Action: {action}\r\n\
         X-TC-Version: {version}\r\nX-TC-Timestamp: {}\r\nAuthorization: {authorization}\r\nContent-Length: {}\r\n\r\n{body}",
        server.endpoint,
        now.timestamp(),
        body.len()
    )
}

/// The server's `/metrics`: per stage, (sum of seconds, count).
fn stages(server: &Server) -> Vec<(String, f64, f64)> {
    let text = String::from_utf8(exchange(
        &server.endpoint,
        format!("GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.endpoint).as_bytes(),
    ))
    .unwrap();
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    for line in text.lines() {
        for (suffix, sum) in [("ims_stage_seconds_sum{stage=\"", true), ("ims_stage_seconds_count{stage=\"", false)] {
            let Some(rest) = line.strip_prefix(suffix) else { continue };
            let (stage, value) = rest.split_once("\"} ").unwrap();
            let value: f64 = value.parse().unwrap();
            match rows.iter_mut().find(|r| r.0 == stage) {
                Some(row) if sum => row.1 = value,
                Some(row) => row.2 = value,
                None if sum => rows.push((stage.to_string(), value, 0.0)),
                None => rows.push((stage.to_string(), 0.0, value)),
            }
        }
    }
    rows
}

fn resident_mib(server: &Server) -> f64 {
    rss_of(server.child.id())
}

/// A process's resident memory in MiB (`VmRSS`).
fn rss_of(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `clients` threads each sending `rounds` calls; (p50 ms, p99 ms, images per second).
fn drive(server: &Server, params: &Value, clients: usize, rounds: usize) -> (f64, f64, f64) {
    drive_action(server, "ImageModeration", params, clients, rounds)
}

/// `clients` clients each calling `action` `rounds` times: p50 and p99 ms, calls per second.
fn drive_action(server: &Server, action: &str, params: &Value, clients: usize, rounds: usize) -> (f64, f64, f64) {
    let started = Instant::now();
    let mut times: Vec<f64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    (0..rounds)
                        .map(|_| {
                            let t = Instant::now();
                            let answer = call(server, action, params);
                            assert!(answer.get("Error").is_none(), "{answer}");
                            t.elapsed().as_secs_f64() * 1e3
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    (percentile(&times, 0.5), percentile(&times, 0.99), times.len() as f64 / seconds)
}

fn base64_of(path: &Path) -> String {
    base64(&std::fs::read(path).unwrap())
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// skimage's chelsea, resized to 1024x768, as a quality-90 JPEG: a photo without text; with
/// `caption`, one rendered line (../shared's `内容审核测试 Content moderation 123`) pasted low in it.
fn photo(shared: &Path, caption: bool) -> String {
    use base64::Engine;
    let cat = image::open(shared.join("safe/skimage/chelsea.png")).unwrap().to_rgb8();
    let mut resized = image::imageops::resize(&cat, 1024, 768, image::imageops::FilterType::Triangle);
    if caption {
        let line = image::open(shared.join("ocr/rendered/wqy-microhei.png")).unwrap().to_rgb8();
        image::imageops::replace(&mut resized, &line, 132, 660);
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&resized).unwrap();
    base64::engine::general_purpose::STANDARD.encode(jpeg)
}

/// The text of the lines read, from an answer's `OcrResults`.
fn text_read(answer: &Value) -> String {
    answer["OcrResults"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["Text"].as_str())
        .collect::<Vec<_>>()
        .join(" / ")
}

/// The largest images the limits allow (each side under 10,000 pixels, under 10 MB of base64):
/// a 9999 x 9999 JPEG, the same as a PNG (decoded whole: no reduced decoding for PNG), and a
/// 9999 x 120 strip with text, which OCR reads in tiles.
fn largest_images(shared: &Path) -> Vec<String> {
    use base64::Engine;
    let side = 9999;
    let square = image::RgbImage::from_fn(side, side, |x, y| {
        image::Rgb([(x / 40) as u8, (y / 40) as u8, ((x / 80 + y / 80) % 2 * 60 + 100) as u8])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80).encode_image(&square).unwrap();
    let mut png = Vec::new();
    square.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    let line = image::open(shared.join("ocr/rendered/wqy-microhei.png")).unwrap().to_rgb8();
    let mut strip = image::RgbImage::from_pixel(side, 120, image::Rgb([255, 255, 255]));
    for x in (0..side).step_by(line.width() as usize + 200) {
        image::imageops::replace(&mut strip, &line, i64::from(x), 28);
    }
    let mut strip_png = Vec::new();
    strip.write_to(&mut std::io::Cursor::new(&mut strip_png), image::ImageFormat::Png).unwrap();
    [jpeg, png, strip_png]
        .into_iter()
        .inspect(|bytes| assert!(bytes.len() < 7_000_000, "an image of {} bytes is over the limit", bytes.len()))
        .map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes))
        .collect()
}

/// Sends each of `images` once, spread over `clients`; any answer will do (most are errors),
/// as long as there is one.
fn send_all(server: &Server, images: &[String], clients: usize) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(image) = images.get(i) else { break };
                call(server, "ImageModeration", &json!({"FileContent": image}));
            });
        }
    });
}

/// rapidocr (the reference virtualenv's package) on the files: milliseconds per image, warm.
fn rapidocr_ms(files: &[&Path]) -> Option<Vec<f64>> {
    let python = std::env::var("IMS_REFERENCE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| inference::cache_dir().join("reference-venv/bin/python"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/python/ocr.py");
    let output = Command::new(python).arg(script).args(files).output().ok().filter(|o| o.status.success())?;
    let answer: Value = serde_json::from_slice(&output.stdout).ok()?;
    files.iter().map(|f| Some(answer[f.to_str()?]["seconds"].as_f64()? * 1e3)).collect()
}

/// Resident memory sampled every 50 ms while it runs: the peak since the last [`Peak::take`].
struct Peak {
    kib: std::sync::Arc<std::sync::atomic::AtomicU64>,
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Peak {
    fn sample(pid: u32) -> Peak {
        let kib = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (k, r) = (kib.clone(), running.clone());
        std::thread::spawn(move || {
            while r.load(std::sync::atomic::Ordering::Relaxed) {
                k.fetch_max((rss_of(pid) * 1024.0) as u64, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Peak { kib, running }
    }

    /// The peak in MiB, starting over.
    fn take(&self) -> f64 {
        self.kib.swap(0, std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for Peak {
    fn drop(&mut self) {
        self.running.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

fn main() {
    let shared: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if !shared.exists() {
        println!("SKIPPED: ../shared/data is absent (the bench needs its photo, page and corpus)");
        return;
    }
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(12);
    let phases = std::env::var("PHASES").unwrap_or_else(|_| "speed,memory".into());
    if let Ok(before) = std::env::var("IMS_BENCH_BEFORE") {
        println!("## before: {before}\n");
        let server = start(Path::new(&before));
        if phases.contains("speed") {
            speed(&server, &shared, rounds);
        }
        if phases.contains("views") {
            views(&server, &shared, rounds);
        }
        drop(server);
        println!("\n## this build\n");
    }
    let server = start(Path::new(env!("CARGO_BIN_EXE_ims")));
    let before = resident_mib(&server);
    let peak = Peak::sample(server.child.id());
    if phases.contains("speed") {
        speed(&server, &shared, rounds);
        println!(
            "\nresident memory: {before:.0} MiB after start, {:.0} MiB at the peak of the speed rows",
            peak.take()
        );
    }
    if phases.contains("views") {
        views(&server, &shared, rounds);
    }
    if phases.contains("tls") {
        tls(&server, &shared, rounds);
    }
    if phases.contains("storage") {
        storage(&shared, rounds);
    }
    if phases.contains("console") {
        console_pages(rounds);
    }
    if phases.contains("analysis") {
        analysis(&server, &shared, rounds);
    }
    if phases.contains("memory") {
        let corpus: Vec<String> = shared::files_under(&shared.join("robustness"))
            .iter()
            .filter_map(|f| std::fs::read(f).ok())
            .filter(|bytes| bytes.len() < 7_000_000)
            .map(|bytes| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(bytes)
            })
            .collect();
        let started = Instant::now();
        send_all(&server, &corpus, 4);
        let after_corpus = resident_mib(&server);
        println!(
            "\nrobustness corpus: {} files in {:.0} s at 4 clients; resident memory {:.0} MiB at the peak, {after_corpus:.0} MiB after",
            corpus.len(),
            started.elapsed().as_secs_f64(),
            peak.take()
        );
        let largest = largest_images(&shared);
        let burst: Vec<String> = (0..8).flat_map(|_| largest.iter().cloned()).collect();
        let started = Instant::now();
        send_all(&server, &burst, 8);
        println!(
            "largest images: {} calls in {:.0} s at 8 clients; resident memory {:.0} MiB at the peak",
            burst.len(),
            started.elapsed().as_secs_f64(),
            peak.take()
        );
    }
    drop(peak);
    std::thread::sleep(Duration::from_secs(60));
    println!("resident memory a minute after the traffic ended: {:.0} MiB", resident_mib(&server));
}

/// One client on images the models examine in several views: long ones and collages, made of
/// the photos of ../shared (JPEG q90), beside the photo of the speed rows.
fn views(server: &Server, shared: &Path, rounds: usize) {
    use base64::Engine;
    call(server, "CreateBizConfig", &json!({"BizType": "no_text", "Ocr": false}));
    let photos: Vec<image::RgbImage> = [
        "skimage/chelsea.png",
        "skimage/coffee.png",
        "skimage/astronaut.png",
        "skimage/rocket.jpg",
        "skimage/horse.png",
    ]
    .iter()
    .map(|name| image::open(shared.join("safe").join(name)).unwrap().to_rgb8())
    .collect();
    let tiled = |columns: u32, rows: u32, tile_w: u32, tile_h: u32| {
        let mut out = image::RgbImage::new(columns * tile_w, rows * tile_h);
        for i in 0..columns * rows {
            let tile = image::imageops::resize(
                &photos[i as usize % photos.len()],
                tile_w,
                tile_h,
                image::imageops::FilterType::Triangle,
            );
            image::imageops::replace(&mut out, &tile, i64::from(i % columns * tile_w), i64::from(i / columns * tile_h));
        }
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&out).unwrap();
        base64::engine::general_purpose::STANDARD.encode(jpeg)
    };
    let images = [
        ("photo 1024x768", photo(shared, false)),
        ("long 1080x2700 (2.5:1)", tiled(1, 5, 1080, 540)),
        ("long 1080x4320 (4:1)", tiled(1, 4, 1080, 1080)),
        ("long 960x9600 (10:1)", tiled(1, 10, 960, 960)),
        ("collage 2x2, 1024x768", tiled(2, 2, 512, 384)),
        ("collage 3x3, 1023x768", tiled(3, 3, 341, 256)),
    ];
    println!("\n| image | policy | p50 ms | p99 ms | images/s |");
    println!("|---|---|---|---|---|");
    for (name, image) in &images {
        for (policy, biz_type) in [("default", ""), ("OCR off", "no_text")] {
            let params = json!({"FileContent": image, "BizType": biz_type});
            call(server, "ImageModeration", &params);
            let (p50, p99, rate) = drive(server, &params, 1, rounds);
            println!("| {name} | {policy} | {p50:.0} | {p99:.0} | {rate:.1} |");
        }
    }
}

fn speed(server: &Server, shared: &Path, rounds: usize) {
    call(server, "CreateBizConfig", &json!({"BizType": "no_text", "Ocr": false}));
    let photo_without_text = photo(shared, false);
    let page = shared.join("ocr/tesseract-test/testing/eurotext.tif");
    let images = [
        ("photo 1024x768, no text", photo_without_text.clone()),
        ("photo 1024x768, a caption", photo(shared, true)),
        ("page 1024x800, text", base64_of(&page)),
    ];
    // Warm-up (every model's first run allocates), and what each image reads as.
    for (name, image) in &images {
        let answer = call(server, "ImageModeration", &json!({"FileContent": image}));
        println!("{name}: reads \"{}\"", text_read(&answer));
    }
    println!("| image | policy | clients | p50 ms | p99 ms | images/s |");
    println!("|---|---|---|---|---|---|");
    for (name, image) in &images {
        for (policy, biz_type) in [("default", ""), ("OCR off", "no_text")] {
            for clients in [1, 4, 8] {
                let params = json!({"FileContent": image, "BizType": biz_type});
                let (p50, p99, rate) = drive(server, &params, clients, rounds);
                println!("| {name} | {policy} | {clients} | {p50:.0} | {p99:.0} | {rate:.1} |");
            }
        }
    }
    let photo_file = tempfile::Builder::new().suffix(".jpg").tempfile().unwrap();
    {
        use base64::Engine;
        let jpeg = base64::engine::general_purpose::STANDARD.decode(&photo_without_text).unwrap();
        std::fs::write(photo_file.path(), jpeg).unwrap();
    }
    match rapidocr_ms(&[photo_file.path(), &page]) {
        Some(ms) => {
            for ((name, _), ms) in [&images[0], &images[2]].into_iter().zip(ms) {
                println!("| {name} | rapidocr (Python, OCR alone) | 1 | {ms:.0} | - | {:.1} |", 1e3 / ms);
            }
        }
        None => println!("(no reference virtualenv: scripts/test.sh makes it; the rapidocr rows are left out)"),
    }
    println!("\n| stage | calls | mean ms |");
    println!("|---|---|---|");
    for (stage, sum, count) in stages(server) {
        if count > 0.0 {
            println!("| {stage} | {count} | {:.1} |", sum / count * 1e3);
        }
    }
}

/// Each tiia action at 1 and 4 clients on a photo (a red motorcycle, 741 x 500), beside ims's
/// `ImageModeration` of the same photo under the default policy and one with `Objects`.
fn analysis(server: &Server, shared: &Path, rounds: usize) {
    call(server, "CreateBizConfig", &json!({"BizType": "with_objects", "Objects": true}));
    let image = base64_of(&shared.join("safe/skimage/motorcycle_left.png"));
    // A group of 200 pictures: the photo and 199 others (made, each its own pattern).
    let group = json!({"GroupId": "bench", "GroupName": "bench", "MaxCapacity": 1000, "MaxQps": 1000});
    assert!(call(server, "CreateGroup", &group).get("Error").is_none());
    let started = Instant::now();
    for n in 0..200u32 {
        let picture = if n == 0 { image.clone() } else { base64(&patterned_png(n)) };
        let params = json!({"GroupId": "bench", "EntityId": format!("e{n}"), "PicName": format!("p{n}"),
            "ImageBase64": picture});
        let answer = call(server, "CreateImage", &params);
        assert!(answer.get("Error").is_none(), "{answer}");
    }
    let filing = started.elapsed().as_secs_f64() * 1e3 / 200.0;
    let calls = [
        ("AssessQuality", json!({"ImageBase64": image})),
        ("CropImage 2:1", json!({"ImageBase64": image, "Width": 2, "Height": 1})),
        ("DetectLabel", json!({"ImageBase64": image})),
        ("RecognizeCar", json!({"ImageBase64": image})),
        ("SearchImage, 200 pictures", json!({"ImageBase64": image, "GroupId": "bench"})),
        ("ImageModeration, default policy", json!({"FileContent": image})),
        ("ImageModeration, Objects", json!({"FileContent": image, "BizType": "with_objects"})),
    ];
    let action = |name: &str| name.split([' ', ',']).next().unwrap().to_string();
    for (name, params) in &calls {
        let answer = call(server, &action(name), params); // warm-up
        assert!(answer.get("Error").is_none(), "{name}: {answer}");
    }
    println!("\n| call (motorcycle_left.png, 741x500) | clients | p50 ms | p99 ms | calls/s |");
    println!("|---|---|---|---|---|");
    for (name, params) in &calls {
        for clients in [1, 4] {
            let (p50, p99, rate) = drive_action(server, &action(name), params, clients, rounds);
            println!("| {name} | {clients} | {p50:.0} | {p99:.0} | {rate:.1} |");
        }
    }
    println!(
        "\nCreateImage (filing 200 pictures of 320 x 240 and the 741 x 500 photo, one at a time): {filing:.0} ms each"
    );
}

/// A 320 x 240 PNG with a pattern of its own for each `seed`.
fn patterned_png(seed: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(320, 240, |x, y| {
        let v = (x * (seed % 13 + 3)) ^ (y * (seed % 7 + 5)) ^ seed.wrapping_mul(2_654_435_761);
        image::Rgb([v as u8, (v >> 8) as u8, (v >> 3) as u8])
    });
    let mut png = Vec::new();
    picture.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    png
}

/// The photo with OCR off on a server on SQLite and one on PostgreSQL.
fn storage(shared: &Path, rounds: usize) {
    let Some(postgres) = store::testing::TempPostgres::start() else {
        println!("(PostgreSQL is not installed: no storage rows)");
        return;
    };
    let url = postgres.create_database("bench");
    let binary = Path::new(env!("CARGO_BIN_EXE_ims"));
    let servers =
        [("SQLite", start(binary)), ("PostgreSQL", start_with(binary, &[("IMS_STORAGE__URL", Path::new(&url))]))];
    let params = json!({"FileContent": photo(shared, false), "BizType": "no_text"});
    println!("\n| store | clients | p50 ms | p99 ms | images/s | history ms | metering ms | libraries ms |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, server) in &servers {
        call(server, "CreateBizConfig", &json!({"BizType": "no_text", "Ocr": false}));
        call(server, "ImageModeration", &params);
        for clients in [1, 8] {
            let (p50, p99, rate) = drive(server, &params, clients, rounds);
            let stage = |wanted: &str| {
                let found = stages(server).into_iter().find(|(stage, _, _)| stage == wanted);
                found.map_or(0.0, |(_, sum, count)| sum / count * 1e3)
            };
            let (history, metering, libraries) = (stage("history"), stage("metering"), stage("libraries"));
            println!(
                "| {name} | {clients} | {p50:.0} | {p99:.0} | {rate:.1} | {history:.2} | {metering:.2} | {libraries:.2} |"
            );
        }
    }
}

/// Reads one HTTP/1.1 answer (its `Content-Length` body) from `stream`, leaving the connection
/// open.
fn answer_of(stream: &mut impl Read) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        bytes.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    body
}

/// HTTPS against plain HTTP (see the module documentation): a second server with a
/// self-signed certificate, and a rustls client (the `ring` provider, as the server) trusting it.
fn tls(plain: &Server, shared: &Path, rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let secure = start_with(
        Path::new(env!("CARGO_BIN_EXE_ims")),
        &[("IMS_SERVER__TLS__CERT", &cert_path), ("IMS_SERVER__TLS__KEY", &key_path)],
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let connect = |server: &Server, over_tls: bool| -> Box<dyn ReadWrite> {
        let tcp = TcpStream::connect(&server.endpoint).unwrap();
        tcp.set_nodelay(true).unwrap();
        if !over_tls {
            return Box::new(tcp);
        }
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let client = rustls::ClientConnection::new(config.clone(), name).unwrap();
        Box::new(rustls::StreamOwned::new(client, tcp))
    };
    let health = |server: &Server, close: bool| {
        let connection = if close { "close" } else { "keep-alive" };
        format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: {connection}\r\n\r\n", server.endpoint)
    };
    let photo = json!({"FileContent": photo(shared, false)});
    // p50 and p99 in ms of `rounds * 10` timings of `once`, after one untimed.
    let timed = |mut once: Box<dyn FnMut() + '_>, times: usize| {
        once();
        let mut ms: Vec<f64> = (0..times)
            .map(|_| {
                let t = Instant::now();
                once();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        (percentile(&ms, 0.5), percentile(&ms, 0.99))
    };
    println!("| call | over | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    for (server, over_tls, over) in [(plain, false, "HTTP"), (&secure, true, "HTTPS")] {
        let (p50, p99) = timed(
            Box::new(|| {
                let mut stream = connect(server, over_tls);
                stream.write_all(health(server, true).as_bytes()).unwrap();
                assert_eq!(answer_of(&mut stream), br#"{"status":"ok"}"#);
            }),
            rounds * 10,
        );
        println!("| /healthz, a new connection each | {over} | {p50:.2} | {p99:.2} |");
        let mut stream = connect(server, over_tls);
        let (p50, p99) = timed(
            Box::new(|| {
                stream.write_all(health(server, false).as_bytes()).unwrap();
                assert_eq!(answer_of(&mut stream), br#"{"status":"ok"}"#);
            }),
            rounds * 10,
        );
        println!("| /healthz, one kept-alive connection | {over} | {p50:.2} | {p99:.2} |");
        let (p50, p99) = timed(
            Box::new(|| {
                let mut stream = connect(server, over_tls);
                stream.write_all(signed(server, "ImageModeration", &photo).as_bytes()).unwrap();
                let answer: Value = serde_json::from_slice(&answer_of(&mut stream)).unwrap();
                assert!(answer["Response"].get("Error").is_none(), "{answer}");
            }),
            rounds,
        );
        println!("| the photo moderated, a new connection each | {over} | {p50:.1} | {p99:.1} |");
    }
}

/// A connection over plain TCP or TLS.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Results a console page is timed with.
const CONSOLE_RESULTS: usize = 100_000;

/// Writes `count` results, spread over the last 29 days, into the history of `server`'s store
/// (the one `url` names, or its SQLite file) from 8 threads: about as big as real ones (a
/// 160-px thumbnail, the answer as sent), 80% Pass, 15% Review, 5% Block, 1% corrected.
fn fill_history(server: &Server, url: Option<&str>, count: usize) -> (engine::accounts::AccountId, String) {
    use engine::decision::{Label, Suggestion};
    use engine::history::{Correction, Origin, Record};
    let store = store::open(url, server._data.path(), store::Sealer::from_key(&[0; 32])).expect("the server's store");
    let owner = store.accounts().unwrap()[0].id;
    let texture = image::RgbImage::from_fn(160, 120, |x, y| {
        image::Rgb([((x * 7) ^ (y * 13)) as u8, (x * y) as u8, (x + y * 3) as u8])
    });
    let mut thumbnail = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut thumbnail, 75).encode_image(&texture).unwrap();
    let response = json!({"Suggestion": "Pass", "Label": "Normal", "Score": 0, "LabelResults": (0..6).map(|i| json!({
        "Scene": "Porn", "Suggestion": "Pass", "Label": "Normal", "Score": i, "Details": []})).collect::<Vec<_>>()})
    .to_string();
    let now = engine::stamp::now();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for part in 0..8 {
            let (store, thumbnail, response) = (&store, &thumbnail, &response);
            scope.spawn(move || {
                for i in (part..count).step_by(8) {
                    let (suggestion, label) = match i % 20 {
                        0 => (Suggestion::Block, Label::Porn),
                        1..=3 => (Suggestion::Review, Label::Sexy),
                        _ => (Suggestion::Pass, Label::Normal),
                    };
                    let created_at = now - (i as i64 * 29 * 86_400) / count as i64;
                    store
                        .record(&Record {
                            request_id: format!("bench-{i:06}"),
                            owner,
                            account: owner,
                            created_at,
                            origin: Origin::Sync,
                            service: engine::billing::Service::Image,
                            biz_type: ["", "comments", "avatars"][i % 3].into(),
                            data_id: format!("item-{i}"),
                            file_md5: format!("{i:032x}"),
                            file_url: format!("https://images.example.com/{i}.jpg"),
                            user_id: format!("user-{}", i % 5000),
                            device_id: String::new(),
                            context: String::new(),
                            suggestion,
                            label,
                            sub_label: String::new(),
                            score: if label == Label::Normal { 0 } else { 90 },
                            flagged: if label == Label::Normal { vec![] } else { vec![label] },
                            text: String::new(),
                            hits: vec![],
                            response: response.clone(),
                            thumbnail: Some(thumbnail.clone()),
                            hashes: vec![],
                            observations: None,
                            correction: None,
                        })
                        .unwrap();
                    if i % 100 == 7 {
                        let correction = Correction {
                            suggestion: Suggestion::Pass,
                            label: Label::Normal,
                            note: String::new(),
                            by: owner,
                            at: created_at,
                        };
                        store.correct(owner, &format!("bench-{i:06}"), &correction).unwrap();
                    }
                }
            });
        }
    });
    // As autovacuum does within a minute of so many inserts: the visibility map that lets
    // PostgreSQL answer a listing from its index alone, and fresh statistics.
    if let Some(url) = url {
        let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
        client.batch_execute("VACUUM (ANALYZE) results").unwrap();
    }
    println!("({count} results written in {:.0} s, 1% corrected)", started.elapsed().as_secs_f64());
    (owner, format!("bench-{:06}", count / 2))
}

/// One GET with a cookie, on a new connection: the status and the body's length.
fn page(endpoint: &str, path: &str, cookie: &str) -> (u16, usize) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {endpoint}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n");
    let mut stream = TcpStream::connect(endpoint).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let status = String::from_utf8_lossy(&bytes[9..12]).parse().unwrap();
    (status, bytes.len())
}

/// Signs in with the server's key; the session cookie (`ims_session=...`).
fn console_cookie(server: &Server) -> String {
    let body = format!("secret_id={}&secret_key={}", server.secret_id, server.secret_key);
    let request = format!(
        "POST /console/sign-in HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        server.endpoint,
        body.len()
    );
    let mut stream = TcpStream::connect(&server.endpoint).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let line =
        answer.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie: ims_session=")).expect("signed in");
    line["set-cookie: ".len()..].split(';').next().unwrap().to_owned()
}

fn console_pages(rounds: usize) {
    let binary = Path::new(env!("CARGO_BIN_EXE_ims"));
    let postgres = store::testing::TempPostgres::start();
    let mut servers = vec![("SQLite", start(binary), None)];
    match &postgres {
        Some(postgres) => {
            let url = postgres.create_database("console");
            servers.push(("PostgreSQL", start_with(binary, &[("IMS_STORAGE__URL", Path::new(&url))]), Some(url)));
        }
        None => println!("(PostgreSQL is not installed: SQLite rows only)"),
    }
    let day = chrono::Utc::now() - chrono::Duration::days(10);
    let day = day.format("%Y-%m-%d").to_string();
    println!("\n| store | page | p50 ms | slowest ms | bytes |");
    println!("|---|---|---|---|---|");
    for (name, server, url) in &servers {
        let (_, one) = fill_history(server, url.as_deref(), CONSOLE_RESULTS);
        let cookie = console_cookie(server);
        let pages = [
            ("Overview".to_owned(), "/console/overview".to_owned()),
            ("Results, first page".to_owned(), "/console/results".to_owned()),
            ("Results, page 1,000 (of 2,000)".to_owned(), "/console/results?page=1000".to_owned()),
            ("suggestion Block".to_owned(), "/console/results?suggestion=Block".to_owned()),
            ("label Sexy, page 100".to_owned(), "/console/results?label=Sexy&page=100".to_owned()),
            ("policy comments + Review".to_owned(), "/console/results?policy=comments&suggestion=Review".to_owned()),
            ("one DataId".to_owned(), "/console/results?data_id=item-77777".to_owned()),
            ("corrected".to_owned(), "/console/results?corrected=yes".to_owned()),
            ("one day".to_owned(), format!("/console/results?from={day}&to={day}")),
            ("a result".to_owned(), format!("/console/results/{one}")),
            ("its thumbnail".to_owned(), format!("/console/results/{one}/thumbnail")),
            ("review queue".to_owned(), "/console/review".to_owned()),
        ];
        for (what, path) in &pages {
            let mut times: Vec<f64> = (0..rounds.max(3))
                .map(|_| {
                    let started = Instant::now();
                    let (status, _) = page(&server.endpoint, path, &cookie);
                    assert_eq!(status, 200, "{path}");
                    started.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            times.sort_by(f64::total_cmp);
            let bytes = page(&server.endpoint, path, &cookie).1;
            println!("| {name} | {what} | {:.1} | {:.1} | {bytes} |", percentile(&times, 0.5), times[times.len() - 1]);
        }
    }
}
