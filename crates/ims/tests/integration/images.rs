//! Images through the API: animated sampling, limits at their boundaries, alpha.

use crate::harness::{b64, bmp, raw, workspace_root, Server, Tc3};
use image::codecs::gif::GifEncoder;
use image::{Delay, Frame, Rgba, RgbaImage};
use serde_json::{json, Value};

fn moderate(server: &Server, params: Value) -> (String, Value) {
    let response = Tc3::new(server, "ImageModeration").post(server, params.to_string().as_bytes());
    (response.code(), response.json()["Response"].clone())
}

/// An animated GIF of `n` frames, each a different grey.
fn animated_gif(n: u8) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        for i in 0..n {
            let frame = RgbaImage::from_pixel(64, 64, Rgba([i * 10, i * 10, i * 10, 255]));
            encoder.encode_frame(Frame::from_parts(frame, 0, 0, Delay::from_numer_denom_ms(100, 1))).unwrap();
        }
    }
    out
}

fn frames(response: &Value) -> Vec<u64> {
    let extra: Value = serde_json::from_str(response["Extra"].as_str().unwrap()).unwrap();
    extra["Frames"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect()
}

#[test]
fn animated_frames_are_sampled_as_requested() {
    let server = Server::start();
    let gif = b64(&animated_gif(12));
    let cases = [
        (json!({}), vec![0, 5, 10]),
        (json!({"Interval": 0, "MaxFrames": 0}), vec![0, 5, 10]),
        (json!({"Interval": 1, "MaxFrames": 3}), vec![0, 1, 2]),
        (json!({"Interval": 3, "MaxFrames": 400}), vec![0, 3, 6, 9]),
        (json!({"MaxFrames": 1}), vec![0]),
    ];
    for (sampling, expected) in cases {
        let mut params = sampling.clone();
        params["FileContent"] = json!(gif);
        let (code, response) = moderate(&server, params);
        assert_eq!(code, "Success", "{sampling}: {response}");
        assert_eq!(frames(&response), expected, "{sampling}");
        let extra: Value = serde_json::from_str(response["Extra"].as_str().unwrap()).unwrap();
        assert_eq!(extra["Format"], "gif");
        assert_eq!(extra["Frame"], 0, "nothing reached Review: the first frame stands for all");
    }
}

#[test]
fn size_limits_on_both_sides_through_the_api() {
    let server = Server::start();
    let cases = [
        (bmp(51, 51), "Success"),
        (bmp(50, 51), "InvalidParameter.ImageSizeTooSmall"),
        (bmp(51, 50), "InvalidParameter.ImageSizeTooSmall"),
        (bmp(5339, 60), "Success"),
        (bmp(5400, 60), "InvalidParameter.ImageAspectRatioTooLarge"),
        (bmp(60, 5400), "InvalidParameter.ImageAspectRatioTooLarge"),
    ];
    for (image, code) in cases {
        let (got, response) = moderate(&server, json!({"FileContent": b64(&image)}));
        assert_eq!(got, code, "{response}");
    }
    // Declared sizes are refused from the header, before any pixel is decoded: a 10000-pixel
    // side in a file of a few dozen bytes.
    let mut bomb = bmp(64, 64);
    bomb[18..22].copy_from_slice(&10000u32.to_le_bytes());
    bomb[22..26].copy_from_slice(&10000u32.to_le_bytes());
    bomb.truncate(64);
    assert_eq!(moderate(&server, json!({"FileContent": b64(&bomb)})).0, "InvalidParameterValue.InvalidImageContent");
    let mut ok = bmp(64, 64);
    ok[18..22].copy_from_slice(&9999u32.to_le_bytes());
    ok[22..26].copy_from_slice(&9999u32.to_le_bytes());
    ok.truncate(64);
    // 9999 x 9999 passes the limit, and the missing pixel data then fails to decode.
    assert_eq!(moderate(&server, json!({"FileContent": b64(&ok)})).0, "InvalidParameter.InvalidImageContent");
    // File size: 15 bytes refused as too small, 16 bytes reaches format detection.
    assert_eq!(moderate(&server, json!({"FileContent": b64(&[b'B'; 15])})).0, "InvalidParameter.ImageDataTooSmall");
    assert_eq!(moderate(&server, json!({"FileContent": b64(&[b'x'; 16])})).0, "InvalidParameter.InvalidImageContent");
}

#[test]
fn transparent_png_is_moderated() {
    let server = Server::start();
    let mut png = Vec::new();
    RgbaImage::from_pixel(80, 80, Rgba([255, 0, 0, 0]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let (code, response) = moderate(&server, json!({"FileContent": b64(&png)}));
    assert_eq!(code, "Success", "{response}");
}

/// White text on a transparent background vanishes on white: the image is also seen on a dark
/// backdrop, where it is read.
#[test]
fn white_text_on_transparency_is_read_on_a_dark_backdrop() {
    let file =
        workspace_root().join("../shared/data/ocr/rapidocr/python/tests/test_files/white_font_color_transparent.png");
    let Ok(png) = std::fs::read(file) else {
        crate::shared::absent("rapidocr's white text on transparency");
        return;
    };
    let server = Server::start();
    let (code, response) = moderate(&server, json!({"FileContent": b64(&png)}));
    assert_eq!(code, "Success", "{response}");
    assert!(response["OcrResults"][0]["Text"].as_str().is_some_and(|t| t.contains("我是")), "{response}");
    let extra: serde_json::Value = serde_json::from_str(response["Extra"].as_str().unwrap()).unwrap();
    assert_eq!(extra["Frames"], json!([0]), "one frame, seen on two backdrops, listed once");
}

/// A long strip keeps its pixels (its long side is not cut to 2048), so a line of text in it
/// stays legible, and the models look at it in windows along its length.
#[test]
fn a_long_strip_is_read_at_full_size_and_looked_at_in_windows() {
    let file = workspace_root().join("../shared/data/ocr/rendered/wqy-microhei.png");
    let Ok(line) = image::open(file) else {
        crate::shared::absent("a rendered line of text");
        return;
    };
    // 8000 x 120: shrunk to 2048 long, the line's characters would be 10 pixels high.
    let mut strip = image::RgbImage::from_fn(8000, 120, |x, _| image::Rgb([255, 255, (x % 256) as u8]));
    image::imageops::replace(&mut strip, &line.to_rgb8(), 6100, 28);
    let mut png = std::io::Cursor::new(Vec::new());
    strip.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let server = Server::start();
    let (code, response) = moderate(&server, json!({"FileContent": b64(png.get_ref())}));
    assert_eq!(code, "Success", "{response}");
    let text = response["OcrResults"][0]["Text"].as_str().unwrap_or_default();
    assert!(text.contains("内容审核测试"), "{response}");
    // 8000 long, 120 high: 4:3 windows overlapping by 30 pixels would be (8000 - 30) / (160 - 30)
    // -> 62; bounded to 24, each (8000 + 23 x 30) / 24 -> 362 long. The answer names one.
    let extra: serde_json::Value = serde_json::from_str(response["Extra"].as_str().unwrap()).unwrap();
    assert_eq!(extra["Region"], json!({"X": 0, "Y": 0, "Width": 362, "Height": 120}), "{extra}");
}

/// How many times a stage ran, from the server's `/metrics`.
fn stage_count(server: &Server, stage: &str) -> u64 {
    let metrics = String::from_utf8(raw(&server.endpoint, "GET", "/metrics", &[], b"").body).unwrap();
    let prefix = format!(r#"ims_stage_seconds_count{{stage="{stage}"}} "#);
    metrics.lines().find_map(|l| l.strip_prefix(prefix.as_str())).map_or(0, |n| n.parse().unwrap())
}

/// OCR's first look: a photo without text costs the tiny detector alone; a page with text also
/// gets the full detector, and its text is read.
#[test]
fn ocr_looks_first_and_reads_only_images_with_text() {
    let server = Server::start();
    // A smooth 800 x 600 picture: shades and soft shapes, no edges like those of letters.
    let picture = image::RgbImage::from_fn(800, 600, |x, y| {
        let (fx, fy) = (x as f32 / 90.0, y as f32 / 70.0);
        image::Rgb([
            (120.0 + 60.0 * fx.sin()) as u8,
            (110.0 + 50.0 * fy.cos()) as u8,
            (90.0 + 40.0 * (fx + fy).sin()) as u8,
        ])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&picture).unwrap();
    let (code, _) = moderate(&server, json!({"FileContent": b64(&jpeg)}));
    assert_eq!(code, "Success");
    assert_eq!(stage_count(&server, "run:ppocr-det-tiny"), 1);
    assert_eq!(stage_count(&server, "run:ppocr-det-small"), 0, "the full detector ran on a picture without text");

    let page = workspace_root().join("../shared/data/ocr/tesseract-test/testing/phototest.tif");
    let Ok(page) = std::fs::read(page) else {
        crate::shared::absent("tesseract's phototest page");
        return;
    };
    let (code, response) = moderate(&server, json!({"FileContent": b64(&page)}));
    assert_eq!(code, "Success");
    assert_eq!(stage_count(&server, "run:ppocr-det-tiny"), 2);
    assert_eq!(stage_count(&server, "run:ppocr-det-small"), 1);
    assert!(response.to_string().contains("quick brown dog"), "{response}");
}
