//! Policy management actions in the API's own style: `CreateBizConfig`, `ModifyBizConfig`,
//! `DescribeBizConfig`, `DescribeBizConfigs`, `DeleteBizConfig` (defined in
//! crates/protocol/api/ims/extensions.json). A policy belongs to the main account; sub-accounts
//! act on their main account's policies within their grant.

use crate::actions::{self, fields, parse, Context};
use crate::error::{ErrorCode, OrApiError};
use crate::AppState;
use engine::accounts::{Account, AccountId};
use engine::ads::AdSettings;
use engine::decision::Label;
use engine::keywords::KeywordError;
use engine::policy::{self, Policy, PolicyError, Threshold, DEFAULT_BIZ_TYPE};
use protocol::ApiError;
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ThresholdInput {
    label: String,
    model: String,
    review: i64,
    block: i64,
}

/// The settable fields; an absent field keeps its current (or default) value.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BizConfigInput {
    biz_type: String,
    name: Option<String>,
    scenes: Option<Vec<String>>,
    votes: Option<i64>,
    observe_only: Option<bool>,
    thresholds: Option<Vec<ThresholdInput>>,
    image_libs: Option<Vec<String>>,
    ocr: Option<bool>,
    keyword_libs: Option<Vec<String>>,
    ads: Option<AdSettings>,
    faces: Option<bool>,
    objects: Option<bool>,
    face_libs: Option<Vec<String>>,
    minor_age: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BizTypeInput {
    biz_type: String,
}

fn invalid(reason: String) -> ApiError {
    PolicyError::Invalid(reason).api_error()
}

fn label(name: &str) -> Result<Label, ApiError> {
    serde_json::from_value(Value::String(name.into())).map_err(|_| invalid(format!("unknown label `{name}`")))
}

fn points(value: i64, what: &str) -> Result<u8, ApiError> {
    u8::try_from(value)
        .ok()
        .filter(|v| *v <= 100)
        .ok_or_else(|| invalid(format!("{what} must be 0 to 100, not {value}")))
}

impl BizConfigInput {
    fn apply(self, mut policy: Policy) -> Result<Policy, ApiError> {
        if let Some(name) = self.name {
            policy.name = name;
        }
        if let Some(scenes) = self.scenes {
            policy.scenes = scenes.iter().map(|s| label(s)).collect::<Result<_, _>>()?;
        }
        if let Some(votes) = self.votes {
            policy.votes = u8::try_from(votes).map_err(|_| invalid("Votes must be 1, 2 or 3".into()))?;
        }
        if let Some(observe_only) = self.observe_only {
            policy.observe_only = observe_only;
        }
        // Given thresholds replace the policy's threshold for that label and model.
        for t in self.thresholds.unwrap_or_default() {
            let given = Threshold {
                label: label(&t.label)?,
                model: t.model,
                review: points(t.review, "Review")?,
                block: points(t.block, "Block")?,
            };
            match policy.thresholds.iter_mut().find(|o| o.label == given.label && o.model == given.model) {
                Some(existing) => *existing = given,
                None => policy.thresholds.push(given),
            }
        }
        // `["*"]` goes back to every library of the account.
        if let Some(libs) = self.image_libs {
            policy.image_libs = if libs == ["*"] { None } else { Some(libs) };
        }
        if let Some(libs) = self.keyword_libs {
            policy.keyword_libs = if libs == ["*"] { None } else { Some(libs) };
        }
        if let Some(age) = self.minor_age {
            policy.minor_age = u8::try_from(age).map_err(|_| invalid("MinorAge must be 1 to 30".into()))?;
        }
        if let Some(libs) = self.face_libs {
            policy.face_libs = if libs == ["*"] { None } else { Some(libs) };
        }
        if let Some(ocr) = self.ocr {
            policy.ocr = ocr;
        }
        if let Some(faces) = self.faces {
            policy.faces = faces;
        }
        if let Some(objects) = self.objects {
            policy.objects = objects;
        }
        if let Some(ads) = self.ads {
            if ads.suggestion == engine::decision::Suggestion::Pass {
                return Err(invalid("Ads.Suggestion is Review or Block".into()));
            }
            policy.ads = ads;
        }
        policy.validate().api()?;
        Ok(policy)
    }
}

