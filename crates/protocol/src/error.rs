//! Every error the API can answer, in one table.
//!
//! Each [`Code`] renders as the cloud's dotted code string and carries a default message in
//! English and Chinese. An [`ApiError`] is a code plus, optionally, a message specific to the
//! failure (which field, which limit, which size). Errors are always answered with HTTP 200 and
//! the envelope `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`; see `docs/api.md`.

use serde::Serialize;

/// Language of error messages, chosen by `X-TC-Language` (TC3) or `Language` (legacy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    /// `zh-CN` selects Chinese; anything else (including absence) selects English.
    pub fn from_tag(tag: Option<&str>) -> Lang {
        match tag {
            Some(t) if t.eq_ignore_ascii_case("zh-CN") => Lang::Zh,
            _ => Lang::En,
        }
    }
}

macro_rules! codes {
    ($( $variant:ident = $code:literal, $en:literal, $zh:literal; )*) => {
        /// An API error code. The string form is what clients match on; never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code { $( $variant, )* }

        impl Code {
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The code as it appears on the wire, e.g. `AuthFailure.SignatureFailure`.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code, )* }
            }

            /// The message used when a failure has nothing more specific to say.
            pub fn default_message(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $( (Code::$variant, Lang::En) => $en, (Code::$variant, Lang::Zh) => $zh, )*
                }
            }
        }
    };
}

