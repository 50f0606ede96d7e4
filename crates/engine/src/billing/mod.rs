//! Metering and billing: every successfully moderated image is metered once, drawn from the
//! account's trial or packages (earliest expiry first) or left to pay-as-you-go, and settled
//! into bills against a prepaid balance. Arrears suspend the service; clearing them within the
//! grace period resumes it; after that the activation is destroyed.
//!
//! Everything here takes the time as an argument (`now`, Unix seconds), so tests run on a
//! simulated clock. The store implements [`BillingRepository`] transactionally.

mod catalogue;
mod money;

pub use catalogue::{
    parse as parse_catalogues, Catalogue, Catalogues, PackageOffer, Period, Service, Tariff, Tier, Trial,
};
pub use money::{Currency, Money};

use crate::accounts::AccountId;
use chrono::{DateTime, Datelike, FixedOffset, Months, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

const DAY_SECS: i64 = 86_400;

/// The `[billing]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingSettings {
    /// The price list new activations use: `cn`, `intl`, `cn-monthly-tiered`, or one of
    /// `catalogues_file`.
    pub default_catalogue: String,
    /// A TOML file of further price lists (the format of the built-in `catalogues.toml`).
    pub catalogues_file: Option<PathBuf>,
    /// Local time of day (`HH:MM`) at which the previous day (and month) is settled.
    pub settle_at: String,
    /// The billing time zone as a UTC offset (`+08:00`): where days and months begin.
    pub utc_offset: String,
    /// Suspend accounts whose balance is negative after a settlement.
    pub suspend_in_arrears: bool,
    /// Activate main accounts as they are created (the trial starts then).
    pub activate_new_accounts: bool,
}

impl Default for BillingSettings {
    fn default() -> Self {
        BillingSettings {
            default_catalogue: "cn".into(),
            catalogues_file: None,
            settle_at: "01:00".into(),
            utc_offset: "+08:00".into(),
            suspend_in_arrears: true,
            activate_new_accounts: true,
        }
    }
}

/// The settings, checked: the price lists, the clock of settlement and its policy.
#[derive(Debug, Clone)]
pub struct Billing {
    pub catalogues: Catalogues,
    pub default_catalogue: String,
    pub calendar: Calendar,
    pub suspend_in_arrears: bool,
    pub activate_new_accounts: bool,
}

impl Billing {
    pub fn from_settings(settings: &BillingSettings) -> Result<Billing, BillingError> {
        let catalogues = Catalogues::load(settings.catalogues_file.as_deref())?;
        catalogues.get(&settings.default_catalogue)?;
        let offset: FixedOffset = settings.utc_offset.parse().map_err(|_| {
            BillingError::Invalid(format!("billing.utc_offset `{}` is not like +08:00", settings.utc_offset))
        })?;
        let settle_at = NaiveTime::parse_from_str(&settings.settle_at, "%H:%M").map_err(|_| {
            BillingError::Invalid(format!("billing.settle_at `{}` is not a time like 01:00", settings.settle_at))
        })?;
        Ok(Billing {
            catalogues,
            default_catalogue: settings.default_catalogue.clone(),
            calendar: Calendar { offset, settle_at },
            suspend_in_arrears: settings.suspend_in_arrears,
            activate_new_accounts: settings.activate_new_accounts,
        })
    }
}

impl Billing {
    /// What settlement closes at `now` on `catalogue`, per service: the length of its periods'
    /// names (10 for a day, `YYYY-MM-DD`; 7 for a month) and the last closed period.
    pub fn closed_periods(&self, catalogue: &Catalogue, now: i64) -> Vec<(Service, usize, String)> {
        let (last_day, last_month) = (self.calendar.last_closed_day(now), self.calendar.last_closed_month(now));
        Service::ALL
            .into_iter()
            .map(|service| match catalogue.tariff(service).map_or(Period::Day, |t| t.period) {
                Period::Day => (service, 10, last_day.clone()),
                Period::Month => (service, 7, last_month.clone()),
            })
            .collect()
    }

    /// The list an account is on; the default one if an operator has since removed it.
    pub fn catalogue_of(&self, name: &str) -> &Catalogue {
        self.catalogues.get(name).or_else(|_| self.catalogues.get(&self.default_catalogue)).expect("checked at load")
    }

