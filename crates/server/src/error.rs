//! The one table from domain errors to API error codes: every domain error implements
//! [`ErrorCode`], and handlers turn a domain result into an API one with [`OrApiError::api`].
//! Only this file decides which code and which words a client sees for each.

use engine::accounts::AccountError;
use engine::billing::{BillingError, Money, Standing};
use engine::faces::FaceError;
use engine::history::HistoryError;
use engine::keywords::KeywordError;
use engine::library::LibraryError;
use engine::policy::PolicyError;
use engine::search::SearchError;
use engine::task::TaskError;
use inference::InferenceError;
use media::fetch::FetchError;
use media::MediaError;
use protocol::schema::ParamError;
use protocol::{ApiError, Code, Lang};

/// A domain error as the API answers it.
pub trait ErrorCode {
    fn api_error(&self) -> ApiError;
}

/// `result.api()?`: a domain result at the edge.
pub trait OrApiError<T> {
    fn api(self) -> Result<T, ApiError>;
}

impl<T, E: ErrorCode> OrApiError<T> for Result<T, E> {
    fn api(self) -> Result<T, ApiError> {
        self.map_err(|e| e.api_error())
    }
}

/// A check the policy asks for (models on a frame, text, codes, image or keyword libraries)
/// could not run. The request fails rather than pass an image nothing looked at; the cause
/// stays in the log and `ims_check_failures_total` counts it.
pub fn check_failed(check: &'static str, cause: &dyn std::fmt::Display) -> ApiError {
    metrics::counter!("ims_check_failures_total", "check" => check).increment(1);
    tracing::error!(check, %cause, "a check the policy asks for failed; the request fails");
    let name = check.replace('_', " ");
    ApiError::with_message(
        Code::FailedOperation,
        format!("The {name} check could not run, so the image was not moderated; retry later."),
        format!("审核项（{name}）未能执行，图片未被审核，请稍后重试。"),
    )
}

/// A policy with the `Teenager` scene on a server without the opt-in age model.
pub fn no_age_model() -> ApiError {
    ApiError::with_message(
        Code::UnsupportedOperation,
        "The Teenager scene needs the opt-in age model: fetch it (scripts/fetch.py --with faceres) and set faces.age_model = true.",
        "Teenager 场景需要可选的年龄模型：请先获取（scripts/fetch.py --with faceres）并设置 faces.age_model = true。",
    )
}

/// A policy with `Objects`, or a tiia call that finds objects, on a server without the object
/// detector.
pub fn no_object_detector() -> ApiError {
    ApiError::with_message(
        Code::UnsupportedOperation,
        "Finding objects needs the object detector: set inference.objects = true.",
        "识别物体需要物体检测模型：请设置 inference.objects = true。",
    )
}

/// The database failed (unreachable, slower than its statement timeout, out of room):
/// `ServiceUnavailable`, which says to retry; the details stay in the log.
pub fn storage_failure(what: &str, reason: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(%reason, "{what} storage failed");
    metrics::counter!("ims_storage_failures_total").increment(1);
    ApiError::with_message(
        Code::ServiceUnavailable,
        "The database did not answer; nothing was decided. Retry later.",
        "数据库未响应，本次请求未处理，请稍后重试。",
    )
}

impl ErrorCode for engine::ratelimit::RateError {
    fn api_error(&self) -> ApiError {
        storage_failure("rate limit", self)
    }
}

/// Account errors reach the API only as storage failures.
impl ErrorCode for AccountError {
    fn api_error(&self) -> ApiError {
        storage_failure("account", self)
    }
}

/// The server is full (`server.max_images_in_flight` images being moderated): refused at once.
/// `RequestLimitExceeded` because it is what the official SDKs' retryers retry, with backoff;
/// the message and `ims_overload_refusals_total` tell it from an account's rate limit.
pub fn busy(bound: &str) -> ApiError {
    metrics::counter!("ims_overload_refusals_total").increment(1);
    ApiError::with_message(
        Code::RequestLimitExceeded,
        format!("The server is at capacity ({bound}); nothing was done, retry shortly."),
        format!("服务端处理能力已满（{bound}），请求未被处理，请稍后重试。"),
    )
}

/// A synchronous moderation past its deadline.
pub fn timed_out(seconds: u64) -> ApiError {
    metrics::counter!("ims_request_timeouts_total").increment(1);
    ApiError::with_message(
        Code::FailedOperationTimeout,
        format!("The image was not moderated within {seconds} s (server.request_timeout_secs); retry later."),
        format!("图片未能在 {seconds} 秒内完成审核（server.request_timeout_secs），请稍后重试。"),
    )
}

