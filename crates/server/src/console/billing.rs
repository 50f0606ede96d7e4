//! Billing (main accounts): the balance and state, packages (bought and refunded with a
//! confirmation), usage per day as a chart, and bills. Everything is the billing actions'
//! answers (`DescribeAccountBalance`, `DescribePackages`, `DescribeUsage`, `DescribeBills`,
//! `DescribePriceLists`, `CreatePackage`, `RefundPackage`) for the signed-in account.

use super::texts::{self, Lang};
use super::{act, api_error_page, render, Change, Frame, Visitor};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Days of usage and bills shown.
const DAYS: i64 = 30;

/// A row as the page shows it: its cells, already text.
type Cells = Vec<String>;

/// A package the account can buy: (offer, images, price, months).
type Offer = (String, u64, String, u64);

#[derive(Template)]
#[template(path = "console/billing.html")]
struct BillingPage {
    frame: Frame,
    state: String,
    balance: String,
    currency: String,
    price_list: String,
    prepaid_left: u64,
    /// (id, cells, refundable) of each package.
    packages: Vec<(i64, Cells, bool)>,
    offers: Vec<Offer>,
    /// Per day: (date, trial, package, pay as you go).
    usage: Vec<(String, u64, u64, u64)>,
    usage_json: String,
    bills: Vec<Cells>,
    bills_total: String,
    /// A change waiting for its confirmation: (what, the form's fields).
    confirm: Option<(String, Vec<(String, String)>)>,
    message: String,
    charts: bool,
}

