//! The table of actions and the path every API request takes through the server.

use crate::call::{self, Call, Params};
use crate::error::{ErrorCode, OrApiError};
use crate::{
    analysis, auth, billing, envelope, error, faces, history, keywords, libraries, moderation, policies, search, tasks,
    AppState,
};
use axum::extract::Request;
use axum::response::Response;
use engine::accounts::{Account, Operation};
use engine::history::Origin;
use engine::ratelimit::RateClass;
use protocol::schema::{self, ApiDefinition, Version};
use protocol::{ApiError, Code};
use serde_json::{Map, Value};
use std::time::Instant;
use tracing::Instrument;

/// Every action this server implements. An action must also exist in the definitions of the
/// version called, so a 2020-07-13 call cannot reach a 2020-12-29-only action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ImageModeration,
    CreateImageModerationAsyncTask,
    CreateBizConfig,
    ModifyBizConfig,
    DescribeBizConfig,
    DescribeBizConfigs,
    DeleteBizConfig,
    CreateImageLib,
    DescribeImageLibs,
    DeleteImageLib,
    CreateImageSamples,
    DescribeImageSamples,
    DeleteImageSamples,
    CreateFaceLib,
    DescribeFaceLibs,
    DeleteFaceLib,
    CreateFaceSamples,
    DescribeFaceSamples,
    DeleteFaceSamples,
    DescribeImsList,
    DescribeImageStat,
    CreateImsCorrection,
    CreateKeywordsLib,
    DescribeKeywordsLibs,
    DeleteKeywordsLib,
    CreateKeywordsSamples,
    DescribeKeywordsSamples,
    DeleteLibSamples,
    DescribePriceLists,
    ActivateService,
    DescribeAccountBalance,
    CreatePackage,
    DescribePackages,
    RefundPackage,
    DescribeUsage,
    DescribeBills,
    AssessQuality,
    CropImage,
    DetectLabel,
    RecognizeCar,
    CreateGroup,
    DescribeGroups,
    CreateImage,
    DescribeImages,
    UpdateImage,
    DeleteImages,
    SearchImage,
}

use Operation::{Read, Write};

/// Each action's name and what a sub-account's grant must allow for it. Moderating records a
/// result and is billed: read-only grants may not.
const TABLE: &[(Action, &str, Operation)] = &[
    (Action::ImageModeration, "ImageModeration", Write),
    (Action::CreateImageModerationAsyncTask, "CreateImageModerationAsyncTask", Write),
    (Action::CreateBizConfig, "CreateBizConfig", Write),
    (Action::ModifyBizConfig, "ModifyBizConfig", Write),
    (Action::DescribeBizConfig, "DescribeBizConfig", Read),
    (Action::DescribeBizConfigs, "DescribeBizConfigs", Read),
    (Action::DeleteBizConfig, "DeleteBizConfig", Write),
    (Action::CreateImageLib, "CreateImageLib", Write),
    (Action::DescribeImageLibs, "DescribeImageLibs", Read),
    (Action::DeleteImageLib, "DeleteImageLib", Write),
    (Action::CreateImageSamples, "CreateImageSamples", Write),
    (Action::DescribeImageSamples, "DescribeImageSamples", Read),
    (Action::DeleteImageSamples, "DeleteImageSamples", Write),
    (Action::CreateFaceLib, "CreateFaceLib", Write),
    (Action::DescribeFaceLibs, "DescribeFaceLibs", Read),
    (Action::DeleteFaceLib, "DeleteFaceLib", Write),
    (Action::CreateFaceSamples, "CreateFaceSamples", Write),
    (Action::DescribeFaceSamples, "DescribeFaceSamples", Read),
    (Action::DeleteFaceSamples, "DeleteFaceSamples", Write),
    (Action::DescribeImsList, "DescribeImsList", Read),
    (Action::DescribeImageStat, "DescribeImageStat", Read),
    (Action::CreateImsCorrection, "CreateImsCorrection", Write),
    (Action::CreateKeywordsLib, "CreateKeywordsLib", Write),
    (Action::DescribeKeywordsLibs, "DescribeKeywordsLibs", Read),
    (Action::DeleteKeywordsLib, "DeleteKeywordsLib", Write),
    (Action::CreateKeywordsSamples, "CreateKeywordsSamples", Write),
    (Action::DescribeKeywordsSamples, "DescribeKeywordsSamples", Read),
    (Action::DeleteLibSamples, "DeleteLibSamples", Write),
    (Action::DescribePriceLists, "DescribePriceLists", Read),
    (Action::ActivateService, "ActivateService", Write),
    (Action::DescribeAccountBalance, "DescribeAccountBalance", Read),
    (Action::CreatePackage, "CreatePackage", Write),
    (Action::DescribePackages, "DescribePackages", Read),
    (Action::RefundPackage, "RefundPackage", Write),
    (Action::DescribeUsage, "DescribeUsage", Read),
    (Action::DescribeBills, "DescribeBills", Read),
    // tiia, image analysis: billed per call, as moderation is.
    (Action::AssessQuality, "AssessQuality", Write),
    (Action::CropImage, "CropImage", Write),
    (Action::DetectLabel, "DetectLabel", Write),
    (Action::RecognizeCar, "RecognizeCar", Write),
    // tiia, image search: filing and searching read an image and are billed.
    (Action::CreateGroup, "CreateGroup", Write),
    (Action::DescribeGroups, "DescribeGroups", Read),
    (Action::CreateImage, "CreateImage", Write),
    (Action::DescribeImages, "DescribeImages", Read),
    (Action::UpdateImage, "UpdateImage", Write),
    (Action::DeleteImages, "DeleteImages", Write),
    (Action::SearchImage, "SearchImage", Write),
];

