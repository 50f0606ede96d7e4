//! Billing actions in the cloud API's style (defined in crates/protocol/api/ims/extensions.json):
//! `DescribePriceLists`, `ActivateService`, `DescribeAccountBalance`, `CreatePackage`,
//! `DescribePackages`, `RefundPackage`, `DescribeUsage`, `DescribeBills`; the check that a billed
//! call's account is in service; metering; and the settlement loop. Top-ups are the operator's
//! (`ims billing top-up`): money arrives outside the API.

use crate::actions::{self, fields, parse, Context};
use crate::error::{self, ErrorCode, OrApiError};
use crate::AppState;
use engine::accounts::{Account, AccountId};
use engine::billing::{
    bills_per, check_days, BalanceChange, Bill, BillingAccount, BillingError, BillingRepository, Money, Movement,
    Package, PackageKind, Period, Service, Standing, Usage, UsageCount,
};
use engine::stamp::now;
use protocol::ApiError;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

async fn with_billing<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&dyn BillingRepository) -> Result<T, BillingError> + Send + 'static,
) -> Result<T, ApiError> {
    let repository: Arc<dyn BillingRepository> = state.billing.clone();
    actions::blocking(move || work(repository.as_ref())).await
}

/// Billing belongs to the main account: a sub-account may only see its own usage.
fn main_only(context: &Context) -> Result<AccountId, ApiError> {
    if !context.account.is_main() {
        return Err(error::unauthorized("billing (main account only)"));
    }
    Ok(context.account.id)
}

/// Refuses a billed call when the caller's main account is not in service (not activated,
/// suspended in arrears, or destroyed): `UnauthorizedOperation.Unauthorized`.
pub async fn admit(state: &AppState, account: &Account) -> Result<(), ApiError> {
    let owner = account.owner();
    let found = with_billing(state, move |r| r.billing_account(owner)).await?;
    match state.prices.standing(found.as_ref(), now()) {
        Standing::Active => Ok(()),
        standing => Err(error::out_of_service(standing, found.map(|a| a.balance))),
    }
}

/// Meters one successfully moderated image, once per `request_id` (a task's id for a task, so
/// a task moderated again after a crash is not counted twice). The answer waits for this: a
/// failure here fails the call, which is then free.
pub async fn meter(state: &AppState, account: &Account, request_id: &str, service: Service) -> Result<(), ApiError> {
    let usage =
        Usage { request_id: request_id.into(), account: account.id, owner: account.owner(), service, at: now() };
    let calendar = state.prices.calendar;
    let source = with_billing(state, move |r| r.meter(&usage, &calendar)).await?;
    metrics::counter!("ims_metered_images_total", "service" => service.as_str(), "source" => source.as_str())
        .increment(1);
    Ok(())
}

fn status(state: &AppState, account: Option<&BillingAccount>, packages: &[Package]) -> Value {
    let at = now();
    let standing = state.prices.standing(account, at);
    let (destroy_at, since) = match standing {
        Standing::Suspended { since, destroy_at } => (Some(destroy_at), Some(since)),
        _ => (None, None),
    };
    let prepaid: u64 =
        packages.iter().filter(|p| p.refunded_at.is_none() && p.expires_at > at).map(|p| p.remaining).sum();
    json!({
        "State": state_name(standing),
        "PriceList": account.map(|a| a.catalogue.clone()),
        "Balance": account.map(|a| a.balance.decimal()),
        "Currency": account.map(|a| a.balance.currency.code()),
        "ActivatedAt": account.map(|a| a.activated_at),
        "SuspendedAt": since,
        "DestroyAt": destroy_at,
        "PrepaidImagesLeft": prepaid,
    })
}

fn state_name(standing: Standing) -> &'static str {
    match standing {
        Standing::NotActivated => "NotActivated",
        Standing::Active => "Active",
        Standing::Suspended { .. } => "Suspended",
        Standing::Destroyed => "Destroyed",
    }
}

fn package(p: &Package) -> Value {
    let status = match (p.refunded_at, p.remaining, p.expires_at > now()) {
        (Some(_), ..) => "Refunded",
        (None, 0, _) => "UsedUp",
        (None, _, false) => "Expired",
        _ => "Active",
    };
    json!({
        "PackageId": p.id,
        "Kind": if p.kind == PackageKind::Trial { "Trial" } else { "Package" },
        "Offer": p.offer,
        "Images": p.images,
        "Remaining": p.remaining,
        "Price": p.price.decimal(),
        "Currency": p.price.currency.code(),
        "PurchasedAt": p.purchased_at,
        "ExpiresAt": p.expires_at,
        "RefundedAt": p.refunded_at,
        "Status": status,
    })
}