fn text(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn day(seconds: i64) -> String {
    crate::history::time_text(seconds).get(..10).unwrap_or_default().to_owned()
}

/// Everything the page shows, each from its action; the first error stops it.
async fn load(state: &AppState, visitor: &Visitor) -> Result<[Map<String, Value>; 5], protocol::ApiError> {
    let today = chrono::Utc::now().date_naive();
    let start = (today - chrono::Duration::days(DAYS - 1)).format("%Y-%m-%d").to_string();
    let end = today.format("%Y-%m-%d").to_string();
    let range = json!({"StartDate": start, "EndDate": end});
    Ok([
        act(state, visitor, "DescribeAccountBalance", json!({})).await?,
        act(state, visitor, "DescribePackages", json!({})).await?,
        act(state, visitor, "DescribeUsage", range.clone()).await?,
        act(state, visitor, "DescribeBills", range).await?,
        act(state, visitor, "DescribePriceLists", json!({})).await?,
    ])
}

async fn billing_page(
    state: &AppState,
    visitor: &Visitor,
    lang: Lang,
    confirm: Option<(String, Vec<(String, String)>)>,
    message: String,
) -> Response {
    let [balance, packages, usage, bills, lists] = match load(state, visitor).await {
        Ok(loaded) => loaded,
        Err(e) => return api_error_page(lang, &e),
    };
    let (status, bills) = (&balance["Status"], Value::Object(bills));
    let price_list = text(status, "PriceList");
    let packages = packages["Packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let cells = vec![
                text(p, "PackageId"),
                text(p, "Kind"),
                text(p, "Offer"),
                format!("{} / {}", text(p, "Remaining"), text(p, "Images")),
                format!("{} {}", text(p, "Price"), text(p, "Currency")),
                day(p["PurchasedAt"].as_i64().unwrap_or(0)),
                day(p["ExpiresAt"].as_i64().unwrap_or(0)),
                text(p, "Status"),
            ];
            let refundable = p["Kind"] == "Package" && p["Status"] == "Active";
            (p["PackageId"].as_i64().unwrap_or(0), cells, refundable)
        })
        .collect();
    let offers = lists["PriceLists"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["Name"].as_str() == Some(price_list.as_str()))
        .flat_map(|l| l["Packages"].as_array().cloned().unwrap_or_default())
        .map(|o| {
            (
                text(&o, "Offer"),
                o["Images"].as_u64().unwrap_or(0),
                text(&o, "Price"),
                o["ValidMonths"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let mut per_day: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for row in usage["Usage"].as_array().into_iter().flatten() {
        let entry = per_day.entry(text(row, "Date")).or_default();
        let n = |k: &str| row[k].as_u64().unwrap_or(0);
        *entry = (entry.0 + n("TrialImages"), entry.1 + n("PackageImages"), entry.2 + n("PayAsYouGoImages"));
    }
    let usage: Vec<(String, u64, u64, u64)> = per_day.into_iter().map(|(d, (t, p, g))| (d, t, p, g)).collect();
    let usage_json = json!(usage
        .iter()
        .map(|(d, t, p, g)| json!({"day": d, "trial": t, "package": p, "payg": g}))
        .collect::<Vec<_>>())
    .to_string();
    let bills_shown = bills["Bills"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            vec![
                text(b, "Period"),
                text(b, "Service"),
                text(b, "PayAsYouGoImages"),
                format!("{} {}", text(b, "Amount"), text(b, "Currency")),
            ]
        })
        .collect();
    let page = BillingPage {
        frame: Frame::new(lang, Some(visitor)),
        state: text(status, "State"),
        balance: text(status, "Balance"),
        currency: text(status, "Currency"),
        prepaid_left: status["PrepaidImagesLeft"].as_u64().unwrap_or(0),
        price_list,
        packages,
        offers,
        usage,
        usage_json,
        bills: bills_shown,
        bills_total: format!("{} {}", text(&bills, "Total"), text(&bills, "Currency")),
        confirm,
        message,
        charts: state.console_chart.is_some(),
    };
    render(&page)
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct BillingQuery {
    done: String,
}

pub(super) async fn page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
    Query(query): Query<BillingQuery>,
) -> Response {
    let t = texts::texts(lang);
    let message = match query.done.as_str() {
        "bought" => t.package_bought.to_owned(),
        "refunded" => t.package_refunded.to_owned(),
        _ => String::new(),
    };
    billing_page(&state, &visitor, lang, None, message).await
}

#[derive(Deserialize)]
pub(super) struct ChangeForm {
    /// `buy` (with `offer`) or `refund` (with `package_id`).
    change: String,
    #[serde(default)]
    offer: String,
    #[serde(default)]
    package_id: String,
    /// Set by the confirmation's button: without it, the page asks first.
    #[serde(default)]
    confirmed: String,
}

/// Buys or refunds a package: the first POST shows what it will do and asks; the confirmed
/// one does it.
pub(super) async fn change(
    State(state): State<AppState>,
    Change { visitor, form, lang }: Change<ChangeForm>,
) -> Response {
    let t = texts::texts(lang);
    let (action, params, question, done) = match form.change.as_str() {
        "buy" => ("CreatePackage", json!({"Offer": form.offer}), format!("{} {}", t.confirm_buy, form.offer), "bought"),
        "refund" => match form.package_id.parse::<i64>() {
            Ok(id) => ("RefundPackage", json!({"PackageId": id}), format!("{} {id}", t.confirm_refund), "refunded"),
            Err(_) => return super::page_error(lang, StatusCode::BAD_REQUEST, t.not_found),
        },
        _ => return super::page_error(lang, StatusCode::BAD_REQUEST, t.not_found),
    };
    if form.confirmed.is_empty() {
        let fields = vec![
            ("change".to_owned(), form.change),
            ("offer".to_owned(), form.offer),
            ("package_id".to_owned(), form.package_id),
        ];
        return billing_page(&state, &visitor, lang, Some((question, fields)), String::new()).await;
    }
    match act(&state, &visitor, action, params).await {
        Ok(_) => Redirect::to(&format!("/console/billing?done={done}")).into_response(),
        Err(e) => {
            let page = billing_page(&state, &visitor, lang, None, e.message(lang)).await;
            (StatusCode::BAD_REQUEST, page).into_response()
        }
    }
}