impl Action {
    fn entry(self) -> &'static (Action, &'static str, Operation) {
        TABLE.iter().find(|(a, ..)| *a == self).expect("every action is in the table")
    }

    pub fn name(self) -> &'static str {
        self.entry().1
    }

    fn lookup(name: &str) -> Option<Action> {
        TABLE.iter().find(|(_, n, _)| *n == name).map(|(a, ..)| *a)
    }

    pub fn operation(self) -> Operation {
        self.entry().2
    }

    /// Whether the action moderates images, which only an account in service may do.
    pub fn billed(self) -> bool {
        matches!(
            self,
            Action::ImageModeration
                | Action::CreateImageModerationAsyncTask
                | Action::AssessQuality
                | Action::CropImage
                | Action::DetectLabel
                | Action::RecognizeCar
                | Action::CreateImage
                | Action::SearchImage
        )
    }

    pub fn rate_class(self) -> RateClass {
        match self {
            Action::CreateImageModerationAsyncTask => RateClass::Async,
            // Management calls share the synchronous budget.
            _ => RateClass::Sync,
        }
    }
}

/// What a handler knows about the call it serves.
pub struct Context {
    pub state: AppState,
    pub account: Account,
    pub version: Version,
    /// The `RequestId` the answer carries.
    pub request_id: String,
    /// The key the call was signed with.
    pub secret_id: String,
    /// When the request arrived (before its body was read): deadlines count from here.
    pub arrived: Instant,
    /// How the history records a moderation this call makes.
    pub origin: Origin,
}

/// Answers one API request, whatever happens, with the envelope.
pub async fn handle(state: AppState, request: Request) -> Response {
    let request_id = engine::stamp::new_id();
    let span = tracing::info_span!("request", request_id = %request_id, account = tracing::field::Empty);
    async move {
        let started = Instant::now();
        let (lang, parsed) = call::read(request, state.body_timeout()).await;
        let mut action_label = "-";
        let result = match parsed {
            Ok(call) => run(&state, call, &request_id, started, &mut action_label).await,
            Err(e) => Err(e),
        };
        let elapsed = started.elapsed();
        let (response, code) = match result {
            Ok(fields) => (envelope::success(fields, &request_id), "Success"),
            Err(e) => (envelope::failure(&e, lang, &request_id), e.code.as_str()),
        };
        metrics::counter!("ims_requests_total", "action" => action_label, "code" => code).increment(1);
        metrics::histogram!("ims_request_duration_seconds", "action" => action_label).record(elapsed.as_secs_f64());
        tracing::info!(action = action_label, code, elapsed_ms = elapsed.as_millis() as u64, "request finished");
        response
    }
    .instrument(span)
    .await
}

async fn run(
    state: &AppState,
    call: Call,
    request_id: &str,
    arrived: Instant,
    action_label: &mut &'static str,
) -> Result<Map<String, Value>, ApiError> {
    let now = engine::stamp::now();
    let account = auth::authenticate(state.accounts.clone(), &call, now).await?;
    tracing::Span::current().record("account", account.id.0);
    let invocation = Invocation {
        account,
        version: call.version,
        action: call.action,
        params: call.params,
        secret_id: call.secret_id,
        origin: Origin::Sync,
    };
    perform(state, invocation, request_id, arrived, action_label).await
}

