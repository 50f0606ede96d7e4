//! `ImageModeration`: the one moderation use case. The synchronous call, the asynchronous task
//! workers and `ims moderate` all call [`moderate`]: it checks the request, ingests the image,
//! gathers what each check the policy asks for reports ([`Observations`]: the models through the
//! [`Backend`](inference::analyzer::Backend), the text and its keywords, the codes, the image
//! libraries), lets the core compose the verdict ([`engine::verdict::compose`]), renders it
//! ([`crate::answer`]), records it in the history and meters it.
//!
//! Nothing fails open: a check the policy asks for that cannot run fails the request
//! (`FailedOperation`, counted in `ims_check_failures_total`), never passes the image.

use crate::actions::{self, parse, Context};
use crate::answer;
use crate::error::{busy, check_failed, timed_out, ErrorCode, ImageError, OrApiError, Source};
use crate::{billing, AppState};
use bytes::Bytes;
use engine::accounts::{Account, AccountId};
use engine::billing::Service;
use engine::evidence::{Evidence, Face, Object, Place, Region, TextLine};
use engine::history::{Origin, Record};
use engine::library::{Hash256, LibraryMatch, MIN_QUALITY};
use engine::policy::{self, Policy};
use engine::verdict::{self, FoundCode, Observations, ReadLine, Verdict};
use image::RgbImage;
use inference::analyzer::{Backend, FaceNeeds};
use inference::InferenceError;
use media::views::{self, View, Window};
use media::{Decoded, Sampling};
use protocol::wire::{ContentType, ImageModerationRequest, ImageModerationResponse};
use protocol::{ApiError, Code};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `DataId`: at most 64 characters of `[A-Za-z0-9_\-@#]`.
pub fn valid_data_id(data_id: &str) -> bool {
    data_id.len() <= 64 && data_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-@#".contains(&b))
}

fn invalid_value(en: String, zh: String) -> ApiError {
    ApiError::with_message(Code::InvalidParameterValueInvalidParameter, en, zh)
}

/// What can be checked of a request before any work: identifiers, `Type`, frame sampling.
pub fn check(request: &ImageModerationRequest) -> Result<ContentType, ApiError> {
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
    let kind = match request.kind.as_deref() {
        None => ContentType::Image,
        Some(name) => ContentType::parse(name).ok_or_else(|| {
            invalid_value(
                format!("Type must be IMAGE or IMAGE_AIGC, not `{name}`."),
                format!("Type 只能是 IMAGE 或 IMAGE_AIGC，不能是 `{name}`。"),
            )
        })?,
    };
    for (name, value) in [("Interval", request.interval), ("MaxFrames", request.max_frames)] {
        if value.is_some_and(|v| v < 0) {
            return Err(invalid_value(format!("{name} must not be negative."), format!("{name} 不能为负数。")));
        }
    }
    Ok(kind)
}

