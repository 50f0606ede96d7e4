//! [`BillingRepository`]: activation and trial, metering once per request (also when racing),
//! packages drawn earliest expiry first, settlement, arrears, suspension and destruction,
//! refunds.

use engine::accounts::{AccountId, AccountRepository};
use engine::billing::*;
use std::sync::Arc;

const DAY: i64 = 86_400;
/// 2026-11-23 00:30 in UTC+8 (the default billing zone); settlement runs at 01:00.
const T: i64 = 1_795_365_000;

/// Small packages so that draw-down, expiry and settlement are visible in a few images.
const LISTS: &str = r#"
    [small]
    currency = "CNY"
    refund_days = 30
    grace_days = 7
    trial = { images = 3, days = 15 }
    packages = [
        { offer = "long", images = 4, price = "10", months = 12 },
        { offer = "short", images = 2, price = "5", months = 1 },
    ]
    pay_as_you_go.IMAGE = { period = "day", tiers = [{ price = "25", per = 10000 }] }
    pay_as_you_go.AIGC = { period = "day", tiers = [{ price = "0.10", per = 1 }] }

    [tiered]
    currency = "CNY"
    refund_days = 30
    grace_days = 7
    pay_as_you_go.IMAGE = { period = "month", free = 2, tiers = [{ up_to = 4, price = "2", per = 1 }, { price = "1", per = 1 }] }
"#;

/// A store, and billing settings with the lists above.
struct Fixture<S> {
    store: Arc<S>,
    billing: Billing,
}

impl<S: AccountRepository + BillingRepository + 'static> Fixture<S> {
    fn on(store: S) -> Fixture<S> {
        let mut billing = Billing::from_settings(&BillingSettings::default()).unwrap();
        billing.catalogues = parse_catalogues(LISTS).unwrap();
        billing.default_catalogue = "small".into();
        Fixture { store: Arc::new(store), billing }
    }

    /// A new main account activated on `list` at `at`.
    fn account(&self, list: &str, at: i64) -> AccountId {
        let owner = self.store.create_account("acme", None).unwrap().id;
        self.store.activate(owner, self.billing.catalogues.get(list).unwrap(), at).unwrap();
        owner
    }

    fn meter(&self, owner: AccountId, service: Service, id: &str, at: i64) -> Source {
        let usage = Usage { request_id: id.into(), account: owner, owner, service, at };
        self.store.meter(&usage, &self.billing.calendar).unwrap()
    }

    fn balance(&self, owner: AccountId) -> i64 {
        self.store.billing_account(owner).unwrap().unwrap().balance.minor
    }

    fn standing(&self, owner: AccountId, now: i64) -> Standing {
        Standing::of(self.store.billing_account(owner).unwrap().as_ref(), 7, now)
    }

    fn top_up(&self, owner: AccountId, minor: i64, now: i64) -> BillingAccount {
        self.store.top_up(owner, Money::new(minor, Currency::Cny), 7, now).unwrap()
    }

    fn buy(&self, owner: AccountId, offer: &str, now: i64) -> Package {
        let offer = self.billing.catalogues.get("small").unwrap().offer(offer).unwrap().clone();
        self.store.buy(owner, &offer, now).unwrap()
    }
}

pub fn the_trial_covers_images_until_it_expires_and_never_aigc<S: AccountRepository + BillingRepository + 'static>(
    store: S,
) {
    let f = Fixture::on(store);
    let owner = f.account("small", T);
    assert_eq!(f.meter(owner, Service::Image, "a", T), Source::Trial);
    assert_eq!(f.meter(owner, Service::Image, "a", T), Source::Trial, "the same request is metered once");
    assert_eq!(f.meter(owner, Service::Aigc, "g", T), Source::Payg, "AIGC is pay-as-you-go only");
    assert_eq!(f.meter(owner, Service::Image, "b", T + 15 * DAY - 1), Source::Trial);
    assert_eq!(f.meter(owner, Service::Image, "c", T + 15 * DAY), Source::Payg, "expired after 15 days");
    let trial = &f.store.packages(owner).unwrap()[0];
    assert_eq!((trial.kind, trial.images, trial.remaining), (PackageKind::Trial, 3, 1));
    let usage = f.store.usage(owner, None, "2026-11-01", "2026-12-31").unwrap();
    let total: u64 = usage.iter().map(|u| u.count.total()).sum();
    assert_eq!(total, 4);
}

