//! The image-analysis service (`tiia`, version 2019-05-29) on the same server as ims: the same
//! accounts, keys, rate limits and billing, so a customer of both moves both by changing one
//! endpoint. The version says which service a call is for (`protocol::schema::Version`).
//! `AssessQuality`, `CropImage`, `DetectLabel` and `RecognizeCar` are here, image search in
//! `search`. Each answered call on an image is kept in the result history, marked with its
//! service, so the console shows it beside the moderation results.

use crate::actions::{fields, parse, Context};
use crate::error::{ErrorCode, ImageError, OrApiError, Source};
use crate::{billing, moderation};
use engine::billing::Service;
use engine::decision::{Label, Suggestion};
use engine::evidence::Object;
use engine::history::Record;
use engine::objects::{self, VehicleType};
use protocol::{ApiError, Code};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// How large an `ImageBase64` an action takes, and the code it answers for a larger one.
pub struct Base64Bound {
    pub max: usize,
    pub code: Code,
}

/// tiia's bound on `ImageBase64` for its analyses (its documentation: at most 4 MB).
pub const ANALYSIS_BASE64: Base64Bound =
    Base64Bound { max: 4 * 1024 * 1024, code: Code::InvalidParameterValueInvalidFileContentSize };

/// The image of a tiia call: `ImageUrl` or `ImageBase64`; the URL when both are given, as the
/// cloud documents.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ImageInput {
    image_url: Option<String>,
    image_base64: Option<String>,
}

/// A tiia call's image: decoded, with what its history record keeps of where it came from.
pub(crate) struct Image {
    pub decoded: Arc<media::Decoded>,
    /// The URL it was fetched from; empty for content sent.
    url: String,
    md5: String,
}