fn count(c: &UsageCount) -> Value {
    json!({ "TrialImages": c.trial, "PackageImages": c.package, "PayAsYouGoImages": c.payg, "Images": c.total() })
}

fn bill(b: &Bill) -> Value {
    let mut value = count(&b.count);
    value["Period"] = json!(b.period);
    value["Service"] = json!(b.service.as_str());
    value["Amount"] = json!(b.amount.decimal());
    value["Currency"] = json!(b.amount.currency.code());
    value["SettledAt"] = json!(b.settled_at);
    value
}

fn balance_change(c: &BalanceChange) -> Value {
    let kind = match c.movement {
        Movement::TopUp => "TopUp",
        Movement::Purchase => "Purchase",
        Movement::Refund => "Refund",
        Movement::Settlement => "Settlement",
    };
    json!({
        "Id": c.id, "Time": c.at, "Type": kind, "Amount": c.amount.decimal(),
        "Currency": c.amount.currency.code(), "Reference": c.reference,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PriceListInput {
    name: Option<String>,
}

pub async fn price_lists(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: PriceListInput = parse(params)?;
    let prices = &context.state.prices;
    let lists = match &input.name {
        Some(name) => vec![prices.catalogues.get(name).api()?],
        None => prices.catalogues.iter().collect(),
    };
    let lists: Vec<Value> = lists
        .into_iter()
        .map(|c| {
            json!({
                "Name": c.name,
                "Description": c.description,
                "Currency": c.currency.code(),
                "Default": c.name == prices.default_catalogue,
                "Trial": c.trial.as_ref().map(|t| json!({ "Images": t.images, "Days": t.days })),
                "Packages": c.packages.iter().map(|p| json!({
                    "Offer": p.offer, "Images": p.images, "Price": p.price.decimal(), "ValidMonths": p.months,
                })).collect::<Vec<_>>(),
                "Tariffs": c.pay_as_you_go.iter().map(|(service, t)| json!({
                    "Service": service.as_str(),
                    "Period": t.period.as_str(),
                    "FreeUnits": t.free,
                    "Tiers": t.tiers.iter().map(|tier| json!({
                        "UpTo": tier.up_to,
                        "Price": Money::new(tier.price_minor, c.currency).decimal(),
                        "Per": tier.per,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "RefundDays": c.refund_days,
                "GraceDays": c.grace_days,
            })
        })
        .collect();
    Ok(fields(json!({ "PriceLists": lists })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ActivateInput {
    price_list: Option<String>,
}

pub async fn activate(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let owner = main_only(&context)?;
    let input: ActivateInput = parse(params)?;
    let prices = context.state.prices.clone();
    let name = input.price_list.unwrap_or_else(|| prices.default_catalogue.clone());
    let catalogue = prices.catalogues.get(&name).api()?.clone();
    let (account, packages) = with_billing(&context.state, move |r| {
        let account = r.activate(owner, &catalogue, now())?;
        Ok((account, r.packages(owner)?))
    })
    .await?;
    tracing::info!(account = %owner, price_list = %name, "service activated");
    Ok(fields(json!({ "Status": status(&context.state, Some(&account), &packages) })))
}

pub async fn balance(context: Context, _params: Value) -> Result<Map<String, Value>, ApiError> {
    let owner = main_only(&context)?;
    let (account, packages) =
        with_billing(&context.state, move |r| Ok((r.billing_account(owner)?, r.packages(owner)?))).await?;
    Ok(fields(json!({ "Status": status(&context.state, account.as_ref(), &packages) })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BuyInput {
    offer: String,
}

pub async fn buy(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let owner = main_only(&context)?;
    let input: BuyInput = parse(params)?;
    let prices = context.state.prices.clone();
    let bought = with_billing(&context.state, move |r| prices.buy(r, owner, &input.offer, now())).await?;
    tracing::info!(account = %owner, package = bought.id, offer = %bought.offer, "package bought");
    Ok(fields(json!({ "Package": package(&bought) })))
}

pub async fn packages(context: Context, _params: Value) -> Result<Map<String, Value>, ApiError> {
    let owner = main_only(&context)?;
    let packages = with_billing(&context.state, move |r| r.packages(owner)).await?;
    Ok(fields(json!({ "Packages": packages.iter().map(package).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RefundInput {
    package_id: i64,
}

pub async fn refund(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let owner = main_only(&context)?;
    let input: RefundInput = parse(params)?;
    let prices = context.state.prices.clone();
    let refunded = with_billing(&context.state, move |r| prices.refund(r, owner, input.package_id, now())).await?;
    tracing::info!(account = %owner, package = refunded.id, "package refunded");
    Ok(fields(json!({ "Package": package(&refunded) })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RangeInput {
    start_date: String,
    end_date: String,
    by_account: Option<bool>,
    granularity: Option<String>,
}

fn range(input: &RangeInput) -> Result<(), ApiError> {
    check_days(&input.start_date, &input.end_date).api()
}

pub async fn usage(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let input: RangeInput = parse(params)?;
    range(&input)?;
    let owner = context.account.owner();
    // A sub-account sees its own usage only.
    let only = (!context.account.is_main()).then_some(context.account.id);
    let by_account = input.by_account.unwrap_or(false) || only.is_some();
    let (start, end) = (input.start_date.clone(), input.end_date.clone());
    let rows = with_billing(&context.state, move |r| r.usage(owner, only, &start, &end)).await?;
    let mut grouped: BTreeMap<(String, Service, Option<AccountId>), UsageCount> = BTreeMap::new();
    for row in rows {
        let entry = grouped.entry((row.day, row.service, by_account.then_some(row.account))).or_default();
        entry.trial += row.count.trial;
        entry.package += row.count.package;
        entry.payg += row.count.payg;
    }
    let usage: Vec<Value> = grouped
        .iter()
        .map(|((day, service, account), c)| {
            let mut value = count(c);
            value["Date"] = json!(day);
            value["Service"] = json!(service.as_str());
            if let Some(account) = account {
                value["AccountId"] = json!(account.0);
            }
            value
        })
        .collect();
    Ok(fields(json!({ "Usage": usage })))
}

pub async fn bills(context: Context, params: Value) -> Result<Map<String, Value>, ApiError> {
    let owner = main_only(&context)?;
    let input: RangeInput = parse(params)?;
    range(&input)?;
    let granularity = match input.granularity.as_deref().unwrap_or("Day") {
        "Day" => Period::Day,
        "Month" => Period::Month,
        other => return Err(BillingError::Invalid(format!("Granularity is Day or Month, not `{other}`")).api_error()),
    };
    let (start, end) = (input.start_date.clone(), input.end_date.clone());
    let calendar = context.state.prices.calendar;
    let (account, bills, changes) = with_billing(&context.state, move |r| {
        let account = r.billing_account(owner)?.ok_or(BillingError::NotActivated(owner))?;
        let (from, to) = calendar.span(&start, &end)?;
        Ok((account, r.bills(owner, &start, &end)?, r.balance_changes(owner, from, to - 1)?))
    })
    .await?;
    let bills = bills_per(granularity, bills);
    let total = Money::new(bills.iter().map(|b| b.amount.minor).sum(), account.balance.currency);
    Ok(fields(json!({
        "Bills": bills.iter().map(bill).collect::<Vec<_>>(),
        "Total": total.decimal(),
        "Currency": total.currency.code(),
        "BalanceChanges": changes.iter().map(balance_change).collect::<Vec<_>>(),
    })))
}

/// Settles closed days and months every minute (the first run at start), so a day is billed
/// within a minute of `billing.settle_at`.
pub fn spawn_settlement(state: AppState) {
    tokio::spawn(async move {
        loop {
            let (prices, repository) = (state.prices.clone(), state.billing.clone());
            match tokio::task::spawn_blocking(move || repository.settle(&prices, now())).await {
                Ok(Ok(done)) => {
                    for bill in &done.bills {
                        tracing::info!(account = %bill.owner, period = %bill.period, service = bill.service.as_str(), amount = %bill.amount, "settled");
                    }
                    for owner in &done.suspended {
                        tracing::warn!(account = %owner, "suspended: in arrears after settlement");
                    }
                    for owner in &done.destroyed {
                        tracing::warn!(account = %owner, "activation destroyed: arrears not cleared in time");
                    }
                }
                Ok(Err(error)) => tracing::error!(%error, "settlement failed"),
                Err(_) => tracing::error!("settlement panicked"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        }
    });
}
