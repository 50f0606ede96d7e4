//! `ImageModeration`: check the request, ingest the image, decide, answer in the caller's
//! version.

use crate::actions::{self, fields, parse, Context};
use crate::error::{self, Source};
use crate::{billing, AppState};
use bytes::Bytes;
use engine::accounts::{Account, AccountId};
use engine::ads::{self, AdHit, AdKind, AdSettings};
use engine::billing::Service;
use engine::decision::{decide, points, worst, Decision, Finding, Label, Suggestion};
use engine::evidence::{BodyPart, Evidence, TextLine, COVERED_PARTS, EXPOSED_PARTS};
use engine::history::{Origin, Record};
use engine::keywords;
use engine::library::{deciding_match, Hash256, LibAction, LibraryMatch, MATCH_DISTANCE, MIN_QUALITY};
use engine::policy::{self, LabelJudgement, Policy};
use media::{Decoded, Sampling};
use protocol::wire::{
    v20200713, ImageModerationRequest, ImageModerationResponse, LabelDetailItem, LabelResult, LibDetail, LibResult,
    Location, ObjectDetail, ObjectResult, OcrHitInfo, OcrResult, OcrTextDetail, Positions,
};
use protocol::{ApiError, Code};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// `DataId`: at most 64 characters of `[A-Za-z0-9_\-@#]`.
pub fn valid_data_id(data_id: &str) -> bool {
    data_id.len() <= 64 && data_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-@#".contains(&b))
}

fn invalid_value(en: String, zh: String) -> ApiError {
    ApiError::with_message(Code::InvalidParameterValueInvalidParameter, en, zh)
}

pub fn check(request: &ImageModerationRequest) -> Result<(), ApiError> {
    let data_id = request.data_id.as_deref().unwrap_or("");
    if !valid_data_id(data_id) {
        return Err(ApiError::new(Code::InvalidParameterValueInvalidDataId));
    }
    if !policy::valid_biz_type(request.biz_type.as_deref().unwrap_or("")) {
        return Err(invalid_value(
            "BizType must be empty or 3 to 32 characters of letters, digits and underscore.".into(),
            "BizType 必须为空，或由 3 到 32 个字母、数字、下划线组成。".into(),
        ));
    }
    if let Some(kind) = request.kind.as_deref() {
        if !["IMAGE", "IMAGE_AIGC"].contains(&kind) {
            return Err(invalid_value(
                format!("Type must be IMAGE or IMAGE_AIGC, not `{kind}`."),
                format!("Type 只能是 IMAGE 或 IMAGE_AIGC，不能是 `{kind}`。"),
            ));
        }
    }
    for (name, value) in [("Interval", request.interval), ("MaxFrames", request.max_frames)] {
        if value.is_some_and(|v| v < 0) {
            return Err(invalid_value(format!("{name} must not be negative."), format!("{name} 不能为负数。")));
        }
    }
    Ok(())
}

pub async fn image_moderation(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let request: ImageModerationRequest = parse(params)?;
    let response = moderate(&context.state, &context.account, &context.request_id, request, Origin::Sync).await?;
    Ok(render(context.version, response))
}

/// The response's fields in the shape of the version called.
pub fn render(version: &str, response: ImageModerationResponse) -> Map<String, Value> {
    match version {
        "2020-07-13" => fields(v20200713::ImageModerationResponse::from(response)),
        _ => fields(response),
    }
}