    /// An activated account and its price list.
    fn list_of(
        &self,
        repository: &dyn BillingRepository,
        owner: AccountId,
    ) -> Result<(BillingAccount, &Catalogue), BillingError> {
        let account = repository.billing_account(owner)?.ok_or(BillingError::NotActivated(owner))?;
        let list = self.catalogue_of(&account.catalogue);
        Ok((account, list))
    }

    /// Buys an offer of the account's own price list.
    pub fn buy(
        &self,
        repository: &dyn BillingRepository,
        owner: AccountId,
        offer: &str,
        now: i64,
    ) -> Result<Package, BillingError> {
        let (_, list) = self.list_of(repository, owner)?;
        repository.buy(owner, list.offer(offer)?, now)
    }

    /// Refunds a package within the account's list's refund window.
    pub fn refund(
        &self,
        repository: &dyn BillingRepository,
        owner: AccountId,
        package: i64,
        now: i64,
    ) -> Result<Package, BillingError> {
        let (_, list) = self.list_of(repository, owner)?;
        repository.refund(owner, package, list.refund_days, list.grace_days, now)
    }

    /// Credits `amount` (decimal text) in the account's currency, with its list's grace days.
    pub fn top_up(
        &self,
        repository: &dyn BillingRepository,
        owner: AccountId,
        amount: &str,
        now: i64,
    ) -> Result<BillingAccount, BillingError> {
        let (account, list) = self.list_of(repository, owner)?;
        let money = Money::parse(amount, account.balance.currency)
            .ok_or_else(|| BillingError::Invalid(format!("`{amount}` is not an amount like 100 or 99.50")))?;
        repository.top_up(owner, money, list.grace_days, now)
    }

    /// Whether an account may use the service at `now`, with its list's grace days.
    pub fn standing(&self, account: Option<&BillingAccount>, now: i64) -> Standing {
        let grace_days = account.map_or(0, |a| self.catalogue_of(&a.catalogue).grace_days);
        Standing::of(account, grace_days, now)
    }
}

/// The largest single top-up, in minor units (one billion in major units): far below where a
/// balance could overflow.
pub const MAX_TOP_UP_MINOR: i64 = 100_000_000_000;

/// The most days one usage or bill query spans.
pub const MAX_QUERY_DAYS: i64 = 366;

/// Checks a query's `YYYY-MM-DD` bounds: real dates, in order, at most [`MAX_QUERY_DAYS`] apart.
pub fn check_days(start: &str, end: &str) -> Result<(), BillingError> {
    let date = |d: &str| {
        NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .ok()
            .filter(|parsed| parsed.format("%Y-%m-%d").to_string() == d)
            .ok_or_else(|| BillingError::Invalid(format!("`{d}` is not a date like 2026-11-23")))
    };
    let days = (date(end)? - date(start)?).num_days();
    if !(0..MAX_QUERY_DAYS).contains(&days) {
        return Err(BillingError::Invalid(format!(
            "EndDate must be on or after StartDate and at most {MAX_QUERY_DAYS} days later"
        )));
    }
    Ok(())
}

/// The span a bill covers: one day or one month of the billing calendar. The variant says
/// which (the text's length once did).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BillPeriod {
    /// `YYYY-MM-DD`.
    Day(String),
    /// `YYYY-MM`.
    Month(String),
}

impl BillPeriod {
    /// A day (`YYYY-MM-DD`) or a month (`YYYY-MM`); `None` for anything else.
    pub fn parse(text: &str) -> Option<BillPeriod> {
        if NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() {
            Some(BillPeriod::Day(text.into()))
        } else if text.len() == 7 && NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").is_ok() {
            Some(BillPeriod::Month(text.into()))
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            BillPeriod::Day(text) | BillPeriod::Month(text) => text,
        }
    }

    pub fn granularity(&self) -> Period {
        match self {
            BillPeriod::Day(_) => Period::Day,
            BillPeriod::Month(_) => Period::Month,
        }
    }

    /// The month a period falls in.
    pub fn month(&self) -> BillPeriod {
        BillPeriod::Month(self.as_str()[..7].into())
    }
}

impl std::fmt::Display for BillPeriod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for BillPeriod {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BillPeriod {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        BillPeriod::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a day or a month")))
    }
}