codes! {
    // Common API 3.0 codes.
    AuthFailureSignatureFailure = "AuthFailure.SignatureFailure",
        "The request signature does not match the one computed with the key of this SecretId.",
        "请求签名验证失败，请检查您的签名计算是否正确。";
    AuthFailureSignatureExpire = "AuthFailure.SignatureExpire",
        "The request timestamp is more than 5 minutes away from the server time.",
        "签名过期。Timestamp 和服务器时间相差不得超过五分钟。";
    AuthFailureSecretIdNotFound = "AuthFailure.SecretIdNotFound",
        "The SecretId does not exist or has been disabled.",
        "密钥不存在或已被禁用。";
    AuthFailureInvalidSecretId = "AuthFailure.InvalidSecretId",
        "The SecretId is not a valid API key identifier.",
        "密钥非法（不是云 API 密钥类型）。";
    AuthFailureInvalidAuthorization = "AuthFailure.InvalidAuthorization",
        "The Authorization header is malformed.",
        "请求头部的 Authorization 不符合规范。";
    AuthFailureTokenFailure = "AuthFailure.TokenFailure",
        "Temporary credentials (Token) are not supported by this deployment.",
        "临时证书 Token 错误：本部署不支持临时证书。";
    AuthFailureMfaFailure = "AuthFailure.MFAFailure",
        "MFA verification failed.",
        "MFA 错误。";
    AuthFailureUnauthorizedOperation = "AuthFailure.UnauthorizedOperation",
        "The request is not authorized.",
        "请求未授权。";
    InvalidAction = "InvalidAction",
        "The action does not exist in this API version.",
        "接口不存在。";
    NoSuchVersion = "NoSuchVersion",
        "The API version does not exist.",
        "接口版本不存在。";
    UnsupportedProtocol = "UnsupportedProtocol",
        "Only GET and POST requests on / are supported.",
        "HTTP(S) 请求协议错误，只支持 GET 和 POST 请求。";
    UnsupportedRegion = "UnsupportedRegion",
        "The region is not supported.",
        "接口不支持所传地域。";
    RequestSizeLimitExceeded = "RequestSizeLimitExceeded",
        "The request body is larger than 10485760 bytes.",
        "请求包超过限制大小 10485760 字节。";
    RequestLimitExceeded = "RequestLimitExceeded",
        "The request rate of this account exceeds its limit.",
        "请求的次数超过了频率限制。";
    RequestLimitExceededUinLimitExceeded = "RequestLimitExceeded.UinLimitExceeded",
        "The request rate of this main account exceeds its limit.",
        "主账号超过频率限制。";
    ServiceUnavailable = "ServiceUnavailable",
        "The service is temporarily unavailable.",
        "当前服务暂时不可用。";
    InternalError = "InternalError",
        "Internal error.",
        "内部错误。";
    // Codes of the ims service (2020-12-29).
    InternalErrorInternalError = "InternalError.InternalError",
        "Internal error.",
        "内部错误。";
    InvalidParameter = "InvalidParameter",
        "A parameter is invalid.",
        "参数错误。";
    InvalidParameterImageAspectRatioTooLarge = "InvalidParameter.ImageAspectRatioTooLarge",
        "The image aspect ratio is too large (it must be below 90:1).",
        "图片长宽比过大（需小于 90:1）。";
    InvalidParameterImageDataTooSmall = "InvalidParameter.ImageDataTooSmall",
        "The image file is too small (at least 16 bytes).",
        "图片文件太小（至少 16 字节）。";
    InvalidParameterImageSizeTooSmall = "InvalidParameter.ImageSizeTooSmall",
        "The image resolution is too low (width and height must be above 50 pixels).",
        "图片分辨率过低（宽和高需大于 50 像素）。";
    InvalidParameterInvalidImageContent = "InvalidParameter.InvalidImageContent",
        "The image content could not be decoded.",
        "图片内容无法解码。";
    InvalidParameterInvalidParameter = "InvalidParameter.InvalidParameter",
        "A parameter is invalid.",
        "参数错误。";
    InvalidParameterValue = "InvalidParameterValue",
        "A parameter value is invalid.",
        "参数取值错误。";
    InvalidParameterValueEmptyImageContent = "InvalidParameterValue.EmptyImageContent",
        "The image is empty.",
        "图片内容为空。";
    InvalidParameterValueImageSizeTooSmall = "InvalidParameterValue.ImageSizeTooSmall",
        "The image resolution is too low.",
        "图片尺寸过小。";
    InvalidParameterValueInvalidCallbackUrl = "InvalidParameterValue.InvalidCallbackUrl",
        "CallbackUrl is not a valid http or https URL.",
        "CallbackUrl 不是合法的 http 或 https 地址。";
    InvalidParameterValueInvalidContent = "InvalidParameterValue.InvalidContent",
        "FileContent is not valid base64.",
        "FileContent 不是合法的 base64 编码。";
    InvalidParameterValueInvalidDataId = "InvalidParameterValue.InvalidDataId",
        "DataId must be at most 64 characters of letters, digits and _-@#.",
        "DataId 最多 64 个字符，只能包含字母、数字和 _-@#。";
    InvalidParameterValueInvalidFileContentSize = "InvalidParameterValue.InvalidFileContentSize",
        "The file is too large.",
        "文件过大。";
    InvalidParameterValueInvalidImageContent = "InvalidParameterValue.InvalidImageContent",
        "The image content is invalid.",
        "图片内容错误。";
    InvalidParameterValueInvalidParameter = "InvalidParameterValue.InvalidParameter",
        "A parameter value is invalid.",
        "参数取值错误。";
    // ims's own, for face libraries' photos.
    InvalidParameterValueNoFaceFound = "InvalidParameterValue.NoFaceFound",
        "No face was found in the photo.",
        "照片中未检测到人脸。";
    InvalidParameterValueMultipleFaces = "InvalidParameterValue.MultipleFaces",
        "The photo shows more than one face: send a photo of the person alone, or set LargestFace.",
        "照片中有多张人脸：请提交仅含此人的照片，或设置 LargestFace。";
    LimitExceeded = "LimitExceeded",
        "A quota is exceeded.",
        "超过配额限制。";
    MissingParameter = "MissingParameter",
        "A required parameter is missing.",
        "缺少参数错误。";
    OperationDenied = "OperationDenied",
        "The operation is denied.",
        "操作被拒绝。";
    ResourceUnavailable = "ResourceUnavailable",
        "A resource is unavailable.",
        "资源不可用。";
    ResourceUnavailableImageDownloadError = "ResourceUnavailable.ImageDownloadError",
        "The image could not be downloaded.",
        "图片下载失败。";
    ResourceUnavailableInQueueError = "ResourceUnavailable.InQueueError",
        "The task could not be queued.",
        "任务入队失败。";
    ResourceUnavailableInvalidImageContent = "ResourceUnavailable.InvalidImageContent",
        "The downloaded content is not a valid image.",
        "下载的内容不是有效图片。";
    ResourceUnavailableModelCallFailed = "ResourceUnavailable.ModelCallFailed",
        "A moderation model failed.",
        "模型调用失败。";
    UnauthorizedOperation = "UnauthorizedOperation",
        "This account is not authorized to perform the operation.",
        "该账号未被授权执行此操作。";
    UnauthorizedOperationUnauthorized = "UnauthorizedOperation.Unauthorized",
        "The service is not activated for this account.",
        "未开通权限/无有效套餐包/账号已欠费。";
    UnknownParameter = "UnknownParameter",
        "A parameter is not recognised.",
        "未知参数错误。";
    UnsupportedOperation = "UnsupportedOperation",
        "The operation is not supported.",
        "操作不支持。";
    FailedOperation = "FailedOperation",
        "The operation failed.",
        "操作失败。";
    // tiia's, for RecognizeCar: no vehicle in the image.
    FailedOperationNoObjectDetected = "FailedOperation.NoObjectDetected",
        "No object of the kind asked for was found.",
        "未检测到目标。";
    // tiia's, for image search (CreateGroup, CreateImage, SearchImage...).
    FailedOperationGroupCountExceeded = "FailedOperation.GroupCountExceeded",
        "The account has as many image-search groups as it may.",
        "图库数量超出限制。";
    FailedOperationImageEntityCountExceed = "FailedOperation.ImageEntityCountExceed",
        "The entity has as many pictures as it may.",
        "超出Entity数量限制。";
    FailedOperationImageNotFoundInfo = "FailedOperation.ImageNotFoundInfo",
        "No picture of the entity matches.",
        "未找到图片信息。";
    FailedOperationImageNumExceed = "FailedOperation.ImageNumExceed",
        "The group holds its MaxCapacity of pictures.",
        "超出图库限制。";
    FailedOperationImageUnQualified = "FailedOperation.ImageUnQualified",
        "The image has too little detail to be searched for.",
        "图片不满足检测要求。";
    InvalidParameterValueImageGroupIdAlreadyExist = "InvalidParameterValue.ImageGroupIdAlreadyExist",
        "An image-search group of this GroupId already exists.",
        "图库ID已存在。";
    InvalidParameterValueImageGroupIdIllegal = "InvalidParameterValue.ImageGroupIdIllegal",
        "GroupId must be letters, digits and underscores.",
        "图库ID不合法。";
    InvalidParameterValueImageGroupIdNotExist = "InvalidParameterValue.ImageGroupIdNotExist",
        "There is no image-search group of this GroupId.",
        "图库ID不存在。";
    InvalidParameterValueImageGroupIdTooLong = "InvalidParameterValue.ImageGroupIdTooLong",
        "GroupId is too long.",
        "图库ID超出长度限制。";
    InvalidParameterValueImageGroupNameEmpty = "InvalidParameterValue.ImageGroupNameEmpty",
        "GroupName is empty.",
        "图库名称为空。";
    InvalidParameterValueImageGroupNameTooLong = "InvalidParameterValue.ImageGroupNameTooLong",
        "GroupName is too long.",
        "图库名称超出长度限制。";
    InvalidParameterValueEntityIdEmpty = "InvalidParameterValue.EntityIdEmpty",
        "EntityId is empty.",
        "物品ID为空。";
    InvalidParameterValueEntityIdTooLong = "InvalidParameterValue.EntityIdTooLong",
        "EntityId is too long.",
        "物品ID超出长度限制。";
    InvalidParameterValuePicNameEmpty = "InvalidParameterValue.PicNameEmpty",
        "PicName is empty.",
        "图片名称为空。";
    InvalidParameterValuePicNameTooLong = "InvalidParameterValue.PicNameTooLong",
        "PicName is too long.",
        "图片名称超出长度限制。";
    InvalidParameterValuePicNameAlreadyExist = "InvalidParameterValue.PicNameAlreadyExist",
        "A picture of this PicName is already in the group.",
        "图片名称重复。";
    InvalidParameterValueTagsKeysExceed = "InvalidParameterValue.TagsKeysExceed",
        "Tags has too many keys.",
        "标签数量过多。";
    InvalidParameterValueTagsValueIllegal = "InvalidParameterValue.TagsValueIllegal",
        "Tags is not a JSON object of strings and numbers.",
        "标签值类型不合法。";
    InvalidParameterValueTagsValueSizeExceed = "InvalidParameterValue.TagsValueSizeExceed",
        "A tag is too long.",
        "标签值长度过长。";
    InvalidParameterValueFilterInvalid = "InvalidParameterValue.FilterInvalid",
        "Filter is not valid.",
        "Filter参数不合法。";
    InvalidParameterValueFilterSizeExceed = "InvalidParameterValue.FilterSizeExceed",
        "Filter is too long.",
        "Filter参数过长。";
    InvalidParameterValueLimitExceed = "InvalidParameterValue.LimitExceed",
        "Limit is out of its range.",
        "返回数量不在合法范围内。";
    LimitExceededTooLargeFileError = "LimitExceeded.TooLargeFileError",
        "The image is too large.",
        "文件太大。";
    FailedOperationTimeout = "FailedOperation.Timeout",
        "The request did not finish within the server's time limit.",
        "请求未能在服务端时限内完成。";
    ResourceNotFound = "ResourceNotFound",
        "The resource does not exist.",
        "资源不存在。";
    ResourceInUse = "ResourceInUse",
        "The resource is in use.",
        "资源被占用。";
    ResourceInsufficient = "ResourceInsufficient",
        "The resource is insufficient.",
        "资源不足。";
}

