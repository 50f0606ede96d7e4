//! The core's [`Verdict`] in the cloud's answer shape: `LabelResults`, `ObjectResults`,
//! `OcrResults`, `LibResults` with their scene entries, `Reason`, and `Extra` (the explanation:
//! model ids, scores and thresholds, where nothing parses them by accident).

use crate::actions::fields;
use engine::decision::{points, Decision, Label};
use engine::policy::Policy;
use engine::verdict::{self, LabelScene, LibraryScene, ObjectScene, Recognised, Scene, TextScene, Verdict};
use media::Decoded;
use protocol::schema::Version;
use protocol::wire::{
    v20200713, ImageModerationRequest, ImageModerationResponse, LabelDetailItem, LabelResult, LibDetail, LibResult,
    Location, ObjectDetail, ObjectResult, OcrHitInfo, OcrResult, OcrTextDetail, Positions, RecognitionResult,
    RecognitionTag,
};
use serde_json::{json, Map, Value};

/// The response's fields in the shape of the version called.
pub fn render(version: Version, response: ImageModerationResponse) -> Map<String, Value> {
    match version {
        Version::V20200713 => fields(v20200713::ImageModerationResponse::from(response)),
        // tiia defines no ImageModeration: only ims's versions reach here.
        Version::V20201229 | Version::V20190529 => fields(response),
    }
}

/// The answer to an `ImageModeration` call.
pub fn response(
    verdict: &Verdict,
    request: &ImageModerationRequest,
    policy: &Policy,
    decoded: &Decoded,
    file_md5: String,
) -> ImageModerationResponse {
    let mut extra = json!({
        "Format": decoded.probe.format.name(),
        "Width": decoded.probe.width,
        "Height": decoded.probe.height,
        "Frames": frame_indices(decoded),
        "Explanation": verdict.explanation,
        "Scores": verdict.scores,
    });
    // Where the reported labels were seen: the frame, the region (a window of a long image, or
    // the content inside a uniform border), the backdrop of a transparent image, and the quarter
    // turn of a view examined again turned.
    if let Some(place) = &verdict.place {
        extra["Frame"] = json!(place.frame);
        extra["Region"] = json!(place.region);
        if place.dark_backdrop {
            extra["Backdrop"] = json!("Dark");
        }
        if place.turned != 0 {
            extra["Turned"] = json!(place.turned);
        }
    }
    if let Some(observed) = &verdict.observed {
        extra["Observed"] = decision_json(observed);
    }
    answer(verdict, request, policy, extra, file_md5)
}

/// The frames examined, each once (a transparent frame is seen on two backdrops).
fn frame_indices(decoded: &Decoded) -> Vec<u32> {
    let mut indices: Vec<u32> = decoded.frames.iter().map(|f| f.index).collect();
    indices.dedup();
    indices
}

/// The answer to a `Type=IMAGE_AIGC` call, and its verdict: provenance from the file's
/// metadata (C2PA, IPTC digital source type, generator text chunks, EXIF software).
pub fn aigc(
    request: &ImageModerationRequest,
    policy: &Policy,
    bytes: &[u8],
    decoded: &Decoded,
    file_md5: String,
) -> (ImageModerationResponse, Verdict) {
    let evidence = media::provenance::provenance(bytes);
    let found: Vec<(String, String)> = evidence.iter().map(|e| (e.source.to_string(), e.key.to_string())).collect();
    let verdict = verdict::provenance(policy, &found);
    let mut extra = json!({
        "Format": decoded.probe.format.name(),
        "Width": decoded.probe.width,
        "Height": decoded.probe.height,
        "Provenance": evidence.iter().map(|e| json!({"Source": e.source, "Key": e.key, "Value": e.value})).collect::<Vec<_>>(),
    });
    if let Some(observed) = &verdict.observed {
        extra["Observed"] = decision_json(observed);
    }
    (answer(&verdict, request, policy, extra, file_md5), verdict)
}

/// `User` and `Device` as the history keeps them (risk context; the cloud uses them so).
pub fn risk_context(request: &ImageModerationRequest) -> String {
    match (&request.user, &request.device) {
        (None, None) => String::new(),
        (user, device) => json!({"User": user, "Device": device}).to_string(),
    }
}

fn decision_json(d: &Decision) -> Value {
    json!({"Suggestion": d.suggestion.as_str(), "Label": d.label.as_str(), "SubLabel": d.sub_label, "Score": d.score})
}

fn answer(
    verdict: &Verdict,
    request: &ImageModerationRequest,
    policy: &Policy,
    extra: Value,
    file_md5: String,
) -> ImageModerationResponse {
    let a = &verdict.answer;
    ImageModerationResponse {
        suggestion: a.suggestion.as_str().into(),
        label: a.label.as_str().into(),
        sub_label: a.sub_label.clone(),
        score: i64::from(a.score),
        label_results: verdict.labels.iter().map(label_result).collect(),
        object_results: verdict.objects.iter().map(object_result).collect(),
        ocr_results: verdict.text.iter().map(ocr_result).collect(),
        lib_results: verdict.library.iter().map(lib_result).collect(),
        data_id: request.data_id.clone().unwrap_or_default(),
        biz_type: policy.biz_type.clone(),
        extra: extra.to_string(),
        file_md5,
        recognition_results: recognition_results(&verdict.recognised),
        store_url: String::new(),
        reason: verdict.reason.clone(),
    }
}

