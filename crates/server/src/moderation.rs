//! `ImageModeration`: check the request, ingest the image, decide, answer in the caller's
//! version.

use crate::actions::{self, fields, parse, Context};
use crate::error::{self, Source};
use crate::AppState;
use bytes::Bytes;
use engine::accounts::{Account, AccountId};
use engine::decision::{decide, points, worst, Decision, Label, Suggestion};
use engine::evidence::{BodyPart, Evidence, COVERED_PARTS, EXPOSED_PARTS};
use engine::history::{Origin, Record};
use engine::library::{deciding_match, Hash256, LibAction, LibraryMatch, MATCH_DISTANCE, MIN_QUALITY};
use engine::policy::{self, LabelJudgement, Policy};
use media::{Decoded, Sampling};
use protocol::wire::{
    v20200713, ImageModerationRequest, ImageModerationResponse, LabelDetailItem, LabelResult, LibDetail, LibResult,
    Location, ObjectDetail, ObjectResult,
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
    if request.kind.as_deref() == Some("IMAGE_AIGC") {
        return Err(ApiError::with_message(
            Code::UnsupportedOperation,
            "Type IMAGE_AIGC (AI-generated image detection) is not available in this deployment yet.",
            "本部署暂不支持 IMAGE_AIGC（AI 生成图片识别）。",
        ));
    }
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
    let decoded = Arc::new(decode(state, Bytes::from(bytes), sampling, source).await?);
    // The hashes and the thumbnail are made on a blocking thread while the models run.
    let (evidence, looks) = tokio::join!(analyse(state, &decoded), look(state, &decoded));
    let (evidence, looks) = (evidence?, looks?);
    let matches = match_libraries(state, owner, &policy, &looks.hashes).await;

    // Each frame judged by the policy; the answer is the worst frame's.
    let judged: Vec<(u32, Vec<LabelJudgement>)> =
        decoded.frames.iter().zip(&evidence).map(|(frame, e)| (frame.index, policy.judge(e))).collect();
    let verdicts = judged.iter().enumerate().map(|(i, (_, labels))| {
        let findings: Vec<_> = labels.iter().map(|j| j.finding.clone()).collect();
        (i, decide(&findings))
    });
    let (worst_index, model_decision) = worst(verdicts).expect("a decoded image has at least one frame");
    let (worst_frame, labels) = &judged[worst_index];
    let mut explanation: Vec<Value> =
        labels.iter().flat_map(|j| j.explanations.iter()).map(|e| serde_json::json!(e)).collect();
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
        object_results: evidence[worst_index].nudenet.as_deref().map(body_parts).into_iter().collect(),
        lib_results: lib_results(&matches, policy.observe_only),
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
    flagged.dedup();
    let record = Record {
        request_id: request_id.to_string(),
        owner,
        account: account.id,
        created_at: chrono::Utc::now().timestamp(),
        origin,
        biz_type: response.biz_type.clone(),
        data_id: response.data_id.clone(),
        file_md5: response.file_md5.clone(),
        file_url: url.to_string(),
        suggestion: answered.suggestion,
        label: answered.label,
        sub_label: answered.sub_label,
        score: answered.score,
        flagged,
        text: String::new(),
        hits: matches.iter().map(|m| format!("lib:{}", m.image_id)).collect(),
        response: serde_json::to_string(&response).unwrap_or_default(),
        thumbnail: looks.thumbnail,
        hashes: looks.hashes,
        correction: None,
    };
    let history = state.history.clone();
    // The answer stands even if the record cannot be written; the failure is logged and counted.
    if let Err(e) = actions::blocking(move || history.record(&record), error::history_error).await {
        metrics::counter!("ims_history_write_failures_total").increment(1);
        tracing::error!(code = e.code.as_str(), "the result could not be recorded");
    }
    Ok(response)
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

/// Runs the models on every frame, the frames in parallel on the blocking pool (the models'
/// queues batch them).
async fn analyse(state: &AppState, decoded: &Arc<Decoded>) -> Result<Vec<Evidence>, ApiError> {
    // Frames are reduced for decoding; boxes are reported in the original's pixels (the longer
    // sides compared, as EXIF orientation may have swapped width and height).
    let first = &decoded.frames[0].image;
    let scale =
        decoded.probe.width.max(decoded.probe.height) as f64 / f64::from(first.width().max(first.height()).max(1));
    let jobs: Vec<_> = (0..decoded.frames.len())
        .map(|i| {
            let (analyzer, decoded) = (state.analyzer.clone(), decoded.clone());
            tokio::task::spawn_blocking(move || analyzer.analyse(&decoded.frames[i].image, scale))
        })
        .collect();
    let mut evidence = Vec::with_capacity(jobs.len());
    for job in jobs {
        let result = job.await.map_err(|_| ApiError::new(Code::InternalError))?;
        evidence.push(result.map_err(|e| error::inference_error(&e))?);
    }
    Ok(evidence)
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
