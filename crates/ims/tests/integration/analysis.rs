//! The image-analysis service (`tiia`, 2019-05-29) on the same server, through the real Python
//! `tiia` SDK: `AssessQuality` on made images (sharp and blurred, grey, tiny, huge, flat,
//! long), its `ImageBase64` bound on both sides, metered as its own service, and not reachable
//! through an ims version.

use crate::harness::{b64, python, single, Server};
use serde_json::{json, Value};

fn tiia(server: &Server, action: &str, params: Value) -> Result<Value, (String, String)> {
    let mut job = server.job(params);
    job["service"] = json!("tiia");
    job["version"] = json!("2019-05-29");
    job["action"] = json!(action);
    single(python(&job))
}

/// Calls of the first account metered this month as `service`, as `ims billing usage` reads them.
fn metered_as(server: &Server, service: &str) -> u64 {
    let account = server.cli_json(&["account", "list"])[0]["id"].as_i64().unwrap();
    let usage = server.cli_json(&["billing", "usage", &account.to_string()]);
    usage
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["service"] == service)
        .map(|r| ["trial", "package", "payg"].iter().map(|k| r["count"][k].as_u64().unwrap()).sum::<u64>())
        .sum()
}

fn jpeg(image: &image::RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(image).unwrap();
    out
}

/// A picture with detail everywhere (a pattern of colours at every scale).
fn detailed(width: u32, height: u32) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| {
        let v = ((x * 31) ^ (y * 17)).wrapping_add((x / 7) * (y / 5)) as u8;
        image::Rgb([v, v.wrapping_mul(7), v.wrapping_add(x as u8)])
    })
}

fn assess(server: &Server, image: &image::RgbImage) -> Value {
    tiia(server, "AssessQuality", json!({"ImageBase64": b64(&jpeg(image))})).unwrap()
}

/// A JPEG padded with comment segments to exactly `size` bytes.
fn jpeg_of_size(size: usize) -> Vec<u8> {
    let mut jpeg = jpeg(&detailed(400, 300));
    let mut padding = Vec::new();
    let mut missing = size - jpeg.len();
    while missing > 0 {
        // A segment is its marker (2 bytes), its length field (2) and at most 65533 bytes.
        let data = (missing - 4).min(65_533);
        let data = if missing - 4 - data > 0 && missing - 4 - data < 4 { data - 4 } else { data };
        padding.extend_from_slice(&[0xFF, 0xFE]);
        padding.extend_from_slice(&((data + 2) as u16).to_be_bytes());
        padding.extend(std::iter::repeat_n(b'x', data));
        missing -= data + 4;
    }
    jpeg.splice(2..2, padding);
    assert_eq!(jpeg.len(), size);
    jpeg
}

#[test]
fn image_quality_is_assessed_through_the_tiia_sdk() {
    let server = Server::start();
    let sharp = assess(&server, &detailed(640, 480));
    assert_eq!(
        [&sharp["LongImage"], &sharp["BlackAndWhite"], &sharp["SmallImage"], &sharp["BigImage"], &sharp["PureImage"]],
        [&json!(false); 5],
        "{sharp}"
    );
    let clear = sharp["ClarityScore"].as_i64().unwrap();
    assert!(clear > 50, "{sharp}");
    assert!(sharp.get("AestheticScore").is_none_or(Value::is_null), "never a made-up number: {sharp}");
    let blurred = assess(&server, &image::imageops::blur(&detailed(640, 480), 6.0));
    assert!(blurred["ClarityScore"].as_i64().unwrap() + 20 < clear, "{blurred}");

    let grey = image::DynamicImage::ImageRgb8(detailed(640, 480)).grayscale().to_rgb8();
    assert_eq!(assess(&server, &grey)["BlackAndWhite"], true);
    let tiny = assess(&server, &detailed(178, 120));
    assert_eq!((tiny["SmallImage"].as_bool(), tiny["ClarityScore"].as_i64()), (Some(true), Some(0)), "{tiny}");
    assert_eq!(assess(&server, &detailed(179, 120))["SmallImage"], false);
    assert_eq!(assess(&server, &detailed(1100, 1001))["BigImage"], true);
    assert_eq!(assess(&server, &detailed(1100, 1000))["BigImage"], false);
    assert_eq!(assess(&server, &image::RgbImage::from_pixel(400, 300, image::Rgb([20, 90, 200])))["PureImage"], true);
    assert_eq!(assess(&server, &detailed(900, 300))["LongImage"], true);
    assert_eq!(assess(&server, &detailed(899, 300))["LongImage"], false);

    // ImageBase64 holds at most 4 MiB: 3 MiB of bytes are exactly that in base64.
    let at_bound = b64(&jpeg_of_size(3 * 1024 * 1024));
    assert_eq!(at_bound.len(), 4 * 1024 * 1024);
    assert!(tiia(&server, "AssessQuality", json!({"ImageBase64": at_bound})).is_ok());
    let over = b64(&jpeg_of_size(3 * 1024 * 1024 + 1));
    let refused = tiia(&server, "AssessQuality", json!({"ImageBase64": over})).unwrap_err();
    assert_eq!(refused.0, "InvalidParameterValue.InvalidFileContentSize", "{refused:?}");
    let none = tiia(&server, "AssessQuality", json!({})).unwrap_err();
    assert_eq!(none.0, "InvalidParameterValue.InvalidContent", "{none:?}");

    // Metered as its own service: every answered call above, none of the refused ones.
    assert_eq!(metered_as(&server, "QUALITY"), 11);

    // tiia's actions are not ims's, nor the other way round.
    let mut ims = server.job(json!({"ImageBase64": b64(&jpeg(&detailed(200, 200)))}));
    ims["action"] = json!("AssessQuality");
    assert_eq!(single(python(&ims)).unwrap_err().0, "InvalidAction");
}

