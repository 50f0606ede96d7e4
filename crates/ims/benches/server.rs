//! The whole path through the real server: `ims serve` (release) on a fresh data folder, driven
//! by signed TC3 `ImageModeration` calls over HTTP at 1, 4 and 8 clients, for a photo without text
//! and a page with text, under the default policy and one with OCR off. Prints p50 / p99 / images
//! per second per row, the mean time of every stage (`ims_stage_seconds`, read from `/metrics`),
//! and the server's resident memory before, at the peak of and after the load.
//!
//! `cargo bench -p ims --bench server` (`ROUNDS=N` calls per client, default 12). Needs
//! ../shared/data (the photo and the page) and the artifacts of scripts/fetch.py.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

fn start() -> Server {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ims"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("IMS_CONFIG")
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
        if let Some(rest) = line.strip_prefix("ims listening on http://") {
            endpoint = rest.to_string();
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
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nX-TC-Action: {action}\r\n\
         X-TC-Version: 2020-12-29\r\nX-TC-Timestamp: {}\r\nAuthorization: {authorization}\r\nContent-Length: {}\r\n\r\n{body}",
        server.endpoint,
        now.timestamp(),
        body.len()
    );
    let answer: Value = serde_json::from_slice(&exchange(&server.endpoint, request.as_bytes())).unwrap();
    answer["Response"].clone()
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
    let started = Instant::now();
    let mut times: Vec<f64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    (0..rounds)
                        .map(|_| {
                            let t = Instant::now();
                            let answer = call(server, "ImageModeration", params);
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
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
}

/// skimage's chelsea, resized to 1024x768, as a quality-90 JPEG: a photo without text.
fn photo(shared: &Path) -> String {
    use base64::Engine;
    let cat = image::open(shared.join("safe/skimage/chelsea.png")).unwrap().to_rgb8();
    let resized = image::imageops::resize(&cat, 1024, 768, image::imageops::FilterType::Triangle);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&resized).unwrap();
    base64::engine::general_purpose::STANDARD.encode(jpeg)
}

fn main() {
    let shared: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if !shared.exists() {
        println!("SKIPPED: ../shared/data is absent (the bench needs its photo and page)");
        return;
    }
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(12);
    let server = start();
    call(&server, "CreateBizConfig", &json!({"BizType": "no_text", "Ocr": false}));
    let images = [
        ("photo 1024x768, no text", photo(&shared)),
        ("page 1024x800, text", base64_of(&shared.join("ocr/tesseract-test/testing/eurotext.tif"))),
    ];
    let before = resident_mib(&server);
    // Resident memory sampled every 50 ms while the load runs.
    let peak_kib = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak_kib, sampling, pid) = (peak_kib.clone(), sampling.clone(), server.child.id());
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak_kib.fetch_max((rss_of(pid) * 1024.0) as u64, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    // Warm-up: every model's first run allocates.
    for (_, image) in &images {
        call(&server, "ImageModeration", &json!({"FileContent": image}));
    }
    println!("| image | policy | clients | p50 ms | p99 ms | images/s |");
    println!("|---|---|---|---|---|---|");
    for (name, image) in &images {
        for (policy, biz_type) in [("default", ""), ("OCR off", "no_text")] {
            for clients in [1, 4, 8] {
                let params = json!({"FileContent": image, "BizType": biz_type});
                let (p50, p99, rate) = drive(&server, &params, clients, rounds);
                println!("| {name} | {policy} | {clients} | {p50:.0} | {p99:.0} | {rate:.1} |");
            }
        }
    }
    println!("\n| stage | calls | mean ms |");
    println!("|---|---|---|");
    for (stage, sum, count) in stages(&server) {
        if count > 0.0 {
            println!("| {stage} | {count} | {:.1} |", sum / count * 1e3);
        }
    }
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak_kib.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0;
    std::thread::sleep(Duration::from_secs(60));
    println!(
        "\nresident memory: {before:.0} MiB after start, {peak:.0} MiB at the peak of the load, {:.0} MiB a minute after",
        resident_mib(&server)
    );
}
