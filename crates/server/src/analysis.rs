//! The image-analysis service (`tiia`, version 2019-05-29) on the same server as ims: the same
//! accounts, keys, rate limits and billing, so a customer of both moves both by changing one
//! endpoint. The version says which service a call is for (`protocol::schema::Version`).
//! `AssessQuality` is served; the other actions come in the next steps (issue 20).

use crate::actions::{fields, parse, Context};
use crate::error::{ErrorCode, ImageError, OrApiError, Source};
use crate::{billing, moderation};
use engine::billing::Service;
use protocol::{ApiError, Code};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// tiia's bound on `ImageBase64` (its documentation: at most 4 MB).
pub const MAX_IMAGE_BASE64: usize = 4 * 1024 * 1024;

/// The image of a tiia call: `ImageUrl` or `ImageBase64`; the URL when both are given, as the
/// cloud documents.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImageInput {
    image_url: Option<String>,
    image_base64: Option<String>,
}

impl ImageInput {
    async fn read(self, context: &Context) -> Result<media::Decoded, ApiError> {
        let state = &context.state;
        let (bytes, source) = match (self.image_url.unwrap_or_default(), self.image_base64.unwrap_or_default()) {
            (url, _) if !url.is_empty() => (state.fetcher.fetch(&url).await.api()?, Source::Url),
            (_, content) if content.len() > MAX_IMAGE_BASE64 => {
                return Err(ApiError::with_message(
                    Code::InvalidParameterValueInvalidFileContentSize,
                    format!("ImageBase64 is {} characters; at most {MAX_IMAGE_BASE64}.", content.len()),
                    format!("ImageBase64 为 {} 个字符，最多 {MAX_IMAGE_BASE64} 个。", content.len()),
                ))
            }
            (_, content) if !content.is_empty() => (
                media::decode_base64(&content).map_err(|e| ImageError(e, Source::Content).api_error())?,
                Source::Content,
            ),
            _ => {
                return Err(ApiError::with_message(
                    Code::InvalidParameterValueInvalidContent,
                    "One of ImageUrl and ImageBase64 is required.",
                    "ImageUrl 与 ImageBase64 必须填写其中一个。",
                ))
            }
        };
        moderation::decode(state, bytes.into(), media::Sampling::default(), source).await
    }
}

/// `AssessQuality`: the flags and the clarity score from the pixels (`media::quality`); no
/// `AestheticScore` (no model for it can be had here: the field is left out, never made up).
pub async fn assess_quality(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let decoded = parse::<ImageInput>(params)?.read(&context).await?;
    let (width, height) = (decoded.probe.width, decoded.probe.height);
    let quality = tokio::task::spawn_blocking(move || media::quality::assess(&decoded.frames[0].image, width, height))
        .await
        .map_err(|_| ApiError::new(Code::InternalError))?;
    billing::meter(&context.state, &context.account, &context.request_id, Service::Quality).await?;
    Ok(fields(json!({
        "LongImage": quality.long_image,
        "BlackAndWhite": quality.black_and_white,
        "SmallImage": quality.small_image,
        "BigImage": quality.big_image,
        "PureImage": quality.pure_image,
        "ClarityScore": quality.clarity,
    })))
}
