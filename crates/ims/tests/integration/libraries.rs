//! Image libraries: variants of a library image match (re-encoded, resized, cropped, framed),
//! unrelated images do not; block lists block, allow lists override the models; policies choose
//! their libraries; the CLI fills a library the running server then uses.

use crate::harness::{b64, workspace_root, Server};
use serde_json::{json, Value};

/// A photograph of ../shared (skimage), decoded; `None` when ../shared is absent.
pub fn shared_photo(name: &str) -> Option<image::RgbImage> {
    let path = workspace_root().join("../shared/data/safe/skimage").join(name);
    let bytes = std::fs::read(path).ok()?;
    Some(image::load_from_memory(&bytes).unwrap().to_rgb8())
}

pub fn jpeg(image: &image::RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(image).unwrap();
    out
}

fn png(image: &image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The variants a library must still recognise, by name.
fn variants(original: &image::RgbImage) -> Vec<(&'static str, Vec<u8>)> {
    let (w, h) = original.dimensions();
    let half = image::imageops::resize(original, w / 2, h / 2, image::imageops::FilterType::Triangle);
    let cropped = image::imageops::crop_imm(original, w * 6 / 100, 0, w - w * 6 / 100, h).to_image();
    let mut framed = image::RgbImage::from_pixel(w + w / 5, h + h / 5, image::Rgb([255, 255, 255]));
    image::imageops::replace(&mut framed, original, i64::from(w / 10), i64::from(h / 10));
    vec![
        ("png as is", png(original)),
        ("jpeg quality 20", jpeg(original, 20)),
        ("half size", jpeg(&half, 85)),
        ("6% cropped from the left", jpeg(&cropped, 85)),
        ("white frame of 10%", jpeg(&framed, 85)),
    ]
}

fn moderate(server: &Server, params: Value) -> Value {
    server.call("ImageModeration", params).unwrap()
}

#[test]
fn library_images_match_through_variants_and_decide() {
    let (Some(cat), Some(coffee), Some(astronaut)) =
        (shared_photo("chelsea.png"), shared_photo("coffee.png"), shared_photo("astronaut.png"))
    else {
        crate::shared::absent("this test needs its photographs");
        return;
    };
    let server = Server::start();
    let blocked =
        server.call("CreateImageLib", json!({"LibName": "banned", "Label": "Porn", "Action": "Block"})).unwrap();
    let block_lib = blocked["LibId"].as_str().unwrap().to_string();
    let added = server
        .call(
            "CreateImageSamples",
            json!({"LibId": block_lib, "Images": [{"Name": "cat", "FileContent": b64(&png(&cat))}]}),
        )
        .unwrap();
    let image_id = added["Samples"][0]["ImageId"].as_str().unwrap().to_string();
    assert!(added["Samples"][0]["Hashes"].as_u64().unwrap() > 10, "a sample is filed with its variants: {added}");

    for (what, bytes) in variants(&cat) {
        let r = moderate(&server, json!({"FileContent": b64(&bytes)}));
        assert_eq!((r["Suggestion"].as_str(), r["Label"].as_str()), (Some("Block"), Some("Porn")), "{what}: {r}");
        let lib = &r["LibResults"][0];
        assert_eq!(lib["Scene"], "Similar", "{what}");
        assert_eq!(lib["Details"][0]["ImageId"], image_id.as_str(), "{what}");
        assert_eq!(lib["Details"][0]["LibId"], block_lib.as_str());
        assert!(lib["Details"][0]["Score"].as_i64().unwrap() >= 76, "{what}: within 31 bits: {lib}");
        let extra: Value = serde_json::from_str(r["Extra"].as_str().unwrap()).unwrap();
        assert_eq!(extra["Explanation"][0]["ImageId"], image_id.as_str(), "{what}: the explanation names the sample");
    }
    for (what, photo) in [("coffee", &coffee), ("astronaut", &astronaut)] {
        let r = moderate(&server, json!({"FileContent": b64(&jpeg(photo, 90))}));
        assert_eq!(r["Suggestion"], "Pass", "{what}: {r}");
        let lib = &r["LibResults"][0];
        assert_eq!((lib["Scene"].as_str(), lib["Label"].as_str()), (Some("Similar"), Some("Normal")), "{what}: {r}");
        assert_eq!(lib["Details"], json!([]), "{what} matched nothing: {r}");
    }

    // An allow list overrides the models: under a policy that blocks everything, the
    // astronaut passes once it is in an allow library, and only under policies that link it.
    let strict = |name: &str| {
        json!({"BizType": name, "Votes": 1, "Thresholds": [
        {"Label": "Porn", "Model": "open_nsfw", "Review": 0, "Block": 0}]})
    };
    server.call("CreateBizConfig", strict("strict")).unwrap();
    let allowed =
        server.call("CreateImageLib", json!({"LibName": "ok", "Label": "Normal", "Action": "Allow"})).unwrap();
    let allow_lib = allowed["LibId"].as_str().unwrap();
    let mut linked = strict("strict_linked");
    linked["ImageLibs"] = json!([allow_lib]);
    server.call("CreateBizConfig", linked).unwrap();
    let mut unlinked = strict("strict_unlinked");
    unlinked["ImageLibs"] = json!([]);
    server.call("CreateBizConfig", unlinked).unwrap();
    let photo = b64(&jpeg(&astronaut, 90));
    assert_eq!(moderate(&server, json!({"BizType": "strict", "FileContent": photo}))["Suggestion"], "Block");
    server.call("CreateImageSamples", json!({"LibId": allow_lib, "Images": [{"FileContent": photo}]})).unwrap();
    for (policy, expected) in [("strict", "Pass"), ("strict_linked", "Pass"), ("strict_unlinked", "Block")] {
        let r = moderate(&server, json!({"BizType": policy, "FileContent": photo}));
        assert_eq!(r["Suggestion"], expected, "{policy}: {r}");
    }
    assert_eq!(
        server.call("CreateBizConfig", json!({"BizType": "bad_link", "ImageLibs": ["no-such-lib"]})).unwrap_err().0,
        "ResourceNotFound"
    );

    // Another main account's libraries never apply.
    let (other, _, _) = server.main_account("other");
    let (other_id, other_key) = server.new_key(other);
    let mut job = server.job(json!({"FileContent": b64(&png(&cat))}));
    (job["secret_id"], job["secret_key"]) = (json!(other_id), json!(other_key));
    let theirs = crate::harness::single(crate::harness::python(&job)).unwrap();
    assert_eq!(theirs["Suggestion"], "Pass", "{theirs}");

    // Removed samples stop matching at once.
    server.call("DeleteImageSamples", json!({"ImageIds": [image_id]})).unwrap();
    assert_eq!(moderate(&server, json!({"FileContent": b64(&png(&cat))}))["Suggestion"], "Pass");
    let libs = server.call("DescribeImageLibs", json!({})).unwrap();
    assert_eq!(libs["TotalCount"], 2);
    server.call("DeleteImageLib", json!({"LibId": block_lib})).unwrap();
    assert_eq!(server.call("DeleteImageLib", json!({"LibId": block_lib})).unwrap_err().0, "ResourceNotFound");
}

#[test]
fn library_requests_are_checked_at_their_bounds() {
    let server = Server::start();
    let lib = server.call("CreateImageLib", json!({"LibName": "l", "Label": "Ad", "Action": "Block"})).unwrap();
    let lib_id = lib["LibId"].as_str().unwrap();
    let code = |action: &str, params: Value| server.call(action, params).unwrap_err().0;
    assert_eq!(code("CreateImageLib", json!({"LibName": "l", "Label": "Ad", "Action": "Block"})), "ResourceInUse");
    assert_eq!(
        code("CreateImageLib", json!({"LibName": "x", "Label": "Nope", "Action": "Block"})),
        "InvalidParameterValue.InvalidParameter"
    );
    assert_eq!(
        code("CreateImageLib", json!({"LibName": "x", "Label": "Ad", "Action": "Maybe"})),
        "InvalidParameterValue.InvalidParameter"
    );
    assert_eq!(
        code("CreateImageLib", json!({"LibName": "a".repeat(65), "Label": "Ad", "Action": "Block"})),
        "InvalidParameterValue.InvalidParameter"
    );
    server.call("CreateImageLib", json!({"LibName": "a".repeat(64), "Label": "Ad", "Action": "Block"})).unwrap();
    // 1 to 20 images a call.
    let image = json!({"FileContent": crate::harness::image_base64()});
    assert_eq!(
        code("CreateImageSamples", json!({"LibId": lib_id, "Images": []})),
        "InvalidParameterValue.InvalidParameter"
    );
    assert_eq!(
        code("CreateImageSamples", json!({"LibId": lib_id, "Images": vec![image.clone(); 21]})),
        "InvalidParameterValue.InvalidParameter"
    );
    // A flat image has no usable hash: refused, and nothing of the call is stored.
    let flat = b64(&png(&image::RgbImage::from_pixel(80, 80, image::Rgb([50, 60, 70]))));
    assert_eq!(
        code("CreateImageSamples", json!({"LibId": lib_id, "Images": [{"FileContent": flat}]})),
        "InvalidParameterValue.InvalidParameter"
    );
    assert_eq!(server.call("DescribeImageSamples", json!({"LibId": lib_id})).unwrap()["TotalCount"], 0);
    assert_eq!(
        code("DescribeImageSamples", json!({"LibId": lib_id, "Limit": 101})),
        "InvalidParameterValue.InvalidParameter"
    );
    assert_eq!(
        code("DescribeImageSamples", json!({"LibId": lib_id, "Limit": 0})),
        "InvalidParameterValue.InvalidParameter"
    );
    server.call("DescribeImageSamples", json!({"LibId": lib_id, "Limit": 100})).unwrap();
    assert_eq!(code("CreateImageSamples", json!({"LibId": "nope", "Images": [image]})), "ResourceNotFound");
    assert_eq!(code("DeleteImageSamples", json!({"ImageIds": ["nope"]})), "ResourceNotFound");
}

#[test]
fn the_cli_fills_a_library_the_running_server_uses() {
    let Some(cat) = shared_photo("chelsea.png") else {
        crate::shared::absent("this test needs its photographs");
        return;
    };
    let server = Server::start();
    let account = server.cli_json(&["account", "list"])[0]["id"].as_i64().unwrap().to_string();
    let created = server.cli_json(&[
        "library",
        "create",
        "--account",
        &account,
        "--name",
        "cli",
        "--label",
        "Terror",
        "--action",
        "block",
    ]);
    let lib_id = created[0]["LibId"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cat.png"), png(&cat)).unwrap();
    let added = server.cli(&["library", "add", "--account", &account, &lib_id, dir.path().to_str().unwrap()]).unwrap();
    assert!(added.contains("cat.png"), "{added}");
    let r = moderate(&server, json!({"FileContent": b64(&jpeg(&cat, 60))}));
    assert_eq!((r["Suggestion"].as_str(), r["Label"].as_str()), (Some("Block"), Some("Terror")), "{r}");
    let listed = server.cli(&["library", "samples", "--account", &account, &lib_id]).unwrap();
    assert!(listed.contains("1 samples"), "{listed}");
}
