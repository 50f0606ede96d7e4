//! Text in images through the API: OCR results with keyword hits seen by the real Python SDK,
//! keyword libraries managed by actions and the CLI and effective at once, OCR off per policy.

use crate::harness::{b64, python, single, workspace_root, Server};
use serde_json::{json, Value};

/// A page of ../shared rendered with "内容审核测试 Content moderation 123"; `None` without ../shared.
fn rendered_page() -> Option<String> {
    std::fs::read(workspace_root().join("../shared/data/ocr/rendered/wqy-microhei.png")).ok().map(|b| b64(&b))
}

/// `ImageModeration` through the SDK's own typed call (not the generic one): the SDK parses
/// OcrResults into its models.
fn moderate(server: &Server, params: Value) -> Value {
    single(python(&server.job(params))).unwrap()
}

#[test]
fn the_sdk_sees_ocr_results_with_keyword_hits() {
    let Some(page) = rendered_page() else {
        crate::shared::absent("this test needs its rendered pages");
        return;
    };
    let server = Server::start();
    let plain = moderate(&server, json!({"FileContent": page}));
    assert_eq!(plain["Suggestion"], "Pass", "{plain}");
    let ocr = &plain["OcrResults"][0];
    assert_eq!(ocr["Scene"], "OCR");
    assert_eq!(ocr["Text"], "内容审核测试 Content moderation 123", "{ocr}");
    let line = &ocr["Details"][0];
    assert!(line["Rate"].as_i64().unwrap() >= 90, "{line}");
    let location = &line["Location"];
    assert!(location["Width"].as_f64().unwrap() > 500.0 && location["Height"].as_f64().unwrap() > 10.0, "{location}");

    let lib = server
        .call("CreateKeywordsLib", json!({"LibName": "test words", "Label": "Illegal", "Suggestion": "Block"}))
        .unwrap();
    let lib_id = lib["LibId"].as_str().unwrap();
    // Written with a space and in traditional characters: it still hits.
    let added =
        server.call("CreateKeywordsSamples", json!({"LibId": lib_id, "Samples": [{"Content": "審核 測試"}]})).unwrap();
    let sample_id = added["SampleIds"][0].as_str().unwrap().to_string();

    let hit = moderate(&server, json!({"FileContent": page}));
    assert_eq!((hit["Suggestion"].as_str(), hit["Label"].as_str()), (Some("Block"), Some("Illegal")), "{hit}");
    let detail = &hit["OcrResults"][0]["Details"][0];
    assert_eq!(detail["Keywords"], json!(["審核 測試"]));
    assert_eq!(detail["LibId"], lib_id);
    let info = &detail["HitInfos"][0];
    assert_eq!((info["Type"].as_str(), info["Keyword"].as_str()), (Some("Keyword"), Some("審核 測試")), "{info}");
    assert_eq!(info["Positions"][0], json!({"Start": 2, "End": 6}));
    assert_eq!(info["LibName"], "test words");

    // Off in a policy: no text read, no hit.
    server.call("CreateBizConfig", json!({"BizType": "no_text", "Ocr": false})).unwrap();
    let blind = moderate(&server, json!({"FileContent": page, "BizType": "no_text"}));
    assert_eq!(blind["Suggestion"], "Pass");
    assert!(blind["OcrResults"].as_array().is_none_or(|a| a.is_empty()), "{blind}");

    // Removed: the next request passes.
    server.call("DeleteLibSamples", json!({"SampleIds": [sample_id]})).unwrap();
    assert_eq!(moderate(&server, json!({"FileContent": page}))["Suggestion"], "Pass");

    // The CLI fills the library from a file; effective at once.
    let account = server.cli_json(&["account", "list"])[0]["id"].as_i64().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let words = dir.path().join("words.txt");
    std::fs::write(&words, "# test list\nmoderation\n\nnothing here\n").unwrap();
    let out =
        server.cli(&["keywords", "add", "--account", &account, lib_id, "--file", words.to_str().unwrap()]).unwrap();
    assert!(out.contains("2 added"), "{out}");
    let again = moderate(&server, json!({"FileContent": page}));
    assert_eq!(again["Suggestion"], "Block", "{again}");
    assert_eq!(again["OcrResults"][0]["Details"][0]["HitInfos"][0]["Positions"][0], json!({"Start": 15, "End": 25}));
}

