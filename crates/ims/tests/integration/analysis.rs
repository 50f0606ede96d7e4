//! The image-analysis service (`tiia`, 2019-05-29) on the same server, through the real Python
//! `tiia` SDK: `AssessQuality` on made images (sharp and blurred, grey, tiny, huge, flat,
//! long), its `ImageBase64` bound on both sides, metered as its own service, and not reachable
//! through an ims version.

use crate::harness::{b64, python, single, Server};
use serde_json::{json, Value};

pub fn tiia(server: &Server, action: &str, params: Value) -> Result<Value, (String, String)> {
    let mut job = server.job(params);
    job["service"] = json!("tiia");
    job["version"] = json!("2019-05-29");
    job["action"] = json!(action);
    single(python(&job))
}

/// Calls of the first account metered this month as `service`, as `ims billing usage` reads them.
pub fn metered_as(server: &Server, service: &str) -> u64 {
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

pub fn jpeg(image: &image::RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(image).unwrap();
    out
}

/// A picture with detail everywhere (a pattern of colours at every scale).
pub fn detailed(width: u32, height: u32) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| {
        let v = ((x * 31) ^ (y * 17)).wrapping_add((x / 7) * (y / 5)) as u8;
        image::Rgb([v, v.wrapping_mul(7), v.wrapping_add(x as u8)])
    })
}

fn assess(server: &Server, image: &image::RgbImage) -> Value {
    tiia(server, "AssessQuality", json!({"ImageBase64": b64(&jpeg(image))})).unwrap()
}