/// The bills as asked for: per day (the daily bills), or per month (each month's daily bills of
/// a service added up, with any monthly bill).
pub fn bills_per(granularity: Period, bills: Vec<Bill>) -> Vec<Bill> {
    if granularity == Period::Day {
        return bills.into_iter().filter(|b| b.period.granularity() == Period::Day).collect();
    }
    let mut months: Vec<Bill> = Vec::new();
    for bill in bills {
        let period = bill.period.month();
        match months.iter_mut().find(|m| m.period == period && m.service == bill.service) {
            Some(month) => {
                month.count.trial += bill.count.trial;
                month.count.package += bill.count.package;
                month.count.payg += bill.count.payg;
                month.amount.minor += bill.amount.minor;
                month.settled_at = month.settled_at.max(bill.settled_at);
            }
            None => months.push(Bill { period, ..bill }),
        }
    }
    months.sort_by(|a, b| (&a.period, a.service).cmp(&(&b.period, b.service)));
    months
}

/// Days and months in the billing time zone, and when each can be settled.
#[derive(Debug, Clone, Copy)]
pub struct Calendar {
    pub offset: FixedOffset,
    pub settle_at: NaiveTime,
}

impl Calendar {
    /// The billing day of an instant, as `YYYY-MM-DD`.
    pub fn day(&self, at: i64) -> String {
        self.date(at).format("%Y-%m-%d").to_string()
    }

    fn date(&self, at: i64) -> NaiveDate {
        DateTime::from_timestamp(at, 0).unwrap_or_default().with_timezone(&self.offset).date_naive()
    }

    /// The instants from the start of day `start` to the end of day `end` (`YYYY-MM-DD`), end
    /// excluded.
    pub fn span(&self, start: &str, end: &str) -> Result<(i64, i64), BillingError> {
        let midnight = |d: &str| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_time(NaiveTime::MIN).and_local_timezone(self.offset).single())
                .map(|t| t.timestamp())
                .ok_or_else(|| BillingError::Invalid(format!("`{d}` is not a date like 2026-11-23")))
        };
        Ok((midnight(start)?, midnight(end)? + DAY_SECS))
    }

    /// The last day that is settled at `now`: yesterday once today's settlement time has
    /// passed, the day before yesterday until then.
    pub fn last_closed_day(&self, now: i64) -> String {
        let local = DateTime::from_timestamp(now, 0).unwrap_or_default().with_timezone(&self.offset);
        let back = if local.time() >= self.settle_at { 1 } else { 2 };
        (local.date_naive() - chrono::Days::new(back)).format("%Y-%m-%d").to_string()
    }

    /// The last month that is settled at `now` (`YYYY-MM`): the month of the last closed day
    /// when that day ends its month, else the month before.
    pub fn last_closed_month(&self, now: i64) -> String {
        let day = NaiveDate::parse_from_str(&self.last_closed_day(now), "%Y-%m-%d").unwrap_or_default();
        let month = if (day + chrono::Days::new(1)).month() != day.month() { day } else { day - Months::new(1) };
        month.format("%Y-%m").to_string()
    }
}

/// `at` plus `months` calendar months (the last day of a shorter month when needed).
pub fn add_months(at: i64, months: u32) -> i64 {
    DateTime::from_timestamp(at, 0)
        .and_then(|t| t.checked_add_months(Months::new(months)))
        .map_or(i64::MAX, |t| t.timestamp())
}

named_enum! {
    /// Whether an account's service is activated, suspended or destroyed, as stored.
    pub enum ServiceState {
        Active = "active",
        Suspended = "suspended",
        Destroyed = "destroyed",
    }
}

/// A main account's billing: its price list, prepaid balance and service state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingAccount {
    pub owner: AccountId,
    pub catalogue: String,
    pub balance: Money,
    pub state: ServiceState,
    pub activated_at: i64,
    /// When the current suspension began.
    pub suspended_at: Option<i64>,
    pub trial_granted: bool,
}

impl BillingAccount {
    /// Refused unless `amount` is in the balance's currency (a balance keeps its currency).
    pub fn check_currency(&self, amount: Money) -> Result<(), BillingError> {
        if self.balance.currency != amount.currency {
            return Err(BillingError::Invalid(format!(
                "the account's balance is in {}, not {}",
                self.balance.currency.code(),
                amount.currency.code()
            )));
        }
        Ok(())
    }

    /// Refused unless the balance pays for `offer` now: activated, same currency, enough.
    pub fn check_purchase(&self, offer: &PackageOffer) -> Result<(), BillingError> {
        if self.state == ServiceState::Destroyed {
            return Err(BillingError::NotActivated(self.owner));
        }
        self.check_currency(offer.price)?;
        if self.balance.minor < offer.price.minor {
            return Err(BillingError::InsufficientBalance { needed: offer.price, balance: self.balance });
        }
        Ok(())
    }