/// Moderates one image for `account` and records the result: the whole of `ImageModeration`,
/// shared by the synchronous call and the asynchronous tasks.
pub async fn moderate(
    state: &AppState,
    account: &Account,
    request_id: &str,
    request: ImageModerationRequest,
    origin: Origin,
) -> Result<ImageModerationResponse, ApiError> {
    check(&request)?;
    let content = request.file_content.as_deref().unwrap_or("");
    let url = request.file_url.as_deref().unwrap_or("");
    let (bytes, source) = match (content.is_empty(), url.is_empty()) {
        (true, true) => {
            return Err(ApiError::with_message(
                Code::InvalidParameterValueInvalidContent,
                "One of FileContent and FileUrl is required.",
                "FileContent 与 FileUrl 必须填写其中一个。",
            ))
        }
        (false, false) => {
            return Err(invalid_value(
                "Give only one of FileContent and FileUrl.".into(),
                "FileContent 与 FileUrl 只能填写其中一个。".into(),
            ))
        }
        (false, true) => {
            (media::decode_base64(content).map_err(|e| error::media_error(&e, Source::Content))?, Source::Content)
        }
        (true, false) => (state.fetcher.fetch(url).await.map_err(|e| error::fetch_error(&e))?, Source::Url),
    };
    let owner = account.owner();
    let policy = policy::resolve(state.policies.as_ref(), owner, request.biz_type.as_deref().unwrap_or(""))
        .map_err(|e| error::policy_error(&e))?;
    let file_md5 = media::md5_hex(&bytes);
    let sampling = Sampling::from_request(request.interval, request.max_frames, state.settings.max_frames);
    let bytes = Bytes::from(bytes);
    let decoded = Arc::new(decode(state, bytes.clone(), sampling, source).await?);
    if request.kind.as_deref() == Some("IMAGE_AIGC") {
        let response = aigc(&request, &bytes, &decoded, file_md5, policy.observe_only);
        let suggestion = if response.suggestion == "Pass" { Suggestion::Pass } else { Suggestion::Review };
        let label = if suggestion == Suggestion::Pass { Label::Normal } else { Label::Aigc };
        let verdict =
            Decision { suggestion, label, sub_label: response.sub_label.clone(), score: response.score as u8 };
        let summary = Summary { verdict, flagged: vec![], text: String::new(), hits: vec![], looks: None };
        record(state, account, request_id, origin, url, &response, summary).await;
        billing::meter(state, account, request_id, Service::Aigc).await?;
        return Ok(response);
    }
    // The hashes, the thumbnail, the text and the codes are made on blocking threads while the
    // models run.
    let (evidence, looks, lines, codes) = tokio::join!(
        analyse(state, &decoded),
        look(state, &decoded),
        read_text(state, &decoded, policy.ocr),
        find_codes(&decoded, policy.ads.qr_code)
    );
    let (evidence, looks, lines) = (evidence?, looks?, lines?);
    let keyword_hits = match_keywords(state, owner, &policy, &lines).await;
    let hits: Vec<LineHits> = lines
        .iter()
        .zip(keyword_hits)
        .map(|(line, keywords)| LineHits { keywords, ads: ads::find_in_text(&policy.ads, &line.text) })
        .collect();
    let matches = match_libraries(state, owner, &policy, &looks.hashes).await;

    // Each frame judged by the policy; the answer is the worst frame's.
    let judged: Vec<(u32, Vec<LabelJudgement>)> =
        decoded.frames.iter().zip(&evidence).map(|(frame, e)| (frame.index, policy.judge(e))).collect();
    let verdicts = judged.iter().enumerate().map(|(i, (_, labels))| {
        let findings: Vec<_> = labels.iter().map(|j| j.finding.clone()).collect();
        (i, decide(&findings))
    });
    let (worst_index, frame_decision) = worst(verdicts).expect("a decoded image has at least one frame");
    let (worst_frame, labels) = &judged[worst_index];
    let mut explanation: Vec<Value> =
        labels.iter().flat_map(|j| j.explanations.iter()).map(|e| serde_json::json!(e)).collect();
    // Keyword and ad hits in the text, and QR codes, are findings too: the worse verdict stands.
    let mut text_findings: Vec<Finding> = hits.iter().flat_map(|h| h.findings(&policy.ads)).collect();
    text_findings.extend(codes.iter().filter(|c| c.is_qr()).map(|_| ads::finding(&policy.ads, AdKind::QrCode)));
    for (line, line_hits) in lines.iter().zip(&hits) {
        explanation.extend(line_hits.keywords.iter().map(|h| {
            serde_json::json!({
                "Label": h.library.label.as_str(), "Suggestion": h.library.suggestion.as_str(), "Keyword": h.keyword,
                "LibId": h.library.lib_id, "Text": line.text,
            })
        }));
        explanation.extend(line_hits.ads.iter().map(|a| {
            serde_json::json!({
                "Label": "Ad", "Suggestion": policy.ads.suggestion.as_str(), "Ad": a.kind.as_str(), "Value": a.text,
                "Text": line.text,
            })
        }));
    }
    explanation.extend(codes.iter().filter(|c| c.is_qr()).map(|c| {
        serde_json::json!({"Label": "Ad", "Suggestion": policy.ads.suggestion.as_str(), "Ad": "QrCode", "Value": c.value})
    }));
    let (_, model_decision) =
        worst([(0, frame_decision), (1, decide(&text_findings))]).expect("two verdicts to choose from");
    // A library match overrides the models: an allow list passes, a block list blocks.
    let decision = match deciding_match(&matches) {
        Some(m) => {
            explanation.insert(
                0,
                serde_json::json!({
                    "Library": m.library.lib_id, "LibName": m.library.lib_name, "Action": m.library.action.as_str(),
                    "ImageId": m.image_id, "Distance": m.distance, "MaxDistance": MATCH_DISTANCE,
                }),
            );
            match m.library.action {
                LibAction::Allow => {
                    Decision { suggestion: Suggestion::Pass, label: Label::Normal, sub_label: String::new(), score: 0 }
                }
                LibAction::Block => Decision {
                    suggestion: Suggestion::Block,
                    label: m.library.label,
                    sub_label: String::new(),
                    score: m.score(),
                },
            }
        }
        None => model_decision,
    };
    let mut extra = serde_json::json!({
        "Format": decoded.probe.format.name(),
        "Width": decoded.probe.width,
        "Height": decoded.probe.height,
        "Frames": decoded.frames.iter().map(|f| f.index).collect::<Vec<_>>(),
        "Frame": worst_frame,
        "Explanation": explanation,
    });
    let answered = if policy.observe_only {
        extra["Observed"] = serde_json::json!({
            "Suggestion": decision.suggestion.as_str(),
            "Label": decision.label.as_str(),
            "SubLabel": decision.sub_label,
            "Score": decision.score,
        });
        metrics::counter!("ims_observed_total", "suggestion" => decision.suggestion.as_str(), "label" => decision.label.as_str())
            .increment(1);
        tracing::info!(
            biz_type = %policy.biz_type,
            suggestion = decision.suggestion.as_str(),
            label = decision.label.as_str(),
            "observe-only verdict"
        );
        Decision { suggestion: Suggestion::Pass, ..decision }
    } else {
        decision
    };
    let response = ImageModerationResponse {
        suggestion: answered.suggestion.as_str().to_string(),
        label: answered.label.as_str().to_string(),
        sub_label: answered.sub_label.clone(),
        score: i64::from(answered.score),
        label_results: labels.iter().map(|j| label_result(j, policy.observe_only)).collect(),
        object_results: evidence[worst_index]
            .nudenet
            .as_deref()
            .map(body_parts)
            .into_iter()
            .chain(code_results(&codes, &policy.ads, policy.observe_only))
            .collect(),
        lib_results: lib_results(&matches, policy.observe_only),
        ocr_results: ocr_results(&lines, &hits, &policy.ads, policy.observe_only),
        data_id: request.data_id.clone().unwrap_or_default(),
        biz_type: request.biz_type.clone().unwrap_or_default(),
        extra: extra.to_string(),
        file_md5,
        ..Default::default()
    };
    tracing::debug!(account = %account.id, suggestion = %response.suggestion, "moderated");

    let mut flagged: Vec<Label> =
        labels.iter().filter(|j| j.finding.suggestion != Suggestion::Pass).map(|j| j.finding.label).collect();
    flagged.extend(matches.iter().filter(|m| m.library.action == LibAction::Block).map(|m| m.library.label));
    flagged.extend(text_findings.iter().map(|f| f.label));
    flagged.dedup();
    let summary = Summary {
        verdict: answered,
        flagged,
        text: lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("\n"),
        hits: matches
            .iter()
            .map(|m| format!("lib:{}", m.image_id))
            .chain(hits.iter().flat_map(|h| h.keywords.iter().map(|k| format!("keyword:{}", k.keyword))))
            .chain(hits.iter().flat_map(|h| h.ads.iter().map(|a| format!("{}:{}", a.kind.as_str(), a.text))))
            .chain(codes.iter().map(|c| format!("{}:{}", if c.is_qr() { "QrCode" } else { "Barcode" }, c.value)))
            .collect(),
        looks: Some(looks),
    };
    record(state, account, request_id, origin, url, &response, summary).await;
    // Metering is the last thing before the answer: a crash before it leaves the call
    // unanswered and free; a failure of it fails the call.
    billing::meter(state, account, request_id, Service::Image).await?;
    Ok(response)
}

