//! Policies: the list, a new one, and the editor (thresholds per label and model, votes,
//! scenes, observe-only, OCR, ads, libraries) with a preview of what a change would do: the
//! policy's recent results judged again under it, from their stored observations, by the code
//! a live call runs. Saving and creating go through the API's own checks (`policies.rs`).

use super::texts::{self, Lang};
use super::{act, render, unavailable, Change, Frame, Visitor};
use crate::policies::modified;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use engine::decision::Suggestion;
use engine::history::{Filter, Preview, SECONDS_PER_DAY};
use engine::policy::{Policy, MODEL_LABELS};
use serde::Deserialize;
use serde_json::{json, Value};

/// Days of a policy's results a preview judges again, and at most how many.
const PREVIEW_DAYS: i64 = 7;
const PREVIEW_RESULTS: u64 = 1000;

#[derive(Template)]
#[template(path = "console/policies.html")]
struct PoliciesPage {
    frame: Frame,
    policies: Vec<Policy>,
    message: String,
}

pub(super) async fn list(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
) -> Response {
    list_page(&state, &visitor, lang, String::new(), StatusCode::OK).await
}

async fn list_page(state: &AppState, visitor: &Visitor, lang: Lang, message: String, status: StatusCode) -> Response {
    let (policies, owner) = (state.policies.clone(), visitor.account.owner());
    let policies = match tokio::task::spawn_blocking(move || policies.policies(owner)).await {
        Ok(Ok(list)) => list,
        Ok(Err(e)) => return unavailable(lang, &e.to_string()),
        Err(e) => return unavailable(lang, &e.to_string()),
    };
    (status, render(&PoliciesPage { frame: Frame::new(lang, Some(visitor)), policies, message })).into_response()
}

#[derive(Deserialize)]
pub(super) struct NewPolicyForm {
    biz_type: String,
    #[serde(default)]
    name: String,
}

/// A new policy with the default's settings, then to its editor.
pub(super) async fn create(
    State(state): State<AppState>,
    Change { visitor, form, lang }: Change<NewPolicyForm>,
) -> Response {
    let params = json!({"BizType": form.biz_type.trim(), "Name": form.name.trim()});
    match act(&state, &visitor, "CreateBizConfig", params).await {
        Ok(_) => Redirect::to(&format!("/console/policies/{}", form.biz_type.trim())).into_response(),
        Err(e) => list_page(&state, &visitor, lang, e.message(lang), StatusCode::BAD_REQUEST).await,
    }
}

/// One library a policy can apply: (id, name, applied).
type LibraryChoice = (String, String, bool);

