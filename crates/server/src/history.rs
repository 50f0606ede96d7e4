//! The result history actions, in the style of the 2020-07-13 `DescribeImsList` and
//! `DescribeImageStat`, and `CreateImsCorrection`: an operator marks a result wrong and may file
//! the image in a library, so the same image is decided right next time.

use crate::actions::{self, fields, parse, Context};
use crate::error::ErrorCode;
use crate::libraries::parse_name;
use engine::decision::{Label, Suggestion};
use engine::history::{Correction, Counts, Filter, HistoryError, HistoryRepository, Record};
use engine::library::LibraryRepository;
use protocol::ApiError;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Largest `PageSize` of `DescribeImsList`.
pub const MAX_PAGE_SIZE: i64 = 100;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FilterInput {
    name: String,
    values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListInput {
    page_index: Option<i64>,
    page_size: Option<i64>,
    #[serde(default)]
    filters: Vec<FilterInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StatInput {
    #[serde(default)]
    filters: Vec<FilterInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CorrectInput {
    content_id: String,
    suggestion: String,
    label: Option<String>,
    #[serde(default)]
    note: String,
    lib_id: Option<String>,
}

fn invalid(reason: impl Into<String>) -> ApiError {
    HistoryError::Invalid(reason.into()).api_error()
}

/// A time as unix seconds or `YYYY-MM-DD[ HH:MM:SS]` (UTC).
fn parse_time(value: &str) -> Result<i64, ApiError> {
    if let Ok(seconds) = value.parse::<i64>() {
        return Ok(seconds);
    }
    let with_time = if value.len() == 10 { format!("{value} 00:00:00") } else { value.to_string() };
    chrono::NaiveDateTime::parse_from_str(&with_time, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc().timestamp())
        .map_err(|_| invalid(format!("`{value}` is not a time (unix seconds or YYYY-MM-DD HH:MM:SS)")))
}

/// The filters of the API as a query. Names: `DateRange` [from, to), `BizType`, `Suggestion`,
/// `Label`, `DataId`, `UserId`, `DeviceId`, `Corrected` (true/false), `Service` (one or more
/// of `IMAGE`, `AIGC`, `QUALITY`, `CROP`, `LABEL`, `CAR`, `SEARCH`; without it, moderation results only:
/// `IMAGE` and `AIGC`); each once, each with one value (two for the range).
fn filter_of(inputs: Vec<FilterInput>) -> Result<Filter, ApiError> {
    let mut filter = Filter::moderation();
    let mut seen = std::collections::HashSet::new();
    for FilterInput { name, values } in inputs {
        if !seen.insert(name.clone()) {
            return Err(invalid(format!("the filter {name} is given twice")));
        }
        let one = || match values.as_slice() {
            [value] => Ok(value.clone()),
            _ => Err(invalid(format!("the filter {name} takes exactly one value"))),
        };
        match name.as_str() {
            "DateRange" => {
                let [from, to] = values.as_slice() else {
                    return Err(invalid("DateRange takes two values: from (inclusive) and to (exclusive)"));
                };
                filter.from = Some(parse_time(from)?);
                filter.to = Some(parse_time(to)?);
            }
            "BizType" => filter.biz_type = Some(one()?),
            "Suggestion" => filter.suggestion = Some(parse_name(&one()?, "suggestion")?),
            "Label" => filter.label = Some(parse_name(&one()?, "label")?),
            "DataId" => filter.data_id = Some(one()?),
            "UserId" => filter.user_id = Some(one()?),
            "DeviceId" => filter.device_id = Some(one()?),
            "Corrected" => {
                filter.corrected =
                    Some(one()?.parse().map_err(|_| invalid("Corrected takes true or false".to_string()))?)
            }
            "Service" if values.is_empty() => return Err(invalid("Service takes one or more services")),
            "Service" => filter.services = values.iter().map(|v| parse_name(v, "service")).collect::<Result<_, _>>()?,
            other => {
                return Err(invalid(format!(
                    "unknown filter `{other}` (DateRange, BizType, Suggestion, Label, DataId, UserId, DeviceId, \
                     Corrected, Service)"
                )))
            }
        }
    }
    Ok(filter)
}

async fn with_history<T: Send + 'static>(
    context: &Context,
    work: impl FnOnce(&dyn HistoryRepository) -> Result<T, HistoryError> + Send + 'static,
) -> Result<T, ApiError> {
    let repository: Arc<dyn HistoryRepository> = context.state.history.clone();
    actions::blocking(move || work(repository.as_ref())).await
}

pub(crate) fn time_text(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn detail(r: &Record) -> Value {
    use base64::Engine;
    json!({
        "ContentId": r.request_id,
        "DataId": r.data_id,
        "BizType": r.biz_type,
        "Source": r.origin.as_str(),
        "ModerationTime": time_text(r.created_at),
        "CreatedAt": r.created_at,
        "Suggestion": r.suggestion.as_str(),
        "Label": r.label.as_str(),
        "SubLabel": r.sub_label,
        "Score": r.score,
        "Labels": r.flagged.iter().map(|l| l.as_str()).collect::<Vec<_>>(),
        "FileMD5": r.file_md5,
        "FileUrl": r.file_url,
        "UserId": r.user_id,
        "DeviceId": r.device_id,
        "Context": r.context,
        "Text": r.text,
        "Hits": r.hits,
        "SubUin": r.account.0,
        "Thumbnail": r.thumbnail.as_ref().map(|t| base64::engine::general_purpose::STANDARD.encode(t)).unwrap_or_default(),
        "Result": r.response,
        "Correction": r.correction.as_ref().map(|c| json!({
            "Suggestion": c.suggestion.as_str(), "Label": c.label.as_str(), "Note": c.note,
            "Operator": c.by.0, "CorrectedAt": c.at,
        })),
    })
}

pub async fn list(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: ListInput = parse(params)?;
    let page_index = input.page_index.unwrap_or(1);
    let page_size = input.page_size.unwrap_or(20);
    if page_index < 1 {
        return Err(invalid(format!("PageIndex starts at 1, not {page_index}")));
    }
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(invalid(format!("PageSize must be 1 to {MAX_PAGE_SIZE}, not {page_size}")));
    }
    let filter = filter_of(input.filters)?;
    let owner = context.account.owner();
    let offset = (page_index - 1).saturating_mul(page_size) as u64;
    let (records, total) = with_history(&context, move |r| r.results(owner, &filter, offset, page_size as u64)).await?;
    Ok(fields(json!({ "ImsDetailSet": records.iter().map(detail).collect::<Vec<_>>(), "TotalCount": total })))
}

fn counts(c: &Counts) -> Value {
    json!({ "TotalCount": c.total, "PassCount": c.pass, "SuspectCount": c.review, "EvilCount": c.block })
}

pub async fn stats(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: StatInput = parse(params)?;
    let filter = filter_of(input.filters)?;
    let owner = context.account.owner();
    let stats = with_history(&context, move |r| r.stats(owner, &filter)).await?;
    let trend: Vec<Value> = stats
        .per_day
        .iter()
        .map(|(day, c)| {
            let mut v = counts(c);
            v["Date"] = json!(day);
            v
        })
        .collect();
    let evil: Vec<Value> =
        stats.per_label.iter().map(|(label, n)| json!({ "EvilType": label.as_str(), "Count": n })).collect();
    Ok(fields(json!({ "Overview": counts(&stats.overview), "TrendCount": trend, "EvilCount": evil })))
}

pub async fn correct(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: CorrectInput = parse(params)?;
    let suggestion: Suggestion = parse_name(&input.suggestion, "suggestion")?;
    if input.note.chars().count() > 1000 {
        return Err(invalid("Note has at most 1000 characters"));
    }
    let owner = context.account.owner();
    let id = input.content_id.clone();
    let record = with_history(&context, move |r| r.result(owner, &id)).await?;
    let label = match input.label.as_deref() {
        Some(name) => parse_name(name, "label")?,
        None if suggestion == Suggestion::Pass => Label::Normal,
        None => record.label,
    };
    // Into a library first: a correction that names a library it cannot fill is refused whole.
    let image_id = match input.lib_id {
        Some(lib_id) => {
            let libraries: Arc<dyn LibraryRepository> = context.state.libraries.clone();
            let (name, hashes) = (format!("correction of {}", record.request_id), record.hashes.clone());
            let sample = actions::blocking(move || libraries.add_sample(owner, &lib_id, &name, &hashes)).await?;
            Some(sample.image_id)
        }
        None => None,
    };
    let correction =
        Correction { suggestion, label, note: input.note, by: context.account.id, at: engine::stamp::now() };
    let id = input.content_id;
    with_history(&context, move |r| r.correct(owner, &id, &correction)).await?;
    tracing::info!(account = %context.account.id, content_id = %record.request_id, "result corrected");
    Ok(fields(json!({ "ImageId": image_id.unwrap_or_default() })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, values: &[&str]) -> FilterInput {
        FilterInput { name: name.into(), values: values.iter().map(|v| v.to_string()).collect() }
    }

    #[test]
    fn filters_parse_and_refuse_what_they_do_not_know() {
        let filter = filter_of(vec![
            f("DateRange", &["2026-11-01", "1800000000"]),
            f("Suggestion", &["Block"]),
            f("Label", &["Porn"]),
            f("Corrected", &["false"]),
        ])
        .unwrap();
        assert_eq!(filter.from, Some(1_793_491_200));
        assert_eq!(filter.to, Some(1_800_000_000));
        assert_eq!(filter.suggestion, Some(Suggestion::Block));
        assert_eq!(filter.corrected, Some(false));
        assert!(filter_of(vec![f("Colour", &["red"])]).is_err());
        assert!(filter_of(vec![f("DateRange", &["2026-11-01"])]).is_err());
        assert!(filter_of(vec![f("Label", &["Porn", "Sexy"])]).is_err());
        assert!(filter_of(vec![f("Label", &["Nope"])]).is_err());
        assert!(filter_of(vec![f("BizType", &["a"]), f("BizType", &["b"])]).is_err());
        assert!(filter_of(vec![f("DateRange", &["yesterday", "today"])]).is_err());
    }
}