/// The text of every frame, when the policy reads text and the OCR models are loaded; the
/// frames in parallel. Lines repeated in several frames are kept once.
async fn read_text(state: &AppState, decoded: &Arc<Decoded>, wanted: bool) -> Result<Vec<TextLine>, ApiError> {
    if !wanted {
        return Ok(Vec::new());
    }
    let (analyzer, scale) = (state.analyzer.clone(), frame_scale(decoded));
    let mut lines: Vec<TextLine> = Vec::new();
    for read in per_frame(decoded, move |image| analyzer.read_text(image, scale)).await? {
        for line in read.map_err(|e| error::inference_error(&e))?.unwrap_or_default() {
            if !lines.iter().any(|l| l.text == line.text) {
                lines.push(line);
            }
        }
    }
    Ok(lines)
}

/// `work` on every frame, the frames in parallel on the blocking pool; results in frame order.
async fn per_frame<T: Send + 'static>(
    decoded: &Arc<Decoded>,
    work: impl Fn(&image::RgbImage) -> T + Send + Sync + 'static,
) -> Result<Vec<T>, ApiError> {
    let work = Arc::new(work);
    let jobs: Vec<_> = (0..decoded.frames.len())
        .map(|i| {
            let (work, decoded) = (work.clone(), decoded.clone());
            tokio::task::spawn_blocking(move || work(&decoded.frames[i].image))
        })
        .collect();
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        results.push(job.await.map_err(|_| ApiError::new(Code::InternalError))?);
    }
    Ok(results)
}