    /// Refused unless `amount` may be credited: more than 0, at most [`MAX_TOP_UP_MINOR`], in
    /// the balance's currency.
    pub fn check_top_up(&self, amount: Money) -> Result<(), BillingError> {
        if !(1..=MAX_TOP_UP_MINOR).contains(&amount.minor) {
            let most = Money::new(MAX_TOP_UP_MINOR, amount.currency);
            return Err(BillingError::Invalid(format!("a top-up is more than 0 and at most {most}")));
        }
        self.check_currency(amount)
    }

    /// The state a credit (already in the balance) moves the account to, if it moves: a
    /// suspended account whose arrears are cleared within its grace resumes; one past its grace
    /// is destroyed.
    pub fn state_after_credit(&self, grace_days: u32, now: i64) -> Option<ServiceState> {
        match Standing::of(Some(self), grace_days, now) {
            Standing::Suspended { .. } if self.balance.minor >= 0 => Some(ServiceState::Active),
            Standing::Destroyed if self.state != ServiceState::Destroyed => Some(ServiceState::Destroyed),
            _ => None,
        }
    }

    /// The state settlement (the bills already charged) moves the account to, if it moves: an
    /// active account left in arrears is suspended (when `suspend_in_arrears`); one suspended
    /// past its grace is destroyed.
    pub fn state_after_settlement(&self, grace_days: u32, suspend_in_arrears: bool, now: i64) -> Option<ServiceState> {
        match Standing::of(Some(self), grace_days, now) {
            Standing::Active if suspend_in_arrears && self.balance.minor < 0 => Some(ServiceState::Suspended),
            Standing::Destroyed if self.state != ServiceState::Destroyed => Some(ServiceState::Destroyed),
            _ => None,
        }
    }
}

/// What activating the service does ([`BillingRepository::activate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    /// The first activation: the account is opened on the list, with its trial (images, and
    /// when they expire) if the list has one.
    First { trial: Option<(u64, i64)> },
    /// A destroyed activation activated again on the list: no second trial.
    Again,
}

impl Activation {
    /// Decides an activation at `now` on `catalogue`, given the owner's billing account if it
    /// has one: refused while the service is active or suspended, and while in arrears.
    pub fn decide(
        existing: Option<&BillingAccount>,
        catalogue: &Catalogue,
        now: i64,
    ) -> Result<Activation, BillingError> {
        let Some(account) = existing else {
            let trial = catalogue.trial.as_ref().map(|t| (t.images, now + i64::from(t.days) * DAY_SECS));
            return Ok(Activation::First { trial });
        };
        if Standing::of(Some(account), catalogue.grace_days, now) != Standing::Destroyed {
            return Err(BillingError::AlreadyActive(account.owner));
        }
        if account.balance.minor < 0 {
            return Err(BillingError::InArrears { owner: account.owner, balance: account.balance });
        }
        account.check_currency(Money::new(0, catalogue.currency))?;
        Ok(Activation::Again)
    }
}

/// Whether an account may use the service at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    NotActivated,
    Active,
    /// In arrears since `since`; clearing them before `destroy_at` resumes the service.
    Suspended {
        since: i64,
        destroy_at: i64,
    },
    /// Suspended past its grace period: must be activated again.
    Destroyed,
}

impl Standing {
    /// The standing of a billing account (or of none) at `now`, with the grace days of its list.
    pub fn of(account: Option<&BillingAccount>, grace_days: u32, now: i64) -> Standing {
        let Some(account) = account else { return Standing::NotActivated };
        match (account.state, account.suspended_at) {
            (ServiceState::Active, _) => Standing::Active,
            (ServiceState::Suspended, Some(since)) => {
                let destroy_at = since + i64::from(grace_days) * DAY_SECS;
                if now >= destroy_at {
                    Standing::Destroyed
                } else {
                    Standing::Suspended { since, destroy_at }
                }
            }
            _ => Standing::Destroyed,
        }
    }

    pub fn in_service(self) -> bool {
        self == Standing::Active
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Standing::NotActivated => "not-activated",
            Standing::Active => "active",
            Standing::Suspended { .. } => "suspended",
            Standing::Destroyed => "destroyed",
        }
    }
}