/// The image a request carries: exactly one of `FileContent` and `FileUrl`, with the checks
/// that need no download (the URL itself is checked by the fetcher).
pub enum Input<'a> {
    Content(&'a str),
    Url(&'a str),
}

impl<'a> Input<'a> {
    pub fn of(request: &'a ImageModerationRequest) -> Result<Input<'a>, ApiError> {
        match (request.file_content.as_deref().unwrap_or(""), request.file_url.as_deref().unwrap_or("")) {
            ("", "") => Err(ApiError::with_message(
                Code::InvalidParameterValueInvalidContent,
                "One of FileContent and FileUrl is required.",
                "FileContent 与 FileUrl 必须填写其中一个。",
            )),
            (content, "") => Ok(Input::Content(content)),
            ("", url) => Ok(Input::Url(url)),
            _ => Err(invalid_value(
                "Give only one of FileContent and FileUrl.".into(),
                "FileContent 与 FileUrl 只能填写其中一个。".into(),
            )),
        }
    }
}

pub async fn image_moderation(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let request: ImageModerationRequest = parse(params)?;
    let deadline = context.arrived + Duration::from_secs(context.state.settings.request_timeout_secs);
    let admission = Admission::Now { deadline };
    let response =
        moderate(&context.state, &context.account, &context.request_id, request, context.origin, admission).await?;
    Ok(answer::render(context.version, response))
}

/// How a moderation waits for room among `server.max_images_in_flight`.
#[derive(Debug, Clone, Copy)]
pub enum Admission {
    /// A synchronous call: refused at once when the server is full, and answered by `deadline`
    /// (`FailedOperation.Timeout`, its work not yet started dropped).
    Now { deadline: Instant },
    /// An asynchronous task or a batch: waits its turn, however long; never dropped.
    Wait,
}

/// Moderates one image for `account`, records the result and meters it (see the module
/// documentation), admitted as `admission` says.
pub async fn moderate(
    state: &AppState,
    account: &Account,
    request_id: &str,
    request: ImageModerationRequest,
    origin: Origin,
    admission: Admission,
) -> Result<ImageModerationResponse, ApiError> {
    // What is wrong with the request itself is answered without taking a place among the
    // images in flight.
    let kind = check(&request)?;
    let input = Input::of(&request)?;
    match admission {
        Admission::Now { deadline } => {
            let Ok(_permit) = state.in_flight.clone().try_acquire_owned() else {
                return Err(busy("server.max_images_in_flight images being moderated"));
            };
            let seconds = state.settings.request_timeout_secs;
            let work = moderate_admitted(state, account, request_id, &request, input, kind, origin, Some(deadline));
            tokio::time::timeout_at(deadline.into(), work).await.unwrap_or_else(|_| Err(timed_out(seconds)))
        }
        Admission::Wait => {
            let _permit =
                state.in_flight.clone().acquire_owned().await.map_err(|_| ApiError::new(Code::InternalError))?;
            moderate_admitted(state, account, request_id, &request, input, kind, origin, None).await
        }
    }
}

/// The work of a checked and admitted request.
#[allow(clippy::too_many_arguments)]
async fn moderate_admitted(
    state: &AppState,
    account: &Account,
    request_id: &str,
    request: &ImageModerationRequest,
    input: Input<'_>,
    kind: ContentType,
    origin: Origin,
    deadline: Option<Instant>,
) -> Result<ImageModerationResponse, ApiError> {
    let (bytes, source, url) = match input {
        Input::Content(content) => {
            let bytes = media::decode_base64(content).map_err(|e| ImageError(e, Source::Content).api_error())?;
            (bytes, Source::Content, "")
        }
        Input::Url(url) => (timed("download", state.fetcher.fetch(url)).await.api()?, Source::Url, url),
    };
    let owner = account.owner();
    let (policies, biz_type) = (state.policies.clone(), request.biz_type.clone().unwrap_or_default());
    let policy = actions::blocking(move || policy::resolve(policies.as_ref(), owner, &biz_type)).await?;
    let file_md5 = media::md5_hex(&bytes);
    let sampling = Sampling::from_request(request.interval, request.max_frames, state.settings.max_frames);
    let bytes = Bytes::from(bytes);
    let decoded = Arc::new(timed("decode", decode(state, bytes.clone(), sampling, source)).await?);
    let service = match kind {
        ContentType::ImageAigc => Service::Aigc,
        ContentType::Image => Service::Image,
    };
    let (response, verdict, looks) = match kind {
        ContentType::ImageAigc => {
            let (response, verdict) = answer::aigc(request, &policy, &bytes, &decoded, file_md5);
            (response, verdict, None)
        }
        ContentType::Image => {
            let (seen, looks) = observe(state, owner, &policy, &decoded, deadline).await?;
            // Kept with the result: a policy's change is previewed by composing them again.
            let looks = Looks { observations: Some(seen.clone()), ..looks };
            let verdict = verdict::compose(&policy, seen);
            if let Some(observed) = &verdict.observed {
                metrics::counter!("ims_observed_total", "suggestion" => observed.suggestion.as_str(), "label" => observed.label.as_str())
                    .increment(1);
                tracing::info!(
                    biz_type = %policy.biz_type,
                    suggestion = observed.suggestion.as_str(),
                    label = observed.label.as_str(),
                    "observe-only verdict"
                );
            }
            (answer::response(&verdict, request, &policy, &decoded, file_md5), verdict, Some(looks))
        }
    };
    tracing::debug!(account = %account.id, suggestion = %response.suggestion, "moderated");
    let history = record(state, account, request_id, origin, service, url, request, &response, &verdict, looks);
    timed("history", history).await?;
    // Metering is the last thing before the answer: a crash before it leaves the call
    // unanswered and free; a failure of it fails the call.
    timed("metering", billing::meter(state, account, request_id, service)).await?;
    Ok(response)
}

/// Times one stage of a request: `ims_stage_seconds{stage}` and a debug line, so operators see
/// where the time goes (each model's runs are timed by the inference crate as `run:<model>`).
async fn timed<T>(stage: &'static str, work: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let done = work.await;
    let seconds = started.elapsed().as_secs_f64();
    metrics::histogram!("ims_stage_seconds", "stage" => stage).record(seconds);
    tracing::debug!(stage, ms = seconds * 1e3, "stage finished");
    done
}

/// Everything the policy's checks report on an image, gathered in parallel: the models on
/// every frame, the hashes and thumbnail (for the libraries and the history), the text, the
/// codes; then the keywords in the text and the library matches.
async fn observe(
    state: &AppState,
    owner: AccountId,
    policy: &Policy,
    decoded: &Arc<Decoded>,
    deadline: Option<Instant>,
) -> Result<(Observations, Looks), ApiError> {
    let face_libraries = face_libraries_apply(state, owner, policy).await?;
    if policy.teenager() && !state.analyzer.estimates_age() {
        return Err(crate::error::no_age_model());
    }
    let needs = FaceNeeds { describe: face_libraries, age: policy.teenager() };
    if policy.objects && !state.analyzer.detects_objects() {
        return Err(crate::error::no_object_detector());
    }
    let (evidence, looks, lines, codes, faces, objects) = tokio::join!(
        timed("models", analyse(state, decoded, deadline)),
        timed("hashes", look(state, decoded)),
        timed("text", read_text(state, decoded, policy.ocr, deadline)),
        timed("codes", find_codes(decoded, policy.ads.qr_code)),
        timed("faces", find_faces(state, decoded, policy.faces || face_libraries || needs.age, needs, deadline)),
        timed("objects", find_objects(state, decoded, policy.objects, deadline))
    );
    let (mut evidence, looks, lines, codes, faces, objects) = (evidence?, looks?, lines?, codes?, faces?, objects?);
    timed("turns", examine_turned(state, policy, decoded, &mut evidence, deadline)).await?;
    let text = match lines {
        Some(lines) => Some(timed("keywords", match_keywords(state, owner, policy, lines)).await?),
        None => None,
    };
    let library = timed("libraries", match_libraries(state, owner, policy, &looks.hashes)).await?;
    let face_lookup = match face_libraries {
        true => Some(match_faces(state, owner, policy, faces.as_deref())?),
        false => None,
    };
    Ok((Observations { views: evidence, text, codes, library, faces, face_lookup, objects }, looks))
}

/// Whether a face library of the owner applies under the policy (the index refreshed first).
/// Libraries that cannot be read fail the request: a block list must not silently stop applying.
async fn face_libraries_apply(state: &AppState, owner: AccountId, policy: &Policy) -> Result<bool, ApiError> {
    let (matcher, repository, only) = (state.face_matcher.clone(), state.faces.clone(), policy.face_libs.clone());
    tokio::task::spawn_blocking(move || {
        matcher.refresh(repository.as_ref()).map_err(|e| check_failed("face_libraries", &e))?;
        Ok(matcher.applies(owner, only.as_deref()))
    })
    .await
    .map_err(|e| check_failed("face_libraries", &e))?
}

/// The face libraries' matches of the faces found. Without a detector or an embedder the
/// request fails rather than pass a face a block list holds.
fn match_faces(
    state: &AppState,
    owner: AccountId,
    policy: &Policy,
    faces: Option<&[Face]>,
) -> Result<engine::faces::FaceLookup, ApiError> {
    let (Some(faces), Some(model)) = (faces, state.analyzer.face_model()) else {
        return Err(check_failed(
            "face_libraries",
            &"no face detector or embedder is loaded (faces.detector, faces.embedder)",
        ));
    };
    let descriptors: Vec<Option<&[f32]>> = faces.iter().map(|f| f.descriptor.as_deref()).collect();
    // None: the libraries were deleted since the request began; none applies now.
    Ok(state.face_matcher.lookup(owner, policy.face_libs.as_deref(), model, &descriptors).unwrap_or_default())
}

/// The faces of every frame when the policy needs them and a detector is loaded (`None`
/// otherwise: nothing looked), with what `needs` asks (descriptors for face libraries, ages for
/// the Teenager scene); the largest `faces.max_per_image` of them, the largest first.
async fn find_faces(
    state: &AppState,
    decoded: &Arc<Decoded>,
    wanted: bool,
    needs: FaceNeeds,
    deadline: Option<Instant>,
) -> Result<Option<Vec<Face>>, ApiError> {
    if !wanted {
        return Ok(None);
    }
    let found = in_frames(state, decoded, "faces", move |a, frame, scale| a.faces(frame, scale, needs, deadline));
    let mut faces: Option<Vec<Face>> =
        found.await?.map(|found| found.into_iter().map(|(frame, face)| Face { frame, ..face }).collect());
    if let Some(faces) = &mut faces {
        faces.sort_by_key(|f| std::cmp::Reverse(u64::from(f.bbox[2]) * u64::from(f.bbox[3])));
        faces.truncate(state.face_settings.max_per_image);
    }
    Ok(faces)
}

/// The objects of every frame when the policy asks for them and a detector is loaded (`None`
/// otherwise), the most confident first.
async fn find_objects(
    state: &AppState,
    decoded: &Arc<Decoded>,
    wanted: bool,
    deadline: Option<Instant>,
) -> Result<Option<Vec<Object>>, ApiError> {
    if !wanted {
        return Ok(None);
    }
    let found = in_frames(state, decoded, "objects", move |a, frame, scale| a.objects(frame, scale, deadline));
    let mut objects: Option<Vec<Object>> =
        found.await?.map(|found| found.into_iter().map(|(frame, object)| Object { frame, ..object }).collect());
    if let Some(objects) = &mut objects {
        objects.sort_by(|a, b| b.score.total_cmp(&a.score));
    }
    Ok(objects)
}

/// What `detect` finds in each frame, with the frame's index, the frames in parallel (a
/// transparent frame, also seen on a dark backdrop, is looked at once); `None` when `detect`
/// says its model is not loaded.
async fn in_frames<T: Send + 'static>(
    state: &AppState,
    decoded: &Arc<Decoded>,
    check: &'static str,
    detect: impl Fn(&dyn Backend, &RgbImage, f64) -> Result<Option<Vec<T>>, InferenceError> + Send + Sync + 'static,
) -> Result<Option<Vec<(u32, T)>>, ApiError> {
    let scale = frame_scale(decoded);
    let frames: Vec<usize> = (0..decoded.frames.len()).filter(|&i| !decoded.frames[i].dark_backdrop).collect();
    let detect = Arc::new(detect);
    let jobs = frames.iter().map(|&i| {
        let (analyzer, decoded, detect) = (state.analyzer.clone(), decoded.clone(), detect.clone());
        move || detect(analyzer.as_ref(), &decoded.frames[i].image, scale)
    });
    let mut found: Option<Vec<(u32, T)>> = None;
    for (i, result) in frames.iter().zip(in_parallel(check, jobs).await?) {
        let Some(items) = result.api()? else { continue };
        let index = decoded.frames[*i].index;
        found.get_or_insert_with(Vec::new).extend(items.into_iter().map(|item| (index, item)));
    }
    Ok(found)
}

/// The text of every frame when the policy reads text and a text reader is loaded (`None`
/// otherwise: nothing looked); the frames in parallel. Lines repeated in several frames are
/// kept once.
async fn read_text(
    state: &AppState,
    decoded: &Arc<Decoded>,
    wanted: bool,
    deadline: Option<Instant>,
) -> Result<Option<Vec<TextLine>>, ApiError> {
    if !wanted {
        return Ok(None);
    }
    let (analyzer, scale) = (state.analyzer.clone(), frame_scale(decoded));
    let mut lines: Option<Vec<TextLine>> = None;
    for read in per_frame(decoded, "text", move |image| analyzer.read_text(image, scale, deadline)).await? {
        let Some(read) = read.api()? else { continue };
        let lines = lines.get_or_insert_with(Vec::new);
        for line in read {
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
    check: &'static str,
    work: impl Fn(&image::RgbImage) -> T + Send + Sync + 'static,
) -> Result<Vec<T>, ApiError> {
    let work = Arc::new(work);
    let jobs = (0..decoded.frames.len()).map(|i| {
        let (work, decoded) = (work.clone(), decoded.clone());
        move || work(&decoded.frames[i].image)
    });
    in_parallel(check, jobs).await
}

/// Each job on the blocking pool, all at once; results in order. A job that panics fails the
/// `check` it was part of.
async fn in_parallel<T: Send + 'static>(
    check: &'static str,
    jobs: impl Iterator<Item = impl FnOnce() -> T + Send + 'static>,
) -> Result<Vec<T>, ApiError> {
    let handles: Vec<_> = jobs.map(tokio::task::spawn_blocking).collect();
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await.map_err(|e| check_failed(check, &e))?);
    }
    Ok(results)
}