/// The keyword hits of each line, under the policy's keyword libraries. A failure to read the
/// libraries leaves the matcher as it was (logged).
async fn match_keywords(
    state: &AppState,
    owner: AccountId,
    policy: &Policy,
    lines: &[TextLine],
) -> Vec<Vec<keywords::Hit>> {
    if lines.is_empty() {
        return Vec::new();
    }
    let (matcher, repository) = (state.keyword_matcher.clone(), state.keywords.clone());
    let (only, texts) = (policy.keyword_libs.clone(), lines.iter().map(|l| l.text.clone()).collect::<Vec<_>>());
    let count = texts.len();
    tokio::task::spawn_blocking(move || {
        if let Err(error) = matcher.refresh(repository.as_ref()) {
            tracing::error!(%error, "the keyword libraries could not be refreshed");
        }
        texts.iter().map(|text| matcher.find(owner, only.as_deref(), text)).collect()
    })
    .await
    .unwrap_or_else(|_| vec![Vec::new(); count])
}

/// What one line of text hit: keywords of the libraries, and ads.
struct LineHits {
    keywords: Vec<keywords::Hit>,
    ads: Vec<AdHit>,
}

impl LineHits {
    fn findings(&self, settings: &AdSettings) -> Vec<Finding> {
        let keyword = |h: &keywords::Hit| Finding {
            label: h.library.label,
            sub_label: String::new(),
            score: 100,
            suggestion: h.library.suggestion,
        };
        self.keywords.iter().map(keyword).chain(self.ads.iter().map(|a| ads::finding(settings, a.kind))).collect()
    }