named_enum! {
    /// A trial, or a package bought.
    pub enum PackageKind {
        Trial = "trial",
        Package = "package",
    }
}

/// A trial or a bought package of images. Drawn down earliest expiry first, then lowest id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub id: i64,
    pub owner: AccountId,
    pub kind: PackageKind,
    pub offer: String,
    pub images: u64,
    pub remaining: u64,
    pub price: Money,
    pub purchased_at: i64,
    pub expires_at: i64,
    pub refunded_at: Option<i64>,
}

impl Package {
    /// Why this package cannot be refunded at `now`, if it cannot.
    pub fn refusal(&self, refund_days: u32, now: i64) -> Option<String> {
        if self.kind == PackageKind::Trial {
            Some("a trial cannot be refunded".into())
        } else if self.refunded_at.is_some() {
            Some("the package was already refunded".into())
        } else if self.remaining != self.images {
            Some(format!("{} of its images were used", self.images - self.remaining))
        } else if now >= self.purchased_at + i64::from(refund_days) * DAY_SECS {
            Some(format!("it was bought more than {refund_days} days ago"))
        } else {
            None
        }
    }
}

named_enum! {
    /// Where a metered image was drawn from.
    pub enum Source {
        Trial = "trial",
        Package = "package",
        Payg = "payg",
    }
}

/// One successfully moderated image, to meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The idempotency key: the `RequestId` of a synchronous call, the `TaskId` of a task.
    pub request_id: String,
    pub account: AccountId,
    pub owner: AccountId,
    pub service: Service,
    pub at: i64,
}

/// A day's (or month's) usage of one service, split by source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCount {
    pub trial: u64,
    pub package: u64,
    pub payg: u64,
}

impl UsageCount {
    pub fn total(&self) -> u64 {
        self.trial + self.package + self.payg
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    pub day: String,
    pub service: Service,
    /// The calling account (a sub-account's usage rolls up to its main account).
    pub account: AccountId,
    pub count: UsageCount,
}

/// What settlement charged for one service over one day or month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bill {
    pub owner: AccountId,
    pub period: BillPeriod,
    pub service: Service,
    pub count: UsageCount,
    pub amount: Money,
    pub settled_at: i64,
}

named_enum! {
    /// Why a balance moved.
    pub enum Movement {
        TopUp = "topup",
        Purchase = "purchase",
        Refund = "refund",
        Settlement = "settlement",
    }
}

/// A change of balance: positive credits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceChange {
    pub id: i64,
    pub owner: AccountId,
    pub at: i64,
    pub movement: Movement,
    pub amount: Money,
    /// The package, or the bill's period.
    pub reference: String,
}

/// What a settlement run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settlement {
    pub bills: Vec<Bill>,
    pub suspended: Vec<AccountId>,
    pub destroyed: Vec<AccountId>,
}

impl Settlement {
    /// Settles each of `owners` with `settle_one` (a backend runs one transaction per account,
    /// so that a price list an operator removed stops only its own accounts); the failures
    /// come back together as one error, after every account was tried.
    pub fn of_each(
        owners: impl IntoIterator<Item = AccountId>,
        mut settle_one: impl FnMut(AccountId, &mut Settlement) -> Result<(), BillingError>,
    ) -> Result<Settlement, BillingError> {
        let mut done = Settlement::default();
        let failures: Vec<String> = owners
            .into_iter()
            .filter_map(|owner| settle_one(owner, &mut done).err().map(|e| format!("account {owner}: {e}")))
            .collect();
        if !failures.is_empty() {
            return Err(BillingError::Invalid(failures.join("; ")));
        }
        Ok(done)
    }