/// The objects recognised (a policy's `Objects`), under the one label the cloud documents for
/// `RecognitionResults`, `Scene`; nothing when none was asked for or found.
fn recognition_results(recognised: &[Recognised]) -> Vec<RecognitionResult> {
    if recognised.is_empty() {
        return Vec::new();
    }
    let tags = recognised
        .iter()
        .map(|r| RecognitionTag {
            name: r.name.into(),
            score: i64::from(r.score),
            location: upright(r.bbox.map(f64::from)),
        })
        .collect();
    vec![RecognitionResult { label: "Scene".into(), tags }]
}

/// A scene's own fields, shared by every kind of scene result.
struct Head {
    scene: String,
    suggestion: String,
    label: String,
    sub_label: String,
    score: u8,
}

fn head(scene: &Scene) -> Head {
    let d = &scene.decision;
    Head {
        scene: scene.name.into(),
        suggestion: d.suggestion.as_str().into(),
        label: d.label.as_str().into(),
        sub_label: d.sub_label.clone(),
        score: d.score,
    }
}

fn label_result(l: &LabelScene) -> LabelResult {
    let Head { scene, suggestion, label, sub_label, score } = head(&l.scene);
    LabelResult {
        scene,
        suggestion,
        label,
        sub_label,
        score: u64::from(score),
        details: l
            .details
            .iter()
            .enumerate()
            .map(|(i, c)| LabelDetailItem { id: i as i64, name: c.name.clone(), score: u64::from(c.score) })
            .collect(),
    }
}

fn object_result(o: &ObjectScene) -> ObjectResult {
    let Head { scene, suggestion, label, sub_label, score } = head(&o.scene);
    let mut names: Vec<String> = Vec::new();
    for object in &o.objects {
        if !names.contains(&object.name) {
            names.push(object.name.clone());
        }
    }
    ObjectResult {
        scene,
        suggestion,
        label,
        sub_label,
        score: u64::from(score),
        names,
        details: o
            .objects
            .iter()
            .enumerate()
            .map(|(i, found)| ObjectDetail {
                id: i as u64,
                name: found.name.clone(),
                value: found.value.clone(),
                score: u64::from(found.score),
                location: upright(found.bbox),
                sub_label: found.sub_label.clone(),
                object_id: found.object_id.clone(),
            })
            .collect(),
    }
}

/// A box (left, top, width, height), not turned.
fn upright([x, y, width, height]: [f64; 4]) -> Location {
    Location { x, y, width, height, rotate: 0.0 }
}

/// The axis-aligned box around a line's corners, and the angle of its top edge in degrees.
fn location(quad: &[[f64; 2]; 4]) -> Location {
    let xs = quad.iter().map(|p| p[0]);
    let ys = quad.iter().map(|p| p[1]);
    let (x0, x1) = (xs.clone().fold(f64::MAX, f64::min), xs.fold(f64::MIN, f64::max));
    let (y0, y1) = (ys.clone().fold(f64::MAX, f64::min), ys.fold(f64::MIN, f64::max));
    let rotate = (quad[1][1] - quad[0][1]).atan2(quad[1][0] - quad[0][0]).to_degrees();
    Location {
        x: x0.round(),
        y: y0.round(),
        width: (x1 - x0).round(),
        height: (y1 - y0).round(),
        rotate: rotate.round(),
    }
}

/// The `OCR` scene: the text read, each line with where it is and what it hit.
fn ocr_result(t: &TextScene) -> OcrResult {
    let Head { scene, suggestion, label, sub_label, score } = head(&t.scene);
    OcrResult {
        scene,
        suggestion,
        label,
        sub_label,
        score: u64::from(score),
        text: t.lines.iter().map(|l| l.line.text.as_str()).collect::<Vec<_>>().join("\n"),
        details: t
            .lines
            .iter()
            .map(|l| {
                let keywords = l.keywords.iter().map(|h| OcrHitInfo {
                    kind: "Keyword".into(),
                    keyword: h.keyword.clone(),
                    lib_name: h.library.lib_name.clone(),
                    positions: vec![Positions { start: h.start as i64, end: h.end as i64 }],
                    label: h.library.label.as_str().into(),
                });
                let ads = l.ads.iter().map(|a| OcrHitInfo {
                    kind: a.kind.as_str().into(),
                    keyword: a.text.clone(),
                    lib_name: String::new(),
                    positions: vec![Positions { start: a.start as i64, end: a.end as i64 }],
                    label: Label::Ad.as_str().into(),
                });
                OcrTextDetail {
                    text: l.line.text.clone(),
                    label: l.decision.label.as_str().into(),
                    lib_id: l.keywords.first().map(|h| h.library.lib_id.clone()).unwrap_or_default(),
                    lib_name: l.keywords.first().map(|h| h.library.lib_name.clone()).unwrap_or_default(),
                    keywords: l.keywords.iter().map(|h| h.keyword.clone()).collect(),
                    score: u64::from(l.decision.score),
                    location: location(&l.line.quad),
                    rate: u64::from(points(l.line.score)),
                    sub_label: l.decision.sub_label.clone(),
                    hit_infos: keywords.chain(ads).collect(),
                }
            })
            .collect(),
    }
}

/// The `Similar` scene: every matched sample, the deciding one first.
fn lib_result(l: &LibraryScene) -> LibResult {
    let Head { scene, suggestion, label, sub_label, score } = head(&l.scene);
    LibResult {
        scene,
        suggestion,
        label,
        sub_label,
        score: i64::from(score),
        details: l
            .matches
            .iter()
            .enumerate()
            .map(|(i, m)| LibDetail {
                id: i as i64,
                lib_id: m.library.lib_id.clone(),
                lib_name: m.library.lib_name.clone(),
                image_id: m.image_id.clone(),
                label: m.library.label.as_str().into(),
                tag: m.sample_name.clone(),
                score: i64::from(m.score()),
            })
            .collect(),
    }
}