    fn hit_infos(&self) -> Vec<OcrHitInfo> {
        let keywords = self.keywords.iter().map(|h| OcrHitInfo {
            kind: "Keyword".into(),
            keyword: h.keyword.clone(),
            lib_name: h.library.lib_name.clone(),
            positions: vec![Positions { start: h.start as i64, end: h.end as i64 }],
            label: h.library.label.as_str().into(),
        });
        let ads = self.ads.iter().map(|a| OcrHitInfo {
            kind: a.kind.as_str().into(),
            keyword: a.text.clone(),
            lib_name: String::new(),
            positions: vec![Positions { start: a.start as i64, end: a.end as i64 }],
            label: Label::Ad.as_str().into(),
        });
        keywords.chain(ads).collect()
    }
}

/// The QR codes and barcodes of every frame, when the policy looks for them; the same value
/// in several frames once. Points are in the original image's pixels.
async fn find_codes(decoded: &Arc<Decoded>, wanted: bool) -> Vec<media::codes::Code> {
    if !wanted {
        return Vec::new();
    }
    let scale = frame_scale(decoded) as f32;
    let mut codes: Vec<media::codes::Code> = Vec::new();
    for mut code in per_frame(decoded, media::codes::find_codes).await.unwrap_or_default().into_iter().flatten() {
        if !codes.iter().any(|c| c.value == code.value) {
            code.points.iter_mut().for_each(|p| *p = p.map(|v| v * scale));
            codes.push(code);
        }
    }
    codes
}

/// The `QrCode` scene (ads: the policy's suggestion) and the `Barcode` scene (product codes:
/// Pass), each code with its value, its format and where it is.
fn code_results(codes: &[media::codes::Code], settings: &AdSettings, observe_only: bool) -> Vec<ObjectResult> {
    let scene = |qr: bool| -> Option<ObjectResult> {
        let mine: Vec<&media::codes::Code> = codes.iter().filter(|c| c.is_qr() == qr).collect();
        if mine.is_empty() {
            return None;
        }
        let (scene, suggestion, label) = match qr {
            true => ("QrCode", if observe_only { Suggestion::Pass } else { settings.suggestion }, Label::Ad),
            false => ("Barcode", Suggestion::Pass, Label::Normal),
        };
        Some(ObjectResult {
            scene: scene.into(),
            suggestion: suggestion.as_str().into(),
            label: label.as_str().into(),
            sub_label: if qr { scene.into() } else { String::new() },
            score: if qr { 100 } else { 0 },
            names: mine.iter().map(|c| c.format.clone()).collect(),
            details: mine
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let (xs, ys) = (c.points.iter().map(|p| f64::from(p[0])), c.points.iter().map(|p| f64::from(p[1])));
                    let (x0, x1) = (xs.clone().fold(f64::MAX, f64::min), xs.fold(f64::MIN, f64::max));
                    let (y0, y1) = (ys.clone().fold(f64::MAX, f64::min), ys.fold(f64::MIN, f64::max));
                    ObjectDetail {
                        id: i as u64,
                        name: c.format.clone(),
                        value: c.value.clone(),
                        score: 100,
                        location: Location {
                            x: x0.round(),
                            y: y0.round(),
                            width: (x1 - x0).round(),
                            height: (y1 - y0).round(),
                            rotate: 0.0,
                        },
                        sub_label: scene.into(),
                        ..Default::default()
                    }
                })
                .collect(),
        })
    };
    scene(true).into_iter().chain(scene(false)).collect()
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
fn ocr_results(lines: &[TextLine], hits: &[LineHits], settings: &AdSettings, observe_only: bool) -> Vec<OcrResult> {
    if lines.is_empty() {
        return Vec::new();
    }
    let all: Vec<Finding> = hits.iter().flat_map(|h| h.findings(settings)).collect();
    let overall = decide(&all);
    let shown = |s: Suggestion| if observe_only { Suggestion::Pass } else { s }.as_str().to_string();
    vec![OcrResult {
        scene: "OCR".into(),
        suggestion: shown(overall.suggestion),
        label: overall.label.as_str().into(),
        sub_label: overall.sub_label.clone(),
        score: u64::from(overall.score),
        text: lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("\n"),
        details: lines
            .iter()
            .zip(hits)
            .map(|(line, line_hits)| {
                let verdict = decide(&line_hits.findings(settings));
                OcrTextDetail {
                    text: line.text.clone(),
                    label: verdict.label.as_str().into(),
                    lib_id: line_hits.keywords.first().map(|h| h.library.lib_id.clone()).unwrap_or_default(),
                    lib_name: line_hits.keywords.first().map(|h| h.library.lib_name.clone()).unwrap_or_default(),
                    keywords: line_hits.keywords.iter().map(|h| h.keyword.clone()).collect(),
                    score: u64::from(verdict.score),
                    location: location(&line.quad),
                    rate: u64::from(points(line.score)),
                    sub_label: verdict.sub_label,
                    hit_infos: line_hits.hit_infos(),
                }
            })
            .collect(),
    }]
}

