//! The review queue (beyond the cloud's console): the results the machine sent to Review that
//! nobody has corrected yet, one at a time, newest first; Pass, Block or Skip with a key, each
//! decision stored as a correction, the one `CreateImsCorrection` makes.

use super::texts::{self, Lang};
use super::{act, render, unavailable, Change, Frame, Visitor};
use crate::history::time_text;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use engine::decision::{Label, Suggestion};
use engine::history::{Filter, Record};
use serde::Deserialize;

/// What waits in the queue: Review, not corrected.
fn waiting() -> Filter {
    Filter { suggestion: Some(Suggestion::Review), corrected: Some(false), ..Filter::default() }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct QueueQuery {
    /// How many waiting results were skipped (the position in the queue, from 0).
    skipped: String,
}

#[derive(Template)]
#[template(path = "console/review.html")]
struct ReviewPage {
    frame: Frame,
    record: Option<Record>,
    time: String,
    /// Results waiting, this one included.
    waiting: u64,
    skipped: u64,
    /// The label a Block gives: the machine's, or Porn where it found none.
    block_label: &'static str,
}

pub(super) async fn next(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
    Query(query): Query<QueueQuery>,
) -> Response {
    let skipped = query.skipped.parse::<u64>().unwrap_or(0);
    let (history, owner) = (state.history.clone(), visitor.account.owner());
    let found = tokio::task::spawn_blocking(move || history.results(owner, &waiting(), skipped, 1))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let (mut records, waiting) = match found {
        Ok(found) => found,
        Err(reason) => return unavailable(lang, &reason),
    };
    let record = records.pop();
    let block_label = match record.as_ref().map(|r| r.label) {
        Some(Label::Normal) | None => Label::Porn,
        Some(label) => label,
    };
    render(&ReviewPage {
        frame: Frame::new(lang, Some(&visitor)),
        time: record.as_ref().map(|r| time_text(r.created_at)).unwrap_or_default(),
        record,
        waiting,
        skipped,
        block_label: block_label.as_str(),
    })
}

#[derive(Deserialize)]
pub(super) struct DecisionForm {
    suggestion: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    skipped: String,
}

/// Stores a decision as a correction, then shows the next result at the same place in the
/// queue (the decided one has left it).
pub(super) async fn decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Change { visitor, form, lang }: Change<DecisionForm>,
) -> Response {
    if !matches!(Suggestion::parse(&form.suggestion), Some(Suggestion::Pass | Suggestion::Block)) {
        return super::page_error(lang, StatusCode::BAD_REQUEST, texts::texts(lang).bad_filter);
    }
    let params = super::results::correction(&id, &form.suggestion, &form.label, texts::texts(lang).review_note, "");
    match act(&state, &visitor, "CreateImsCorrection", params).await {
        Ok(_) => {
            let skipped = form.skipped.parse::<u64>().unwrap_or(0);
            Redirect::to(&format!("/console/review?skipped={skipped}")).into_response()
        }
        Err(e) => super::api_error_page(lang, &e),
    }
}
