//! The answer in the shape of the cloud's own example (the `examples.json` of ims 2020-12-29),
//! field by field, through the real Python SDK (its typed response models) and the Node SDK;
//! every scene that was looked at and passed reads `Normal`; nothing fails open.

use crate::harness::{b64, image_base64, node, python, single, Server};
use serde_json::{json, Value};

/// The `Response` of the cloud's `ImageModeration` example.
fn cloud_example() -> Value {
    let text = include_str!("../../../protocol/api/ims/v20201229/examples.json");
    let examples: Value = serde_json::from_str(text).unwrap();
    let output = examples["actions"]["ImageModeration"][0]["output"].as_str().unwrap();
    serde_json::from_str::<Value>(output).unwrap()["Response"].clone()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every member of `example` is in `ours` with the same JSON kind, recursively; each element of
/// an array of objects has every member of the example's first element.
fn same_shape(example: &Value, ours: &Value, path: &str) {
    assert_eq!(kind(example), kind(ours), "{path}: the example has {example}, we answer {ours}");
    match (example, ours) {
        (Value::Object(e), Value::Object(o)) => {
            for (name, value) in e {
                let here = format!("{path}.{name}");
                let Some(mine) = o.get(name) else { panic!("{here} is missing from {ours}") };
                same_shape(value, mine, &here);
            }
        }
        (Value::Array(e), Value::Array(o)) => {
            if let Some(first) = e.first() {
                for (i, mine) in o.iter().enumerate() {
                    same_shape(first, mine, &format!("{path}[{i}]"));
                }
            }
        }
        _ => {}
    }
}

/// Each scene of a result list as (Scene, Suggestion, Label, SubLabel, Details).
fn scenes(list: &Value) -> Vec<(String, String, String, String, Value)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap().to_string();
            (text("Scene"), text("Suggestion"), text("Label"), text("SubLabel"), s["Details"].clone())
        })
        .collect()
}

fn passes(scene: &str) -> (String, String, String, String, Value) {
    (scene.into(), "Pass".into(), "Normal".into(), String::new(), json!([]))
}

#[test]
fn a_clean_image_is_answered_like_the_clouds_example_through_both_sdks() {
    let server = Server::start();
    // One library of the account, so that the Similar scene is looked at (with a sample that is
    // not this image).
    let lib = server.call("CreateImageLib", json!({"LibName": "seen", "Label": "Porn", "Action": "Block"})).unwrap();
    let other = {
        let picture =
            image::RgbImage::from_fn(200, 150, |x, y| image::Rgb([(x * y % 251) as u8, (x * 3) as u8, y as u8]));
        let mut png = std::io::Cursor::new(Vec::new());
        picture.write_to(&mut png, image::ImageFormat::Png).unwrap();
        b64(png.get_ref())
    };
    server.call("CreateImageSamples", json!({"LibId": lib["LibId"], "Images": [{"FileContent": other}]})).unwrap();

    let example = cloud_example();
    let params = json!({"FileContent": image_base64(), "DataId": "a61237dd", "BizType": "TencentCloudDefault"});
    for (sdk, results) in [("python", python(&server.job(params.clone()))), ("node", node(&server.job(params.clone())))]
    {
        let r = single(results).unwrap_or_else(|e| panic!("{sdk}: {e:?}"));
        same_shape(&example, &r, sdk);
        assert_eq!(
            (r["Suggestion"].as_str(), r["Label"].as_str(), r["SubLabel"].as_str()),
            (Some("Pass"), Some("Normal"), Some(""))
        );
        assert_eq!(
            (r["BizType"].as_str(), r["DataId"].as_str()),
            (Some("TencentCloudDefault"), Some("a61237dd")),
            "{sdk}"
        );
        assert_eq!(scenes(&r["LabelResults"]), [passes("Porn"), passes("Sexy"), passes("Terror")], "{sdk}");
        // The policy looks for codes, reads text and applies the account's library: each is
        // listed, and passes.
        assert_eq!(scenes(&r["ObjectResults"]), [passes("QrCode"), passes("Barcode")], "{sdk}");
        assert_eq!(scenes(&r["OcrResults"]), [passes("OCR")], "{sdk}");
        assert_eq!(scenes(&r["LibResults"]), [passes("Similar")], "{sdk}");
        assert_eq!(r["OcrResults"][0]["Text"], "", "{sdk}");
        assert_eq!((r["RecognitionResults"].clone(), r["Reason"].clone()), (json!([]), json!("")), "{sdk}");
        let extra: Value = serde_json::from_str(r["Extra"].as_str().unwrap()).unwrap();
        assert!(extra["Scores"].as_array().is_some_and(|s| !s.is_empty()), "{sdk}: the scores are in Extra");
    }
}