/// What the history keeps of a result beyond the answer itself.
struct Summary {
    verdict: Decision,
    flagged: Vec<Label>,
    text: String,
    hits: Vec<String>,
    looks: Option<Looks>,
}

/// Stores a result in the history. The answer stands even if the record cannot be written; the
/// failure is logged and counted.
async fn record(
    state: &AppState,
    account: &Account,
    request_id: &str,
    origin: Origin,
    url: &str,
    response: &ImageModerationResponse,
    summary: Summary,
) {
    let (thumbnail, hashes) = summary.looks.map_or((None, Vec::new()), |l| (l.thumbnail, l.hashes));
    let record = Record {
        request_id: request_id.to_string(),
        owner: account.owner(),
        account: account.id,
        created_at: chrono::Utc::now().timestamp(),
        origin,
        biz_type: response.biz_type.clone(),
        data_id: response.data_id.clone(),
        file_md5: response.file_md5.clone(),
        file_url: url.to_string(),
        suggestion: summary.verdict.suggestion,
        label: summary.verdict.label,
        sub_label: summary.verdict.sub_label,
        score: summary.verdict.score,
        flagged: summary.flagged,
        text: summary.text,
        hits: summary.hits,
        response: serde_json::to_string(response).unwrap_or_default(),
        thumbnail,
        hashes,
        correction: None,
    };
    let history = state.history.clone();
    if let Err(e) = actions::blocking(move || history.record(&record), error::history_error).await {
        metrics::counter!("ims_history_write_failures_total").increment(1);
        tracing::error!(code = e.code.as_str(), "the result could not be recorded");
    }
}

/// `Type=IMAGE_AIGC`: whether the file's metadata says an AI made it (C2PA, IPTC digital source
/// type, generator text chunks, EXIF software); Review with the evidence when it does. Nothing
/// is concluded from the pixels (see docs/text.md).
fn aigc(
    request: &ImageModerationRequest,
    bytes: &[u8],
    decoded: &Decoded,
    file_md5: String,
    observe_only: bool,
) -> ImageModerationResponse {
    let evidence = media::provenance::provenance(bytes);
    let score = |source: &str| -> u8 {
        if matches!(source, "C2PA" | "IPTC") {
            100
        } else {
            90
        }
    };
    let (suggestion, label, sub_label, top) = match evidence.first() {
        Some(e) => (Suggestion::Review, Label::Aigc, e.source.to_string(), score(e.source)),
        None => (Suggestion::Pass, Label::Normal, String::new(), 0),
    };
    let shown = if observe_only { Suggestion::Pass } else { suggestion };
    let extra = serde_json::json!({
        "Format": decoded.probe.format.name(),
        "Width": decoded.probe.width,
        "Height": decoded.probe.height,
        "Provenance": evidence.iter().map(|e| serde_json::json!({"Source": e.source, "Key": e.key, "Value": e.value})).collect::<Vec<_>>(),
    });
    ImageModerationResponse {
        suggestion: shown.as_str().into(),
        label: label.as_str().into(),
        sub_label: sub_label.clone(),
        score: i64::from(top),
        label_results: vec![LabelResult {
            scene: "AIGC".into(),
            suggestion: shown.as_str().into(),
            label: label.as_str().into(),
            sub_label,
            score: u64::from(top),
            details: evidence
                .iter()
                .enumerate()
                .map(|(i, e)| LabelDetailItem {
                    id: i as i64,
                    name: format!("{}:{}", e.source, e.key),
                    score: u64::from(score(e.source)),
                })
                .collect(),
        }],
        data_id: request.data_id.clone().unwrap_or_default(),
        biz_type: request.biz_type.clone().unwrap_or_default(),
        extra: extra.to_string(),
        file_md5,
        ..Default::default()
    }
}