/// An authenticated request for an action.
pub struct Invocation {
    pub account: Account,
    pub version: String,
    pub action: String,
    pub params: Params,
    /// The key it was signed with; empty for the console's calls (a session, not a key).
    pub secret_id: String,
    /// How the history records a moderation it makes: `Sync` for the API, `Console`.
    pub origin: Origin,
}

/// Performs an authenticated action: its version and definition, the account's grant, the
/// rate limit, billing admission, the parameters checked against the definition, then its
/// handler. The API's path after the signature, and the console's for everything it does, so
/// a page can do nothing a call could not.
pub async fn perform(
    state: &AppState,
    call: Invocation,
    request_id: &str,
    arrived: Instant,
    action_label: &mut &'static str,
) -> Result<Map<String, Value>, ApiError> {
    let account = call.account;
    let version = Version::parse(&call.version).ok_or_else(|| {
        let known: Vec<&str> = Version::ALL.iter().map(|v| v.as_str()).collect();
        ApiError::with_message(
            Code::NoSuchVersion,
            format!("The version `{}` does not exist; use one of {}.", call.version, known.join(", ")),
            format!("接口版本 `{}` 不存在，可用版本：{}。", call.version, known.join("、")),
        )
    })?;
    let definition = version.definition();
    let Some(defined) = definition.action(&call.action) else {
        return Err(ApiError::with_message(
            Code::InvalidAction,
            format!("The action `{}` does not exist in version {}.", call.action, version.as_str()),
            format!("接口 `{}` 在版本 {} 中不存在。", call.action, version.as_str()),
        ));
    };
    let Some(action) = Action::lookup(&call.action) else {
        return Err(ApiError::with_message(
            Code::UnsupportedOperation,
            format!("The action `{}` is not available in this deployment yet.", call.action),
            format!("本部署暂不支持接口 `{}`。", call.action),
        ));
    };
    *action_label = action.name();

    if !account.permits(action.operation()) {
        return Err(error::unauthorized(action.name()));
    }
    let limit = match action.rate_class() {
        RateClass::Async => account.limits.async_per_second.unwrap_or(state.settings.async_per_second),
        _ => account.limits.sync_per_second.unwrap_or(state.settings.sync_per_second),
    };
    let (limiter, id, class) = (state.limiter.clone(), account.id, action.rate_class());
    if !blocking(move || limiter.admit(id, class, limit)).await? {
        return Err(error::rate_limited(limit));
    }

    if action.billed() {
        billing::admit(state, &account).await?;
    }

    let params = parameters(definition, defined, call.params)?;
    let context = Context {
        state: state.clone(),
        account,
        version,
        request_id: request_id.to_string(),
        secret_id: call.secret_id,
        arrived,
        origin: call.origin,
    };
    match action {
        Action::ImageModeration => moderation::image_moderation(context, params).await,
        Action::CreateBizConfig => policies::create(context, params).await,
        Action::ModifyBizConfig => policies::modify(context, params).await,
        Action::DescribeBizConfig => policies::describe(context, params).await,
        Action::DescribeBizConfigs => policies::list(context, params).await,
        Action::DeleteBizConfig => policies::delete(context, params).await,
        Action::CreateImageModerationAsyncTask => tasks::create(context, params).await,
        Action::CreateImageLib => libraries::create(context, params).await,
        Action::DescribeImageLibs => libraries::list(context, params).await,
        Action::DeleteImageLib => libraries::delete(context, params).await,
        Action::CreateImageSamples => libraries::add_samples(context, params).await,
        Action::DescribeImageSamples => libraries::samples(context, params).await,
        Action::DeleteImageSamples => libraries::delete_samples(context, params).await,
        Action::CreateFaceLib => faces::create(context, params).await,
        Action::DescribeFaceLibs => faces::list(context, params).await,
        Action::DeleteFaceLib => faces::delete(context, params).await,
        Action::CreateFaceSamples => faces::add_samples(context, params).await,
        Action::DescribeFaceSamples => faces::samples(context, params).await,
        Action::DeleteFaceSamples => faces::delete_samples(context, params).await,
        Action::DescribeImsList => history::list(context, params).await,
        Action::DescribeImageStat => history::stats(context, params).await,
        Action::CreateImsCorrection => history::correct(context, params).await,
        Action::CreateKeywordsLib => keywords::create(context, params).await,
        Action::DescribeKeywordsLibs => keywords::list(context, params).await,
        Action::DeleteKeywordsLib => keywords::delete(context, params).await,
        Action::CreateKeywordsSamples => keywords::add(context, params).await,
        Action::DescribeKeywordsSamples => keywords::samples(context, params).await,
        Action::DeleteLibSamples => keywords::delete_samples(context, params).await,
        Action::DescribePriceLists => billing::price_lists(context, params).await,
        Action::ActivateService => billing::activate(context, params).await,
        Action::DescribeAccountBalance => billing::balance(context, params).await,
        Action::CreatePackage => billing::buy(context, params).await,
        Action::DescribePackages => billing::packages(context, params).await,
        Action::RefundPackage => billing::refund(context, params).await,
        Action::DescribeUsage => billing::usage(context, params).await,
        Action::DescribeBills => billing::bills(context, params).await,
        Action::AssessQuality => analysis::assess_quality(context, params).await,
        Action::CropImage => analysis::crop_image(context, params).await,
        Action::DetectLabel => analysis::detect_label(context, params).await,
        Action::RecognizeCar => analysis::recognize_car(context, params).await,
        Action::CreateGroup => search::create_group(context, params).await,
        Action::DescribeGroups => search::describe_groups(context, params).await,
        Action::CreateImage => search::create_image(context, params).await,
        Action::DescribeImages => search::describe_images(context, params).await,
        Action::UpdateImage => search::update_image(context, params).await,
        Action::DeleteImages => search::delete_images(context, params).await,
        Action::SearchImage => search::search_image(context, params).await,
    }
}

