//! The overview: today's and the last 30 days' results by suggestion and by label, the trial
//! and package images left, and the busiest policies. The numbers are in tables; Chart.js (the
//! setup's copy, served at `/console/chart.js`) draws them where it is installed.

use super::texts::Lang;
use super::{render, unavailable, Frame, Visitor};
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use engine::billing::PackageKind;
use engine::history::{Counts, Filter, Stats, SECONDS_PER_DAY};
use serde_json::json;

/// Days the overview looks back.
const DAYS: i64 = 30;

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    frame: Frame,
    today: Counts,
    month: Stats,
    /// Images left in the trial and in unexpired packages.
    trial_left: u64,
    packages_left: u64,
    /// The charts' data, JSON, for console.js (an attribute, so the page runs no inline script).
    days_json: String,
    labels_json: String,
    charts: bool,
}

pub(super) async fn page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
) -> Response {
    let (history, billing, owner) = (state.history.clone(), state.billing.clone(), visitor.account.owner());
    let now = engine::stamp::now();
    let found = tokio::task::spawn_blocking(move || {
        // Verdicts: moderation results (image-analysis calls have none).
        let today = Filter { from: Some(now - now.rem_euclid(SECONDS_PER_DAY)), ..Filter::moderation() };
        let month = Filter { from: Some(now - DAYS * SECONDS_PER_DAY), ..Filter::moderation() };
        let today = history.stats(owner, &today).map_err(|e| e.to_string())?.overview;
        let month = history.stats(owner, &month).map_err(|e| e.to_string())?;
        let packages = billing.packages(owner).map_err(|e| e.to_string())?;
        Ok::<_, String>((today, month, packages))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let (today, month, packages) = match found {
        Ok(found) => found,
        Err(reason) => return unavailable(lang, &reason),
    };
    let left = |kind: PackageKind| -> u64 {
        packages
            .iter()
            .filter(|p| p.kind == kind && p.refunded_at.is_none() && p.expires_at > now)
            .map(|p| p.remaining)
            .sum()
    };
    let days: Vec<_> = month
        .per_day
        .iter()
        .map(|(day, c)| json!({"day": day, "pass": c.pass, "review": c.review, "block": c.block}))
        .collect();
    let labels: Vec<_> =
        month.per_label.iter().map(|(label, n)| json!({"label": label.as_str(), "count": n})).collect();
    render(&OverviewPage {
        frame: Frame::new(lang, Some(&visitor)),
        today,
        trial_left: left(PackageKind::Trial),
        packages_left: left(PackageKind::Package),
        days_json: json!(days).to_string(),
        labels_json: json!(labels).to_string(),
        month,
        charts: state.console_chart.is_some(),
    })
}

/// Chart.js as the setup installed it; 404 where it is not.
pub(super) async fn chart_library(State(state): State<AppState>) -> Response {
    match &state.console_chart {
        Some(script) => (
            [
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            script.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