/// What the history and the libraries keep of an image: its PDQ hashes and a thumbnail.
struct Looks {
    hashes: Vec<Hash256>,
    thumbnail: Option<Vec<u8>>,
}

/// Hashes every frame (for the libraries) and makes the first frame's thumbnail.
async fn look(state: &AppState, decoded: &Arc<Decoded>) -> Result<Looks, ApiError> {
    let (decoded, side) = (decoded.clone(), state.history_settings.thumbnail_side);
    tokio::task::spawn_blocking(move || {
        let mut hashes: Vec<Hash256> = decoded
            .frames
            .iter()
            .flat_map(|f| media::pdq::query_hashes(&f.image, MIN_QUALITY))
            .map(|p| Hash256::from_bytes(&p.bits))
            .collect();
        hashes.dedup();
        let thumbnail = (side > 0).then(|| media::jpeg::thumbnail(&decoded.frames[0].image, side).ok()).flatten();
        Looks { hashes, thumbnail }
    })
    .await
    .map_err(|_| ApiError::new(Code::InternalError))
}

/// The account's library samples the image matches, under the policy's libraries. A failure to
/// read the libraries' changes leaves the index as it was (logged): moderation goes on.
async fn match_libraries(state: &AppState, owner: AccountId, policy: &Policy, hashes: &[Hash256]) -> Vec<LibraryMatch> {
    let (matcher, libraries) = (state.matcher.clone(), state.libraries.clone());
    let (only, hashes) = (policy.image_libs.clone(), hashes.to_vec());
    tokio::task::spawn_blocking(move || {
        if let Err(error) = matcher.refresh(libraries.as_ref()) {
            tracing::error!(%error, "the image libraries could not be refreshed");
        }
        matcher.find(owner, only.as_deref(), &hashes)
    })
    .await
    .unwrap_or_default()
}

/// The `Similar` scene: every matched sample, the deciding one first.
fn lib_results(matches: &[LibraryMatch], observe_only: bool) -> Vec<LibResult> {
    let Some(deciding) = deciding_match(matches) else { return Vec::new() };
    let suggestion = match (observe_only, deciding.library.action) {
        (false, LibAction::Block) => Suggestion::Block,
        _ => Suggestion::Pass,
    };
    let mut ordered: Vec<&LibraryMatch> = vec![deciding];
    ordered.extend(matches.iter().filter(|m| !std::ptr::eq(*m, deciding)));
    vec![LibResult {
        scene: "Similar".into(),
        suggestion: suggestion.as_str().into(),
        label: deciding.library.label.as_str().into(),
        sub_label: String::new(),
        score: i64::from(deciding.score()),
        details: ordered
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
    }]
}