    /// After an account's bills are charged: the state settlement moves it to
    /// ([`BillingAccount::state_after_settlement`]), and since when, recorded here; `None`
    /// where it stays. Settlement never resumes an account: only a credit does.
    pub fn conclude(
        &mut self,
        account: &BillingAccount,
        grace_days: u32,
        suspend_in_arrears: bool,
        now: i64,
    ) -> Option<(ServiceState, Option<i64>)> {
        match account.state_after_settlement(grace_days, suspend_in_arrears, now)? {
            ServiceState::Suspended => {
                self.suspended.push(account.owner);
                Some((ServiceState::Suspended, Some(now)))
            }
            ServiceState::Destroyed => {
                self.destroyed.push(account.owner);
                Some((ServiceState::Destroyed, None))
            }
            ServiceState::Active => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("account {0} has not activated the service")]
    NotActivated(AccountId),
    #[error("account {0} has already activated the service")]
    AlreadyActive(AccountId),
    #[error("account {owner} is in arrears ({balance}); top up first")]
    InArrears { owner: AccountId, balance: Money },
    #[error("no price list `{name}` (known: {})", known.join(", "))]
    UnknownCatalogue { name: String, known: Vec<String> },
    #[error("no package offer `{offer}` (offers: {})", offers.join(", "))]
    UnknownOffer { offer: String, offers: Vec<String> },
    #[error("the balance {balance} does not cover {needed}")]
    InsufficientBalance { needed: Money, balance: Money },
    #[error("no package {0}")]
    PackageNotFound(i64),
    #[error("the package cannot be refunded: {0}")]
    NotRefundable(String),
    #[error("{0}")]
    Invalid(String),
    #[error("storage: {0}")]
    Storage(String),
}

/// Where billing is kept. Each method is one transaction: exact under concurrency and crashes.
/// The rules are the core's ([`Activation::decide`], [`BillingAccount::check_purchase`],
/// [`BillingAccount::check_top_up`], [`BillingAccount::state_after_credit`],
/// [`BillingAccount::state_after_settlement`], [`Package::refusal`], the tariffs): a backend
/// reads the rows they need, applies them and writes the outcome within that transaction.
///
/// Concurrency contract: `meter` is idempotent per `request_id`, also when two calls race
/// (exactly one counts); `settle` may run on several nodes at once and bills each period once;
/// every balance movement is recorded with its reason.
pub trait BillingRepository: Send + Sync {
    /// Activates the service (first time: with the list's trial), or activates a destroyed
    /// activation again (no second trial; refused while in arrears).
    fn activate(&self, owner: AccountId, catalogue: &Catalogue, now: i64) -> Result<BillingAccount, BillingError>;
    fn billing_account(&self, owner: AccountId) -> Result<Option<BillingAccount>, BillingError>;
    fn billing_accounts(&self) -> Result<Vec<BillingAccount>, BillingError>;
    /// Meters one image once: a second call with the same `request_id` changes nothing and
    /// returns the source of the first.
    fn meter(&self, usage: &Usage, calendar: &Calendar) -> Result<Source, BillingError>;
    /// Buys a package with the balance.
    fn buy(&self, owner: AccountId, offer: &PackageOffer, now: i64) -> Result<Package, BillingError>;
    /// Credits the balance; resumes a suspended account whose arrears it clears in time.
    fn top_up(
        &self,
        owner: AccountId,
        amount: Money,
        grace_days: u32,
        now: i64,
    ) -> Result<BillingAccount, BillingError>;
    /// Refunds an unused package bought less than `refund_days` ago; a credit like a top-up.
    fn refund(
        &self,
        owner: AccountId,
        package: i64,
        refund_days: u32,
        grace_days: u32,
        now: i64,
    ) -> Result<Package, BillingError>;
    fn packages(&self, owner: AccountId) -> Result<Vec<Package>, BillingError>;
    /// Usage per day, service and calling account, days `from..=to` (`YYYY-MM-DD`); only
    /// `account`'s own when given.
    fn usage(
        &self,
        owner: AccountId,
        account: Option<AccountId>,
        from: &str,
        to: &str,
    ) -> Result<Vec<UsageRow>, BillingError>;
    /// Bills whose period starts with one of `from..=to` (days or months as stored).
    fn bills(&self, owner: AccountId, from: &str, to: &str) -> Result<Vec<Bill>, BillingError>;
    fn balance_changes(&self, owner: AccountId, from: i64, to: i64) -> Result<Vec<BalanceChange>, BillingError>;
    /// Settles every closed period not yet (fully) billed, suspends accounts left in arrears
    /// (when `billing.suspend_in_arrears`) and destroys those suspended past their grace.
    /// Every node of a cluster calls it: each period is billed, and each account charged, once,
    /// by whichever call gets there first (a backend may answer the others with nothing done).
    fn settle(&self, billing: &Billing, now: i64) -> Result<Settlement, BillingError>;
    /// Usage per main account, service and source since the beginning (for `/metrics`).
    fn totals(&self) -> Result<Vec<(AccountId, Service, UsageCount)>, BillingError>;
    /// Forgets the per-request metering keys older than `before` (the daily counts stay).
    fn purge_events(&self, before: i64) -> Result<u64, BillingError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar() -> Calendar {
        Billing::from_settings(&BillingSettings::default()).unwrap().calendar
    }

