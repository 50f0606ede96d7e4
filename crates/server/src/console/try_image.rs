//! "Try an image": an upload or a URL moderated by a real `ImageModeration` call of the
//! signed-in account (metered, rate-limited, recorded with the source `console`), its verdict
//! shown with the boxes of what was found and the explanation. The picture is the thumbnail the
//! history keeps (a JPEG ims made), never the upload itself, so nothing a customer sent is
//! served back to a browser.

use super::picture::Picture;
use super::texts::Lang;
use super::{act, api_error_page, multipart_change, render, Frame, Part, Visitor};
use crate::AppState;
use askama::Template;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Value};

/// The verdict as the page shows it.
struct Shown {
    request_id: String,
    suggestion: String,
    label: String,
    sub_label: String,
    score: i64,
    reason: String,
    picture: Option<Picture>,
    /// Each vote that made the verdict, one line each.
    explanation: Vec<String>,
    answer: String,
}

#[derive(Template)]
#[template(path = "console/try.html")]
struct TryPage {
    frame: Frame,
    policies: Vec<String>,
    shown: Option<Shown>,
    message: String,
}

async fn policies(state: &AppState, visitor: &Visitor) -> Vec<String> {
    let listed = act(state, visitor, "DescribeBizConfigs", json!({})).await.unwrap_or_default();
    listed["BizConfigs"]
        .as_array()
        .map(|list| list.iter().filter_map(|p| p["BizType"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

pub(super) async fn page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
) -> Response {
    let policies = policies(&state, &visitor).await;
    render(&TryPage { frame: Frame::new(lang, Some(&visitor)), policies, shown: None, message: String::new() })
}

pub(super) async fn submit(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
    form: Multipart,
) -> Response {
    let parts = match multipart_change(&visitor, lang, form).await {
        Ok(parts) => parts,
        Err(answer) => return answer,
    };
    let field = |name: &str| parts.iter().find(|p| p.name == name);
    let text = |name: &str| field(name).map(Part::text).unwrap_or_default();
    let (url, biz_type) = (text("url"), text("biz_type"));
    let upload = field("image").map(|p| p.bytes.clone()).unwrap_or_default();
    use base64::Engine;
    let mut params = if upload.is_empty() {
        json!({"FileUrl": url})
    } else {
        json!({"FileContent": base64::engine::general_purpose::STANDARD.encode(&upload)})
    };
    if !biz_type.is_empty() {
        params["BizType"] = json!(biz_type);
    }
    let policies = policies(&state, &visitor).await;
    let answer = match act(&state, &visitor, "ImageModeration", params).await {
        Ok(answer) => Value::Object(answer),
        Err(e) if e.code == protocol::Code::ServiceUnavailable => return api_error_page(lang, &e),
        Err(e) => {
            let page =
                TryPage { frame: Frame::new(lang, Some(&visitor)), policies, shown: None, message: e.message(lang) };
            return (StatusCode::BAD_REQUEST, render(&page)).into_response();
        }
    };
    let extra = super::picture::extra_of(&answer);
    let text = |k: &str| answer[k].as_str().unwrap_or_default().to_owned();
    let request_id = text("RequestId");
    let shown = Shown {
        suggestion: text("Suggestion"),
        label: text("Label"),
        sub_label: text("SubLabel"),
        score: answer["Score"].as_i64().unwrap_or(0),
        reason: text("Reason"),
        picture: Picture::of(&request_id, &answer, &extra),
        explanation: extra["Explanation"].as_array().into_iter().flatten().map(|e| e.to_string()).collect(),
        answer: serde_json::to_string_pretty(&answer).unwrap_or_default(),
        request_id,
    };
    render(&TryPage { frame: Frame::new(lang, Some(&visitor)), policies, shown: Some(shown), message: String::new() })
}
