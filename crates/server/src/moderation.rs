//! `ImageModeration`: check the request, ingest the image, decide, answer in the caller's
//! version.

use crate::actions::{fields, Context};
use crate::error;
use crate::error::Source;
use bytes::Bytes;
use engine::decision::{decide, worst};
use media::{Decoded, Sampling};
use protocol::wire::{v20200713, ImageModerationRequest, ImageModerationResponse};
use protocol::{ApiError, Code};
use serde_json::{Map, Value};
use std::time::Duration;

/// `DataId`: at most 64 characters of `[A-Za-z0-9_\-@#]`.
pub fn valid_data_id(data_id: &str) -> bool {
    data_id.len() <= 64 && data_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-@#".contains(&b))
}

/// `BizType`: empty (the default policy) or 3-32 characters of `[A-Za-z0-9_]`.
pub fn valid_biz_type(biz_type: &str) -> bool {
    biz_type.is_empty()
        || ((3..=32).contains(&biz_type.len()) && biz_type.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

fn invalid_value(en: String, zh: String) -> ApiError {
    ApiError::with_message(Code::InvalidParameterValueInvalidParameter, en, zh)
}

fn check(request: &ImageModerationRequest) -> Result<(), ApiError> {
    let data_id = request.data_id.as_deref().unwrap_or("");
    if !valid_data_id(data_id) {
        return Err(ApiError::new(Code::InvalidParameterValueInvalidDataId));
    }
    if !valid_biz_type(request.biz_type.as_deref().unwrap_or("")) {
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
    let request: ImageModerationRequest = serde_json::from_value(params).map_err(|e| {
        ApiError::with_message(Code::InvalidParameter, format!("Invalid parameters: {e}."), format!("参数错误：{e}。"))
    })?;
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
        (true, false) => (context.state.fetcher.fetch(url).await.map_err(|e| error::fetch_error(&e))?, Source::Url),
    };
    let file_md5 = media::md5_hex(&bytes);
    let sampling = Sampling::from_request(request.interval, request.max_frames, context.state.settings.max_frames);
    let decoded = decode(&context, Bytes::from(bytes), sampling, source).await?;

    // The detectors that report findings arrive with the models; with none enabled the
    // decision rule passes every frame as Normal.
    let verdicts = decoded.frames.iter().map(|frame| (frame.index, decide(&[])));
    let (worst_frame, decision) = worst(verdicts).expect("a decoded image has at least one frame");
    let extra = serde_json::json!({
        "Format": decoded.probe.format.name(),
        "Width": decoded.probe.width,
        "Height": decoded.probe.height,
        "Frames": decoded.frames.iter().map(|f| f.index).collect::<Vec<_>>(),
        "Frame": worst_frame,
    });
    let response = ImageModerationResponse {
        suggestion: decision.suggestion.as_str().to_string(),
        label: decision.label.as_str().to_string(),
        sub_label: decision.sub_label,
        score: i64::from(decision.score),
        data_id: request.data_id.unwrap_or_default(),
        biz_type: request.biz_type.unwrap_or_default(),
        extra: extra.to_string(),
        file_md5,
        ..Default::default()
    };
    tracing::debug!(account = %context.account.id, suggestion = %response.suggestion, "moderated");
    Ok(match context.version {
        "2020-07-13" => fields(v20200713::ImageModerationResponse::from(response)),
        _ => fields(response),
    })
}

/// Decodes on the blocking pool, holding one of the decode permits, within the time bound.
/// A decode that overruns is answered at once but keeps its permit until it really ends, so
/// hostile files cannot pile up more decodes than there are permits.
async fn decode(context: &Context, bytes: Bytes, sampling: Sampling, source: Source) -> Result<Decoded, ApiError> {
    let state = &context.state;
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

    #[test]
    fn biz_type_rules() {
        assert!(valid_biz_type(""));
        assert!(valid_biz_type("abc"));
        assert!(valid_biz_type(&"a".repeat(32)));
        assert!(!valid_biz_type("ab"));
        assert!(!valid_biz_type(&"a".repeat(33)));
        assert!(!valid_biz_type("a-b-c"));
    }
}