impl ErrorCode for InferenceError {
    fn api_error(&self) -> ApiError {
        match self {
            InferenceError::Overloaded => busy("inference.queue_capacity images waiting for a model"),
            InferenceError::Expired => ApiError::with_message(
                Code::FailedOperationTimeout,
                "The request's deadline passed before the models ran; retry later.",
                "请求已超过时限，模型未运行，请稍后重试。",
            ),
            other => {
                tracing::error!(error = %other, "a model failed");
                ApiError::new(Code::ResourceUnavailableModelCallFailed)
            }
        }
    }
}

impl ErrorCode for PolicyError {
    fn api_error(&self) -> ApiError {
        let error = self;
        match error {
            PolicyError::InvalidName => ApiError::with_message(
                Code::InvalidParameterValueInvalidParameter,
                "BizType must be 3 to 32 characters of letters, digits and underscore.",
                "BizType 必须由 3 到 32 个字母、数字、下划线组成。",
            ),
            PolicyError::Exists(name) => ApiError::with_message(
                Code::ResourceInUse,
                format!("The policy `{name}` already exists; policy names cannot be reused or renamed."),
                format!("策略 `{name}` 已存在，策略名不可重复或修改。"),
            ),
            PolicyError::NotFound(name) => ApiError::with_message(
                Code::ResourceNotFound,
                format!("There is no policy `{name}`; create it with CreateBizConfig or `ims policy create`."),
                format!("策略 `{name}` 不存在，请先用 CreateBizConfig 或 `ims policy create` 创建。"),
            ),
            PolicyError::Invalid(reason) => ApiError::with_message(
                Code::InvalidParameterValueInvalidParameter,
                format!("Invalid policy: {reason}."),
                format!("策略设置无效：{reason}。"),
            ),
            PolicyError::Store(reason) => storage_failure("policy", reason),
        }
    }
}

impl ErrorCode for FaceError {
    fn api_error(&self) -> ApiError {
        match self {
            FaceError::Invalid(reason) => ApiError::with_message(
                Code::InvalidParameterValueInvalidParameter,
                format!("Invalid face library request: {reason}."),
                format!("人脸库请求无效：{reason}。"),
            ),
            FaceError::Exists(name) => ApiError::with_message(
                Code::ResourceInUse,
                format!("A face library named `{name}` already exists."),
                format!("人脸库 `{name}` 已存在。"),
            ),
            FaceError::NotFound(id) => ApiError::with_message(
                Code::ResourceNotFound,
                format!("There is no face library `{id}`."),
                format!("人脸库 `{id}` 不存在。"),
            ),
            FaceError::PersonNotFound(id) => ApiError::with_message(
                Code::ResourceNotFound,
                format!("There is no person `{id}`."),
                format!("人物 `{id}` 不存在。"),
            ),
            FaceError::SampleNotFound(id) => ApiError::with_message(
                Code::ResourceNotFound,
                format!("There is no face sample `{id}`."),
                format!("人脸样本 `{id}` 不存在。"),
            ),
            FaceError::Storage(reason) => storage_failure("face library", reason),
        }
    }
}

impl ErrorCode for LibraryError {
    fn api_error(&self) -> ApiError {
        let error = self;
        match error {
            LibraryError::Invalid(reason) => ApiError::with_message(
                Code::InvalidParameterValueInvalidParameter,
                format!("Invalid image library request: {reason}."),
                format!("图片库请求无效：{reason}。"),
            ),
            LibraryError::Exists(name) => ApiError::with_message(
                Code::ResourceInUse,
                format!("An image library named `{name}` already exists."),
                format!("图片库 `{name}` 已存在。"),
            ),
            LibraryError::NotFound(id) => ApiError::with_message(
                Code::ResourceNotFound,
                format!("There is no image library `{id}`."),
                format!("图片库 `{id}` 不存在。"),
            ),
            LibraryError::SampleNotFound(id) => ApiError::with_message(
                Code::ResourceNotFound,
                format!("There is no library image `{id}`."),
                format!("图片库样本 `{id}` 不存在。"),
            ),
            LibraryError::Storage(reason) => storage_failure("library", reason),
        }
    }
}