/// A JPEG padded with comment segments to exactly `size` bytes.
pub fn jpeg_of_size(size: usize) -> Vec<u8> {
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

pub fn shared_picture(path: &str) -> Option<String> {
    std::fs::read(crate::harness::workspace_root().join("../shared/data").join(path)).ok().map(|b| b64(&b))
}

/// `DetectLabel` and `RecognizeCar` through the tiia SDK: the objects of ../shared/data's
/// pictures with their Chinese names and categories, in each list of the scenes asked for; a
/// motorcycle's type, colour and box; `FailedOperation.NoObjectDetected` without a vehicle;
/// metered as LABEL and CAR; refused without the object detector.
#[test]
fn objects_are_labelled_and_vehicles_recognised() {
    let (Some(motorcycle), Some(coffee)) =
        (shared_picture("safe/skimage/motorcycle_left.png"), shared_picture("safe/skimage/coffee.png"))
    else {
        crate::shared::absent("this test needs the skimage pictures");
        return;
    };
    let server = Server::start();
    let labels = tiia(&server, "DetectLabel", json!({"ImageBase64": motorcycle})).unwrap();
    let web = labels["Labels"].as_array().unwrap();
    let bike = web.iter().find(|l| l["Name"] == "摩托车").expect("a motorcycle");
    assert_eq!((bike["FirstCategory"].as_str(), bike["SecondCategory"].as_str()), (Some("物品"), Some("交通工具")));
    assert!(bike["Confidence"].as_i64().unwrap() >= 50, "{bike}");
    for other in ["CameraLabels", "AlbumLabels", "NewsLabels"] {
        assert!(labels[other].is_null(), "{other} was not asked for: {labels}");
    }
    // Several scenes: one detector fills each list; the news list has no categories.
    let both = tiia(&server, "DetectLabel", json!({"ImageBase64": coffee, "Scenes": ["WEB", "NEWS"]})).unwrap();
    let cup = json!({"Name": "杯子", "FirstCategory": "物品", "SecondCategory": "餐具"});
    assert!(both["Labels"].as_array().unwrap().iter().any(|l| l["Name"] == cup["Name"]
        && l["FirstCategory"] == cup["FirstCategory"]
        && l["SecondCategory"] == cup["SecondCategory"]));
    let news = &both["NewsLabels"].as_array().unwrap()[0];
    assert_eq!((news["Name"].as_str(), news["FirstCategory"].as_str()), (Some("杯子"), Some("")));
    let refused = tiia(&server, "DetectLabel", json!({"ImageBase64": coffee, "Scenes": ["SPACE"]})).unwrap_err();
    assert_eq!(refused.0, "InvalidParameterValue.InvalidParameter", "{refused:?}");

    // motorcycle_left.png is 741 x 500; the motorcycle fills most of it.
    let car = tiia(&server, "RecognizeCar", json!({"ImageBase64": motorcycle})).unwrap();
    let tag = &car["CarTags"][0];
    assert_eq!(
        (tag["Type"].as_str(), tag["Brand"].as_str(), tag["Year"].as_i64()),
        (Some("摩托车"), Some(""), Some(0))
    );
    assert_eq!(tag["Color"], "红", "{tag}");
    let corners = car["CarCoords"].as_array().unwrap();
    let (xs, ys): (Vec<i64>, Vec<i64>) =
        corners.iter().map(|c| (c["X"].as_i64().unwrap(), c["Y"].as_i64().unwrap())).unzip();
    assert_eq!(corners.len(), 4);
    assert!(xs[0] == xs[1] && ys[1] == ys[2] && ys[0] > ys[1], "bottom-left, top-left, top-right: {car}");
    let (width, height) = (xs[2] - xs[0], ys[0] - ys[1]);
    assert!(width > 400 && height > 250 && xs[2] <= 741 && ys[0] <= 500, "{car}");
    assert_eq!(tag["CarLocation"], car["CarCoords"]);
    let none = tiia(&server, "RecognizeCar", json!({"ImageBase64": coffee})).unwrap_err();
    assert_eq!(none.0, "FailedOperation.NoObjectDetected", "{none:?}");

    // Metered as their own services: every answered call, none of the refused ones.
    assert_eq!((metered_as(&server, "LABEL"), metered_as(&server, "CAR")), (2, 1));

    let without = Server::start_with(&[("IMS_INFERENCE__OBJECTS", "false")], &[]);
    let refused = tiia(&without, "DetectLabel", json!({"ImageBase64": coffee})).unwrap_err();
    assert_eq!(refused.0, "UnsupportedOperation", "{refused:?}");
    assert!(refused.1.contains("inference.objects"), "{refused:?}");
    let policy = without.call("CreateBizConfig", json!({"BizType": "objects", "Objects": true})).unwrap_err();
    assert_eq!(policy.0, "UnsupportedOperation", "{policy:?}");
}

/// A policy with `Objects` answers what the detector found as `RecognitionResults` (label
/// `Scene`, each object with its name, score and box, through the ims SDK); the default policy
/// does not look, and finding objects decides nothing.
#[test]
fn objects_are_recognition_results_when_a_policy_asks() {
    let Some(photo) = shared_picture("faces/face_recognition/examples/two_people.jpg") else {
        crate::shared::absent("this test needs the two-person photo");
        return;
    };
    let server = Server::start();
    let plain = single(python(&server.job(json!({"FileContent": photo})))).unwrap();
    assert_eq!(plain["RecognitionResults"], json!([]), "{plain}");

    server.call("CreateBizConfig", json!({"BizType": "with_objects", "Objects": true})).unwrap();
    let response = single(python(&server.job(json!({"FileContent": photo, "BizType": "with_objects"})))).unwrap();
    assert_eq!(response["Suggestion"], "Pass", "{response}");
    let results = response["RecognitionResults"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{response}");
    assert_eq!(results[0]["Label"], "Scene");
    let tags = results[0]["Tags"].as_array().unwrap();
    let people: Vec<&Value> = tags.iter().filter(|t| t["Name"] == "人").collect();
    assert_eq!(people.len(), 2, "two people: {tags:?}");
    assert!(tags.iter().any(|t| t["Name"] == "领带"), "a tie: {tags:?}");
    // two_people.jpg is 1126 x 661: one person on each half.
    let mut lefts: Vec<f64> = people.iter().map(|p| p["Location"]["X"].as_f64().unwrap()).collect();
    lefts.sort_by(f64::total_cmp);
    assert!(lefts[0] < 100.0 && lefts[1] > 450.0, "{people:?}");
    assert!(people
        .iter()
        .all(|p| p["Score"].as_i64().unwrap() >= 50 && p["Location"]["Width"].as_f64().unwrap() > 300.0));
}

/// Each tiia call is kept in the result history, marked with its service: not among ims's
/// moderation results (`DescribeImsList` without a `Service` filter), found with one, and shown
/// in the console's results (its service column and filter) with the answer as sent.
#[test]
fn analysis_calls_are_kept_in_the_history_with_their_service() {
    use crate::harness::raw;
    let server = Server::start();
    tiia(&server, "AssessQuality", json!({"ImageBase64": b64(&jpeg(&detailed(300, 200)))})).unwrap();
    let listed = |filters: Value| server.call("DescribeImsList", json!({"Filters": filters, "PageSize": 10})).unwrap();
    assert_eq!(listed(json!([]))["TotalCount"], 0, "not a moderation result");
    let kept = listed(json!([{"Name": "Service", "Values": ["QUALITY", "LABEL"]}]));
    assert_eq!(kept["TotalCount"], 1, "{kept}");
    let id = kept["ImsDetailSet"][0]["ContentId"].as_str().unwrap().to_string();
    let unknown = server.call("DescribeImsList", json!({"Filters": [{"Name": "Service", "Values": ["TAXI"]}]}));
    assert_eq!(unknown.unwrap_err().0, "InvalidParameterValue.InvalidParameter");

    let form = format!("secret_id={}&secret_key={}", server.secret_id, server.secret_key);
    let form_type = [("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned())];
    let signed = raw(&server.endpoint, "POST", "/console/sign-in", &form_type, form.as_bytes());
    let cookie = signed.header("set-cookie").expect("signed in").split(';').next().unwrap().to_owned();
    let get = |path: &str| {
        let page = raw(&server.endpoint, "GET", path, &[("Cookie".to_owned(), cookie.clone())], b"");
        String::from_utf8_lossy(&page.body).into_owned()
    };
    let listing = get("/console/results?service=QUALITY");
    assert!(listing.contains(&id) && listing.contains(r#"<td class="service">QUALITY</td>"#), "{listing}");
    assert!(get("/console/results?service=IMAGE").contains(r#"<span id="total">0</span>"#));
    assert!(get(&format!("/console/results/{id}")).contains("ClarityScore"), "the answer as sent");
}
