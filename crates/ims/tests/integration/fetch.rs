//! `FileUrl` against a local HTTP server that misbehaves on purpose.

use crate::harness::{bmp, raw, Server, Tc3};
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A small HTTP server on 127.0.0.1 with one route per misbehaviour.
struct ImageHost {
    port: u16,
    /// Bytes of the endless body written before the client hung up.
    endless_written: Arc<AtomicU64>,
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

impl ImageHost {
    fn start() -> ImageHost {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let endless_written = Arc::new(AtomicU64::new(0));
        let written = endless_written.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let written = written.clone();
                std::thread::spawn(move || {
                    let mut line = String::new();
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    reader.read_line(&mut line).unwrap_or_default();
                    let mut user_agent = String::new();
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                            break;
                        }
                        if let Some(v) = header.to_ascii_lowercase().strip_prefix("user-agent:") {
                            user_agent = v.trim().to_string();
                        }
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                    if let Some(size) = path.strip_prefix("/exact/").and_then(|n| n.parse::<usize>().ok()) {
                        // A real BMP padded with trailing bytes to exactly `size` bytes.
                        let mut body = bmp(64, 64);
                        body.resize(size, 0);
                        return respond(&mut stream, "200 OK", &[], &body);
                    }
                    match path.as_str() {
                        "/image.bmp" if user_agent == concat!("ims-image-fetcher/", env!("CARGO_PKG_VERSION")) => {
                            respond(&mut stream, "200 OK", &[("Content-Type", "image/bmp".into())], &bmp(64, 64))
                        }
                        "/image.bmp" => respond(&mut stream, "403 Forbidden", &[], b"unknown client"),
                        "/slow.bmp" => {
                            std::thread::sleep(Duration::from_secs(4));
                            respond(&mut stream, "200 OK", &[], &bmp(64, 64));
                        }
                        "/declared-huge.bmp" => {
                            let head = "HTTP/1.1 200 OK\r\nContent-Length: 40000000\r\nConnection: close\r\n\r\n";
                            let _ = stream.write_all(head.as_bytes());
                        }
                        "/endless.bmp" => {
                            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                            let mut chunk = bmp(64, 64);
                            chunk.resize(1 << 20, 7);
                            for _ in 0..100 {
                                if stream.write_all(&chunk).is_err() {
                                    break;
                                }
                                written.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                            }
                        }
                        "/to-ip-literal" => respond(
                            &mut stream,
                            "302 Found",
                            &[("Location", format!("http://127.0.0.1:{port}/image.bmp"))],
                            b"",
                        ),
                        "/to-allowed-name" => respond(
                            &mut stream,
                            "302 Found",
                            &[("Location", format!("http://localhost:{port}/image.bmp"))],
                            b"",
                        ),
                        "/loop" => respond(&mut stream, "302 Found", &[("Location", "/loop".into())], b""),
                        "/page.html" => respond(
                            &mut stream,
                            "200 OK",
                            &[("Content-Type", "text/html".into())],
                            b"<!doctype html><html><body>not an image</body></html>",
                        ),
                        _ => respond(&mut stream, "404 Not Found", &[], b"missing"),
                    }
                });
            }
        });
        ImageHost { port, endless_written }
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }
}

fn moderate(server: &Server, url: &str) -> (String, serde_json::Value) {
    let response = Tc3::new(server, "ImageModeration").post(server, json!({"FileUrl": url}).to_string().as_bytes());
    (response.code(), response.json()["Response"].clone())
}

/// A server that may fetch from `localhost` (as a private deployment would allow its own
/// image host), with a 1-second timeout to keep the slow case short.
fn allowing_server() -> Server {
    Server::start_with(&[("IMS_FETCH__ALLOW_INTERNAL_HOSTS", "[\"localhost\"]"), ("IMS_FETCH__TIMEOUT_SECS", "1")], &[])
}

#[test]
fn a_reachable_image_is_moderated_with_its_md5() {
    let host = ImageHost::start();
    let server = allowing_server();
    let (code, response) = moderate(&server, &host.url("localhost", "/image.bmp"));
    assert_eq!(code, "Success", "{response}");
    assert_eq!(response["Suggestion"], "Pass");
    use md5::Digest;
    assert_eq!(response["FileMD5"], hex::encode(md5::Md5::digest(bmp(64, 64))));
    // Redirects to an allowed name are followed.
    assert_eq!(moderate(&server, &host.url("localhost", "/to-allowed-name")).0, "Success");
}