impl ErrorCode for SearchError {
    fn api_error(&self) -> ApiError {
        let code = match self {
            SearchError::GroupIdIllegal => Code::InvalidParameterValueImageGroupIdIllegal,
            SearchError::GroupIdTooLong => Code::InvalidParameterValueImageGroupIdTooLong,
            SearchError::GroupExists(_) => Code::InvalidParameterValueImageGroupIdAlreadyExist,
            SearchError::GroupNotFound(_) => Code::InvalidParameterValueImageGroupIdNotExist,
            SearchError::TooManyGroups => Code::FailedOperationGroupCountExceeded,
            SearchError::GroupNameEmpty => Code::InvalidParameterValueImageGroupNameEmpty,
            SearchError::GroupNameTooLong => Code::InvalidParameterValueImageGroupNameTooLong,
            SearchError::EntityIdEmpty => Code::InvalidParameterValueEntityIdEmpty,
            SearchError::EntityIdTooLong => Code::InvalidParameterValueEntityIdTooLong,
            SearchError::PicNameEmpty => Code::InvalidParameterValuePicNameEmpty,
            SearchError::PicNameTooLong => Code::InvalidParameterValuePicNameTooLong,
            SearchError::PictureExists(_) => Code::InvalidParameterValuePicNameAlreadyExist,
            SearchError::EntityFull(_) => Code::FailedOperationImageEntityCountExceed,
            SearchError::GroupFull(_) => Code::FailedOperationImageNumExceed,
            SearchError::PictureNotFound(_) => Code::FailedOperationImageNotFoundInfo,
            SearchError::TooManyTags(_) => Code::InvalidParameterValueTagsKeysExceed,
            SearchError::TagsIllegal(_) => Code::InvalidParameterValueTagsValueIllegal,
            SearchError::TagTooLong(_) => Code::InvalidParameterValueTagsValueSizeExceed,
            SearchError::FilterInvalid(..) => Code::InvalidParameterValueFilterInvalid,
            SearchError::FilterTooLong => Code::InvalidParameterValueFilterSizeExceed,
            SearchError::Invalid(_) => Code::InvalidParameterValueInvalidParameter,
            SearchError::Storage(reason) => return storage_failure("image search", reason),
        };
        // The messages name what was wrong (the limit, the name); they hold no secret.
        ApiError::with_message(
            code,
            format!("{self}."),
            format!("{}：{self}。", code.default_message(Lang::Zh).trim_end_matches('。')),
        )
    }
}

impl ErrorCode for KeywordError {
    fn api_error(&self) -> ApiError {
        let error = self;
        match error {
            KeywordError::Invalid(reason) => ApiError::with_message(
                Code::InvalidParameterValueInvalidParameter,
                format!("Invalid keyword library request: {reason}."),
                format!("关键词库请求无效：{reason}。"),
            ),
            KeywordError::Exists(name) => ApiError::with_message(
                Code::ResourceInUse,
                format!("A keyword library named `{name}` already exists."),
                format!("关键词库 `{name}` 已存在。"),
            ),
            KeywordError::NotFound(id) => ApiError::with_message(
                Code::ResourceNotFound,
                format!("There is no keyword library `{id}`."),
                format!("关键词库 `{id}` 不存在。"),
            ),
            KeywordError::SampleNotFound(id) => ApiError::with_message(
                Code::ResourceNotFound,
                format!("There is no keyword `{id}`."),
                format!("关键词 `{id}` 不存在。"),
            ),
            KeywordError::Storage(reason) => storage_failure("keyword", reason),
        }
    }
}

impl ErrorCode for BillingError {
    fn api_error(&self) -> ApiError {
        let error = self;
        let en = error.to_string();
        match error {
            BillingError::NotActivated(_) => ApiError::with_message(
                Code::UnauthorizedOperationUnauthorized,
                "The service is not activated for this account; its main account activates it with ActivateService.",
                "该账号未开通服务，请主账号调用 ActivateService 开通。",
            ),
            BillingError::AlreadyActive(_) | BillingError::InArrears { .. } | BillingError::NotRefundable(_) => {
                ApiError::with_message(Code::OperationDenied, format!("{en}."), format!("操作被拒绝：{en}。"))
            }
            BillingError::InsufficientBalance { .. } => ApiError::with_message(
                Code::ResourceInsufficient,
                format!("{en}; top up first."),
                format!("余额不足：{en}。"),
            ),
            BillingError::PackageNotFound(_) => {
                ApiError::with_message(Code::ResourceNotFound, format!("{en}."), format!("资源包不存在：{en}。"))
            }
            BillingError::UnknownCatalogue { .. } | BillingError::UnknownOffer { .. } | BillingError::Invalid(_) => {
                ApiError::with_message(Code::InvalidParameterValue, format!("{en}."), format!("参数取值错误：{en}。"))
            }
            BillingError::Storage(reason) => storage_failure("billing", reason),
        }
    }
}