/// The keyword hits of each line, under the policy's keyword libraries. Libraries that cannot
/// be read fail the request: a block list must not silently stop applying.
async fn match_keywords(
    state: &AppState,
    owner: AccountId,
    policy: &Policy,
    lines: Vec<TextLine>,
) -> Result<Vec<ReadLine>, ApiError> {
    let (matcher, repository, only) =
        (state.keyword_matcher.clone(), state.keywords.clone(), policy.keyword_libs.clone());
    tokio::task::spawn_blocking(move || {
        matcher.refresh(repository.as_ref()).map_err(|e| check_failed("keyword_libraries", &e))?;
        Ok(lines
            .into_iter()
            .map(|line| ReadLine { keywords: matcher.find(owner, only.as_deref(), &line.text), line })
            .collect())
    })
    .await
    .map_err(|e| check_failed("keyword_libraries", &e))?
}

/// The QR codes and barcodes of every frame when the policy looks for them (`None`
/// otherwise); the same value in several frames once. Corners are in the original image's
/// pixels.
async fn find_codes(decoded: &Arc<Decoded>, wanted: bool) -> Result<Option<Vec<FoundCode>>, ApiError> {
    if !wanted {
        return Ok(None);
    }
    let scale = frame_scale(decoded) as f32;
    let mut codes: Vec<FoundCode> = Vec::new();
    for code in per_frame(decoded, "codes", media::codes::find_codes).await?.into_iter().flatten() {
        if !codes.iter().any(|c| c.value == code.value) {
            codes.push(FoundCode {
                qr: code.is_qr(),
                corners: code.points.iter().map(|p| p.map(|v| v * scale)).collect(),
                format: code.format,
                value: code.value,
            });
        }
    }
    Ok(Some(codes))
}

