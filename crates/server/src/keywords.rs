//! Keyword library actions, named like the cloud's `cms` ones: `CreateKeywordsLib`,
//! `DescribeKeywordsLibs`, `DeleteKeywordsLib`, `CreateKeywordsSamples`,
//! `DescribeKeywordsSamples`, `DeleteLibSamples` (defined in crates/protocol/api/ims/extensions.json).
//! Changes apply to the next request: the matcher rebuilds when the libraries' version moves.

use crate::actions::{self, fields, parse, Context, LibraryPage};
use crate::error::{ErrorCode, OrApiError};
use crate::libraries::parse_name;
use engine::decision::{Label, Suggestion};
use engine::keywords::{validate_keyword, KeywordError, KeywordRepository};
use protocol::ApiError;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Most keywords one `CreateKeywordsSamples` call adds.
pub const MAX_KEYWORDS_PER_CALL: usize = 1000;
/// Largest page of `DescribeKeywordsSamples`, and most ids one `DeleteLibSamples` takes.
pub const MAX_PAGE: i64 = 1000;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateInput {
    lib_name: String,
    label: String,
    suggestion: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LibIdInput {
    lib_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SampleInput {
    content: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AddInput {
    lib_id: String,
    samples: Vec<SampleInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteInput {
    sample_ids: Vec<String>,
}

fn invalid(reason: impl Into<String>) -> ApiError {
    KeywordError::Invalid(reason.into()).api_error()
}

async fn with_keywords<T: Send + 'static>(
    context: &Context,
    work: impl FnOnce(&dyn KeywordRepository) -> Result<T, KeywordError> + Send + 'static,
) -> Result<T, ApiError> {
    let repository: Arc<dyn KeywordRepository> = context.state.keywords.clone();
    actions::blocking(move || work(repository.as_ref())).await
}

pub async fn create(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: CreateInput = parse(params)?;
    let label: Label = parse_name(&input.label, "label")?;
    let suggestion: Suggestion = parse_name(input.suggestion.as_deref().unwrap_or("Block"), "suggestion")?;
    let owner = context.account.owner();
    let library =
        with_keywords(&context, move |r| r.create_keyword_library(owner, &input.lib_name, label, suggestion)).await?;
    tracing::info!(account = %context.account.id, lib_id = %library.lib_id, "keyword library created");
    Ok(fields(json!({ "LibId": library.lib_id })))
}

pub async fn list(context: Context, _params: Value) -> Result<Map<String, Value>, ApiError> {
    let owner = context.account.owner();
    let libraries = with_keywords(&context, move |r| {
        r.keyword_libraries(owner)?
            .into_iter()
            .map(|l| Ok((r.keywords(owner, &l.lib_id, "", 0, 0)?.1, l)))
            .collect::<Result<Vec<_>, KeywordError>>()
    })
    .await?;
    // The built-in libraries first (read-only: made by the setup from public word lists).
    let built_in = context.state.keyword_matcher.built_in();
    let shown: Vec<Value> = built_in
        .iter()
        .map(|(l, count)| (*count as u64, *l, true))
        .chain(libraries.iter().map(|(count, l)| (*count, l, false)))
        .map(|(count, l, built_in)| {
            json!({
                "LibId": l.lib_id, "LibName": l.lib_name, "Label": l.label.as_str(),
                "Suggestion": l.suggestion.as_str(), "SampleCount": count, "CreatedAt": l.created_at,
                "BuiltIn": built_in,
            })
        })
        .collect();
    Ok(fields(json!({ "Libs": shown, "TotalCount": shown.len() })))
}

pub async fn delete(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let LibIdInput { lib_id } = parse(params)?;
    let owner = context.account.owner();
    with_keywords(&context, move |r| r.delete_keyword_library(owner, &lib_id)).await?;
    Ok(Map::new())
}

pub async fn add(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let AddInput { lib_id, samples } = parse(params)?;
    if samples.is_empty() || samples.len() > MAX_KEYWORDS_PER_CALL {
        return Err(invalid(format!("Samples must hold 1 to {MAX_KEYWORDS_PER_CALL} keywords, not {}", samples.len())));
    }
    let words: Vec<String> = samples.into_iter().map(|s| s.content.trim().to_string()).collect();
    for word in &words {
        validate_keyword(word).api()?;
    }
    let owner = context.account.owner();
    let count = words.len();
    let added = with_keywords(&context, move |r| r.add_keywords(owner, &lib_id, &words)).await?;
    Ok(fields(json!({
        "SampleIds": added.iter().map(|k| k.sample_id.clone()).collect::<Vec<_>>(),
        "Skipped": count - added.len(),
    })))
}

/// `DescribeKeywordsSamples`: a page of a library, with (an extension of ours) only the words
/// that contain `Contains`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SamplesInput {
    #[serde(flatten)]
    page: LibraryPage,
    #[serde(default)]
    contains: String,
}

pub async fn samples(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let SamplesInput { page, contains } = parse(params)?;
    let (offset, limit) = page.bounds(100, MAX_PAGE).map_err(invalid)?;
    let owner = context.account.owner();
    let (entries, total) =
        with_keywords(&context, move |r| r.keywords(owner, &page.lib_id, &contains, offset, limit)).await?;
    Ok(fields(json!({ "Samples": entries, "TotalCount": total })))
}

pub async fn delete_samples(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let DeleteInput { sample_ids } = parse(params)?;
    if sample_ids.is_empty() || sample_ids.len() > MAX_PAGE as usize {
        return Err(invalid(format!("SampleIds must hold 1 to {MAX_PAGE} ids")));
    }
    let owner = context.account.owner();
    let count = with_keywords(&context, move |r| r.delete_keywords(owner, &sample_ids)).await?;
    Ok(fields(json!({ "Count": count })))
}