/// Why a billed call of an account not in service is refused.
pub fn out_of_service(standing: Standing, balance: Option<Money>) -> ApiError {
    let date = |at: i64| chrono::DateTime::from_timestamp(at, 0).map_or(String::new(), |t| t.to_rfc3339());
    let balance = balance.map_or(String::new(), |b| b.to_string());
    match standing {
        Standing::Suspended { since, destroy_at } => ApiError::with_message(
            Code::UnauthorizedOperationUnauthorized,
            format!(
                "The account is in arrears ({balance}) and suspended since {}; a top-up before {} resumes it by itself.",
                date(since),
                date(destroy_at)
            ),
            format!("账号已欠费（{balance}），自 {} 起停服；在 {} 前充值即自动恢复。", date(since), date(destroy_at)),
        ),
        Standing::Destroyed => ApiError::with_message(
            Code::UnauthorizedOperationUnauthorized,
            "The activation was destroyed after the arrears were not cleared in time; top up and activate again (ActivateService).",
            "欠费超期，服务已销毁；请充值后重新开通（ActivateService）。",
        ),
        Standing::NotActivated | Standing::Active => BillingError::NotActivated(engine::accounts::AccountId(0)).api_error(),
    }
}

impl ErrorCode for HistoryError {
    fn api_error(&self) -> ApiError {
        let error = self;
        match error {
            HistoryError::NotFound(id) => ApiError::with_message(
                Code::ResourceNotFound,
                format!("There is no result `{id}` (results are kept for history.retention_days days)."),
                format!("审核结果 `{id}` 不存在（结果保留 history.retention_days 天）。"),
            ),
            HistoryError::Invalid(reason) => ApiError::with_message(
                Code::InvalidParameterValueInvalidParameter,
                format!("Invalid query: {reason}."),
                format!("查询条件无效：{reason}。"),
            ),
            HistoryError::Storage(reason) => storage_failure("history", reason),
        }
    }
}

/// A task that cannot be stored is not accepted: the caller must know to retry.
impl ErrorCode for TaskError {
    fn api_error(&self) -> ApiError {
        let error = self;
        tracing::error!(%error, "task storage failed");
        ApiError::with_message(
            Code::ResourceUnavailableInQueueError,
            "The task could not be queued; it was not accepted. Retry later.",
            "任务未能入队，未被受理，请稍后重试。",
        )
    }
}

/// A callback address that cannot be used.
pub struct CallbackUrlError(pub FetchError);

impl ErrorCode for CallbackUrlError {
    fn api_error(&self) -> ApiError {
        let error = &self.0;
        ApiError::with_message(
            Code::InvalidParameterValueInvalidCallbackUrl,
            format!("CallbackUrl is not acceptable: {error}."),
            format!("CallbackUrl 不可用：{error}。"),
        )
    }
}

impl ErrorCode for ParamError {
    fn api_error(&self) -> ApiError {
        let error = self;
        match error {
            ParamError::Unknown(path) => ApiError::with_message(
                Code::UnknownParameter,
                format!("The parameter `{path}` is not recognised by this action."),
                format!("参数 `{path}` 不属于该接口。"),
            ),
            ParamError::Missing(path) => ApiError::with_message(
                Code::MissingParameter,
                format!("The required parameter `{path}` is missing."),
                format!("缺少必需参数 `{path}`。"),
            ),
            ParamError::Invalid { path, expected } => ApiError::with_message(
                Code::InvalidParameter,
                format!("The parameter `{path}` must be {expected}."),
                format!("参数 `{path}` 类型错误（应为 {expected}）。"),
            ),
        }
    }
}

/// Where an image came from: a failure to decode is the request's fault for `FileContent`, the
/// remote resource's for `FileUrl`, and the codes say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Content,
    Url,
}

/// An image that cannot be taken, and where it came from.
pub struct ImageError(pub MediaError, pub Source);