/// Stores a result in the history (see [`store_record`]); a result that cannot be serialised
/// is an error, never stored empty.
#[allow(clippy::too_many_arguments)]
async fn record(
    state: &AppState,
    account: &Account,
    request_id: &str,
    origin: Origin,
    service: Service,
    url: &str,
    request: &ImageModerationRequest,
    response: &ImageModerationResponse,
    verdict: &Verdict,
    looks: Option<Looks>,
) -> Result<(), ApiError> {
    let Looks { thumbnail, hashes, observations } = looks.unwrap_or_default();
    let serialised = serde_json::to_string(response).map_err(|e| {
        tracing::error!(error = %e, "a result could not be serialised");
        ApiError::new(Code::InternalError)
    })?;
    let record = Record {
        request_id: request_id.to_string(),
        owner: account.owner(),
        account: account.id,
        created_at: engine::stamp::now(),
        origin,
        service,
        biz_type: response.biz_type.clone(),
        data_id: response.data_id.clone(),
        file_md5: response.file_md5.clone(),
        file_url: url.to_string(),
        user_id: request.user.as_ref().and_then(|u| u.user_id.clone()).unwrap_or_default(),
        device_id: request.device.as_ref().and_then(|d| d.device_id.clone()).unwrap_or_default(),
        context: answer::risk_context(request),
        suggestion: verdict.answer.suggestion,
        label: verdict.answer.label,
        sub_label: verdict.answer.sub_label.clone(),
        score: verdict.answer.score,
        flagged: verdict.flagged.clone(),
        text: verdict.text(),
        hits: verdict.hits.clone(),
        response: serialised,
        thumbnail,
        hashes,
        observations,
        correction: None,
    };
    store_record(state, record).await;
    Ok(())
}