#[test]
fn failures_each_have_their_code() {
    let host = ImageHost::start();
    let server = allowing_server();
    let cases = [
        ("/missing.bmp", "ResourceUnavailable.ImageDownloadError", "404"),
        ("/page.html", "ResourceUnavailable.InvalidImageContent", "not an image"),
        ("/declared-huge.bmp", "InvalidParameterValue.InvalidFileContentSize", "31457280"),
        ("/to-ip-literal", "OperationDenied", "IP address"),
        ("/loop", "ResourceUnavailable.ImageDownloadError", "redirects"),
    ];
    for (path, code, mentioned) in cases {
        let (got, response) = moderate(&server, &host.url("localhost", path));
        assert_eq!(got, code, "{path}: {response}");
        let message = response["Error"]["Message"].as_str().unwrap();
        assert!(message.contains(mentioned), "{path}: {message}");
    }
}

#[test]
fn the_url_size_limit_on_both_sides() {
    let host = ImageHost::start();
    let server = allowing_server();
    let limit = 30 * 1024 * 1024;
    assert_eq!(moderate(&server, &host.url("localhost", &format!("/exact/{}", limit - 1))).0, "Success");
    let (code, response) = moderate(&server, &host.url("localhost", &format!("/exact/{limit}")));
    assert_eq!(code, "InvalidParameterValue.InvalidFileContentSize", "{response}");
}

#[test]
fn a_slow_server_times_out_after_one_retry() {
    let host = ImageHost::start();
    let server = allowing_server();
    let started = Instant::now();
    let (code, response) = moderate(&server, &host.url("localhost", "/slow.bmp"));
    let elapsed = started.elapsed();
    assert_eq!(code, "ResourceUnavailable.ImageDownloadError");
    assert!(response["Error"]["Message"].as_str().unwrap().contains("tried 2 times"), "{response}");
    // Two attempts of one second each, not the four seconds the server takes.
    assert!(elapsed >= Duration::from_secs(2) && elapsed < Duration::from_millis(3500), "{elapsed:?}");
}

#[test]
fn an_endless_body_is_abandoned_at_the_limit() {
    let host = ImageHost::start();
    let server = allowing_server();
    let (code, _) = moderate(&server, &host.url("localhost", "/endless.bmp"));
    assert_eq!(code, "InvalidParameterValue.InvalidFileContentSize");
    std::thread::sleep(Duration::from_millis(300));
    let written = host.endless_written.load(Ordering::SeqCst);
    // Socket buffers hold a few MB more than the fetcher read; far from the 100 MB offered.
    assert!(written < 40 << 20, "the server wrote {written} bytes before the fetcher hung up");
}

#[test]
fn internal_destinations_and_bad_urls_are_refused_by_default() {
    let host = ImageHost::start();
    let server = Server::start();
    let cases = [
        (host.url("localhost", "/image.bmp"), "OperationDenied"),
        (host.url("127.0.0.1", "/image.bmp"), "OperationDenied"),
        (format!("http://[::1]:{}/image.bmp", host.port), "OperationDenied"),
        ("http://169.254.169.254/latest/meta-data/".to_string(), "OperationDenied"),
        ("ftp://example.com/image.bmp".to_string(), "InvalidParameterValue.InvalidParameter"),
        ("file:///etc/passwd".to_string(), "InvalidParameterValue.InvalidParameter"),
        ("/only/a/path.bmp".to_string(), "InvalidParameterValue.InvalidParameter"),
        ("example.com/image.bmp".to_string(), "InvalidParameterValue.InvalidParameter"),
        ("http://no-such-host.invalid/image.bmp".to_string(), "ResourceUnavailable.ImageDownloadError"),
    ];
    for (url, code) in cases {
        assert_eq!(moderate(&server, &url).0, code, "{url}");
    }
    // Health of the server is unaffected.
    assert_eq!(raw(&server.endpoint, "GET", "/healthz", &[], b"").status, 200);
}