#[derive(Template)]
#[template(path = "console/policy.html")]
struct PolicyPage {
    frame: Frame,
    policy: Policy,
    scenes: Vec<(&'static str, bool)>,
    image_libs: Vec<LibraryChoice>,
    keyword_libs: Vec<LibraryChoice>,
    ad_suggestions: [Suggestion; 2],
    preview: Option<Preview>,
    /// The preview's change in Block and in Review results, signed ("+3", "-2", "0").
    more_block: String,
    more_review: String,
    message: String,
}

fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

/// The page of `policy`, with the account's libraries to choose from.
async fn policy_page(
    state: &AppState,
    visitor: &Visitor,
    lang: Lang,
    policy: Policy,
    preview: Option<Preview>,
    message: String,
) -> Response {
    let (libraries, keywords, owner) = (state.libraries.clone(), state.keywords.clone(), visitor.account.owner());
    let built_in: Vec<(String, String)> =
        state.keyword_matcher.built_in().iter().map(|(l, _)| (l.lib_id.clone(), l.lib_name.clone())).collect();
    let found = tokio::task::spawn_blocking(move || {
        let images = libraries.libraries(owner).map_err(|e| e.to_string())?;
        let words = keywords.keyword_libraries(owner).map_err(|e| e.to_string())?;
        Ok::<_, String>((images, words))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let (images, words) = match found {
        Ok(found) => found,
        Err(reason) => return unavailable(lang, &reason),
    };
    let chosen =
        |applied: &Option<Vec<String>>, id: &str| applied.as_ref().is_some_and(|ids| ids.iter().any(|i| i == id));
    let image_libs = images
        .into_iter()
        .map(|l| (chosen(&policy.image_libs, &l.lib_id), l))
        .map(|(c, l)| (l.lib_id, l.lib_name, c))
        .collect();
    let keyword_libs = words
        .into_iter()
        .map(|l| (l.lib_id, l.lib_name))
        .chain(built_in)
        .map(|(id, name)| (chosen(&policy.keyword_libs, &id), id, name))
        .map(|(c, id, name)| (id, name, c))
        .collect();
    let scenes = MODEL_LABELS.iter().map(|l| (l.as_str(), policy.scenes.contains(l))).collect();
    let change = |s| signed(preview.as_ref().map_or(0, |p: &Preview| p.change(s)));
    render(&PolicyPage {
        frame: Frame::new(lang, Some(visitor)),
        more_block: change(Suggestion::Block),
        more_review: change(Suggestion::Review),
        scenes,
        image_libs,
        keyword_libs,
        ad_suggestions: [Suggestion::Review, Suggestion::Block],
        policy,
        preview,
        message,
    })
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct PolicyQuery {
    saved: Option<String>,
}

pub(super) async fn edit(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
    Path(biz_type): Path<String>,
    Query(query): Query<PolicyQuery>,
) -> Response {
    let (policies, owner) = (state.policies.clone(), visitor.account.owner());
    let found = tokio::task::spawn_blocking(move || policies.policy(owner, &biz_type)).await;
    let policy = match found {
        Ok(Ok(Some(policy))) => policy,
        Ok(Ok(None)) => return super::page_error(lang, StatusCode::NOT_FOUND, texts::texts(lang).not_found),
        Ok(Err(e)) => return unavailable(lang, &e.to_string()),
        Err(e) => return unavailable(lang, &e.to_string()),
    };
    let message = if query.saved.is_some() { texts::texts(lang).policy_saved.to_owned() } else { String::new() };
    policy_page(&state, &visitor, lang, policy, None, message).await
}

/// The editor's form as a `ModifyBizConfig` input: every field given, so the result is exactly
/// what the form shows. A field that does not parse is sent as it is, for the API's checks to
/// name.
fn biz_config(biz_type: &str, current: &Policy, form: &[(String, String)]) -> Value {
    let one = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
    let all = |name: &str| form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    let has = |name: &str| one(name).is_some();
    let number = |name: &str| -> Value {
        match one(name) {
            Some(text) => text.parse::<i64>().map_or_else(|_| json!(text), |n| json!(n)),
            None => Value::Null,
        }
    };
    let libraries = |name: &str| -> Value {
        let chosen = all(name);
        if chosen.contains(&"*") {
            json!(["*"])
        } else {
            json!(chosen)
        }
    };
    let thresholds: Vec<Value> = current
        .thresholds
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"Label": t.label.as_str(), "Model": t.model,
                   "Review": number(&format!("review_{i}")), "Block": number(&format!("block_{i}"))})
        })
        .collect();
    json!({
        "BizType": biz_type,
        "Name": one("name").unwrap_or_default(),
        "Scenes": all("scene"),
        "Votes": number("votes"),
        "ObserveOnly": has("observe_only"),
        "Ocr": has("ocr"),
        "Faces": has("faces"),
        "Thresholds": thresholds,
        "ImageLibs": libraries("image_lib"),
        "KeywordLibs": libraries("keyword_lib"),
        "Ads": {"QrCode": has("ad_qr"), "Url": has("ad_url"), "Phone": has("ad_phone"),
                "Contact": has("ad_contact"), "Suggestion": one("ad_suggestion").unwrap_or("Review")},
    })
}

/// Previews (`action=preview`) or saves (`action=save`) the editor's form.
pub(super) async fn submit(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
    Path(biz_type): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default();
    let saving = field("action") == "save";
    // A preview changes nothing: the CSRF token is enough. Saving needs the grant too.
    let checked = if saving { visitor.check_change(field("csrf")) } else { visitor.check_csrf(field("csrf")) };
    if let Err(refused) = checked {
        return refused.page(lang);
    }
    let (policies, owner, lookup) = (state.policies.clone(), visitor.account.owner(), biz_type.clone());
    let current = match tokio::task::spawn_blocking(move || policies.policy(owner, &lookup)).await {
        Ok(Ok(Some(policy))) => policy,
        Ok(Ok(None)) => return super::page_error(lang, StatusCode::NOT_FOUND, texts::texts(lang).not_found),
        Ok(Err(e)) => return unavailable(lang, &e.to_string()),
        Err(e) => return unavailable(lang, &e.to_string()),
    };
    let params = biz_config(&biz_type, &current, &form);
    if saving {
        return match act(&state, &visitor, "ModifyBizConfig", params).await {
            Ok(_) => Redirect::to(&format!("/console/policies/{biz_type}?saved=1")).into_response(),
            Err(e) => {
                let page = policy_page(&state, &visitor, lang, current, None, e.message(lang)).await;
                (StatusCode::BAD_REQUEST, page).into_response()
            }
        };
    }
    let changed = match modified(&state, &visitor.account, params).await {
        Ok(policy) => policy,
        Err(e) => {
            let page = policy_page(&state, &visitor, lang, current, None, e.message(lang)).await;
            return (StatusCode::BAD_REQUEST, page).into_response();
        }
    };
    let (history, judged) = (state.history.clone(), changed.clone());
    let filter = Filter {
        biz_type: Some(biz_type.clone()),
        from: Some(engine::stamp::now() - PREVIEW_DAYS * SECONDS_PER_DAY),
        ..Filter::moderation()
    };
    let preview = tokio::task::spawn_blocking(move || {
        history.results(owner, &filter, 0, PREVIEW_RESULTS).map(|(records, _)| Preview::of(&judged, &records))
    })
    .await;
    match preview {
        Ok(Ok(preview)) => policy_page(&state, &visitor, lang, changed, Some(preview), String::new()).await,
        Ok(Err(e)) => unavailable(lang, &e.to_string()),
        Err(e) => unavailable(lang, &e.to_string()),
    }
}