/// Writes a record to the history. The answer stands even if it cannot be written (the work
/// was done; the failure is logged and counted).
pub(crate) async fn store_record(state: &AppState, record: Record) {
    let history = state.history.clone();
    if let Err(e) = actions::blocking(move || history.record(&record)).await {
        metrics::counter!("ims_history_write_failures_total").increment(1);
        tracing::error!(code = e.code.as_str(), "the result could not be recorded");
    }
}

/// What the history and the libraries keep of an image: its PDQ hashes, a thumbnail, and (once
/// the image is examined) what the detectors reported.
#[derive(Default)]
struct Looks {
    hashes: Vec<Hash256>,
    thumbnail: Option<Vec<u8>>,
    observations: Option<Observations>,
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
        Looks { hashes, thumbnail: thumbnail(&decoded, side), observations: None }
    })
    .await
    .map_err(|e| check_failed("image_libraries", &e))
}

/// The history's thumbnail of an image: its first frame, `side` pixels on its longer side
/// (`history.thumbnail_side`; 0 keeps none).
pub(crate) fn thumbnail(decoded: &Decoded, side: u32) -> Option<Vec<u8>> {
    (side > 0).then(|| media::jpeg::thumbnail(&decoded.frames[0].image, side).ok()).flatten()
}

/// The account's library samples the image matches, under the policy's libraries; `None` when
/// no library applies. Libraries that cannot be read fail the request.
async fn match_libraries(
    state: &AppState,
    owner: AccountId,
    policy: &Policy,
    hashes: &[Hash256],
) -> Result<Option<Vec<LibraryMatch>>, ApiError> {
    let (matcher, libraries) = (state.matcher.clone(), state.libraries.clone());
    let (only, hashes) = (policy.image_libs.clone(), hashes.to_vec());
    tokio::task::spawn_blocking(move || {
        matcher.refresh(libraries.as_ref()).map_err(|e| check_failed("image_libraries", &e))?;
        Ok(matcher.applies(owner, only.as_deref()).then(|| matcher.find(owner, only.as_deref(), &hashes)))
    })
    .await
    .map_err(|e| check_failed("image_libraries", &e))?
}

