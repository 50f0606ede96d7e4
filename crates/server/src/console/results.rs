//! The machine-review results: the list with the cloud console's columns and filters, one
//! result in detail with the answer as sent, its thumbnail, and its correction.

use super::picture::{extra_of, scores, Picture, ScoreRow};
use super::texts::{self, Lang};
use super::{act, page_error, render, unavailable, Change, Frame, Visitor};
use crate::history::time_text;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use engine::billing::Service;
use engine::decision::{Label, Suggestion};
use engine::history::{Filter, HistoryError, Record, SECONDS_PER_DAY};
use engine::policy::Policy;
use serde::Deserialize;
use serde_json::json;

/// Results on one page of the list.
pub const PAGE_SIZE: u64 = 50;

/// The list's filters as the form sends them; an empty field does not filter.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ResultsQuery {
    from: String,
    to: String,
    policy: String,
    suggestion: String,
    label: String,
    data_id: String,
    corrected: String,
    /// A service's results (moderation or an image-analysis action); empty: every service.
    service: String,
    /// From 1; anything else is the first page.
    page: String,
}

impl ResultsQuery {
    /// The history filter, or which field is wrong.
    fn filter(&self) -> Result<Filter, &'static str> {
        let day = |text: &str| -> Result<Option<i64>, &'static str> {
            if text.is_empty() {
                return Ok(None);
            }
            let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| "date")?;
            Ok(Some(date.and_hms_opt(0, 0, 0).ok_or("date")?.and_utc().timestamp()))
        };
        let named =
            |text: &str, parse: fn(&str) -> bool| if text.is_empty() || parse(text) { Ok(()) } else { Err("value") };
        named(&self.suggestion, |s| Suggestion::parse(s).is_some())?;
        named(&self.label, |s| Label::parse(s).is_some())?;
        named(&self.service, |s| Service::parse(s).is_some())?;
        let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_owned());
        Ok(Filter {
            from: day(&self.from)?,
            // The whole day the form names.
            to: day(&self.to)?.map(|start| start + SECONDS_PER_DAY),
            biz_type: non_empty(&self.policy),
            suggestion: Suggestion::parse(&self.suggestion),
            label: Label::parse(&self.label),
            data_id: non_empty(&self.data_id),
            corrected: match self.corrected.as_str() {
                "yes" => Some(true),
                "no" => Some(false),
                _ => None,
            },
            services: Service::parse(&self.service).into_iter().collect(),
            ..Filter::default()
        })
    }
}

/// One row of the list, as shown.
struct Row {
    id: String,
    data_id: String,
    service: &'static str,
    policy: String,
    label: &'static str,
    sub_label: String,
    suggestion: &'static str,
    time: String,
    url: String,
    hits: String,
    text: String,
    correction: String,
    has_thumbnail: bool,
}

