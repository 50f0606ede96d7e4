//! The console's words, in English and Chinese: one struct, so a page cannot name a text that
//! one language lacks (the compiler checks every template against it).

pub use protocol::Lang;

/// From a `lang` value (`en`, `zh`), else from `Accept-Language` (Chinese when it comes first).
pub fn choose(given: Option<&str>, accept_language: Option<&str>) -> Lang {
    match given {
        Some("zh") => Lang::Zh,
        Some("en") => Lang::En,
        _ if accept_language.is_some_and(|a| a.trim_start().to_ascii_lowercase().starts_with("zh")) => Lang::Zh,
        _ => Lang::En,
    }
}

/// The `lang` value (and the page's `<html lang>`).
pub fn code(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "en",
        Lang::Zh => "zh",
    }
}

pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::En => &EN,
        Lang::Zh => &ZH,
    }
}

pub struct Texts {
    pub title: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub with_key: &'static str,
    pub with_password: &'static str,
    pub secret_id: &'static str,
    pub secret_key: &'static str,
    pub account_id: &'static str,
    pub password: &'static str,
    pub signed_in_as: &'static str,
    pub read_only: &'static str,
    pub results: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub policy: &'static str,
    pub suggestion: &'static str,
    pub label: &'static str,
    pub any: &'static str,
    pub corrected: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub filter: &'static str,
    pub clear: &'static str,
    pub thumbnail: &'static str,
    pub time: &'static str,
    pub image_url: &'static str,
    pub keywords_hit: &'static str,
    pub text_in_image: &'static str,
    pub correction: &'static str,
    pub total: &'static str,
    pub page: &'static str,
    pub previous: &'static str,
    pub next: &'static str,
    pub none_found: &'static str,
    pub back: &'static str,
    pub details: &'static str,
    pub score: &'static str,
    pub source: &'static str,
    pub raw_answer: &'static str,
    pub correct: &'static str,
    pub note: &'static str,
    pub add_to_library: &'static str,
    pub no_library: &'static str,
    pub save: &'static str,
    pub saved: &'static str,
    pub by: &'static str,
    pub bad_sign_in: &'static str,
    pub throttled: &'static str,
    pub no_access: &'static str,
    pub forbidden: &'static str,
    pub expired_form: &'static str,
    pub not_found: &'static str,
    pub bad_filter: &'static str,
    pub unavailable: &'static str,
}

pub static EN: Texts = Texts {
    title: "ims console",
    sign_in: "Sign in",
    sign_out: "Sign out",
    with_key: "With an API key",
    with_password: "With a console password",
    secret_id: "SecretId",
    secret_key: "SecretKey",
    account_id: "Account ID",
    password: "Password",
    signed_in_as: "Signed in as",
    read_only: "read-only",
    results: "Results",
    from: "From",
    to: "To",
    policy: "Policy",
    suggestion: "Suggestion",
    label: "Label",
    any: "Any",
    corrected: "Corrected",
    yes: "Yes",
    no: "No",
    filter: "Filter",
    clear: "Clear",
    thumbnail: "Thumbnail",
    time: "Time",
    image_url: "Image URL",
    keywords_hit: "Keywords hit",
    text_in_image: "Text in the image",
    correction: "Correction",
    total: "Total",
    page: "Page",
    previous: "Previous",
    next: "Next",
    none_found: "No results match.",
    back: "Back to the results",
    details: "Details",
    score: "Score",
    source: "Source",
    raw_answer: "The answer as sent",
    correct: "Correct this result",
    note: "Note",
    add_to_library: "Add the image to a library",
    no_library: "No library",
    save: "Save",
    saved: "The correction is saved.",
    by: "by",
    bad_sign_in: "The credentials are wrong, or the account may not use the console.",
    throttled: "Too many failed sign-ins: wait a few minutes and try again.",
    no_access: "This account has no access.",
    forbidden: "This account may not change anything.",
    expired_form: "This form has expired: reload the page and try again.",
    not_found: "No such result.",
    bad_filter: "A filter is not valid: dates are YYYY-MM-DD, and labels and suggestions come from the lists.",
    unavailable: "The service cannot reach its database; try again shortly.",
};

pub static ZH: Texts = Texts {
    title: "ims 控制台",
    sign_in: "登录",
    sign_out: "退出登录",
    with_key: "使用 API 密钥",
    with_password: "使用控制台密码",
    secret_id: "SecretId",
    secret_key: "SecretKey",
    account_id: "账号 ID",
    password: "密码",
    signed_in_as: "当前账号",
    read_only: "只读",
    results: "审核结果",
    from: "开始日期",
    to: "结束日期",
    policy: "策略",
    suggestion: "处置建议",
    label: "标签",
    any: "全部",
    corrected: "已纠错",
    yes: "是",
    no: "否",
    filter: "筛选",
    clear: "清除",
    thumbnail: "缩略图",
    time: "审核时间",
    image_url: "图片链接",
    keywords_hit: "命中关键词",
    text_in_image: "图片中的文字",
    correction: "纠错",
    total: "共",
    page: "页",
    previous: "上一页",
    next: "下一页",
    none_found: "没有符合条件的结果。",
    back: "返回审核结果",
    details: "详情",
    score: "分数",
    source: "来源",
    raw_answer: "原始返回",
    correct: "纠正此结果",
    note: "备注",
    add_to_library: "将图片加入图片库",
    no_library: "不加入",
    save: "保存",
    saved: "纠错已保存。",
    by: "操作人",
    bad_sign_in: "凭证错误，或该账号无权使用控制台。",
    throttled: "登录失败次数过多，请几分钟后再试。",
    no_access: "该账号没有访问权限。",
    forbidden: "该账号无权进行修改。",
    expired_form: "表单已过期，请刷新页面后重试。",
    not_found: "没有该结果。",
    bad_filter: "筛选条件无效：日期格式为 YYYY-MM-DD，标签和处置建议须从列表中选择。",
    unavailable: "服务无法连接数据库，请稍后再试。",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_is_asked_for_or_taken_from_the_browser() {
        assert_eq!(choose(Some("zh"), Some("en-US")), Lang::Zh);
        assert_eq!(choose(Some("en"), Some("zh-CN")), Lang::En);
        assert_eq!(choose(None, Some("zh-CN,zh;q=0.9")), Lang::Zh);
        assert_eq!(choose(Some("fr"), Some("en")), Lang::En);
        assert_eq!(choose(None, None), Lang::En);
    }
}
