//! The image-analysis service (`tiia`, version 2019-05-29) on the same server as ims: the same
//! accounts, keys, rate limits and billing, so a customer of both moves both by changing one
//! endpoint. The version says which service a call is for (`protocol::schema::Version`).
//! `AssessQuality` and `CropImage` are served; the other actions come in the next steps
//! (issue 20).

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

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CropInput {
    width: i64,
    height: i64,
    #[serde(flatten)]
    image: ImageInput,
}

fn invalid(en: String, zh: String) -> ApiError {
    ApiError::with_message(Code::InvalidParameterValueInvalidParameter, en, zh)
}

/// `CropImage`: the `Width`:`Height` window that keeps the faces (the face detector, when
/// loaded) and the most detail (`media::crop`). `Width` and `Height` are above 0 and at most
/// the image's own.
pub async fn crop_image(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let CropInput { width, height, image } = parse(params)?;
    if width <= 0 || height <= 0 {
        return Err(invalid("Width and Height must be above 0.".into(), "Width 与 Height 必须大于 0。".into()));
    }
    let decoded = image.read(&context).await?;
    let (original_w, original_h) = (decoded.probe.width, decoded.probe.height);
    if width as u64 > original_w || height as u64 > original_h {
        return Err(invalid(
            format!("Width and Height must be at most the image's {original_w} x {original_h}."),
            format!("Width 与 Height 不能超过图片的 {original_w} x {original_h}。"),
        ));
    }
    let analyzer = context.state.analyzer.clone();
    let crop = tokio::task::spawn_blocking(move || {
        let frame = &decoded.frames[0].image;
        let scale = original_w.max(original_h) as f64 / f64::from(frame.width().max(frame.height()).max(1));
        let faces = analyzer.faces(frame, scale, Default::default(), None)?.unwrap_or_default();
        let boxes: Vec<[f32; 4]> = faces.iter().map(|f| f.bbox.map(|v| v as f32)).collect();
        Ok::<_, inference::InferenceError>(media::crop::best_crop(
            frame,
            original_w as u32,
            original_h as u32,
            width as u32,
            height as u32,
            &boxes,
        ))
    })
    .await
    .map_err(|_| ApiError::new(Code::InternalError))?
    .api()?;
    billing::meter(&context.state, &context.account, &context.request_id, Service::Crop).await?;
    Ok(fields(json!({
        "X": crop.x, "Y": crop.y, "Width": crop.width, "Height": crop.height,
        "OriginalWidth": original_w, "OriginalHeight": original_h, "CropResult": crop.result,
    })))
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