/// Every library a policy links must be one of the account's; a scene must have its models.
async fn check_libraries(state: &AppState, owner: AccountId, policy: &Policy) -> Result<(), ApiError> {
    if policy.teenager() && !state.analyzer.estimates_age() {
        return Err(crate::error::no_age_model());
    }
    if policy.objects && !state.analyzer.detects_objects() {
        return Err(crate::error::no_object_detector());
    }
    let ids = policy.image_libs.clone().unwrap_or_default();
    let libraries = state.libraries.clone();
    actions::blocking(move || ids.iter().try_for_each(|id| libraries.library(owner, id).map(drop))).await?;
    let ids = policy.face_libs.clone().unwrap_or_default();
    let faces = state.faces.clone();
    actions::blocking(move || ids.iter().try_for_each(|id| faces.face_library(owner, id).map(drop))).await?;
    let ids = policy.keyword_libs.clone().unwrap_or_default();
    let keywords = state.keywords.clone();
    let built_in: Vec<String> = state.keyword_matcher.built_in().iter().map(|(l, _)| l.lib_id.clone()).collect();
    actions::blocking(move || {
        let known = keywords.keyword_libraries(owner)?;
        let is_known = |id: &String| built_in.contains(id) || known.iter().any(|l| &l.lib_id == id);
        match ids.iter().find(|id| !is_known(id)) {
            Some(missing) => Err(KeywordError::NotFound(missing.clone())),
            None => Ok(()),
        }
    })
    .await
}

fn one(policy: &Policy) -> Map<String, Value> {
    fields(json!({ "BizConfig": policy }))
}

pub async fn create(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: BizConfigInput = parse(params)?;
    let named = Policy::named(&input_name(&input.biz_type)?).api()?;
    let policy = input.apply(named)?;
    let owner = context.account.owner();
    check_libraries(&context.state, owner, &policy).await?;
    let stored = policy.clone();
    actions::on(&context.state.policies, move |r| r.create_policy(owner, &stored)).await?;
    tracing::info!(account = %context.account.id, biz_type = %policy.biz_type, "policy created");
    Ok(one(&policy))
}

/// The policy name of a management call: never the default's (it is built in).
fn input_name(biz_type: &str) -> Result<String, ApiError> {
    if biz_type.is_empty() {
        return Err(PolicyError::InvalidName.api_error());
    }
    if biz_type == DEFAULT_BIZ_TYPE {
        return Err(PolicyError::Invalid(format!("{DEFAULT_BIZ_TYPE} is built in and cannot be changed")).api_error());
    }
    Ok(biz_type.to_string())
}

pub async fn modify(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let policy = modified(&context.state, &context.account, params).await?;
    let (owner, stored) = (context.account.owner(), policy.clone());
    actions::on(&context.state.policies, move |r| r.update_policy(owner, &stored)).await?;
    tracing::info!(account = %context.account.id, biz_type = %policy.biz_type, "policy modified");
    Ok(one(&policy))
}

/// The policy a `ModifyBizConfig` input (JSON) would make of one of `account`'s, checked but
/// not stored (what the console previews, then saves).
pub async fn modified(state: &AppState, account: &Account, params: Value) -> Result<Policy, ApiError> {
    let input: BizConfigInput = parse(params)?;
    let owner = account.owner();
    let name = input_name(&input.biz_type)?;
    let current =
        actions::on(&state.policies, move |r| r.policy(owner, &name)?.ok_or(PolicyError::NotFound(name))).await?;
    let policy = input.apply(current)?;
    check_libraries(state, owner, &policy).await?;
    Ok(policy)
}

pub async fn describe(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let BizTypeInput { biz_type } = parse(params)?;
    let owner = context.account.owner();
    let policy = actions::on(&context.state.policies, move |r| policy::resolve(r, owner, &biz_type)).await?;
    Ok(one(&policy))
}

pub async fn list(context: Context, _params: Value) -> Result<Map<String, Value>, ApiError> {
    let owner = context.account.owner();
    let policies = actions::on(&context.state.policies, move |r| r.policies(owner)).await?;
    Ok(fields(json!({ "BizConfigs": policies, "TotalCount": policies.len() })))
}

pub async fn delete(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let BizTypeInput { biz_type } = parse(params)?;
    let owner = context.account.owner();
    let name = input_name(&biz_type)?;
    actions::on(&context.state.policies, move |r| r.delete_policy(owner, &name)).await?;
    tracing::info!(account = %context.account.id, %biz_type, "policy deleted");
    Ok(Map::new())
}