pub fn stacked_packages_are_drawn_earliest_expiry_first<S: AccountRepository + BillingRepository + 'static>(store: S) {
    let f = Fixture::on(store);
    let owner = f.account("small", T);
    f.top_up(owner, 1_500, T);
    let long = f.buy(owner, "long", T);
    let short = f.buy(owner, "short", T + 1);
    assert_eq!(f.balance(owner), 0);
    assert!(short.expires_at < long.expires_at && long.expires_at < T + 366 * DAY);
    // Trial (15 days) first, then the one-month package, then the one-year one.
    let sources: Vec<_> = (0..10).map(|i| f.meter(owner, Service::Image, &format!("r{i}"), T + 10)).collect();
    use Source::{Package as P, Payg, Trial};
    assert_eq!(sources, [Trial, Trial, Trial, P, P, P, P, P, P, Payg]);
    let remaining: Vec<_> = f.store.packages(owner).unwrap().iter().map(|p| (p.offer.clone(), p.remaining)).collect();
    assert!(remaining.contains(&("short".into(), 0)) && remaining.contains(&("long".into(), 0)));
    // A package's images are lost with its expiry.
    let other = f.account("small", T);
    f.top_up(other, 500, T);
    let short = f.buy(other, "short", T);
    f.meter(other, Service::Image, "o1", T);
    f.meter(other, Service::Image, "o2", T);
    f.meter(other, Service::Image, "o3", T);
    assert_eq!(f.meter(other, Service::Image, "o4", short.expires_at - 1), Source::Package);
    assert_eq!(f.meter(other, Service::Image, "o5", short.expires_at), Source::Payg);
}

pub fn daily_settlement_bills_pay_as_you_go_and_suspends_in_arrears<
    S: AccountRepository + BillingRepository + 'static,
>(
    store: S,
) {
    let f = Fixture::on(store);
    let owner = f.account("small", T - 20 * DAY);
    // 3 AI-generated detections at 0.10 CNY, with no balance.
    let day = T + 2 * DAY;
    for i in 0..3 {
        f.meter(owner, Service::Aigc, &format!("g{i}"), day);
    }
    let settled = f.store.settle(&f.billing, day + DAY).unwrap();
    assert!(settled.bills.is_empty(), "00:30 the next day: the day is not closed before 01:00");
    let settled = f.store.settle(&f.billing, day + DAY + 1800).unwrap();
    assert_eq!(settled.bills.len(), 1);
    assert_eq!((settled.bills[0].period.as_str(), settled.bills[0].amount.minor), ("2026-11-25", 30));
    assert_eq!(settled.suspended, [owner]);
    assert_eq!(f.balance(owner), -30);
    assert!(matches!(f.standing(owner, day + DAY + 1800), Standing::Suspended { .. }));
    // Settling again changes nothing; usage that reaches a settled day is billed the difference.
    assert!(f.store.settle(&f.billing, day + DAY + 3600).unwrap().bills.is_empty());
    f.meter(owner, Service::Aigc, "late", day);
    let again = f.store.settle(&f.billing, day + DAY + 3600).unwrap();
    assert_eq!(again.bills[0].amount.minor, 40);
    assert_eq!(f.balance(owner), -40);
    let changes = f.store.balance_changes(owner, 0, i64::MAX).unwrap();
    assert_eq!(changes.iter().map(|c| c.amount.minor).collect::<Vec<_>>(), [-30, -10]);
}

