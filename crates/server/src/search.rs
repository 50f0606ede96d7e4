//! tiia's image search: `CreateGroup`, `DescribeGroups`, `CreateImage`, `DescribeImages`,
//! `UpdateImage`, `DeleteImages` and `SearchImage`, over `engine::search`. Pictures are filed as
//! the image libraries' samples are (PDQ with crop variants); a search looks the image up, and
//! its mirror image, in the group's index. Only group type 4 (the same picture) is served.
//! `CreateImage` and `SearchImage` read an image: they are metered (service `SEARCH`) and kept
//! in the result history; the others only read or change the groups.

use crate::actions::{self, fields, parse, Context};
use crate::analysis::{answered, Base64Bound, Image, ImageInput};
use crate::error::{ErrorCode, OrApiError};
use crate::{history, libraries, moderation};
use engine::billing::Service;
use engine::library::{Hash256, MIN_QUALITY};
use engine::ratelimit::RateClass;
use engine::search::{
    check_entity_id, check_pic_name, checked_tags, Picture, SearchError, SearchGroup, TagFilter,
    DEFAULT_MATCH_THRESHOLD, SERVED_GROUP_TYPE,
};
use image::RgbImage;
use protocol::{ApiError, Code};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// tiia's bound on `ImageBase64` for image search (its documentation: at most 5 MB).
pub const SEARCH_BASE64: Base64Bound = Base64Bound { max: 5 * 1024 * 1024, code: Code::LimitExceededTooLargeFileError };
/// `Limit` when none is given, and its largest value (`SearchImage`, `DescribeGroups`).
const DEFAULT_LIMIT: i64 = 10;
const MAX_LIMIT: i64 = 100;

/// `Offset` (from 0) and `Limit` (1 to 100, 10 when absent), as tiia checks them.
fn page(offset: Option<i64>, limit: Option<i64>) -> Result<(usize, usize), ApiError> {
    let (offset, limit) = (offset.unwrap_or(0), limit.unwrap_or(DEFAULT_LIMIT));
    if offset < 0 || !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::with_message(
            Code::InvalidParameterValueLimitExceed,
            format!("Offset must be 0 or more and Limit 1 to {MAX_LIMIT} (Offset {offset}, Limit {limit})."),
            format!("Offset 不能为负，Limit 取值 1 到 {MAX_LIMIT}（Offset {offset}，Limit {limit}）。"),
        ));
    }
    Ok((offset as usize, limit as usize))
}