    /// 2026-11-23 00:30 in UTC+8.
    const T: i64 = 1_795_365_000;

    #[test]
    fn days_are_in_the_billing_time_zone() {
        let c = calendar();
        assert_eq!(c.day(T), "2026-11-23");
        assert_eq!(c.day(T - 1801), "2026-11-22", "23:59:59 local the evening before");
        assert_eq!(c.last_closed_day(T), "2026-11-21", "settlement at 01:00 has not run yet");
        assert_eq!(c.last_closed_day(T + 1800), "2026-11-22");
        assert_eq!(c.last_closed_month(T), "2026-10");
        assert_eq!(c.span("2026-11-23", "2026-11-23").unwrap(), (T - 1800, T - 1800 + 86_400));
        // 2026-12-01 01:00 +08:00: November closes.
        let december = T + 8 * 86_400 + 1800;
        assert_eq!(
            (c.last_closed_day(december), c.last_closed_month(december)),
            ("2026-11-30".into(), "2026-11".into())
        );
        assert_eq!(c.last_closed_month(december - 1), "2026-10");
    }

    #[test]
    fn query_days_are_checked() {
        assert!(check_days("2026-11-01", "2026-11-30").is_ok());
        assert!(check_days("2026-11-01", "2027-11-01").is_ok(), "366 days");
        for (a, b) in [
            ("2026-11-01", "2027-11-02"),
            ("2026-11-02", "2026-11-01"),
            ("2026-11-31", "2026-12-01"),
            ("2026-1-1", "2026-01-02"),
        ] {
            assert!(check_days(a, b).is_err(), "{a} {b}");
        }
    }

    #[test]
    fn monthly_view_adds_up_daily_bills() {
        let bill = |period: &str, service, payg, minor| Bill {
            owner: AccountId(1),
            period: BillPeriod::parse(period).unwrap(),
            service,
            count: UsageCount { trial: 1, package: 0, payg },
            amount: Money::new(minor, Currency::Cny),
            settled_at: 0,
        };
        let bills = vec![
            bill("2026-11-01", Service::Image, 10, 3),
            bill("2026-11-02", Service::Image, 20, 5),
            bill("2026-11-02", Service::Aigc, 2, 20),
            bill("2026-12-01", Service::Image, 1, 0),
            bill("2026-12", Service::Image, 4, 7),
        ];
        assert_eq!(bills_per(Period::Day, bills.clone()).len(), 4, "the monthly bill is not a day's");
        let months = bills_per(Period::Month, bills);
        let seen: Vec<_> =
            months.iter().map(|m| (m.period.as_str(), m.service, m.count.total(), m.amount.minor)).collect();
        assert_eq!(
            seen,
            [("2026-11", Service::Image, 32, 8), ("2026-11", Service::Aigc, 3, 20), ("2026-12", Service::Image, 7, 7)]
        );
        assert_eq!(BillPeriod::parse("2026-11"), Some(BillPeriod::Month("2026-11".into())));
        assert_eq!(BillPeriod::parse("2026-13"), None);
        assert_eq!(BillPeriod::parse("2026-11-31"), None);
    }