impl Row {
    fn of(r: &Record) -> Row {
        Row {
            id: r.request_id.clone(),
            data_id: r.data_id.clone(),
            service: r.service.as_str(),
            policy: r.biz_type.clone(),
            label: r.label.as_str(),
            sub_label: r.sub_label.clone(),
            suggestion: r.suggestion.as_str(),
            time: time_text(r.created_at),
            url: r.file_url.clone(),
            hits: r.hits.join(", "),
            text: r.text.chars().take(80).collect(),
            correction: r.correction.as_ref().map(|c| format!("{} / {}", c.suggestion, c.label)).unwrap_or_default(),
            has_thumbnail: r.thumbnail.is_some(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/results.html")]
struct ResultsPage {
    frame: Frame,
    query: ResultsQuery,
    suggestions: &'static [Suggestion],
    labels: &'static [Label],
    services: &'static [Service],
    rows: Vec<Row>,
    total: u64,
    page: u64,
    pages: u64,
    previous: Option<String>,
    next: Option<String>,
    message: &'static str,
}

/// The list's link to another page: the same filters, that page.
fn page_link(raw_query: Option<&str>, page: u64) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes()) {
        if k != "page" && k != "lang" {
            query.append_pair(&k, &v);
        }
    }
    query.append_pair("page", &page.to_string());
    format!("/console/results?{}", query.finish())
}

pub(super) async fn list(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
    RawQuery(raw_query): RawQuery,
    Query(query): Query<ResultsQuery>,
) -> Response {
    let page = query.page.parse::<u64>().unwrap_or(1).max(1);
    let mut view = ResultsPage {
        frame: Frame::new(lang, Some(&visitor)),
        query,
        suggestions: &Suggestion::ALL,
        labels: &Label::ALL,
        services: &Service::ALL,
        rows: Vec::new(),
        total: 0,
        page,
        pages: 0,
        previous: None,
        next: None,
        message: "",
    };
    let filter = match view.query.filter() {
        Ok(filter) => filter,
        Err(_) => {
            view.message = texts::texts(lang).bad_filter;
            return (StatusCode::BAD_REQUEST, render(&view)).into_response();
        }
    };
    let (history, owner) = (state.history.clone(), visitor.account.owner());
    let offset = (page - 1).saturating_mul(PAGE_SIZE);
    let found = tokio::task::spawn_blocking(move || history.results(owner, &filter, offset, PAGE_SIZE))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let (records, total) = match found {
        Ok(found) => found,
        Err(reason) => return unavailable(lang, &reason),
    };
    view.rows = records.iter().map(Row::of).collect();
    view.total = total;
    view.pages = total.div_ceil(PAGE_SIZE);
    view.previous = (page > 1).then(|| page_link(raw_query.as_deref(), page - 1));
    view.next = (page < view.pages).then(|| page_link(raw_query.as_deref(), page + 1));
    render(&view)
}

/// One stored result of the visitor's main account, or the page to send instead.
async fn record(state: &AppState, visitor: &Visitor, lang: Lang, id: String) -> Result<Record, Response> {
    let (history, owner) = (state.history.clone(), visitor.account.owner());
    match tokio::task::spawn_blocking(move || history.result(owner, &id)).await {
        Ok(Ok(record)) => Ok(record),
        Ok(Err(HistoryError::NotFound(_))) => {
            Err(page_error(lang, StatusCode::NOT_FOUND, texts::texts(lang).not_found))
        }
        Ok(Err(e)) => Err(unavailable(lang, &e.to_string())),
        Err(e) => Err(unavailable(lang, &e.to_string())),
    }
}

#[derive(Template)]
#[template(path = "console/result.html")]
struct ResultPage {
    frame: Frame,
    row: Row,
    record: Record,
    /// The answer as sent, indented.
    answer: String,
    correction: Option<(String, String)>,
    suggestions: &'static [Suggestion],
    labels: &'static [Label],
    /// The image libraries a correction can file the image in: (id, name).
    libraries: Vec<(String, String)>,
    message: String,
    picture: Option<Picture>,
    /// Each model's score beside the thresholds of the result's policy as it is now.
    scores: Vec<ScoreRow>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct DetailQuery {
    saved: Option<String>,
}

pub(super) async fn detail(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
    Path(id): Path<String>,
    Query(query): Query<DetailQuery>,
) -> Response {
    let record = match record(&state, &visitor, lang, id).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let (libraries, policies, owner) = (state.libraries.clone(), state.policies.clone(), visitor.account.owner());
    let biz_type = record.biz_type.clone();
    let found = tokio::task::spawn_blocking(move || {
        let libraries = libraries.libraries(owner).map_err(|e| e.to_string())?;
        // A policy deleted since: its scores are shown without thresholds.
        let policy = engine::policy::resolve(policies.as_ref(), owner, &biz_type)
            .unwrap_or_else(|_| Policy { thresholds: Vec::new(), ..Policy::default() });
        Ok::<_, String>((libraries, policy))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let (libraries, policy) = match found {
        Ok((list, policy)) => (list.into_iter().map(|l| (l.lib_id, l.lib_name)).collect(), policy),
        Err(reason) => return unavailable(lang, &reason),
    };
    let sent: serde_json::Value = serde_json::from_str(&record.response).unwrap_or_default();
    let extra = extra_of(&sent);
    let (picture, scores) = (Picture::of(&record.request_id, &sent, &extra), scores(&extra, &policy));
    let answer = serde_json::from_str::<serde_json::Value>(&record.response)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| record.response.clone());
    let t = texts::texts(lang);
    let saved = query.saved.is_some();
    let page = ResultPage {
        frame: Frame::new(lang, Some(&visitor)),
        row: Row::of(&record),
        answer,
        correction: record.correction.as_ref().map(|c| {
            (format!("{} / {}", c.suggestion, c.label), format!("{} {} {}, {}", t.by, c.by, c.note, time_text(c.at)))
        }),
        record,
        suggestions: &Suggestion::ALL,
        labels: &Label::ALL,
        libraries,
        message: if saved { t.saved.to_owned() } else { String::new() },
        picture,
        scores,
    };
    render(&page)
}

/// The small JPEG kept with a result.
pub(super) async fn thumbnail(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Response {
    match record(&state, &visitor, lang, id).await {
        Ok(Record { thumbnail: Some(jpeg), .. }) => {
            ([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, max-age=3600")], jpeg)
                .into_response()
        }
        Ok(_) => page_error(lang, StatusCode::NOT_FOUND, texts::texts(lang).not_found),
        Err(answer) => answer,
    }
}

#[derive(Deserialize)]
pub(super) struct CorrectionForm {
    suggestion: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    lib_id: String,
}

pub(super) async fn correct(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Change { visitor, form, lang }: Change<CorrectionForm>,
) -> Response {
    let params = correction(&id, &form.suggestion, &form.label, &form.note, &form.lib_id);
    match act(&state, &visitor, "CreateImsCorrection", params).await {
        Ok(_) => Redirect::to(&format!("/console/results/{}?saved=1", encode(&id))).into_response(),
        Err(e) => super::api_error_page(lang, &e),
    }
}

/// `CreateImsCorrection`'s parameters from a form's fields; an empty label or library is none.
pub(super) fn correction(id: &str, suggestion: &str, label: &str, note: &str, lib_id: &str) -> serde_json::Value {
    let mut params = json!({"ContentId": id, "Suggestion": suggestion, "Note": note});
    if !label.is_empty() {
        params["Label"] = json!(label);
    }
    if !lib_id.is_empty() {
        params["LibId"] = json!(lib_id);
    }
    params
}

/// A path segment, percent-encoded.
fn encode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_a_filter_and_bad_values_are_named() {
        let query = ResultsQuery {
            from: "2026-12-01".into(),
            to: "2026-12-02".into(),
            suggestion: "Block".into(),
            corrected: "no".into(),
            ..ResultsQuery::default()
        };
        let filter = query.filter().unwrap();
        assert_eq!(filter.from, Some(1_796_083_200));
        assert_eq!(filter.to, Some(1_796_083_200 + 2 * SECONDS_PER_DAY), "the whole last day");
        assert_eq!(filter.suggestion, Some(Suggestion::Block));
        assert_eq!(filter.corrected, Some(false));
        assert_eq!(filter.label, None);
        assert!(ResultsQuery { from: "yesterday".into(), ..ResultsQuery::default() }.filter().is_err());
        assert!(ResultsQuery { label: "Nice".into(), ..ResultsQuery::default() }.filter().is_err());
    }

    #[test]
    fn page_links_keep_the_filters() {
        assert_eq!(
            page_link(Some("suggestion=Block&page=3&data_id=a%20b&lang=zh"), 4),
            "/console/results?suggestion=Block&data_id=a+b&page=4"
        );
        assert_eq!(page_link(None, 2), "/console/results?page=2");
    }
}
