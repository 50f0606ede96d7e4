//! Libraries: image libraries (samples uploaded, dropped or chosen, listed, removed) and keyword
//! libraries (words pasted, listed, searched, removed). Every change is the API's own action,
//! performed as the signed-in account ([`act`]).

use super::texts::{self, Lang};
use super::{act, api_error_page, multipart_change, render, Change, Frame, Part, Visitor};
use crate::AppState;
use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use engine::decision::Label;
use serde::Deserialize;
use serde_json::{json, Value};

/// Samples or words on one page of a library.
const PAGE: u64 = 100;

/// A library as the list shows it (from `DescribeImageLibs` / `DescribeKeywordsLibs`).
struct Shown {
    id: String,
    name: String,
    label: String,
    /// Block / Allow for an image library, Block / Review for a keyword library.
    action: String,
    count: u64,
    built_in: bool,
}

impl Shown {
    fn of(v: &Value, action: &str) -> Shown {
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        Shown {
            id: text("LibId"),
            name: text("LibName"),
            label: text("Label"),
            action: text(action),
            count: v["SampleCount"].as_u64().unwrap_or(0),
            built_in: v["BuiltIn"].as_bool().unwrap_or(false),
        }
    }
}

#[derive(Template)]
#[template(path = "console/libraries.html")]
struct LibrariesPage {
    frame: Frame,
    images: Vec<Shown>,
    keywords: Vec<Shown>,
    labels: &'static [Label],
    message: String,
}

pub(super) async fn list(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
) -> Response {
    list_page(&state, &visitor, lang, String::new()).await
}

async fn list_page(state: &AppState, visitor: &Visitor, lang: Lang, message: String) -> Response {
    let images = match act(state, visitor, "DescribeImageLibs", json!({})).await {
        Ok(found) => found["ImageLibs"].as_array().map(|l| l.iter().map(|v| Shown::of(v, "Action")).collect()),
        Err(e) => return api_error_page(lang, &e),
    };
    let keywords = match act(state, visitor, "DescribeKeywordsLibs", json!({})).await {
        Ok(found) => found["Libs"].as_array().map(|l| l.iter().map(|v| Shown::of(v, "Suggestion")).collect()),
        Err(e) => return api_error_page(lang, &e),
    };
    let status = if message.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let page = LibrariesPage {
        frame: Frame::new(lang, Some(visitor)),
        images: images.unwrap_or_default(),
        keywords: keywords.unwrap_or_default(),
        labels: &Label::ALL,
        message,
    };
    (status, render(&page)).into_response()
}

#[derive(Deserialize)]
pub(super) struct NewLibraryForm {
    name: String,
    label: String,
    /// Block or Allow (an image library), Block or Review (a keyword library).
    action: String,
}