impl ImageInput {
    pub async fn read(self, context: &Context, bound: &Base64Bound) -> Result<Image, ApiError> {
        let state = &context.state;
        let image_url = self.image_url.unwrap_or_default();
        let (bytes, source) = match (image_url.as_str(), self.image_base64.unwrap_or_default()) {
            (url, _) if !url.is_empty() => (state.fetcher.fetch(url).await.api()?, Source::Url),
            (_, content) if content.len() > bound.max => {
                return Err(ApiError::with_message(
                    bound.code,
                    format!("ImageBase64 is {} characters; at most {}.", content.len(), bound.max),
                    format!("ImageBase64 为 {} 个字符，最多 {} 个。", content.len(), bound.max),
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
        let md5 = media::md5_hex(&bytes);
        let decoded = moderation::decode(state, bytes.into(), media::Sampling::default(), source).await?;
        let url = if source == Source::Url { image_url } else { String::new() };
        Ok(Image { decoded: Arc::new(decoded), url, md5 })
    }
}

/// Meters an answered call as `service` and keeps it in the result history, marked with its
/// service: the answer as sent, a thumbnail and where the image came from. It has no verdict
/// (Pass, Normal), and no hashes (it is no moderation a correction files in a library).
pub(crate) async fn answered(
    context: &Context,
    service: Service,
    image: &Image,
    answer: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let (decoded, side) = (image.decoded.clone(), context.state.history_settings.thumbnail_side);
    let thumbnail = tokio::task::spawn_blocking(move || moderation::thumbnail(&decoded, side))
        .await
        .map_err(|_| ApiError::new(Code::InternalError))?;
    let record = Record {
        request_id: context.request_id.clone(),
        owner: context.account.owner(),
        account: context.account.id,
        created_at: engine::stamp::now(),
        origin: context.origin,
        service,
        biz_type: String::new(),
        data_id: String::new(),
        file_md5: image.md5.clone(),
        file_url: image.url.clone(),
        user_id: String::new(),
        device_id: String::new(),
        context: String::new(),
        suggestion: Suggestion::Pass,
        label: Label::Normal,
        sub_label: String::new(),
        score: 0,
        flagged: Vec::new(),
        text: String::new(),
        hits: Vec::new(),
        response: Value::Object(answer.clone()).to_string(),
        thumbnail,
        hashes: Vec::new(),
        observations: None,
        correction: None,
    };
    moderation::store_record(&context.state, record).await;
    billing::meter(&context.state, &context.account, &context.request_id, service).await?;
    Ok(answer)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CropInput {
    width: i64,
    height: i64,
    #[serde(flatten)]
    image: ImageInput,
}

/// The objects of the image's first frame (the object detector), the most confident first.
async fn find_objects(context: &Context, image: &Image) -> Result<Vec<Object>, ApiError> {
    let (analyzer, decoded) = (context.state.analyzer.clone(), image.decoded.clone());
    if !analyzer.detects_objects() {
        return Err(crate::error::no_object_detector());
    }
    tokio::task::spawn_blocking(move || {
        let frame = &decoded.frames[0].image;
        Ok::<_, inference::InferenceError>(
            analyzer.objects(frame, moderation::frame_scale(&decoded), None)?.unwrap_or_default(),
        )
    })
    .await
    .map_err(|_| ApiError::new(Code::InternalError))?
    .api()
}

/// `DetectLabel`'s scenes and the lists each fills.
const LABEL_SCENES: [(&str, &str); 4] =
    [("WEB", "Labels"), ("CAMERA", "CameraLabels"), ("ALBUM", "AlbumLabels"), ("NEWS", "NewsLabels")];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LabelInput {
    scenes: Option<Vec<String>>,
    #[serde(flatten)]
    image: ImageInput,
}

/// `DetectLabel`: the objects found (80 COCO classes), each class once with its best score, in
/// each list of the scenes asked for (`WEB` when none is): one detector serves them all, and it
/// tells objects, not scenes (no "night" or "city"). `NewsLabels` carry no categories, as the
/// cloud's news model's do not; a list not asked for is null.
pub async fn detect_label(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let LabelInput { scenes, image } = parse(params)?;
    let scenes = scenes.filter(|s| !s.is_empty()).unwrap_or_else(|| vec!["WEB".into()]);
    if let Some(unknown) = scenes.iter().find(|s| !LABEL_SCENES.iter().any(|(name, _)| name == s)) {
        return Err(invalid(
            format!("Scenes holds `{unknown}`; the scenes are WEB, CAMERA, ALBUM and NEWS."),
            format!("Scenes 含有 `{unknown}`；可选场景为 WEB、CAMERA、ALBUM、NEWS。"),
        ));
    }
    let image = image.read(&context, &ANALYSIS_BASE64).await?;
    let tags = objects::tags(&find_objects(&context, &image).await?);
    let mut answer = Map::new();
    for (scene, list) in LABEL_SCENES {
        let labels = scenes.iter().any(|s| s == scene).then(|| {
            let categorised = scene != "NEWS";
            tags.iter()
                .map(|t| {
                    json!({
                        "Name": t.class.zh,
                        "Confidence": (t.score * 100.0).round() as i64,
                        "FirstCategory": if categorised { t.class.first.zh } else { "" },
                        "SecondCategory": if categorised { t.class.second.zh } else { "" },
                    })
                })
                .collect::<Vec<_>>()
        });
        answer.insert(list.into(), json!(labels));
    }
    answered(&context, Service::Label, &image, answer).await
}

/// A box's four corners as tiia gives them: bottom-left, top-left, top-right, bottom-right.
fn corners([x, y, w, h]: [u32; 4]) -> Value {
    json!([{"X": x, "Y": y + h}, {"X": x, "Y": y}, {"X": x + w, "Y": y}, {"X": x + w, "Y": y + h}])
}

/// `RecognizeCar`: every car, bus, truck and motorcycle found, the most confident first, with
/// its box, type and colour; `CarCoords` is the largest one's box. No model here tells brands,
/// series or years: `Brand` and `Serial` are empty, `Year` 0, and `Confidence` is the
/// detector's confidence in the type. None found: `FailedOperation.NoObjectDetected`, as the
/// cloud answers.
pub async fn recognize_car(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let image = parse::<ImageInput>(params)?.read(&context, &ANALYSIS_BASE64).await?;
    let found = find_objects(&context, &image).await?;
    let vehicles: Vec<(&Object, VehicleType)> =
        found.iter().filter_map(|o| Some((o, VehicleType::of(o.class)?))).collect();
    let Some(largest) = vehicles.iter().max_by_key(|(o, _)| u64::from(o.bbox[2]) * u64::from(o.bbox[3])) else {
        return Err(ApiError::new(Code::FailedOperationNoObjectDetected));
    };
    let frame = &image.decoded.frames[0].image;
    // Boxes are in the original's pixels; the colour is read in the frame's.
    let to_frame = 1.0 / moderation::frame_scale(&image.decoded);
    let tags: Vec<Value> = vehicles
        .iter()
        .map(|(o, kind)| {
            let colour = media::colour::of_box(frame, o.bbox.map(|v| (f64::from(v) * to_frame) as u32));
            json!({
                "Serial": "", "Brand": "", "Year": 0,
                "Type": kind.zh(),
                "Color": colour.map_or("", |c| c.colour.zh()),
                "Confidence": (o.score * 100.0).round() as i64,
                "CarLocation": corners(o.bbox),
                "PlateContent": null, "PlateConfidence": null, "TypeConfidence": null, "ColorConfidence": null,
                "Orientation": null, "OrientationConfidence": null,
            })
        })
        .collect();
    let answer = fields(json!({"CarCoords": corners(largest.0.bbox), "CarTags": tags}));
    answered(&context, Service::Car, &image, answer).await
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
    let image = image.read(&context, &ANALYSIS_BASE64).await?;
    let (original_w, original_h) = (image.decoded.probe.width, image.decoded.probe.height);
    if width as u64 > original_w || height as u64 > original_h {
        return Err(invalid(
            format!("Width and Height must be at most the image's {original_w} x {original_h}."),
            format!("Width 与 Height 不能超过图片的 {original_w} x {original_h}。"),
        ));
    }
    let (analyzer, decoded) = (context.state.analyzer.clone(), image.decoded.clone());
    let crop = tokio::task::spawn_blocking(move || {
        let frame = &decoded.frames[0].image;
        let faces =
            analyzer.faces(frame, moderation::frame_scale(&decoded), Default::default(), None)?.unwrap_or_default();
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
    let answer = fields(json!({
        "X": crop.x, "Y": crop.y, "Width": crop.width, "Height": crop.height,
        "OriginalWidth": original_w, "OriginalHeight": original_h, "CropResult": crop.result,
    }));
    answered(&context, Service::Crop, &image, answer).await
}

/// `AssessQuality`: the flags and the clarity score from the pixels (`media::quality`); no
/// `AestheticScore` (no model for it can be had here: the field is left out, never made up).
pub async fn assess_quality(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let image = parse::<ImageInput>(params)?.read(&context, &ANALYSIS_BASE64).await?;
    let (width, height, decoded) = (image.decoded.probe.width, image.decoded.probe.height, image.decoded.clone());
    let quality = tokio::task::spawn_blocking(move || media::quality::assess(&decoded.frames[0].image, width, height))
        .await
        .map_err(|_| ApiError::new(Code::InternalError))?;
    let answer = fields(json!({
        "LongImage": quality.long_image,
        "BlackAndWhite": quality.black_and_white,
        "SmallImage": quality.small_image,
        "BigImage": quality.big_image,
        "PureImage": quality.pure_image,
        "ClarityScore": quality.clarity,
    }));
    answered(&context, Service::Quality, &image, answer).await
}