/// The group of the call's account, or `ImageGroupIdNotExist`.
async fn group_of(context: &Context, group_id: &str) -> Result<SearchGroup, ApiError> {
    let (owner, id) = (context.account.owner(), group_id.to_string());
    actions::on(&context.state.groups, move |r| r.group(owner, &id)).await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateGroupInput {
    group_id: String,
    group_name: String,
    max_capacity: u64,
    brief: Option<String>,
    max_qps: Option<u64>,
    group_type: Option<u64>,
}

/// `CreateGroup`: a group of type 4; the others (products, patterns, the old general search)
/// mean similarity, which PDQ does not tell, and are refused saying so.
pub async fn create_group(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: CreateGroupInput = parse(params)?;
    let group_type = input.group_type.unwrap_or(SERVED_GROUP_TYPE);
    if group_type != SERVED_GROUP_TYPE {
        return Err(ApiError::with_message(
            Code::UnsupportedOperation,
            format!(
                "GroupType {group_type} is not served: only {SERVED_GROUP_TYPE} (the same picture, found cropped, \
                 mirrored, recoloured or watermarked); product, pattern and similar-image search are not."
            ),
            format!("不支持 GroupType {group_type}：仅支持 {SERVED_GROUP_TYPE}（相同原图搜索，支持裁剪、翻转、调色、加水印）。"),
        ));
    }
    let owner = context.account.owner();
    let group = SearchGroup::new(
        owner,
        &input.group_id,
        &input.group_name,
        input.brief.as_deref().unwrap_or_default(),
        input.max_capacity,
        input.max_qps.unwrap_or(0),
    )
    .api()?;
    actions::on(&context.state.groups, move |r| r.create_group(&group)).await?;
    tracing::info!(account = %context.account.id, group_id = %input.group_id, "image-search group created");
    Ok(Map::new())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeGroupsInput {
    offset: Option<i64>,
    limit: Option<i64>,
    group_id: Option<String>,
}

/// `DescribeGroups`: a page of the account's groups, oldest first, or the one `GroupId` names.
pub async fn describe_groups(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: DescribeGroupsInput = parse(params)?;
    let (offset, limit) = page(input.offset, input.limit)?;
    let owner = context.account.owner();
    let group_id = input.group_id.filter(|id| !id.is_empty());
    let groups =
        actions::on(&context.state.groups, move |r| r.groups(owner, group_id.as_deref(), offset as u64, limit as u64))
            .await?;
    let shown: Vec<Value> = groups
        .iter()
        .map(|(g, count)| {
            json!({
                "GroupId": g.group_id, "GroupName": g.group_name, "Brief": g.brief,
                "MaxCapacity": g.max_capacity, "MaxQps": g.max_qps, "GroupType": g.group_type, "PicCount": count,
                "CreateTime": history::time_text(g.created_at), "UpdateTime": history::time_text(g.updated_at),
            })
        })
        .collect();
    Ok(fields(json!({ "Groups": shown })))
}

/// `ImageRect`: the part of the image to file or to search with, in the original's pixels.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "PascalCase")]
struct Rect {
    x: i64,
    y: i64,
    width: i64,
    height: i64,
}

/// The window of the first frame `rect` names (in the original's pixels, within the image, not
/// empty), in the frame's pixels; `None`, the whole frame, when there is no `rect`.
fn window(image: &Image, rect: Option<Rect>) -> Result<Option<[u32; 4]>, ApiError> {
    let Some(r) = rect else { return Ok(None) };
    let (width, height) = (image.decoded.probe.width as i64, image.decoded.probe.height as i64);
    let (right, bottom) = (r.x.saturating_add(r.width), r.y.saturating_add(r.height));
    if r.x < 0 || r.y < 0 || r.width <= 0 || r.height <= 0 || right > width || bottom > height {
        return Err(ApiError::with_message(
            Code::InvalidParameterValueInvalidParameter,
            format!("ImageRect must lie within the image's {width} x {height} and not be empty."),
            format!("ImageRect 必须位于图片 {width} x {height} 之内且不能为空。"),
        ));
    }
    // Frames may be smaller than the original: the rectangle is scaled to the frame's pixels.
    let frame = &image.decoded.frames[0].image;
    let to_frame = 1.0 / moderation::frame_scale(&image.decoded);
    let scaled = |v: i64| (v as f64 * to_frame) as u32;
    let (x, y) = (scaled(r.x).min(frame.width() - 1), scaled(r.y).min(frame.height() - 1));
    let (w, h) = (scaled(r.width).clamp(1, frame.width() - x), scaled(r.height).clamp(1, frame.height() - y));
    Ok(Some([x, y, w, h]))
}

/// Hashes the image's first frame (the window `rect` names) on a blocking thread with `hash`;
/// none usable is `ImageUnQualified`.
async fn hashed(
    image: &Image,
    rect: Option<Rect>,
    hash: fn(&RgbImage) -> Vec<Hash256>,
) -> Result<Vec<Hash256>, ApiError> {
    let (window, decoded) = (window(image, rect)?, image.decoded.clone());
    let hashes = tokio::task::spawn_blocking(move || {
        let frame = &decoded.frames[0].image;
        match window {
            None => hash(frame),
            Some([x, y, w, h]) => hash(&image::imageops::crop_imm(frame, x, y, w, h).to_image()),
        }
    })
    .await
    .map_err(|_| ApiError::new(Code::InternalError))?;
    if hashes.is_empty() {
        return Err(ApiError::with_message(
            Code::FailedOperationImageUnQualified,
            format!("The image has too little detail to be told apart (PDQ quality under {MIN_QUALITY})."),
            format!("图片细节过少，无法识别（PDQ 质量低于 {MIN_QUALITY}）。"),
        ));
    }
    Ok(hashes)
}

/// What a search looks an image up with: its hashes and those of its mirror image, so that a
/// flipped copy is found (the pictures are filed once, unflipped).
fn search_hashes(image: &RgbImage) -> Vec<Hash256> {
    let mirrored = image::imageops::flip_horizontal(image);
    [image, &mirrored]
        .into_iter()
        .flat_map(|i| media::pdq::query_hashes(i, MIN_QUALITY))
        .map(|p| Hash256::from_bytes(&p.bits))
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateImageInput {
    group_id: String,
    entity_id: String,
    pic_name: String,
    custom_content: Option<String>,
    tags: Option<String>,
    image_rect: Option<Rect>,
    #[serde(flatten)]
    image: ImageInput,
}

/// `CreateImage`: files a picture under its hashes in the group. `EnableDetect` and
/// `CategoryId` are for product search (not served) and change nothing; `Object` is null.
pub async fn create_image(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: CreateImageInput = parse(params)?;
    let owner = context.account.owner();
    // Every field is checked before the image is fetched and hashed.
    let mut picture = Picture::new(
        owner,
        &input.group_id,
        &input.entity_id,
        &input.pic_name,
        input.custom_content.as_deref().unwrap_or_default(),
        input.tags.as_deref().unwrap_or_default(),
        Vec::new(),
    )
    .api()?;
    group_of(&context, &input.group_id).await?;
    let image = input.image.read(&context, &SEARCH_BASE64).await?;
    picture.hashes = hashed(&image, input.image_rect, libraries::sample_hashes).await?;
    let filed = picture.clone();
    actions::on(&context.state.groups, move |r| r.add_picture(&filed)).await?;
    tracing::info!(account = %context.account.id, group_id = %picture.group_id, hashes = picture.hashes.len(), "picture filed");
    answered(&context, Service::Search, &image, fields(json!({ "Object": null }))).await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SearchImageInput {
    group_id: String,
    limit: Option<i64>,
    offset: Option<i64>,
    match_threshold: Option<i64>,
    filter: Option<String>,
    image_rect: Option<Rect>,
    #[serde(flatten)]
    image: ImageInput,
}

fn image_info(picture: &Picture, score: u8) -> Value {
    json!({
        "EntityId": picture.entity_id, "PicName": picture.pic_name, "CustomContent": picture.custom_content,
        "Tags": picture.tags, "Score": score,
    })
}

/// `SearchImage`: the group's pictures of the same image, the highest `Score` first (100 for
/// the same hash, 51 at 31 bits apart, see `engine::search::score`), above `MatchThreshold`
/// (50 when 0 or absent: anything closer than 32 bits; a lower threshold finds no more, as PDQ
/// hashes further apart are of different pictures) and meeting `Filter`, paged by `Offset`
/// and `Limit`. The group's `MaxQps` limits these calls on top of the account's rate.
pub async fn search_image(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: SearchImageInput = parse(params)?;
    let (offset, limit) = page(input.offset, input.limit)?;
    let threshold = match input.match_threshold.unwrap_or(0) {
        0 => DEFAULT_MATCH_THRESHOLD,
        t @ 1..=100 => t as u8,
        t => {
            return Err(ApiError::with_message(
                Code::InvalidParameterValueInvalidParameter,
                format!("MatchThreshold must be 0 to 100, not {t}."),
                format!("MatchThreshold 取值 0 到 100，而非 {t}。"),
            ))
        }
    };
    let filter = input.filter.as_deref().filter(|f| !f.trim().is_empty()).map(TagFilter::parse).transpose().api()?;
    let group = group_of(&context, &input.group_id).await?;
    let (limiter, owner) = (context.state.limiter.clone(), context.account.owner());
    let (class, max_qps) = (RateClass::Group(group.group_id.clone()), group.max_qps as u32);
    if !actions::blocking(move || limiter.admit(owner, class, max_qps)).await? {
        return Err(ApiError::with_message(
            Code::RequestLimitExceeded,
            format!("The group `{}` takes {max_qps} searches per second (its MaxQps); retry later.", group.group_id),
            format!("图库 `{}` 的访问上限为每秒 {max_qps} 次（MaxQps），请稍后重试。", group.group_id),
        ));
    }
    let image = input.image.read(&context, &SEARCH_BASE64).await?;
    let hashes = hashed(&image, input.image_rect, search_hashes).await?;
    let (index, repository, group_id) =
        (context.state.group_index.clone(), context.state.groups.clone(), group.group_id);
    let found = actions::blocking(move || {
        index.refresh(repository.as_ref())?;
        let scored: Vec<(i64, u8)> =
            index.search(owner, &group_id, &hashes).into_iter().filter(|(_, score)| *score > threshold).collect();
        let seqs: Vec<i64> = scored.iter().map(|(seq, _)| *seq).collect();
        let mut pictures: HashMap<i64, Picture> =
            repository.pictures_by_seq(owner, &seqs)?.into_iter().map(|p| (p.seq, p)).collect();
        // In the index's order (the highest score first); a row removed meanwhile is left out.
        Ok::<_, SearchError>(
            scored
                .into_iter()
                .filter_map(|(seq, score)| Some((pictures.remove(&seq)?, score)))
                .filter(|(p, _)| filter.as_ref().is_none_or(|f| f.accepts(&p.tags)))
                .skip(offset)
                .take(limit)
                .collect::<Vec<_>>(),
        )
    })
    .await?;
    let infos: Vec<Value> = found.iter().map(|(p, score)| image_info(p, *score)).collect();
    let answer = fields(json!({ "Count": infos.len(), "ImageInfos": infos, "Object": null }));
    answered(&context, Service::Search, &image, answer).await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PicturesInput {
    group_id: String,
    entity_id: String,
    pic_name: Option<String>,
    tags: Option<String>,
}

impl PicturesInput {
    /// The entity and picture named, checked; a `PicName` empty is none (the whole entity).
    fn checked(&self) -> Result<Option<String>, ApiError> {
        check_entity_id(&self.entity_id).api()?;
        let pic_name = self.pic_name.clone().filter(|n| !n.is_empty());
        pic_name.as_deref().map(check_pic_name).transpose().api()?;
        Ok(pic_name)
    }
}

/// `DescribeImages`: an entity's pictures (the one `PicName` names), oldest first.
pub async fn describe_images(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: PicturesInput = parse(params)?;
    let pic_name = input.checked()?;
    let (owner, group_id, entity_id) = (context.account.owner(), input.group_id.clone(), input.entity_id.clone());
    let pictures =
        actions::on(&context.state.groups, move |r| r.pictures(owner, &group_id, &entity_id, pic_name.as_deref()))
            .await?;
    if pictures.is_empty() {
        return Err(SearchError::PictureNotFound(input.entity_id).api_error());
    }
    let infos: Vec<Value> = pictures.iter().map(|p| image_info(p, 0)).collect();
    Ok(fields(json!({ "GroupId": input.group_id, "EntityId": input.entity_id, "ImageInfos": infos })))
}

/// `DeleteImages`: one picture, or every picture of the entity when no `PicName` is given.
pub async fn delete_images(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: PicturesInput = parse(params)?;
    let pic_name = input.checked()?;
    let owner = context.account.owner();
    let (group_id, entity_id) = (input.group_id.clone(), input.entity_id.clone());
    let removed = actions::on(&context.state.groups, move |r| {
        r.delete_pictures(owner, &group_id, &entity_id, pic_name.as_deref())
    })
    .await?;
    tracing::info!(account = %context.account.id, group_id = %input.group_id, removed, "pictures removed");
    Ok(Map::new())
}

/// `UpdateImage`: replaces the `Tags` of one picture, or of the entity's every picture when no
/// `PicName` is given; no `Tags` clears them.
pub async fn update_image(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: PicturesInput = parse(params)?;
    let pic_name = input.checked()?;
    let tags = checked_tags(input.tags.as_deref().unwrap_or_default()).api()?;
    let owner = context.account.owner();
    let (group_id, entity_id) = (input.group_id, input.entity_id);
    actions::on(&context.state.groups, move |r| {
        r.update_tags(owner, &group_id, &entity_id, pic_name.as_deref(), &tags)
    })
    .await?;
    Ok(Map::new())
}