    #[test]
    fn settings_are_checked() {
        let bad = [
            BillingSettings { utc_offset: "8".into(), ..Default::default() },
            BillingSettings { settle_at: "25:00".into(), ..Default::default() },
            BillingSettings { default_catalogue: "nope".into(), ..Default::default() },
        ];
        for s in bad {
            assert!(Billing::from_settings(&s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn suspension_turns_into_destruction_after_the_grace_days() {
        let account = BillingAccount {
            owner: AccountId(1),
            catalogue: "cn".into(),
            balance: Money::new(-1, Currency::Cny),
            state: ServiceState::Suspended,
            activated_at: 0,
            suspended_at: Some(T),
            trial_granted: true,
        };
        let week = 7 * 86_400;
        assert_eq!(
            Standing::of(Some(&account), 7, T + week - 1),
            Standing::Suspended { since: T, destroy_at: T + week }
        );
        assert_eq!(Standing::of(Some(&account), 7, T + week), Standing::Destroyed);
        assert_eq!(Standing::of(None, 7, T), Standing::NotActivated);
        assert!(Standing::of(Some(&BillingAccount { state: ServiceState::Active, ..account }), 7, T).in_service());
    }

    #[test]
    fn activation_purchases_top_ups_and_state_changes_follow_the_rules() {
        let billing = Billing::from_settings(&BillingSettings::default()).unwrap();
        let catalogue = billing.catalogue_of(&billing.default_catalogue);
        let week = i64::from(catalogue.grace_days) * 86_400;
        let cny = |minor| Money::new(minor, catalogue.currency);
        let account = BillingAccount {
            owner: AccountId(1),
            catalogue: catalogue.name.clone(),
            balance: cny(0),
            state: ServiceState::Active,
            activated_at: T,
            suspended_at: None,
            trial_granted: true,
        };
        let suspended = BillingAccount { state: ServiceState::Suspended, suspended_at: Some(T), ..account.clone() };

        // The first activation brings the list's trial; again only once destroyed and paid up.
        let trial = catalogue.trial.as_ref().map(|t| (t.images, T + i64::from(t.days) * 86_400));
        assert_eq!(Activation::decide(None, catalogue, T).unwrap(), Activation::First { trial });
        assert!(matches!(Activation::decide(Some(&account), catalogue, T), Err(BillingError::AlreadyActive(_))));
        assert!(matches!(Activation::decide(Some(&suspended), catalogue, T), Err(BillingError::AlreadyActive(_))));
        let destroyed = BillingAccount { balance: cny(-1), ..suspended.clone() };
        assert!(matches!(
            Activation::decide(Some(&destroyed), catalogue, T + week),
            Err(BillingError::InArrears { .. })
        ));
        assert_eq!(Activation::decide(Some(&suspended), catalogue, T + week).unwrap(), Activation::Again);

        // Purchases need the price in the balance's currency; top-ups a bounded amount.
        let offer = &catalogue.packages[0];
        assert!(matches!(account.check_purchase(offer), Err(BillingError::InsufficientBalance { .. })));
        let rich = BillingAccount { balance: offer.price, ..account.clone() };
        assert!(rich.check_purchase(offer).is_ok());
        let gone = BillingAccount { state: ServiceState::Destroyed, ..rich.clone() };
        assert!(matches!(gone.check_purchase(offer), Err(BillingError::NotActivated(_))));
        assert!(account.check_top_up(cny(1)).is_ok() && account.check_top_up(cny(MAX_TOP_UP_MINOR)).is_ok());
        for refused in [cny(0), cny(-5), cny(MAX_TOP_UP_MINOR + 1), Money::new(1, Currency::Usd)] {
            assert!(account.check_top_up(refused).is_err(), "{refused:?}");
        }

        // A credit that clears arrears within the grace resumes; past it, the activation is gone.
        let paid = BillingAccount { balance: cny(0), ..suspended.clone() };
        assert_eq!(paid.state_after_credit(7, T + week - 1), Some(ServiceState::Active));
        assert_eq!(paid.state_after_credit(7, T + week), Some(ServiceState::Destroyed));
        assert_eq!(BillingAccount { balance: cny(-1), ..paid }.state_after_credit(7, T + 1), None);
        // Settlement suspends an active account in arrears (when so configured).
        let owing = BillingAccount { balance: cny(-1), ..account.clone() };
        assert_eq!(owing.state_after_settlement(7, true, T), Some(ServiceState::Suspended));
        assert_eq!(owing.state_after_settlement(7, false, T), None);
        assert_eq!(account.state_after_settlement(7, true, T), None);
        assert_eq!(suspended.state_after_settlement(7, true, T + week), Some(ServiceState::Destroyed));
    }

    #[test]
    fn refunds_only_unused_packages_within_the_window() {
        let package = Package {
            id: 1,
            owner: AccountId(1),
            kind: PackageKind::Package,
            offer: "1.8M".into(),
            images: 10,
            remaining: 10,
            price: Money::new(100, Currency::Cny),
            purchased_at: T,
            expires_at: add_months(T, 12),
            refunded_at: None,
        };
        assert_eq!(package.refusal(30, T + 30 * 86_400 - 1), None);
        assert!(package.refusal(30, T + 30 * 86_400).is_some());
        assert!(Package { remaining: 9, ..package.clone() }.refusal(30, T).is_some());
        assert!(Package { kind: PackageKind::Trial, ..package.clone() }.refusal(30, T).is_some());
        assert_eq!(add_months(T, 12) - T, 365 * 86_400);
    }
}