/// A message in both languages, for failures that say more than their code's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub en: String,
    pub zh: String,
}

/// An error as answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub message: Option<Message>,
}

impl ApiError {
    pub fn new(code: Code) -> Self {
        ApiError { code, message: None }
    }

    pub fn with_message(code: Code, en: impl Into<String>, zh: impl Into<String>) -> Self {
        ApiError { code, message: Some(Message { en: en.into(), zh: zh.into() }) }
    }

    pub fn message(&self, lang: Lang) -> String {
        match (&self.message, lang) {
            (Some(m), Lang::En) => m.en.clone(),
            (Some(m), Lang::Zh) => m.zh.clone(),
            (None, _) => self.code.default_message(lang).to_string(),
        }
    }

    /// The error envelope, serialised exactly as the cloud does.
    pub fn envelope(&self, lang: Lang, request_id: &str) -> serde_json::Value {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Error<'a> {
            code: &'a str,
            message: String,
        }
        serde_json::json!({
            "Response": {
                "Error": Error { code: self.code.as_str(), message: self.message(lang) },
                "RequestId": request_id,
            }
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message(Lang::En))
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn code_strings_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric())), "{s}");
            assert!(!code.default_message(Lang::En).is_empty());
            assert!(!code.default_message(Lang::Zh).is_empty());
        }
    }

    #[test]
    fn every_documented_ims_code_is_in_the_table() {
        // The codes listed for the ims service and the common API 3.0 codes (spec/api.md).
        let documented = [
            "InternalError.InternalError",
            "InvalidParameter.ImageAspectRatioTooLarge",
            "InvalidParameter.ImageDataTooSmall",
            "InvalidParameter.ImageSizeTooSmall",
            "InvalidParameter.InvalidImageContent",
            "InvalidParameter.InvalidParameter",
            "InvalidParameterValue.EmptyImageContent",
            "InvalidParameterValue.ImageSizeTooSmall",
            "InvalidParameterValue.InvalidCallbackUrl",
            "InvalidParameterValue.InvalidContent",
            "InvalidParameterValue.InvalidDataId",
            "InvalidParameterValue.InvalidFileContentSize",
            "InvalidParameterValue.InvalidImageContent",
            "InvalidParameterValue.InvalidParameter",
            "LimitExceeded",
            "MissingParameter",
            "OperationDenied",
            "RequestLimitExceeded",
            "ResourceUnavailable.ImageDownloadError",
            "ResourceUnavailable.InQueueError",
            "ResourceUnavailable.InvalidImageContent",
            "ResourceUnavailable.ModelCallFailed",
            "UnauthorizedOperation.Unauthorized",
            "UnknownParameter",
            "UnsupportedOperation",
            "FailedOperation",
            "ResourceNotFound",
            "ResourceInUse",
            "ResourceInsufficient",
            "AuthFailure.SignatureFailure",
            "AuthFailure.SignatureExpire",
            "AuthFailure.SecretIdNotFound",
            "AuthFailure.InvalidSecretId",
            "AuthFailure.MFAFailure",
            "AuthFailure.TokenFailure",
            "AuthFailure.UnauthorizedOperation",
            "InvalidAction",
            "NoSuchVersion",
            "InvalidParameter",
            "RequestSizeLimitExceeded",
            "UnsupportedProtocol",
            "UnsupportedRegion",
            "ServiceUnavailable",
            "InternalError",
            "RequestLimitExceeded.UinLimitExceeded",
        ];
        let ours: HashSet<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        for code in documented {
            assert!(ours.contains(code), "{code} missing from the table");
        }
    }

    /// docs/api.md lists every code of the table, and nothing else.
    #[test]
    fn the_documented_list_matches_the_table() {
        let doc = include_str!("../../../docs/api.md");
        let section = &doc[doc.find("## Error codes").expect("docs/api.md has an error-code section")..];
        let documented: HashSet<&str> =
            section.lines().filter_map(|l| l.strip_prefix("| `")).filter_map(|l| l.split('`').next()).collect();
        let ours: HashSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(documented, ours);
    }

    #[test]
    fn envelope_has_the_cloud_shape() {
        let e = ApiError::with_message(Code::MissingParameter, "missing X", "缺少 X");
        let v = e.envelope(Lang::Zh, "rid");
        assert_eq!(v["Response"]["Error"]["Code"], "MissingParameter");
        assert_eq!(v["Response"]["Error"]["Message"], "缺少 X");
        assert_eq!(v["Response"]["RequestId"], "rid");
        let d = ApiError::new(Code::InvalidAction).envelope(Lang::En, "r");
        assert_eq!(d["Response"]["Error"]["Message"], Code::InvalidAction.default_message(Lang::En));
    }

    #[test]
    fn language_tag() {
        assert_eq!(Lang::from_tag(Some("zh-CN")), Lang::Zh);
        assert_eq!(Lang::from_tag(Some("en-US")), Lang::En);
        assert_eq!(Lang::from_tag(None), Lang::En);
    }
}
