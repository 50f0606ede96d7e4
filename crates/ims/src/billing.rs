//! `ims billing`: the operator's verbs for activation, top-ups, packages, refunds, balances,
//! usage, bills and settlement. They work on the database directly, like the other verbs, so a
//! running server sees their effect at its next request.

use crate::admin::Output;
use anyhow::Context;
use clap::Subcommand;
use engine::accounts::{AccountId, AccountRepository};
use engine::billing::{bills_per, check_days, Billing, BillingRepository, Money, Period};
use engine::stamp::now;
use serde_json::json;

#[derive(Subcommand)]
pub enum BillingCommand {
    /// Show the price lists (the trial, packages and pay-as-you-go tariffs).
    PriceLists {
        #[command(flatten)]
        output: Output,
    },
    /// Activate the service for a main account (again, after its activation was destroyed).
    Activate {
        account: i64,
        /// The price list (default: `billing.default_catalogue`).
        #[arg(long)]
        price_list: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Record a payment: credit the balance (in the account's currency, e.g. `100` or `99.50`).
    TopUp {
        account: i64,
        amount: String,
        #[command(flatten)]
        output: Output,
    },
    /// Buy a package of the account's price list with its balance.
    Buy {
        account: i64,
        offer: String,
        #[command(flatten)]
        output: Output,
    },
    /// Refund a package unused since its purchase, within the list's refund window.
    Refund {
        account: i64,
        package: i64,
        #[command(flatten)]
        output: Output,
    },
    /// The balance, the service state and the packages.
    Status {
        account: i64,
        #[command(flatten)]
        output: Output,
    },
    /// Images per day and service (sub-accounts roll up to their main account).
    Usage {
        account: i64,
        /// First day, YYYY-MM-DD (default: the first of this month).
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (default: today).
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Settled bills per day (or per month with `--monthly`).
    Bills {
        account: i64,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        monthly: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Settle every closed day and month now (the server does this each minute), or as at
    /// `--at` (RFC 3339), e.g. to close a period in a test.
    Settle {
        #[arg(long)]
        at: Option<String>,
    },
}

fn print(value: serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(&value).expect("JSON serialises"));
}

/// Activates a new main account when `billing.activate_new_accounts` says so.
pub fn activate_new(repo: &dyn BillingRepository, billing: &Billing, owner: AccountId) -> anyhow::Result<()> {
    if billing.activate_new_accounts {
        repo.activate(owner, billing.catalogue_of(&billing.default_catalogue), now())?;
    }
    Ok(())
}

fn main_account(repo: &dyn AccountRepository, id: i64) -> anyhow::Result<AccountId> {
    let account = repo.account(AccountId(id))?;
    anyhow::ensure!(account.is_main(), "account {id} is a sub-account: billing belongs to its main account");
    Ok(account.id)
}

pub fn run(store: &dyn store::Store, billing: &Billing, command: BillingCommand) -> anyhow::Result<()> {
    let calendar = billing.calendar;
    let today = calendar.day(now());
    let range = |from: Option<String>, to: Option<String>| -> anyhow::Result<(String, String)> {
        let (from, to) = (from.unwrap_or_else(|| format!("{}-01", &today[..7])), to.unwrap_or_else(|| today.clone()));
        check_days(&from, &to)?;
        Ok((from, to))
    };
    match command {
        BillingCommand::PriceLists { output } => {
            for list in billing.catalogues.iter() {
                if output.json {
                    print(
                        json!({"Name": list.name, "Currency": list.currency.code(), "Description": list.description}),
                    );
                    continue;
                }
                println!("{} ({}): {}", list.name, list.currency.code(), list.description);
                if let Some(trial) = &list.trial {
                    println!("  trial: {} images for {} days", trial.images, trial.days);
                }
                for p in &list.packages {
                    println!(
                        "  package {:<6} {:>12} images  {:>12}  {} months",
                        p.offer,
                        p.images,
                        p.price.to_string(),
                        p.months
                    );
                }
                for (service, tariff) in &list.pay_as_you_go {
                    let tiers: Vec<_> = tariff
                        .tiers
                        .iter()
                        .map(|t| {
                            let bound = t.up_to.map_or("rest".to_string(), |u| format!("to {u}"));
                            format!("{bound}: {} per {}", Money::new(t.price_minor, list.currency), t.per)
                        })
                        .collect();
                    println!(
                        "  {:<5} per {}, {} free: {}",
                        service.as_str(),
                        tariff.period.as_str(),
                        tariff.free,
                        tiers.join("; ")
                    );
                }
            }
        }
        BillingCommand::Activate { account, price_list, output } => {
            let owner = main_account(store, account)?;
            let name = price_list.unwrap_or_else(|| billing.default_catalogue.clone());
            let activated = store.activate(owner, billing.catalogues.get(&name)?, now())?;
            status(store, billing, owner, &output, Some(activated))?;
        }
        BillingCommand::TopUp { account, amount, output } => {
            let owner = main_account(store, account)?;
            let after = billing.top_up(store, owner, &amount, now())?;
            tracing::info!(account = %owner, %amount, "topped up");
            status(store, billing, owner, &output, Some(after))?;
        }
        BillingCommand::Buy { account, offer, output } => {
            let owner = main_account(store, account)?;
            let package = billing.buy(store, owner, &offer, now())?;
            if output.json {
                print(serde_json::to_value(&package)?);
            } else {
                println!(
                    "package {} bought: {} images for {}, expires {}",
                    package.id,
                    package.images,
                    package.price,
                    date(package.expires_at)
                );
            }
        }
        BillingCommand::Refund { account, package, output } => {
            let owner = main_account(store, account)?;
            let refunded = billing.refund(store, owner, package, now())?;
            if output.json {
                print(serde_json::to_value(&refunded)?);
            } else {
                println!("package {} refunded: {} credited", refunded.id, refunded.price);
            }
        }
        BillingCommand::Status { account, output } => {
            let owner = main_account(store, account)?;
            status(store, billing, owner, &output, None)?;
        }
        BillingCommand::Usage { account, from, to, output } => {
            let owner = main_account(store, account)?;
            let (from, to) = range(from, to)?;
            let rows = store.usage(owner, None, &from, &to)?;
            if output.json {
                print(serde_json::to_value(&rows)?);
                return Ok(());
            }
            println!(
                "{:<10}  {:<5}  {:>7}  {:>10}  {:>10}  {:>10}",
                "DAY", "SVC", "ACCOUNT", "TRIAL", "PACKAGE", "PAYG"
            );
            for r in rows {
                println!(
                    "{:<10}  {:<5}  {:>7}  {:>10}  {:>10}  {:>10}",
                    r.day,
                    r.service.as_str(),
                    r.account,
                    r.count.trial,
                    r.count.package,
                    r.count.payg
                );
            }
        }
        BillingCommand::Bills { account, from, to, monthly, output } => {
            let owner = main_account(store, account)?;
            let (from, to) = range(from, to)?;
            let bills = store.bills(owner, &from, &to)?;
            let bills = bills_per(if monthly { Period::Month } else { Period::Day }, bills);
            if output.json {
                print(serde_json::to_value(&bills)?);
                return Ok(());
            }
            println!("{:<10}  {:<5}  {:>10}  {:>10}  {:>14}", "PERIOD", "SVC", "IMAGES", "PAYG", "AMOUNT");
            for b in bills {
                println!(
                    "{:<10}  {:<5}  {:>10}  {:>10}  {:>14}",
                    b.period,
                    b.service.as_str(),
                    b.count.total(),
                    b.count.payg,
                    b.amount.to_string()
                );
            }
        }
        BillingCommand::Settle { at } => {
            let at = match at {
                Some(text) => chrono::DateTime::parse_from_rfc3339(&text)
                    .with_context(|| format!("`{text}` is not an RFC 3339 time"))?
                    .timestamp(),
                None => now(),
            };
            let done = store.settle(billing, at)?;
            for bill in &done.bills {
                println!("settled {} {} {}: {}", bill.owner, bill.period, bill.service.as_str(), bill.amount);
            }
            for owner in &done.suspended {
                println!("suspended {owner}: in arrears");
            }
            for owner in &done.destroyed {
                println!("destroyed the activation of {owner}: arrears not cleared in time");
            }
        }
    }
    Ok(())
}

fn date(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0).map_or(String::new(), |t| t.to_rfc3339())
}

fn status(
    store: &dyn BillingRepository,
    billing: &Billing,
    owner: AccountId,
    output: &Output,
    known: Option<engine::billing::BillingAccount>,
) -> anyhow::Result<()> {
    let account = match known {
        Some(account) => Some(account),
        None => store.billing_account(owner)?,
    };
    let standing = billing.standing(account.as_ref(), now());
    let packages = store.packages(owner)?;
    if output.json {
        print(json!({"Account": account, "State": standing.as_str(), "Packages": packages}));
        return Ok(());
    }
    let Some(account) = account else {
        println!("account {owner}: not activated");
        return Ok(());
    };
    println!("account {owner}: {} on `{}`, balance {}", standing.as_str(), account.catalogue, account.balance);
    if let engine::billing::Standing::Suspended { destroy_at, .. } = standing {
        println!("  a top-up clearing the arrears before {} resumes the service", date(destroy_at));
    }
    for p in packages {
        println!(
            "  {} {:<6} {:>5} {:>12}/{:<12} expires {}{}",
            p.kind.as_str(),
            p.offer,
            p.id,
            p.remaining,
            p.images,
            date(p.expires_at),
            if p.refunded_at.is_some() { " (refunded)" } else { "" }
        );
    }
    Ok(())
}
