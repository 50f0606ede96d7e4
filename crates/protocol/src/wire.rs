//! Request and response types of the actions, as they travel. Field names follow the cloud's
//! PascalCase exactly; the tests below hold these types to the vendored definitions.
//!
//! Responses leave out `RequestId`: the server adds it to every envelope. They parse with
//! members missing (`serde(default)`), as the published examples omit empty ones.

use serde::{Deserialize, Serialize};

/// `ImageModeration` (both versions; the older lacks `Type` and `BizTag`, which the schema
/// check refuses before this type is built).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageModerationRequest {
    pub biz_type: Option<String>,
    pub data_id: Option<String>,
    pub file_content: Option<String>,
    pub file_url: Option<String>,
    pub interval: Option<i64>,
    pub max_frames: Option<i64>,
    pub user: Option<User>,
    pub device: Option<Device>,
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    pub biz_tag: Option<String>,
}

/// `Type`: what is asked of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// `IMAGE`, the default: moderation.
    Image,
    /// `IMAGE_AIGC`: whether an AI generated it.
    ImageAigc,
}

impl ContentType {
    pub fn parse(name: &str) -> Option<ContentType> {
        match name {
            "IMAGE" => Some(ContentType::Image),
            "IMAGE_AIGC" => Some(ContentType::ImageAigc),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct User {
    pub user_id: Option<String>,
    pub nickname: Option<String>,
    pub account_type: Option<String>,
    pub gender: Option<u64>,
    pub age: Option<u64>,
    pub level: Option<u64>,
    pub phone: Option<String>,
    pub desc: Option<String>,
    pub head_url: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Device {
    pub ip: Option<String>,
    pub mac: Option<String>,
    pub token_id: Option<String>,
    pub device_id: Option<String>,
    #[serde(rename = "IMEI")]
    pub imei: Option<String>,
    #[serde(rename = "IDFA")]
    pub idfa: Option<String>,
    #[serde(rename = "IDFV")]
    pub idfv: Option<String>,
    pub ip_type: Option<u64>,
}

/// `ImageModeration` response of version 2020-12-29.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageModerationResponse {
    pub suggestion: String,
    pub label: String,
    pub sub_label: String,
    pub score: i64,
    pub label_results: Vec<LabelResult>,
    pub object_results: Vec<ObjectResult>,
    pub ocr_results: Vec<OcrResult>,
    pub lib_results: Vec<LibResult>,
    pub data_id: String,
    pub biz_type: String,
    pub extra: String,
    #[serde(rename = "FileMD5")]
    pub file_md5: String,
    pub recognition_results: Vec<RecognitionResult>,
    pub store_url: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LabelResult {
    pub scene: String,
    pub suggestion: String,
    pub label: String,
    pub sub_label: String,
    pub score: u64,
    pub details: Vec<LabelDetailItem>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LabelDetailItem {
    pub id: i64,
    pub name: String,
    pub score: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ObjectResult {
    pub scene: String,
    pub suggestion: String,
    pub label: String,
    pub sub_label: String,
    pub score: u64,
    pub names: Vec<String>,
    pub details: Vec<ObjectDetail>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ObjectDetail {
    pub id: u64,
    pub name: String,
    pub value: String,
    pub score: u64,
    pub location: Location,
    pub sub_label: String,
    pub object_id: String,
}

/// A box: top-left corner, size in pixels, rotation in degrees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Location {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub rotate: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OcrResult {
    pub scene: String,
    pub suggestion: String,
    pub label: String,
    pub sub_label: String,
    pub score: u64,
    pub details: Vec<OcrTextDetail>,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OcrTextDetail {
    pub text: String,
    pub label: String,
    pub lib_id: String,
    pub lib_name: String,
    pub keywords: Vec<String>,
    pub score: u64,
    pub location: Location,
    pub rate: u64,
    pub sub_label: String,
    pub hit_infos: Vec<OcrHitInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OcrHitInfo {
    #[serde(rename = "Type")]
    pub kind: String,
    pub keyword: String,
    pub lib_name: String,
    pub positions: Vec<Positions>,
    pub label: String,
}

/// Character offsets of a keyword in the recognised text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Positions {
    pub start: i64,
    pub end: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LibResult {
    pub scene: String,
    pub suggestion: String,
    pub label: String,
    pub sub_label: String,
    pub score: i64,
    pub details: Vec<LibDetail>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LibDetail {
    pub id: i64,
    pub lib_id: String,
    pub lib_name: String,
    pub image_id: String,
    pub label: String,
    pub tag: String,
    pub score: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RecognitionResult {
    pub label: String,
    pub tags: Vec<RecognitionTag>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RecognitionTag {
    pub name: String,
    pub score: i64,
    pub location: Location,
}

/// Version 2020-07-13 of the response: `HitFlag` at the top and in OCR results; no `FileMD5`,
/// `StoreUrl`, `Reason` or keyword hit details.
pub mod v20200713 {
    use super::*;

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase", default)]
    pub struct ImageModerationResponse {
        /// 1 when the suggestion is not Pass.
        pub hit_flag: i64,
        pub suggestion: String,
        pub label: String,
        pub sub_label: String,
        pub score: i64,
        pub label_results: Vec<LabelResult>,
        pub object_results: Vec<ObjectResult>,
        pub ocr_results: Vec<OcrResult>,
        pub lib_results: Vec<LibResult>,
        pub data_id: String,
        pub biz_type: String,
        pub extra: String,
        pub recognition_results: Vec<RecognitionResult>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase", default)]
    pub struct OcrResult {
        pub scene: String,
        pub suggestion: String,
        pub label: String,
        pub sub_label: String,
        pub score: u64,
        pub details: Vec<OcrTextDetail>,
        pub text: String,
        pub hit_flag: u64,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase", default)]
    pub struct OcrTextDetail {
        pub text: String,
        pub label: String,
        pub lib_id: String,
        pub lib_name: String,
        pub keywords: Vec<String>,
        pub score: u64,
        pub location: Location,
        pub rate: u64,
        pub sub_label: String,
    }

    fn hit_flag(suggestion: &str) -> u64 {
        u64::from(suggestion != "Pass")
    }

    impl From<super::ImageModerationResponse> for ImageModerationResponse {
        fn from(r: super::ImageModerationResponse) -> Self {
            ImageModerationResponse {
                hit_flag: hit_flag(&r.suggestion) as i64,
                ocr_results: r
                    .ocr_results
                    .into_iter()
                    .map(|o| OcrResult {
                        hit_flag: hit_flag(&o.suggestion),
                        details: o
                            .details
                            .into_iter()
                            .map(|d| OcrTextDetail {
                                text: d.text,
                                label: d.label,
                                lib_id: d.lib_id,
                                lib_name: d.lib_name,
                                keywords: d.keywords,
                                score: d.score,
                                location: d.location,
                                rate: d.rate,
                                sub_label: d.sub_label,
                            })
                            .collect(),
                        scene: o.scene,
                        suggestion: o.suggestion,
                        label: o.label,
                        sub_label: o.sub_label,
                        score: o.score,
                        text: o.text,
                    })
                    .collect(),
                suggestion: r.suggestion,
                label: r.label,
                sub_label: r.sub_label,
                score: r.score,
                label_results: r.label_results,
                object_results: r.object_results,
                lib_results: r.lib_results,
                data_id: r.data_id,
                biz_type: r.biz_type,
                extra: r.extra,
                recognition_results: r.recognition_results,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ApiDefinition, Version};
    use serde_json::Value;

    /// A response with every list holding one element, so every nested member is serialised.
    fn full_response() -> ImageModerationResponse {
        let location = Location { x: 1.5, y: 2.0, width: 3.0, height: 4.0, rotate: 0.0 };
        ImageModerationResponse {
            suggestion: "Review".into(),
            label: "Porn".into(),
            score: 93,
            label_results: vec![LabelResult { details: vec![LabelDetailItem::default()], ..Default::default() }],
            object_results: vec![ObjectResult {
                names: vec!["QrCode".into()],
                details: vec![ObjectDetail { location, ..Default::default() }],
                ..Default::default()
            }],
            ocr_results: vec![OcrResult {
                suggestion: "Block".into(),
                details: vec![OcrTextDetail {
                    keywords: vec!["k".into()],
                    hit_infos: vec![OcrHitInfo { positions: vec![Positions::default()], ..Default::default() }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            lib_results: vec![LibResult { details: vec![LibDetail::default()], ..Default::default() }],
            recognition_results: vec![RecognitionResult {
                tags: vec![RecognitionTag::default()],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// Every member of the definition is present with the declared type, and nothing else is,
    /// except members the definition marks optional (`required: false`), which may be absent.
    fn assert_matches(def: &ApiDefinition, object: &str, value: &Value, path: &str) {
        let members = &def.object(object).unwrap_or_else(|| panic!("no object {object}")).members;
        let map = value.as_object().unwrap_or_else(|| panic!("{path} is not an object"));
        for key in map.keys() {
            assert!(members.iter().any(|m| &m.name == key), "{path}.{key} is not in the definition of {object}");
        }
        for m in members.iter().filter(|m| m.name != "RequestId") {
            let here = format!("{path}.{}", m.name);
            let Some(v) = map.get(&m.name) else {
                assert_eq!(m.required, Some(false), "{here} is missing");
                continue;
            };
            check_type(def, &m.kind, &m.member, v, &here);
        }
    }

    fn check_type(def: &ApiDefinition, kind: &str, member: &str, v: &Value, here: &str) {
        match kind {
            "string" => assert!(v.is_string(), "{here} should be a string"),
            // Integers must serialise without a fraction: Go's SDK rejects `93.0`.
            "int" | "int64" | "uint64" => assert!(v.is_i64() || v.is_u64(), "{here} should be an integer, is {v}"),
            "float" => assert!(v.is_number(), "{here} should be a number"),
            "list" => {
                let items = v.as_array().unwrap_or_else(|| panic!("{here} should be a list"));
                assert!(!items.is_empty(), "{here}: the sample should fill every list");
                for item in items {
                    let element_kind = if def.object(member).is_some() { "object" } else { member };
                    check_type(def, element_kind, member, item, here);
                }
            }
            _ => assert_matches(def, member, v, here),
        }
    }

    #[test]
    fn response_matches_the_2020_12_29_definition() {
        let def = Version::V20201229.definition();
        let output = &def.action("ImageModeration").unwrap().output;
        assert_matches(def, output, &serde_json::to_value(full_response()).unwrap(), "Response");
    }

    #[test]
    fn response_matches_the_2020_07_13_definition() {
        let def = Version::V20200713.definition();
        let output = &def.action("ImageModeration").unwrap().output;
        let old = v20200713::ImageModerationResponse::from(full_response());
        assert_eq!(old.hit_flag, 1);
        assert_eq!(old.ocr_results[0].hit_flag, 1);
        assert_matches(def, output, &serde_json::to_value(old).unwrap(), "Response");
    }

    /// The request type accepts every member of the definition, with its declared type.
    #[test]
    fn request_type_accepts_every_defined_member() {
        let def = Version::V20201229.definition();
        let input = &def.action("ImageModeration").unwrap().input;
        fn sample(def: &ApiDefinition, object: &str) -> Value {
            let mut map = serde_json::Map::new();
            for m in &def.object(object).unwrap().members {
                let v = match m.kind.as_str() {
                    "string" => Value::from("s"),
                    "int" => Value::from(1),
                    "object" => sample(def, &m.member),
                    other => panic!("unexpected {other}"),
                };
                map.insert(m.name.clone(), v);
            }
            Value::Object(map)
        }
        let value = sample(def, input);
        let req: ImageModerationRequest = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(req.kind.as_deref(), Some("s"));
        assert_eq!(req.device.unwrap().imei.as_deref(), Some("s"));
        assert_eq!(req.user.unwrap().head_url.as_deref(), Some("s"));
        // Every member landed in a field: nothing was silently dropped.
        let user_members = def.object("User").unwrap().members.len();
        assert_eq!(serde_json::to_value(User::default()).unwrap().as_object().unwrap().len(), user_members);
        let device_members = def.object("Device").unwrap().members.len();
        assert_eq!(serde_json::to_value(Device::default()).unwrap().as_object().unwrap().len(), device_members);
    }

    /// The published examples parse into the response types.
    #[test]
    fn published_examples_parse() {
        for (version, text) in [
            (Version::V20201229, include_str!("../api/ims/v20201229/examples.json")),
            (Version::V20200713, include_str!("../api/ims/v20200713/examples.json")),
        ] {
            let examples: Value = serde_json::from_str(text).unwrap();
            for example in examples["actions"]["ImageModeration"].as_array().unwrap() {
                let output: Value = serde_json::from_str(example["output"].as_str().unwrap()).unwrap();
                let response = output["Response"].clone();
                match version {
                    Version::V20201229 => {
                        let r: ImageModerationResponse = serde_json::from_value(response).unwrap();
                        assert!(!r.suggestion.is_empty());
                    }
                    Version::V20200713 => {
                        let r: v20200713::ImageModerationResponse = serde_json::from_value(response).unwrap();
                        assert!(!r.suggestion.is_empty());
                    }
                    Version::V20190529 => unreachable!("tiia has no ImageModeration"),
                }
            }
        }
    }
}