fn face_photo(path: &str) -> Option<String> {
    std::fs::read(crate::harness::workspace_root().join("../shared/data/faces/face_recognition/examples").join(path))
        .ok()
        .map(|b| b64(&b))
}

/// `CropImage` through the tiia SDK: the crop has the asked ratio, lies in the image, keeps the
/// face of a portrait (boxes in crates/inference/tests/face-boxes.csv) and one whole face of a
/// two-person photo; `Width` and `Height` bounded by the image, on both sides; metered as CROP.
#[test]
fn crops_keep_the_faces() {
    let Some(portrait) = face_photo("obama.jpg") else {
        crate::shared::absent("this test needs the face photos");
        return;
    };
    let server = Server::start();
    let crop = |params: Value| tiia(&server, "CropImage", params);
    // obama.jpg is 910 x 1137, his face at (358, 130), 280 pixels: a wide crop must keep it.
    let wide = crop(json!({"ImageBase64": portrait, "Width": 2, "Height": 1})).unwrap();
    let (x, y, w, h) = (
        wide["X"].as_i64().unwrap(),
        wide["Y"].as_i64().unwrap(),
        wide["Width"].as_i64().unwrap(),
        wide["Height"].as_i64().unwrap(),
    );
    assert_eq!(
        (x, w, h, wide["OriginalWidth"].as_i64(), wide["OriginalHeight"].as_i64()),
        (0, 910, 455, Some(910), Some(1137)),
        "{wide}"
    );
    assert!(y <= 130 && y + h >= 410, "the face is in the crop: {wide}");
    assert_eq!(wide["CropResult"], 0);

    // two_people.jpg (1126 x 661), faces at x 785 (176 wide) and 244 (166): a square keeps one whole.
    let two = face_photo("two_people.jpg").unwrap();
    let square = crop(json!({"ImageBase64": two, "Width": 1, "Height": 1})).unwrap();
    let (x, w) = (square["X"].as_i64().unwrap(), square["Width"].as_i64().unwrap());
    assert_eq!((w, square["Height"].as_i64()), (661, Some(661)));
    assert!((x <= 244 && x + w >= 410) || (x <= 785 && x + w >= 961), "a whole face: {square}");

    // Width and Height: above 0, at most the image's.
    assert!(crop(json!({"ImageBase64": portrait, "Width": 910, "Height": 1137})).is_ok());
    for (width, height) in [(911, 1137), (910, 1138), (0, 1), (1, -1)] {
        let refused = crop(json!({"ImageBase64": portrait, "Width": width, "Height": height})).unwrap_err();
        assert_eq!(refused.0, "InvalidParameterValue.InvalidParameter", "{width} x {height}: {refused:?}");
    }
    assert_eq!(metered_as(&server, "CROP"), 3);
}
