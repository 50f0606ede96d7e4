//! Image library actions in the style of the cloud's `cms` library management:
//! `CreateImageLib`, `DescribeImageLibs`, `DeleteImageLib`, `CreateImageSamples`,
//! `DescribeImageSamples`, `DeleteImageSamples` (defined in crates/protocol/api/ims/extensions.json).
//! Libraries belong to the main account; samples are stored as PDQ hashes, never as images.

use crate::actions::{self, fields, parse, Context, LibraryPage};
use crate::error::{ErrorCode, ImageError, OrApiError, Source};
use crate::moderation;
use crate::AppState;
use engine::decision::Label;
use engine::library::{Hash256, LibAction, LibraryError, Sample, MIN_QUALITY};
use protocol::{ApiError, Code};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Most images one `CreateImageSamples` call adds.
pub const MAX_SAMPLES_PER_CALL: usize = 20;
/// Largest page of `DescribeImageSamples`.
pub const MAX_PAGE: u64 = 100;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateInput {
    lib_name: String,
    label: String,
    action: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LibIdInput {
    lib_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SampleInput {
    #[serde(default)]
    name: String,
    file_content: Option<String>,
    file_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AddInput {
    lib_id: String,
    images: Vec<SampleInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteSamplesInput {
    image_ids: Vec<String>,
}

fn invalid(reason: impl Into<String>) -> ApiError {
    LibraryError::Invalid(reason.into()).api_error()
}

/// A label or action name as the API spells it.
pub fn parse_name<T: serde::de::DeserializeOwned>(name: &str, what: &str) -> Result<T, ApiError> {
    serde_json::from_value(Value::String(name.into())).map_err(|_| invalid(format!("unknown {what} `{name}`")))
}

pub async fn create(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: CreateInput = parse(params)?;
    let label: Label = parse_name(&input.label, "label")?;
    let action: LibAction = parse_name(&input.action, "action (Allow or Block)")?;
    let owner = context.account.owner();
    let library =
        actions::on(&context.state.libraries, move |r| r.create_library(owner, &input.lib_name, label, action)).await?;
    tracing::info!(account = %context.account.id, lib_id = %library.lib_id, "image library created");
    Ok(fields(json!({ "LibId": library.lib_id })))
}

pub async fn list(context: Context, _params: Value) -> Result<Map<String, Value>, ApiError> {
    let owner = context.account.owner();
    let libraries = actions::on(&context.state.libraries, move |r| {
        r.libraries(owner)?
            .into_iter()
            .map(|l| Ok((r.samples(owner, &l.lib_id, 0, 0)?.1, l)))
            .collect::<Result<Vec<_>, LibraryError>>()
    })
    .await?;
    let shown: Vec<Value> = libraries
        .iter()
        .map(|(count, l)| {
            json!({
                "LibId": l.lib_id, "LibName": l.lib_name, "Label": l.label.as_str(), "Action": l.action.as_str(),
                "SampleCount": count, "CreatedAt": l.created_at,
            })
        })
        .collect();
    Ok(fields(json!({ "ImageLibs": shown, "TotalCount": shown.len() })))
}

pub async fn delete(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let LibIdInput { lib_id } = parse(params)?;
    let owner = context.account.owner();
    let id = lib_id.clone();
    actions::on(&context.state.libraries, move |r| r.delete_library(owner, &id)).await?;
    tracing::info!(account = %context.account.id, %lib_id, "image library deleted");
    Ok(Map::new())
}

/// The hashes a sample image is filed under (see `media::pdq::sample_hashes`).
pub fn sample_hashes(image: &image::RgbImage) -> Vec<Hash256> {
    media::pdq::sample_hashes(image, MIN_QUALITY).iter().map(|p| Hash256::from_bytes(&p.bits)).collect()
}

/// Reads and decodes `Images[index]` of a library call (exactly one of its FileContent and
/// FileUrl), as `ImageModeration` reads an image.
pub async fn read_sample(
    state: &AppState,
    index: usize,
    content: Option<String>,
    url: Option<String>,
) -> Result<media::Decoded, ApiError> {
    let (content, url) = (content.unwrap_or_default(), url.unwrap_or_default());
    let (bytes, source) = match (content.is_empty(), url.is_empty()) {
        (false, true) => {
            (media::decode_base64(&content).map_err(|e| ImageError(e, Source::Content).api_error())?, Source::Content)
        }
        (true, false) => (state.fetcher.fetch(&url).await.api()?, Source::Url),
        _ => return Err(invalid(format!("Images[{index}] needs exactly one of FileContent and FileUrl"))),
    };
    moderation::decode(state, bytes.into(), media::Sampling::default(), source).await
}

/// Reads, decodes and hashes one sample image.
async fn hash_sample(state: &AppState, index: usize, input: SampleInput) -> Result<(String, Vec<Hash256>), ApiError> {
    let decoded = read_sample(state, index, input.file_content, input.file_url).await?;
    let hashes = tokio::task::spawn_blocking(move || sample_hashes(&decoded.frames[0].image))
        .await
        .map_err(|_| ApiError::new(Code::InternalError))?;
    if hashes.is_empty() {
        return Err(invalid(format!(
            "Images[{index}] has too little detail to be recognised (PDQ quality under {MIN_QUALITY})"
        )));
    }
    Ok((input.name, hashes))
}

fn sample_json(s: &Sample) -> Value {
    json!({ "ImageId": s.image_id, "LibId": s.lib_id, "Name": s.name, "Hashes": s.hashes.len(), "CreatedAt": s.created_at })
}

/// Every image is read and hashed before any is stored: a call adds all of its images or none.
pub async fn add_samples(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let AddInput { lib_id, images } = parse(params)?;
    if images.is_empty() || images.len() > MAX_SAMPLES_PER_CALL {
        return Err(invalid(format!("Images must hold 1 to {MAX_SAMPLES_PER_CALL} images, not {}", images.len())));
    }
    let owner = context.account.owner();
    let id = lib_id.clone();
    actions::on(&context.state.libraries, move |r| r.library(owner, &id)).await?;
    let mut hashed = Vec::with_capacity(images.len());
    for (index, image) in images.into_iter().enumerate() {
        hashed.push(hash_sample(&context.state, index, image).await?);
    }
    let samples = actions::on(&context.state.libraries, move |r| {
        hashed.iter().map(|(name, hashes)| r.add_sample(owner, &lib_id, name, hashes)).collect::<Result<Vec<_>, _>>()
    })
    .await?;
    tracing::info!(account = %context.account.id, added = samples.len(), "library samples added");
    Ok(fields(json!({ "Samples": samples.iter().map(sample_json).collect::<Vec<_>>() })))
}

pub async fn samples(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let page: LibraryPage = parse(params)?;
    let (offset, limit) = page.bounds(20, MAX_PAGE as i64).map_err(invalid)?;
    let owner = context.account.owner();
    let (entries, total) =
        actions::on(&context.state.libraries, move |r| r.samples(owner, &page.lib_id, offset, limit)).await?;
    Ok(fields(json!({ "Samples": entries.iter().map(sample_json).collect::<Vec<_>>(), "TotalCount": total })))
}

pub async fn delete_samples(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let DeleteSamplesInput { image_ids } = parse(params)?;
    if image_ids.is_empty() || image_ids.len() > MAX_PAGE as usize {
        return Err(invalid(format!("ImageIds must hold 1 to {MAX_PAGE} ids")));
    }
    let owner = context.account.owner();
    let count = image_ids.len();
    actions::on(&context.state.libraries, move |r| image_ids.iter().try_for_each(|id| r.delete_sample(owner, id)))
        .await?;
    tracing::info!(account = %context.account.id, removed = count, "library samples removed");
    Ok(Map::new())
}