#[test]
fn keyword_requests_are_checked_at_their_bounds() {
    let server = Server::start();
    let lib = server.call("CreateKeywordsLib", json!({"LibName": "l", "Label": "Abuse"})).unwrap();
    let lib_id = lib["LibId"].as_str().unwrap();
    let code = |action: &str, params: Value| server.call(action, params).unwrap_err().0;
    let invalid = "InvalidParameterValue.InvalidParameter";
    assert_eq!(code("CreateKeywordsLib", json!({"LibName": "l", "Label": "Abuse"})), "ResourceInUse");
    assert_eq!(code("CreateKeywordsLib", json!({"LibName": "m", "Label": "Abuse", "Suggestion": "Pass"})), invalid);
    let words = |n: usize| (0..n).map(|i| json!({"Content": format!("word{i}")})).collect::<Vec<_>>();
    assert_eq!(code("CreateKeywordsSamples", json!({"LibId": lib_id, "Samples": words(0)})), invalid);
    assert_eq!(code("CreateKeywordsSamples", json!({"LibId": lib_id, "Samples": words(1001)})), invalid);
    let added = server.call("CreateKeywordsSamples", json!({"LibId": lib_id, "Samples": words(1000)})).unwrap();
    assert_eq!(added["SampleIds"].as_array().unwrap().len(), 1000);
    let again = server.call("CreateKeywordsSamples", json!({"LibId": lib_id, "Samples": words(2)})).unwrap();
    assert_eq!(again["Skipped"], 2, "keywords already there are skipped");
    for content in ["a".repeat(65), "!!!".into(), String::new()] {
        assert_eq!(code("CreateKeywordsSamples", json!({"LibId": lib_id, "Samples": [{"Content": content}]})), invalid);
    }
    server.call("CreateKeywordsSamples", json!({"LibId": lib_id, "Samples": [{"Content": "a".repeat(64)}]})).unwrap();
    let listed = server.call("DescribeKeywordsSamples", json!({"LibId": lib_id, "Limit": 1000})).unwrap();
    assert_eq!(listed["TotalCount"], 1001);
    assert_eq!(code("DescribeKeywordsSamples", json!({"LibId": lib_id, "Limit": 1001})), invalid);
    assert_eq!(code("DeleteLibSamples", json!({"SampleIds": ["nope"]})), "ResourceNotFound");
    assert_eq!(code("CreateBizConfig", json!({"BizType": "bad", "KeywordLibs": ["nope"]})), "ResourceNotFound");
    let libs = server.call("DescribeKeywordsLibs", json!({})).unwrap();
    let by_id = |id: &str| libs["Libs"].as_array().unwrap().iter().find(|l| l["LibId"] == id).cloned().unwrap();
    assert_eq!(by_id(lib_id)["SampleCount"], 1001);
    let built_in = by_id("builtin-abuse");
    assert_eq!((built_in["BuiltIn"].as_bool(), built_in["Label"].as_str()), (Some(true), Some("Abuse")));
    assert!(built_in["SampleCount"].as_u64().unwrap() > 500, "{built_in}");
    assert_eq!(code("DeleteKeywordsLib", json!({"LibId": "builtin-abuse"})), "ResourceNotFound", "read-only");
    let sensitive = by_id("builtin-sensitive");
    assert_eq!(sensitive["Label"], "Polity");
    assert!(sensitive["SampleCount"].as_u64().unwrap() > 10_000, "{sensitive}");
    server.call("DeleteKeywordsLib", json!({"LibId": lib_id})).unwrap();
    assert_eq!(code("DeleteKeywordsLib", json!({"LibId": lib_id})), "ResourceNotFound");
}

/// A 3-pixel-per-module QR code of `value` on a white page, as PNG.
fn qr_png(value: &str) -> Vec<u8> {
    use rxing::Writer;
    let matrix = rxing::MultiFormatWriter.encode(value, &rxing::BarcodeFormat::QR_CODE, 0, 0).unwrap();
    let page = image::RgbImage::from_fn(matrix.width() * 3 + 100, matrix.height() * 3 + 100, |x, y| {
        let inside = (50..50 + matrix.width() * 3).contains(&x) && (50..50 + matrix.height() * 3).contains(&y);
        if inside && matrix.get((x - 50) / 3, (y - 50) / 3) {
            image::Rgb([0, 0, 0])
        } else {
            image::Rgb([255, 255, 255])
        }
    });
    let mut png = std::io::Cursor::new(Vec::new());
    page.write_to(&mut png, image::ImageFormat::Png).unwrap();
    png.into_inner()
}

