//! Face library actions, in the style of the image libraries': `CreateFaceLib`,
//! `DescribeFaceLibs`, `DeleteFaceLib`, `CreateFaceSamples`, `DescribeFaceSamples`,
//! `DeleteFaceSamples` (defined in crates/protocol/api/ims/extensions.json). A photo is kept
//! only as the descriptor the face embedder makes of its one face (sealed by the store), never
//! as a photo; descriptors are never answered.

use crate::actions::{self, fields, parse, Context};
use crate::error::{check_failed, ErrorCode, OrApiError};
use crate::libraries::{parse_name, read_sample};
use engine::decision::Label;
use engine::evidence::Face;
use engine::faces::{FaceAction, FaceError, FaceLibrary, FaceSample};
use protocol::{ApiError, Code};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Most photos one `CreateFaceSamples` call adds.
pub const MAX_PHOTOS_PER_CALL: usize = 20;
/// Largest page of `DescribeFaceSamples`, and most ids one `DeleteFaceSamples` takes.
pub const MAX_PAGE: u64 = 100;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateInput {
    lib_name: String,
    label: String,
    action: String,
    max_distance: Option<f32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LibIdInput {
    lib_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PhotoInput {
    file_content: Option<String>,
    file_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnrolInput {
    lib_id: String,
    name: String,
    images: Vec<PhotoInput>,
    #[serde(default)]
    largest_face: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SamplesInput {
    #[serde(flatten)]
    page: actions::LibraryPage,
    person_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteInput {
    #[serde(default)]
    sample_ids: Vec<String>,
    #[serde(default)]
    person_ids: Vec<String>,
}

fn invalid(reason: impl Into<String>) -> ApiError {
    FaceError::Invalid(reason.into()).api_error()
}

pub async fn create(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: CreateInput = parse(params)?;
    let label: Label = parse_name(&input.label, "label")?;
    let action: FaceAction = parse_name(&input.action, "action (Block, Review or Allow)")?;
    let library = FaceLibrary::new(context.account.owner(), &input.lib_name, label, action, input.max_distance)
        .map_err(|e| e.api_error())?;
    let lib_id = library.lib_id.clone();
    actions::on(&context.state.faces, move |r| r.create_face_library(&library)).await?;
    tracing::info!(account = %context.account.id, %lib_id, "face library created");
    Ok(fields(json!({ "LibId": lib_id })))
}

pub async fn list(context: Context, _params: Value) -> Result<Map<String, Value>, ApiError> {
    let owner = context.account.owner();
    let libraries = actions::on(&context.state.faces, move |r| r.face_libraries(owner)).await?;
    let shown: Vec<Value> = libraries
        .iter()
        .map(|(l, counts)| {
            json!({
                "LibId": l.lib_id, "LibName": l.lib_name, "Label": l.label.as_str(), "Action": l.action.as_str(),
                // As given (0.6, not the 0.6000000238 of its f32 widened).
                "MaxDistance": (f64::from(l.max_distance) * 1e4).round() / 1e4, "PersonCount": counts.people, "SampleCount": counts.photos,
                "CreatedAt": l.created_at,
            })
        })
        .collect();
    Ok(fields(json!({ "FaceLibs": shown, "TotalCount": shown.len() })))
}

pub async fn delete(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let LibIdInput { lib_id } = parse(params)?;
    let owner = context.account.owner();
    let id = lib_id.clone();
    actions::on(&context.state.faces, move |r| r.delete_face_library(owner, &id)).await?;
    tracing::info!(account = %context.account.id, %lib_id, "face library deleted, with its people's descriptors");
    Ok(Map::new())
}

/// The face embedder's model, or why photos cannot be enrolled.
fn embedder(context: &Context) -> Result<&'static str, ApiError> {
    context.state.analyzer.face_model().ok_or_else(|| {
        ApiError::with_message(
            Code::UnsupportedOperation,
            "This server has no face embedder loaded (faces.detector and faces.embedder), so it cannot enrol faces.",
            "本服务未加载人脸特征模型（faces.detector 与 faces.embedder），无法录入人脸。",
        )
    })
}

/// The descriptor of the one face of `Images[index]` (the largest when `largest_face`).
async fn describe_photo(
    context: &Context,
    index: usize,
    photo: PhotoInput,
    largest_face: bool,
) -> Result<Vec<f32>, ApiError> {
    let decoded = read_sample(&context.state, index, photo.file_content, photo.file_url).await?;
    let analyzer = context.state.analyzer.clone();
    let needs = inference::analyzer::FaceNeeds { describe: true, age: false };
    let faces = tokio::task::spawn_blocking(move || analyzer.faces(&decoded.frames[0].image, 1.0, needs, None))
        .await
        .map_err(|e| check_failed("faces", &e))?
        .api()?
        .unwrap_or_default();
    the_face(faces, largest_face, &format!("Images[{index}]"))
}

/// The descriptor of a photo's one face (its largest when `largest_face`; faces come largest
/// first), or why the photo is refused. `photo` names it in messages.
pub fn the_face(faces: Vec<Face>, largest_face: bool, photo: &str) -> Result<Vec<f32>, ApiError> {
    let count = faces.len();
    match count {
        0 => {
            return Err(ApiError::with_message(
                Code::InvalidParameterValueNoFaceFound,
                format!("No face was found in {photo}."),
                format!("{photo} 中未检测到人脸。"),
            ))
        }
        1 => {}
        n if largest_face => tracing::debug!(faces = n, "the largest face of the photo is enrolled"),
        n => {
            return Err(ApiError::with_message(
                Code::InvalidParameterValueMultipleFaces,
                format!("{photo} shows {n} faces: send a photo of the person alone, or set LargestFace."),
                format!("{photo} 中有 {n} 张人脸：请提交仅含此人的照片，或设置 LargestFace。"),
            ))
        }
    }
    faces.into_iter().next().and_then(|f| f.descriptor).ok_or_else(|| ApiError::new(Code::InternalError))
}

/// Every photo is read and described before any is stored: a call adds all of its photos or
/// none.
pub async fn add_samples(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let EnrolInput { lib_id, name, images, largest_face } = parse(params)?;
    if images.is_empty() || images.len() > MAX_PHOTOS_PER_CALL {
        return Err(invalid(format!("Images must hold 1 to {MAX_PHOTOS_PER_CALL} photos, not {}", images.len())));
    }
    engine::faces::check_person_name(&name).map_err(|e| e.api_error())?;
    let model = embedder(&context)?;
    let owner = context.account.owner();
    let id = lib_id.clone();
    actions::on(&context.state.faces, move |r| r.face_library(owner, &id)).await?;
    let mut descriptors = Vec::with_capacity(images.len());
    for (index, photo) in images.into_iter().enumerate() {
        descriptors.push(describe_photo(&context, index, photo, largest_face).await?);
    }
    let (person_id, samples) =
        actions::on(&context.state.faces, move |r| r.enrol(owner, &lib_id, &name, model, &descriptors)).await?;
    tracing::info!(account = %context.account.id, %person_id, added = samples.len(), "face photos enrolled");
    let shown: Vec<Value> = samples.iter().map(|s| sample_json(s, model)).collect();
    Ok(fields(json!({ "PersonId": person_id, "Samples": shown })))
}

/// A photo as answered: `Current` says whether the loaded embedder made it (if not, the person
/// must be enrolled again to be recognised).
fn sample_json(s: &FaceSample, model: &str) -> Value {
    json!({
        "SampleId": s.sample_id, "PersonId": s.person_id, "LibId": s.lib_id, "Name": s.name,
        "Model": s.model, "Current": s.model == model, "CreatedAt": s.created_at,
    })
}

pub async fn samples(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let SamplesInput { page, person_id } = parse(params)?;
    let (offset, limit) = page.bounds(20, MAX_PAGE as i64).map_err(invalid)?;
    let owner = context.account.owner();
    let model = context.state.analyzer.face_model().unwrap_or_default();
    let (entries, total) = actions::on(&context.state.faces, move |r| {
        r.face_samples(owner, &page.lib_id, person_id.as_deref().filter(|p| !p.is_empty()), offset, limit)
    })
    .await?;
    let shown: Vec<Value> = entries.iter().map(|s| sample_json(s, model)).collect();
    Ok(fields(json!({ "Samples": shown, "TotalCount": total })))
}

pub async fn delete_samples(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let DeleteInput { sample_ids, person_ids } = parse(params)?;
    let count = sample_ids.len() + person_ids.len();
    if count == 0 || count > MAX_PAGE as usize {
        return Err(invalid(format!("SampleIds and PersonIds must hold 1 to {MAX_PAGE} ids together")));
    }
    let owner = context.account.owner();
    actions::on(&context.state.faces, move |r| {
        sample_ids.iter().try_for_each(|id| r.delete_face_sample(owner, id))?;
        person_ids.iter().try_for_each(|id| r.delete_person(owner, id))
    })
    .await?;
    tracing::info!(account = %context.account.id, removed = count, "face samples removed");
    Ok(Map::new())
}