impl ErrorCode for ImageError {
    fn api_error(&self) -> ApiError {
        let (error, source) = (&self.0, self.1);
        let invalid = match source {
            Source::Content => Code::InvalidParameterInvalidImageContent,
            Source::Url => Code::ResourceUnavailableInvalidImageContent,
        };
        let (code, zh) = match error {
            MediaError::Empty => (Code::InvalidParameterValueEmptyImageContent, "图片内容为空。".to_string()),
            MediaError::InvalidBase64 => {
                (Code::InvalidParameterValueInvalidContent, "FileContent 不是合法的 base64 编码。".to_string())
            }
            MediaError::Base64TooLarge { size } => (
                Code::InvalidParameterValueInvalidFileContentSize,
                format!("FileContent 的 base64 内容为 {size} 字节，需小于 {} 字节。", media::MAX_BASE64_BYTES),
            ),
            MediaError::FileTooSmall { size } => (
                Code::InvalidParameterImageDataTooSmall,
                format!("图片文件为 {size} 字节，至少需要 {} 字节。", media::MIN_FILE_BYTES),
            ),
            MediaError::NotAnImage => (invalid, "内容不是受支持格式的图片。".to_string()),
            MediaError::Decode(detail) => (invalid, format!("图片无法解码：{detail}")),
            MediaError::TooFewPixels { width, height } => (
                Code::InvalidParameterImageSizeTooSmall,
                format!("图片尺寸为 {width}x{height}，宽和高需大于 {}。", media::MIN_SIDE),
            ),
            MediaError::TooManyPixels { width, height } => (
                Code::InvalidParameterValueInvalidImageContent,
                format!("图片尺寸为 {width}x{height}，宽和高需小于 {}。", media::MAX_SIDE),
            ),
            MediaError::AspectRatioTooLarge { width, height } => (
                Code::InvalidParameterImageAspectRatioTooLarge,
                format!("图片尺寸为 {width}x{height}，长宽比需小于 {}:1。", media::MAX_ASPECT_RATIO),
            ),
        };
        ApiError::with_message(code, format!("{}.", capitalise(&error.to_string())), zh)
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

impl ErrorCode for FetchError {
    fn api_error(&self) -> ApiError {
        let error = self;
        let (code, zh) = match error {
            FetchError::InvalidUrl(detail) => {
                (Code::InvalidParameterValueInvalidParameter, format!("FileUrl 不是合法的 URL：{detail}"))
            }
            FetchError::Scheme(scheme) => (
                Code::InvalidParameterValueInvalidParameter,
                format!("FileUrl 只支持 http 和 https，不支持 `{scheme}`"),
            ),
            FetchError::IpLiteral(ip) => (Code::OperationDenied, format!("FileUrl 的主机不能是 IP 地址（{ip}）")),
            FetchError::Internal(host) => (Code::OperationDenied, format!("主机 `{host}` 解析到内网地址，不予下载")),
            FetchError::Unresolvable(host) => {
                (Code::ResourceUnavailableImageDownloadError, format!("无法解析主机 `{host}`"))
            }
            FetchError::Timeout(secs, tries) => {
                (Code::ResourceUnavailableImageDownloadError, format!("下载未在 {secs} 秒内完成（共尝试 {tries} 次）"))
            }
            FetchError::Status(status, _) => {
                (Code::ResourceUnavailableImageDownloadError, format!("服务器返回 HTTP {status}"))
            }
            FetchError::TooLarge(limit) => (
                Code::InvalidParameterValueInvalidFileContentSize,
                format!("图片达到或超过 {limit} 字节，FileUrl 图片需小于该大小"),
            ),
            FetchError::TooManyRedirects(n) => {
                (Code::ResourceUnavailableImageDownloadError, format!("重定向超过 {n} 次"))
            }
            FetchError::Network(detail) => (Code::ResourceUnavailableImageDownloadError, format!("下载失败：{detail}")),
        };
        ApiError::with_message(code, format!("{}.", capitalise(&error.to_string())), format!("{zh}。"))
    }
}

pub fn decode_timeout(seconds: u64) -> ApiError {
    ApiError::with_message(
        Code::InvalidParameterInvalidImageContent,
        format!("The image did not decode within {seconds} s."),
        format!("图片未能在 {seconds} 秒内解码。"),
    )
}

pub fn rate_limited(limit: u32) -> ApiError {
    ApiError::with_message(
        Code::RequestLimitExceeded,
        format!("This account may make {limit} requests per second for this action; retry later."),
        format!("该账号对此接口的请求频率上限为每秒 {limit} 次，请稍后重试。"),
    )
}

pub fn unauthorized(action: &str) -> ApiError {
    ApiError::with_message(
        Code::UnauthorizedOperation,
        format!("This account is not granted access to `{action}`; ask its main account for a grant."),
        format!("该账号未被授权调用 `{action}`，请联系主账号授权。"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_errors_have_both_languages() {
        let e = ImageError(MediaError::FileTooSmall { size: 15 }, Source::Content).api_error();
        assert_eq!(e.code, Code::InvalidParameterImageDataTooSmall);
        assert_eq!(e.message(protocol::Lang::En), "The file is 15 bytes; it must be at least 16.");
        assert!(e.message(protocol::Lang::Zh).contains("15"));
    }
}