/// Frames are reduced for decoding; boxes are reported in the original's pixels (the longer
/// sides compared, as EXIF orientation may have swapped width and height).
pub(crate) fn frame_scale(decoded: &Decoded) -> f64 {
    let first = &decoded.frames[0].image;
    decoded.probe.width.max(decoded.probe.height) as f64 / f64::from(first.width().max(first.height()).max(1))
}

/// Runs the models on every view of every frame ([`media::views`]: the content without its
/// uniform border, the windows of a long frame, the parts of a collage), all in parallel on the
/// blocking pool (the models' queues batch them); a likely part only when a glance finds it
/// suggestive. Regions and body parts are in the original image's pixels.
async fn analyse(
    state: &AppState,
    decoded: &Arc<Decoded>,
    deadline: Option<Instant>,
) -> Result<Vec<(Place, Evidence)>, ApiError> {
    let scale = frame_scale(decoded);
    // The windows of all frames together are bounded, not each frame's.
    let windows_per_frame = (views::MAX_WINDOWS / decoded.frames.len().max(1)).max(2);
    let looks: Vec<(usize, View)> = decoded
        .frames
        .iter()
        .enumerate()
        .flat_map(|(i, frame)| views::views(&frame.image, windows_per_frame).into_iter().map(move |v| (i, v)))
        .collect();
    let jobs = looks.iter().map(|&(i, view)| {
        let (analyzer, decoded) = (state.analyzer.clone(), decoded.clone());
        move || {
            let image = &decoded.frames[i].image;
            if view.window == Window::whole(image) {
                return analyzer.analyse(image, scale, deadline).map(Some);
            }
            let crop = view.window.crop(image);
            if view.screened {
                let suggestive = analyzer.glance(&crop, deadline)?.suggestive();
                metrics::counter!("ims_glances_total", "outcome" => if suggestive { "examined" } else { "dropped" })
                    .increment(1);
                if !suggestive {
                    return Ok(None);
                }
            }
            analyzer.analyse(&crop, scale, deadline).map(Some)
        }
    });
    let results = in_parallel("models", jobs).await?;
    let mut seen = Vec::with_capacity(results.len());
    for (result, (i, view)) in results.into_iter().zip(looks) {
        let Some(mut evidence) = result.api()? else { continue };
        let window = view.window;
        let original = |v: u32| (f64::from(v) * scale).round() as u32;
        let region = Region {
            x: original(window.x),
            y: original(window.y),
            width: original(window.width),
            height: original(window.height),
        };
        let frame = &decoded.frames[i];
        let place = Place { frame: frame.index, region, dark_backdrop: frame.dark_backdrop, turned: 0 };
        in_the_original(&mut evidence, &place);
        seen.push((place, evidence));
    }
    Ok(seen)
}

/// Examines again, turned a quarter either way, the views whose verdict is in doubt
/// ([`verdict::worth_turning`]), adding what the models saw to `views`.
async fn examine_turned(
    state: &AppState,
    policy: &Policy,
    decoded: &Arc<Decoded>,
    views: &mut Vec<(Place, Evidence)>,
    deadline: Option<Instant>,
) -> Result<(), ApiError> {
    let scale = frame_scale(decoded);
    let turns: Vec<Place> = verdict::worth_turning(policy, views)
        .into_iter()
        .flat_map(|i| [90, 270].map(|turned| Place { turned, ..views[i].0 }))
        .collect();
    let jobs = turns.iter().map(|&place| {
        let (analyzer, decoded) = (state.analyzer.clone(), decoded.clone());
        move || {
            let frame =
                decoded.frames.iter().find(|f| f.index == place.frame && f.dark_backdrop == place.dark_backdrop);
            let Some(frame) = frame else { return Ok(None) };
            let working = |v: u32| (f64::from(v) / scale).round() as u32;
            let (x, y) = (working(place.region.x), working(place.region.y));
            let (width, height) = (frame.image.width().saturating_sub(x), frame.image.height().saturating_sub(y));
            let window = Window {
                x,
                y,
                width: working(place.region.width).min(width).max(1),
                height: working(place.region.height).min(height).max(1),
            };
            let crop = window.crop(&frame.image);
            let turned =
                if place.turned == 90 { image::imageops::rotate90(&crop) } else { image::imageops::rotate270(&crop) };
            analyzer.analyse(&turned, scale, deadline).map(Some)
        }
    });
    for (result, place) in in_parallel("models", jobs).await?.into_iter().zip(turns) {
        let Some(mut evidence) = result.api()? else { continue };
        in_the_original(&mut evidence, &place);
        views.push((place, evidence));
    }
    Ok(())
}