/// Every node of a cluster runs the settlement: four at once bill each closed day once.
pub fn racing_settlements_bill_each_day_once<S: AccountRepository + BillingRepository + 'static>(store: S) {
    let f = Fixture::on(store);
    let owners: Vec<AccountId> = (0..3).map(|_| f.account("small", T - 20 * DAY)).collect();
    let day = T + 2 * DAY;
    for (n, owner) in owners.iter().enumerate() {
        for i in 0..=n {
            f.meter(*owner, Service::Aigc, &format!("g{n}-{i}"), day);
        }
    }
    let bills: usize = std::thread::scope(|scope| {
        let nodes: Vec<_> =
            (0..4).map(|_| scope.spawn(|| f.store.settle(&f.billing, day + DAY + 1800).unwrap().bills.len())).collect();
        nodes.into_iter().map(|n| n.join().unwrap()).sum()
    });
    assert_eq!(bills, owners.len(), "one bill per account and day, whichever node made it");
    for (n, owner) in owners.iter().enumerate() {
        assert_eq!(f.balance(*owner), -10 * (n as i64 + 1), "charged once");
        assert_eq!(f.store.balance_changes(*owner, 0, i64::MAX).unwrap().len(), 1);
    }
}

pub fn a_top_up_within_seven_days_resumes_and_after_that_the_activation_is_destroyed<
    S: AccountRepository + BillingRepository + 'static,
>(
    store: S,
) {
    let f = Fixture::on(store);
    let resumed = f.account("small", T - 20 * DAY);
    let destroyed = f.account("small", T - 20 * DAY);
    for owner in [resumed, destroyed] {
        f.meter(owner, Service::Aigc, &format!("x{owner}"), T);
    }
    let settled_at = T + DAY + 1800;
    assert_eq!(f.store.settle(&f.billing, settled_at).unwrap().suspended, [resumed, destroyed]);
    // A top-up that does not clear the arrears does not resume.
    assert_eq!(f.top_up(resumed, 5, settled_at + DAY).state, ServiceState::Suspended);
    assert_eq!(f.top_up(resumed, 5, settled_at + 7 * DAY - 1).state, ServiceState::Active);
    let top_up = |minor| f.store.top_up(resumed, Money::new(minor, Currency::Cny), 7, settled_at);
    assert!(top_up(0).is_err() && top_up(MAX_TOP_UP_MINOR + 1).is_err());
    assert!(top_up(MAX_TOP_UP_MINOR).is_ok());
    assert!(f.store.top_up(resumed, Money::new(1, Currency::Usd), 7, settled_at).is_err(), "the account's currency");
    assert_eq!(f.standing(resumed, settled_at + 7 * DAY), Standing::Active);

    assert_eq!(f.standing(destroyed, settled_at + 7 * DAY), Standing::Destroyed);
    let later = f.store.settle(&f.billing, settled_at + 7 * DAY).unwrap();
    assert_eq!(later.destroyed, [destroyed]);
    let account = f.top_up(destroyed, 100, settled_at + 8 * DAY);
    assert_eq!((account.state, account.balance.minor), (ServiceState::Destroyed, 90), "money does not reactivate");
    let small = f.billing.catalogues.get("small").unwrap();
    let again = f.store.activate(destroyed, small, settled_at + 8 * DAY).unwrap();
    assert_eq!(again.state, ServiceState::Active);
    assert_eq!(f.store.packages(destroyed).unwrap().len(), 1, "no second trial");
    assert!(matches!(f.store.activate(destroyed, small, settled_at + 8 * DAY), Err(BillingError::AlreadyActive(_))));
}

pub fn activation_again_is_refused_while_in_arrears<S: AccountRepository + BillingRepository + 'static>(store: S) {
    let f = Fixture::on(store);
    let owner = f.account("small", T - 20 * DAY);
    f.meter(owner, Service::Aigc, "x", T);
    f.store.settle(&f.billing, T + DAY + 1800).unwrap();
    let small = f.billing.catalogues.get("small").unwrap();
    assert!(matches!(f.store.activate(owner, small, T + 2 * DAY), Err(BillingError::AlreadyActive(_))));
    assert!(matches!(f.store.activate(owner, small, T + 9 * DAY), Err(BillingError::InArrears { .. })));
}

