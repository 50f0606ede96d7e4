//! What an answer says was found where, drawn over the image: a box for each line of text read,
//! each object found, and the region the labels were seen in when it is not the whole image;
//! and each model's score beside the policy's thresholds. The picture is the thumbnail ims kept
//! (a JPEG it made), scaled to the image's size by an SVG, so boxes in the original's pixels
//! fall where they belong.

use engine::policy::Policy;
use serde_json::Value;

/// A box to draw, in the image's pixels.
pub(super) struct Found {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    /// What it is: the text read, the object's name.
    pub what: String,
    /// `text`, `object` or `region`, for its colour.
    pub kind: &'static str,
}

pub(super) struct Picture {
    /// The result whose thumbnail is drawn.
    pub request_id: String,
    pub width: f64,
    pub height: f64,
    pub found: Vec<Found>,
}

/// The answer's `Extra` (a JSON string), parsed.
pub(super) fn extra_of(answer: &Value) -> Value {
    answer["Extra"].as_str().and_then(|e| serde_json::from_str(e).ok()).unwrap_or_default()
}

impl Picture {
    /// The picture of an answer (as sent, JSON) and its parsed `Extra`; `None` when it gives no
    /// size (an error, AIGC).
    pub fn of(request_id: &str, answer: &Value, extra: &Value) -> Option<Picture> {
        let (width, height) = (extra["Width"].as_f64()?, extra["Height"].as_f64()?);
        let mut found = Vec::new();
        let mut add = |v: &Value, what: String, kind: &'static str| {
            let n = |k: &str| v[k].as_f64().unwrap_or(0.0);
            if n("Width") > 0.0 && n("Height") > 0.0 {
                found.push(Found { x: n("X"), y: n("Y"), width: n("Width"), height: n("Height"), what, kind });
            }
        };
        for (results, kind) in [("OcrResults", "text"), ("ObjectResults", "object")] {
            for result in answer[results].as_array().into_iter().flatten() {
                for detail in result["Details"].as_array().into_iter().flatten() {
                    let what = ["Text", "Name", "Value", "SubLabel"]
                        .iter()
                        .find_map(|k| detail[*k].as_str().filter(|s| !s.is_empty()))
                        .unwrap_or_default();
                    add(&detail["Location"], what.to_owned(), kind);
                }
            }
        }
        let region = &extra["Region"];
        if region["Width"].as_f64() != Some(width) || region["Height"].as_f64() != Some(height) {
            add(region, String::new(), "region");
        }
        Some(Picture { request_id: request_id.to_owned(), width, height, found })
    }
}

/// One model's score on the reported view beside the policy's thresholds for its label, in
/// points (0-100).
pub(super) struct ScoreRow {
    pub label: String,
    pub model: String,
    pub points: u32,
    pub review: Option<u8>,
    pub block: Option<u8>,
    /// The suggestion the score reaches on its own (`Block`, `Review`, or empty), for its colour.
    pub reaches: &'static str,
}

/// `Extra.Scores` of an answer (its parsed `Extra`), each beside `policy`'s thresholds.
pub(super) fn scores(extra: &Value, policy: &Policy) -> Vec<ScoreRow> {
    extra["Scores"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let (label, model) = (s["Label"].as_str().unwrap_or_default(), s["Model"].as_str().unwrap_or_default());
            let threshold = policy.thresholds.iter().find(|t| t.label.as_str() == label && t.model == model);
            let points = (s["Score"].as_f64().unwrap_or(0.0) * 100.0).round() as u32;
            let reached = |at: Option<u8>| at.is_some_and(|at| points >= u32::from(at));
            let (review, block) = (threshold.map(|t| t.review), threshold.map(|t| t.block));
            let reaches = if reached(block) {
                "Block"
            } else if reached(review) {
                "Review"
            } else {
                ""
            };
            ScoreRow { label: label.to_owned(), model: model.to_owned(), points, review, block, reaches }
        })
        .collect()
}