/// Moves the body parts the models found in a view (in the view's pixels, scaled to the
/// original's, and turned as the view was) to their place in the original image.
fn in_the_original(evidence: &mut Evidence, place: &Place) {
    let Region { x, y, width, height } = place.region;
    for part in evidence.nudenet.iter_mut().flatten() {
        let [left, top, w, h] = part.bbox;
        // A view turned 90 degrees clockwise has the original's left side on top; 270, at the
        // bottom.
        let [left, top, w, h] = match place.turned {
            90 => [top, height.saturating_sub(left + w), h, w],
            270 => [width.saturating_sub(top + h), left, h, w],
            _ => [left, top, w, h],
        };
        part.bbox = [x + left, y + top, w, h];
    }
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
        Ok(Ok(result)) => result.map_err(|e| ImageError(e, source).api_error()),
        Ok(Err(_)) => Err(ApiError::new(Code::InternalError)),
        Err(_) => Err(crate::error::decode_timeout(seconds)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{picture, state, state_with, FakeModels};
    use crate::ServerSettings;
    use inference::InferenceError;

    fn request(params: serde_json::Value) -> ImageModerationRequest {
        serde_json::from_value(params).unwrap()
    }

    /// A synchronous call's admission, with the default deadline.
    fn soon() -> Admission {
        Admission::Now { deadline: Instant::now() + Duration::from_secs(15) }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_one_use_case_composes_records_and_meters() {
        let dir = tempfile::tempdir().unwrap();
        let (state, account) = state(dir.path(), FakeModels::scoring(0.95));
        let asked = request(serde_json::json!({"FileContent": picture(), "DataId": "d1", "User": {"UserId": "u7"}}));
        let r = moderate(&state, &account, "req-1", asked, Origin::Sync, soon()).await.unwrap();
        assert_eq!((r.suggestion.as_str(), r.label.as_str(), r.sub_label.as_str()), ("Block", "Porn", "Pornography"));
        assert_eq!(r.biz_type, "TencentCloudDefault");
        assert!(r.reason.starts_with("porn: 3 of 3 models over the block threshold"), "{}", r.reason);
        assert_eq!(r.ocr_results[0].label, "Normal", "text was read (the fake reader found none)");
        assert!(r.lib_results.is_empty(), "no library applies: no Similar scene");
        let stored = state.history.result(account.id, "req-1").unwrap();
        assert_eq!((stored.suggestion, stored.user_id.as_str()), (engine::decision::Suggestion::Block, "u7"));
        assert!(stored.context.contains("u7"));
        assert_eq!(stored.response, serde_json::to_string(&r).unwrap(), "the answer as given");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn no_text_reader_means_no_ocr_scene() {
        let dir = tempfile::tempdir().unwrap();
        let (state, account) = state(dir.path(), FakeModels { text: None, ..FakeModels::scoring(0.01) });
        let r = moderate(
            &state,
            &account,
            "req-2",
            request(serde_json::json!({"FileContent": picture()})),
            Origin::Sync,
            soon(),
        )
        .await
        .unwrap();
        assert_eq!(r.suggestion, "Pass");
        assert!(r.ocr_results.is_empty(), "nothing read the text, so nothing claims it was clean");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn models_that_fail_or_are_full_fail_the_request() {
        let dir = tempfile::tempdir().unwrap();
        for (error, code) in [
            (InferenceError::Overloaded, Code::RequestLimitExceeded),
            (InferenceError::Expired, Code::FailedOperationTimeout),
            (InferenceError::Run("boom".into()), Code::ResourceUnavailableModelCallFailed),
        ] {
            let (state, account) = state(dir.path(), FakeModels { evidence: Err(error), ..FakeModels::scoring(0.0) });
            let asked = request(serde_json::json!({"FileContent": picture()}));
            let e = moderate(&state, &account, "req-3", asked, Origin::Sync, soon()).await.unwrap_err();
            assert_eq!(e.code, code);
            assert!(state.history.result(account.id, "req-3").is_err(), "nothing recorded");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_default_policy_answers_to_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let (state, account) = state(dir.path(), FakeModels::scoring(0.01));
        let named = request(serde_json::json!({"FileContent": picture(), "BizType": "TencentCloudDefault"}));
        let r = moderate(&state, &account, "req-4", named, Origin::Sync, soon()).await.unwrap();
        assert_eq!((r.suggestion.as_str(), r.biz_type.as_str()), ("Pass", "TencentCloudDefault"));
        let unknown = request(serde_json::json!({"FileContent": picture(), "BizType": "nope_policy"}));
        assert_eq!(
            moderate(&state, &account, "req-5", unknown, Origin::Sync, soon()).await.unwrap_err().code,
            Code::ResourceNotFound
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn faces_are_looked_for_when_the_policy_asks_and_the_largest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let face = |side| Face { frame: 0, score: 0.9, bbox: [0, 0, side, side], descriptor: None, age: None };
        let models = FakeModels { faces: Some(vec![face(10), face(30), face(20)]), ..FakeModels::scoring(0.01) };
        let (mut state, account) = state(dir.path(), models);
        state.face_settings = Arc::new(inference::analyzer::FaceSettings { max_per_image: 2, ..Default::default() });
        let plain = moderate(
            &state,
            &account,
            "f1",
            request(serde_json::json!({"FileContent": picture()})),
            Origin::Sync,
            soon(),
        )
        .await
        .unwrap();
        assert!(plain.object_results.iter().all(|o| o.scene != "Face"), "the default policy does not look");
        let policy = Policy { faces: true, ..Policy::named("with_faces").unwrap() };
        state.policies.create_policy(account.owner(), &policy).unwrap();
        let asked = request(serde_json::json!({"FileContent": picture(), "BizType": "with_faces"}));
        let r = moderate(&state, &account, "f2", asked, Origin::Sync, soon()).await.unwrap();
        let scene = r.object_results.iter().find(|o| o.scene == "Face").expect("the Face scene");
        let widths: Vec<f64> = scene.details.iter().map(|d| d.location.width).collect();
        assert_eq!(widths, [30.0, 20.0], "faces.max_per_image, the largest first");
    }

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

    /// Overload on slow fake models (each run 300 ms, one at a time), a 1 s deadline and room
    /// for 4 images: a burst of 5 times that is answered within the deadline, every call with a
    /// verdict, the busy code or the timeout code; then the server is healthy again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_is_answered_within_its_deadline_and_the_server_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let settings = ServerSettings { request_timeout_secs: 1, max_images_in_flight: 4, ..ServerSettings::default() };
        let models = FakeModels { delay: Duration::from_millis(300), ..FakeModels::scoring(0.01) };
        let (state, account) = state_with(dir.path(), models, settings);
        let deadline = Instant::now() + Duration::from_secs(1);
        let calls: Vec<_> = (0..20)
            .map(|i| {
                let (state, account) = (state.clone(), account.clone());
                tokio::spawn(async move {
                    let asked = request(serde_json::json!({"FileContent": picture()}));
                    let admission = Admission::Now { deadline };
                    let answer =
                        moderate(&state, &account, &format!("burst-{i}"), asked, Origin::Sync, admission).await;
                    (answer.map(|r| r.suggestion).map_err(|e| e.code), Instant::now())
                })
            })
            .collect();
        let mut outcomes = std::collections::BTreeMap::new();
        for call in calls {
            let (outcome, answered) = call.await.unwrap();
            assert!(answered <= deadline + Duration::from_millis(100), "answered {:?} late", answered - deadline);
            *outcomes.entry(format!("{outcome:?}")).or_insert(0) += 1;
        }
        let count = |key: &str| outcomes.get(key).copied().unwrap_or(0);
        assert_eq!(count("Err(RequestLimitExceeded)"), 16, "all beyond the bound refused at once: {outcomes:?}");
        assert_eq!(count("Ok(\"Pass\")") + count("Err(FailedOperationTimeout)"), 4, "{outcomes:?}");
        assert!(count("Err(FailedOperationTimeout)") >= 1, "2 runs of 300 ms each for 4 images do not fit in 1 s");
        assert_eq!(state.in_flight.available_permits(), 4, "every permit back");
        // Work past its deadline was dropped, not run: a new call is answered in time.
        let asked = request(serde_json::json!({"FileContent": picture()}));
        let r = moderate(&state, &account, "after", asked, Origin::Sync, soon()).await.unwrap();
        assert_eq!(r.suggestion, "Pass");
    }
}