#[test]
fn scenes_nothing_looked_at_are_not_listed() {
    let server = Server::start();
    server.call("CreateBizConfig", json!({"BizType": "models_only", "Ocr": false, "Ads": {"QrCode": false}})).unwrap();
    let r = single(python(&server.job(json!({"FileContent": image_base64(), "BizType": "models_only"})))).unwrap();
    assert_eq!(r["BizType"], "models_only");
    assert_eq!(r["ObjectResults"], json!([]), "no codes looked for, NudeNet not loaded");
    assert_eq!(r["OcrResults"], json!([]), "no text read");
    assert_eq!(r["LibResults"], json!([]), "the account has no library");
    assert_eq!(r["LabelResults"].as_array().unwrap().len(), 3);
}

#[test]
fn a_block_names_a_category_and_a_reason() {
    let server = Server::start();
    // One vote, open_nsfw blocking at 0: any image is blocked as Porn.
    server
        .call(
            "CreateBizConfig",
            json!({"BizType": "strict", "Votes": 1, "Thresholds": [{"Label": "Porn", "Model": "open_nsfw", "Review": 0, "Block": 0}]}),
        )
        .unwrap();
    let r = single(python(&server.job(json!({"FileContent": image_base64(), "BizType": "strict"})))).unwrap();
    assert_eq!(
        (r["Suggestion"].as_str(), r["Label"].as_str(), r["SubLabel"].as_str()),
        (Some("Block"), Some("Porn"), Some("Nudity")),
        "{r}"
    );
    let porn = &r["LabelResults"][0];
    assert_eq!((porn["Scene"].as_str(), porn["Label"].as_str()), (Some("Porn"), Some("Porn")));
    assert_eq!(porn["Details"][0]["Name"], "Nudity", "a category a person reads, not a model id");
    let reason = r["Reason"].as_str().unwrap();
    assert!(reason.starts_with("porn: 1 of 3 models over the block threshold (open_nsfw "), "{reason}");
}

/// A block list that cannot be read must not silently stop applying: the request fails with
/// `FailedOperation` until it can be read again. The fault is real: the library tables are
/// renamed under the running server.
#[test]
fn unreadable_libraries_fail_the_request_and_never_pass_the_image() {
    let server = Server::start();
    let job = server.job(json!({"FileContent": image_base64()}));
    assert!(single(python(&job)).is_ok());
    let db = rusqlite::Connection::open(server.data_dir.path().join("ims.db")).unwrap();
    for (table, check) in [("image_sample_removals", "image libraries"), ("keyword_version", "keyword libraries")] {
        db.execute_batch(&format!("ALTER TABLE {table} RENAME TO {table}_away")).unwrap();
        let (code, message) = single(python(&job)).unwrap_err();
        assert_eq!(code, "FailedOperation", "{table}: {message}");
        assert!(message.contains(check), "{message}");
        db.execute_batch(&format!("ALTER TABLE {table}_away RENAME TO {table}")).unwrap();
        assert!(single(python(&job)).is_ok(), "{table}: readable again, moderated again");
    }
    assert!(server.log().contains("a check the policy asks for failed"));
}