/// The call's parameters as typed JSON, checked against the action's definition.
fn parameters(definition: &ApiDefinition, action: &schema::ActionDef, params: Params) -> Result<Value, ApiError> {
    match params {
        Params::Json(body) => {
            let value: Value = serde_json::from_slice(&body).map_err(|e| {
                ApiError::with_message(
                    Code::InvalidParameter,
                    format!("The request body is not valid JSON: {e}."),
                    format!("请求包体不是合法的 JSON：{e}。"),
                )
            })?;
            definition.validate_input(action, &value).api()?;
            Ok(value)
        }
        Params::Flat(pairs) => definition.unflatten(action, &pairs).api(),
    }
}

/// Runs storage work on the blocking pool (SQLite is synchronous), its error through `map`.
pub async fn blocking<T: Send + 'static, E: ErrorCode + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|_| ApiError::new(Code::InternalError))?.api()
}

/// [`blocking`] work on one of the state's repositories (the `Arc` is cloned into the work).
pub async fn on<R, T, E>(
    repository: &std::sync::Arc<R>,
    work: impl FnOnce(&R) -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    R: ?Sized + Send + Sync + 'static,
    T: Send + 'static,
    E: ErrorCode + Send + 'static,
{
    let repository = repository.clone();
    blocking(move || work(repository.as_ref())).await
}

/// A page of a library's entries: `LibId`, `Offset` (from 0) and `Limit`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LibraryPage {
    pub lib_id: String,
    offset: Option<i64>,
    limit: Option<i64>,
}

impl LibraryPage {
    /// The offset and the limit (`default` when absent, 1 to `max`), or why not.
    pub fn bounds(&self, default: i64, max: i64) -> Result<(u64, u64), String> {
        let offset = u64::try_from(self.offset.unwrap_or(0)).map_err(|_| "Offset must not be negative".to_string())?;
        let limit = self.limit.unwrap_or(default);
        if !(1..=max).contains(&limit) {
            return Err(format!("Limit must be 1 to {max}, not {limit}"));
        }
        Ok((offset, limit as u64))
    }
}

/// An action's parameters (already checked against its definition) as its input type.
pub fn parse<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, ApiError> {
    serde_json::from_value(params).map_err(|e| {
        ApiError::with_message(Code::InvalidParameter, format!("Invalid parameters: {e}."), format!("参数错误：{e}。"))
    })
}

/// Serialises a response type into the fields of the envelope.
pub fn fields(response: impl serde::Serialize) -> Map<String, Value> {
    match serde_json::to_value(response) {
        Ok(Value::Object(map)) => map,
        _ => unreachable!("responses are structs"),
    }
}