pub fn an_unused_package_is_refundable_for_thirty_days<S: AccountRepository + BillingRepository + 'static>(store: S) {
    let f = Fixture::on(store);
    let owner = f.account("small", T - 20 * DAY);
    f.top_up(owner, 3_000, T);
    let refund = |id, now| f.store.refund(owner, id, 30, 7, now);
    let kept = f.buy(owner, "long", T);
    assert!(matches!(refund(kept.id, T + 30 * DAY), Err(BillingError::NotRefundable(_))));
    let used = f.buy(owner, "long", T + 1);
    f.meter(owner, Service::Image, "u", T + 2);
    assert_eq!(f.store.packages(owner).unwrap().iter().find(|p| p.id == kept.id).unwrap().remaining, 3);
    assert!(matches!(refund(kept.id, T + 3), Err(BillingError::NotRefundable(_))), "the earlier-expiring one was used");
    let unused = refund(used.id, T + 30 * DAY - 1).unwrap();
    assert_eq!((unused.remaining, unused.refunded_at), (0, Some(T + 30 * DAY - 1)));
    assert!(matches!(refund(used.id, T + 30 * DAY - 1), Err(BillingError::NotRefundable(_))));
    assert_eq!(f.balance(owner), 3_000 - 1_000);
    let trial = f.store.packages(owner).unwrap().into_iter().find(|p| p.kind == PackageKind::Trial).unwrap();
    assert!(matches!(refund(trial.id, T), Err(BillingError::NotRefundable(_))));
    assert!(matches!(refund(9999, T), Err(BillingError::PackageNotFound(9999))));
    let poor = f.account("small", T);
    let offer = f.billing.catalogues.get("small").unwrap().offer("long").unwrap().clone();
    assert!(matches!(f.store.buy(poor, &offer, T), Err(BillingError::InsufficientBalance { .. })));
}

pub fn monthly_tiers_settle_once_the_month_closes<S: AccountRepository + BillingRepository + 'static>(store: S) {
    let f = Fixture::on(store);
    let owner = f.account("tiered", T);
    // 7 calls in November: 2 free, 2 at 2 CNY, 3 at 1 CNY.
    for i in 0..7 {
        f.meter(owner, Service::Image, &format!("m{i}"), T + i * DAY);
    }
    let first_of_december = T + 8 * DAY + 1800; // 2026-12-01 01:00 +08:00
    assert!(f.store.settle(&f.billing, first_of_december - 1).unwrap().bills.is_empty());
    let settled = f.store.settle(&f.billing, first_of_december).unwrap();
    assert_eq!(settled.bills.len(), 1);
    assert_eq!((settled.bills[0].period.as_str(), settled.bills[0].amount.minor), ("2026-11", 700));
    let bills = f.store.bills(owner, "2026-11-01", "2026-11-30").unwrap();
    assert_eq!(bills.len(), 1);
}

pub fn concurrent_metering_is_exact<S: AccountRepository + BillingRepository + 'static>(store: S) {
    let f = Fixture::on(store);
    let owner = f.account("small", T);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (store, calendar) = (f.store.clone(), f.billing.calendar);
            std::thread::spawn(move || {
                for i in 0..25 {
                    // Every request is metered by two threads: once must count.
                    let usage = Usage {
                        request_id: format!("{}-{i}", t / 2),
                        account: owner,
                        owner,
                        service: Service::Image,
                        at: T,
                    };
                    store.meter(&usage, &calendar).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let usage = f.store.usage(owner, None, "2026-11-23", "2026-11-23").unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].count, UsageCount { trial: 3, package: 0, payg: 97 });
    assert_eq!(f.store.totals().unwrap(), [(owner, Service::Image, usage[0].count.clone())]);
    assert_eq!(f.store.purge_events(T + 1).unwrap(), 100);
}