/// One label as the API shows it: the scene, its verdict, and each model's score as a detail.
fn label_result(judged: &LabelJudgement, observe_only: bool) -> LabelResult {
    let finding = &judged.finding;
    LabelResult {
        scene: finding.label.as_str().to_string(),
        suggestion: if observe_only { Suggestion::Pass } else { finding.suggestion }.as_str().to_string(),
        label: finding.label.as_str().to_string(),
        sub_label: finding.sub_label.clone(),
        score: u64::from(finding.score),
        details: judged
            .votes
            .iter()
            .enumerate()
            .map(|(i, vote)| LabelDetailItem {
                id: i as i64,
                name: if vote.sub_label.is_empty() {
                    vote.model.to_string()
                } else {
                    format!("{}:{}", vote.model, vote.sub_label)
                },
                score: u64::from(points(vote.score)),
            })
            .collect(),
    }
}

/// NudeNet's boxes, each with the label its class votes for.
fn body_parts(parts: &[BodyPart]) -> ObjectResult {
    let label_of = |class: &str| {
        if EXPOSED_PARTS.contains(&class) {
            "Porn"
        } else if COVERED_PARTS.contains(&class) {
            "Sexy"
        } else {
            "Normal"
        }
    };
    ObjectResult {
        scene: "BodyPart".into(),
        suggestion: "Pass".into(),
        label: "Normal".into(),
        names: parts.iter().map(|p| p.class.clone()).collect(),
        details: parts
            .iter()
            .enumerate()
            .map(|(i, p)| ObjectDetail {
                id: i as u64,
                name: label_of(&p.class).into(),
                sub_label: p.class.clone(),
                score: u64::from(points(p.score)),
                location: Location {
                    x: f64::from(p.bbox[0]),
                    y: f64::from(p.bbox[1]),
                    width: f64::from(p.bbox[2]),
                    height: f64::from(p.bbox[3]),
                    rotate: 0.0,
                },
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Frames are reduced for decoding; boxes are reported in the original's pixels (the longer
/// sides compared, as EXIF orientation may have swapped width and height).
fn frame_scale(decoded: &Decoded) -> f64 {
    let first = &decoded.frames[0].image;
    decoded.probe.width.max(decoded.probe.height) as f64 / f64::from(first.width().max(first.height()).max(1))
}

/// Runs the models on every frame, the frames in parallel on the blocking pool (the models'
/// queues batch them).
async fn analyse(state: &AppState, decoded: &Arc<Decoded>) -> Result<Vec<Evidence>, ApiError> {
    let (analyzer, scale) = (state.analyzer.clone(), frame_scale(decoded));
    per_frame(decoded, move |image| analyzer.analyse(image, scale))
        .await?
        .into_iter()
        .map(|result| result.map_err(|e| error::inference_error(&e)))
        .collect()
}

/// Decodes on the blocking pool, holding one of the decode permits, within the time bound.
/// A decode that overruns is answered at once but keeps its permit until it really ends, so
/// hostile files cannot pile up more decodes than there are permits.
pub(crate) async fn decode(
    state: &AppState,
    bytes: Bytes,
    sampling: Sampling,
    source: Source,
) -> Result<Decoded, ApiError> {
    let permit = state.decode_slots.clone().acquire_owned().await.map_err(|_| ApiError::new(Code::InternalError))?;
    let seconds = state.settings.decode_timeout_secs;
    let work = tokio::task::spawn_blocking(move || {
        let decoded = media::decode(&bytes, sampling);
        drop(permit);
        decoded
    });
    match tokio::time::timeout(Duration::from_secs(seconds), work).await {
        Ok(Ok(result)) => result.map_err(|e| error::media_error(&e, source)),
        Ok(Err(_)) => Err(ApiError::new(Code::InternalError)),
        Err(_) => Err(error::decode_timeout(seconds)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_id_rules() {
        assert!(valid_data_id(""));
        assert!(valid_data_id("a-b_c@d#1"));
        assert!(valid_data_id(&"a".repeat(64)));
        assert!(!valid_data_id(&"a".repeat(65)));
        assert!(!valid_data_id("a b"));
        assert!(!valid_data_id("a/b"));
        assert!(!valid_data_id("数据"));
    }
}