#[test]
fn qr_codes_are_ads_unless_the_policy_says_otherwise() {
    let server = Server::start();
    let image = b64(&qr_png("https://example.com/promo"));
    let r = moderate(&server, json!({"FileContent": image}));
    assert_eq!(
        (r["Suggestion"].as_str(), r["Label"].as_str(), r["SubLabel"].as_str()),
        (Some("Review"), Some("Ad"), Some("QrCode")),
        "{r}"
    );
    let object = r["ObjectResults"].as_array().unwrap().iter().find(|o| o["Scene"] == "QrCode").unwrap();
    assert_eq!(object["Details"][0]["Value"], "https://example.com/promo");
    assert!(object["Details"][0]["Location"]["X"].as_f64().unwrap() >= 45.0, "{object}");
    server.call("CreateBizConfig", json!({"BizType": "codes_ok", "Ads": {"QrCode": false}})).unwrap();
    let allowed = moderate(&server, json!({"FileContent": image, "BizType": "codes_ok"}));
    assert_eq!(allowed["Suggestion"], "Pass", "{allowed}");
    server.call("CreateBizConfig", json!({"BizType": "codes_blocked", "Ads": {"Suggestion": "Block"}})).unwrap();
    assert_eq!(moderate(&server, json!({"FileContent": image, "BizType": "codes_blocked"}))["Suggestion"], "Block");
    let bad = server.call("CreateBizConfig", json!({"BizType": "codes_bad", "Ads": {"Suggestion": "Pass"}}));
    assert_eq!(bad.unwrap_err().0, "InvalidParameterValue.InvalidParameter");
}

/// CRC-32 (ISO-HDLC), as PNG chunks need.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A photo-like PNG with a `tEXt` chunk inserted after its header, as Stable Diffusion
/// front-ends write their parameters.
fn png_with_text(keyword: &str, text: &str) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(320, 240, |x, y| image::Rgb([x as u8, y as u8, (x ^ y) as u8]));
    let mut png = std::io::Cursor::new(Vec::new());
    picture.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let png = png.into_inner();
    let data = [keyword.as_bytes(), b"\0", text.as_bytes()].concat();
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    let body = [b"tEXt".as_slice(), &data].concat();
    chunk.extend(&body);
    chunk.extend(crc32(&body).to_be_bytes());
    let after_header = 8 + 25; // signature, then IHDR (length, type, 13 bytes, CRC)
    [&png[..after_header], &chunk, &png[after_header..]].concat()
}

#[test]
fn ai_generated_images_are_recognised_by_their_provenance() {
    let server = Server::start();
    let generated = b64(&png_with_text("parameters", "a lighthouse at dawn\nSteps: 30, Sampler: DPM++ 2M, Seed: 7"));
    let r = moderate(&server, json!({"FileContent": generated, "Type": "IMAGE_AIGC"}));
    assert_eq!(
        (r["Suggestion"].as_str(), r["Label"].as_str(), r["SubLabel"].as_str()),
        (Some("Review"), Some("AIGC"), Some("GeneratorText")),
        "{r}"
    );
    assert_eq!(r["LabelResults"][0]["Scene"], "AIGC");
    let extra: Value = serde_json::from_str(r["Extra"].as_str().unwrap()).unwrap();
    assert_eq!(extra["Provenance"][0]["Key"], "parameters");
    assert!(extra["Provenance"][0]["Value"].as_str().unwrap().starts_with("a lighthouse"));
    // The same picture without the chunk says nothing about its making: Pass.
    let plain = b64(&png_with_text("Comment", "holiday"));
    let r = moderate(&server, json!({"FileContent": plain, "Type": "IMAGE_AIGC"}));
    assert_eq!((r["Suggestion"].as_str(), r["Label"].as_str()), (Some("Pass"), Some("Normal")), "{r}");
    // The same file as an ordinary moderation is judged by the models, not by its metadata.
    assert_eq!(moderate(&server, json!({"FileContent": generated}))["Label"], "Normal");
}

#[test]
fn the_built_in_library_applies_where_a_policy_names_it() {
    let Ok(scan) = std::fs::read(workspace_root().join("../shared/data/ocr/tesseract-test/testing/8087_054.3B.tif"))
    else {
        crate::shared::absent("this test needs its scanned news page");
        return;
    };
    let server = Server::start();
    let page = b64(&scan);
    // A news page ("accused of raping, torturing"): ordinary text under the default policy.
    assert_eq!(moderate(&server, json!({"FileContent": page}))["Suggestion"], "Pass");
    server.call("CreateBizConfig", json!({"BizType": "strict_words", "KeywordLibs": ["builtin-abuse"]})).unwrap();
    let r = moderate(&server, json!({"FileContent": page, "BizType": "strict_words"}));
    assert_eq!((r["Suggestion"].as_str(), r["Label"].as_str()), (Some("Review"), Some("Abuse")), "{r}");
}