/// Creates an image (`kind` = `images`) or keyword (`keywords`) library.
pub(super) async fn create(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Change { visitor, form, lang }: Change<NewLibraryForm>,
) -> Response {
    let (action, params) = match kind.as_str() {
        "images" => ("CreateImageLib", json!({"LibName": form.name, "Label": form.label, "Action": form.action})),
        _ => ("CreateKeywordsLib", json!({"LibName": form.name, "Label": form.label, "Suggestion": form.action})),
    };
    match act(&state, &visitor, action, params).await {
        Ok(created) => {
            let id = created["LibId"].as_str().unwrap_or_default();
            Redirect::to(&format!("/console/libraries/{kind}/{id}")).into_response()
        }
        Err(e) => list_page(&state, &visitor, lang, e.message(lang)).await,
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct LibraryQuery {
    /// From 1.
    page: String,
    /// Keyword libraries: only the words containing this.
    q: String,
}

/// One entry of a library: (id, shown text, time).
type Entry = (String, String, String);

#[derive(Template)]
#[template(path = "console/library.html")]
struct LibraryPage {
    frame: Frame,
    kind: String,
    library: Shown,
    entries: Vec<Entry>,
    total: u64,
    page: u64,
    pages: u64,
    query: String,
    message: String,
}

/// The library `id` of this kind, from its list (which is how the API names one).
async fn find(state: &AppState, visitor: &Visitor, lang: Lang, kind: &str, id: &str) -> Result<Shown, Response> {
    let (action, field, shown_action) = match kind {
        "images" => ("DescribeImageLibs", "ImageLibs", "Action"),
        _ => ("DescribeKeywordsLibs", "Libs", "Suggestion"),
    };
    let found = act(state, visitor, action, json!({})).await.map_err(|e| api_error_page(lang, &e))?;
    found[field]
        .as_array()
        .and_then(|libs| libs.iter().find(|l| l["LibId"] == id))
        .map(|l| Shown::of(l, shown_action))
        .ok_or_else(|| super::page_error(lang, StatusCode::NOT_FOUND, texts::texts(lang).not_found))
}

pub(super) async fn show(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
    Path((kind, id)): Path<(String, String)>,
    Query(query): Query<LibraryQuery>,
) -> Response {
    library_page(&state, &visitor, lang, &kind, &id, &query, String::new()).await
}

#[allow(clippy::too_many_arguments)]
async fn library_page(
    state: &AppState,
    visitor: &Visitor,
    lang: Lang,
    kind: &str,
    id: &str,
    query: &LibraryQuery,
    message: String,
) -> Response {
    let library = match find(state, visitor, lang, kind, id).await {
        Ok(library) => library,
        Err(answer) => return answer,
    };
    let page = query.page.parse::<u64>().unwrap_or(1).max(1);
    let search = query.q.trim();
    let mut params = json!({"LibId": id, "Offset": (page - 1) * PAGE, "Limit": PAGE});
    let action = if kind == "images" { "DescribeImageSamples" } else { "DescribeKeywordsSamples" };
    if kind != "images" && !search.is_empty() {
        params["Contains"] = json!(search);
    }
    let found = match act(state, visitor, action, params).await {
        Ok(found) => found,
        Err(e) => return api_error_page(lang, &e),
    };
    let time = |v: &Value| crate::history::time_text(v["CreatedAt"].as_i64().unwrap_or(0));
    let entries = found["Samples"]
        .as_array()
        .map(|samples| {
            samples
                .iter()
                .map(|s| match kind {
                    "images" => (
                        s["ImageId"].as_str().unwrap_or_default().to_owned(),
                        s["Name"].as_str().unwrap_or_default().to_owned(),
                        time(s),
                    ),
                    _ => (
                        s["SampleId"].as_str().unwrap_or_default().to_owned(),
                        s["Content"].as_str().unwrap_or_default().to_owned(),
                        time(s),
                    ),
                })
                .collect()
        })
        .unwrap_or_default();
    let total = found["TotalCount"].as_u64().unwrap_or(0);
    let status = if message.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let view = LibraryPage {
        frame: Frame::new(lang, Some(visitor)),
        kind: kind.to_owned(),
        library,
        entries,
        total,
        page,
        pages: total.div_ceil(PAGE),
        query: search.to_owned(),
        message,
    };
    (status, render(&view)).into_response()
}

/// Adds to a library: pasted words (one a line) to a keyword library, files (a multipart form,
/// the drop zone's or the file chooser's) to an image library.
pub(super) async fn add(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
    Path((kind, id)): Path<(String, String)>,
    form: Multipart,
) -> Response {
    let parts = match multipart_change(&visitor, lang, form).await {
        Ok(parts) => parts,
        Err(answer) => return answer,
    };
    use base64::Engine;
    let images: Vec<Value> = parts
        .iter()
        .filter(|p| p.name == "images" && !p.bytes.is_empty())
        .filter_map(|p| {
            let name = p.file.as_ref()?;
            Some(json!({"Name": name, "FileContent": base64::engine::general_purpose::STANDARD.encode(&p.bytes)}))
        })
        .collect();
    let words = parts.iter().find(|p| p.name == "words").map(Part::text).unwrap_or_default();
    let (action, params) = if kind == "images" {
        ("CreateImageSamples", json!({"LibId": id, "Images": images}))
    } else {
        let samples: Vec<Value> =
            words.lines().map(str::trim).filter(|w| !w.is_empty()).map(|w| json!({"Content": w})).collect();
        ("CreateKeywordsSamples", json!({"LibId": id, "Samples": samples}))
    };
    match act(&state, &visitor, action, params).await {
        Ok(_) => Redirect::to(&format!("/console/libraries/{kind}/{id}")).into_response(),
        Err(e) => library_page(&state, &visitor, lang, &kind, &id, &LibraryQuery::default(), e.message(lang)).await,
    }
}

/// Removes the chosen samples or words (`entry` fields), or the whole library (`whole`).
pub(super) async fn remove(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
    Path((kind, id)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default();
    if let Err(refused) = visitor.check_change(field("csrf")) {
        return refused.page(lang);
    }
    let entries: Vec<&str> = form.iter().filter(|(k, _)| k == "entry").map(|(_, v)| v.as_str()).collect();
    let whole = !field("whole").is_empty();
    let (action, params) = match (kind.as_str(), whole) {
        ("images", true) => ("DeleteImageLib", json!({"LibId": id})),
        ("images", false) => ("DeleteImageSamples", json!({"ImageIds": entries})),
        (_, true) => ("DeleteKeywordsLib", json!({"LibId": id})),
        (_, false) => ("DeleteLibSamples", json!({"SampleIds": entries})),
    };
    match act(&state, &visitor, action, params).await {
        Ok(_) if whole => Redirect::to("/console/libraries").into_response(),
        Ok(_) => Redirect::to(&format!("/console/libraries/{kind}/{id}")).into_response(),
        Err(e) => library_page(&state, &visitor, lang, &kind, &id, &LibraryQuery::default(), e.message(lang)).await,
    }
}
