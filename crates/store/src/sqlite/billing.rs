//! Billing in SQLite: `billing_accounts` (balance, state), `packages` (trials and bought
//! packages), `usage_events` (one row per metered request: the idempotency key),
//! `usage_daily` (counts per day, service, calling account and source), `bills` and
//! `transactions` (every change of balance). Each operation is one immediate transaction, so
//! concurrent writers queue instead of racing, and a crash leaves all of it or none.

use crate::name_of;
use crate::sqlite::{parse_name, SqliteStore};
use engine::accounts::AccountId;
use engine::billing::{
    add_months, Activation, BalanceChange, Bill, BillPeriod, Billing, BillingAccount, BillingError, BillingRepository,
    Calendar, Catalogue, Currency, Money, Movement, Package, PackageKind, PackageOffer, Service, ServiceState,
    Settlement, Source, Usage, UsageCount, UsageRow,
};
use rusqlite::{params, OptionalExtension, Row, Transaction, TransactionBehavior};

fn storage(e: impl std::fmt::Display) -> BillingError {
    BillingError::Storage(e.to_string())
}

const ACCOUNT_COLUMNS: &str =
    "owner_id, catalogue, currency, balance_minor, state, activated_at, suspended_at, trial_granted";

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<BillingAccount> {
    Ok(BillingAccount {
        owner: AccountId(row.get(0)?),
        catalogue: row.get(1)?,
        balance: Money::new(row.get(3)?, parse_name(&row.get::<_, String>(2)?)?),
        state: parse_name(&row.get::<_, String>(4)?)?,
        activated_at: row.get(5)?,
        suspended_at: row.get(6)?,
        trial_granted: row.get(7)?,
    })
}

const PACKAGE_COLUMNS: &str =
    "id, owner_id, kind, offer, images, remaining, price_minor, currency, purchased_at, expires_at, refunded_at";

fn package_from_row(row: &Row<'_>) -> rusqlite::Result<Package> {
    Ok(Package {
        id: row.get(0)?,
        owner: AccountId(row.get(1)?),
        kind: parse_name(&row.get::<_, String>(2)?)?,
        offer: row.get(3)?,
        images: row.get(4)?,
        remaining: row.get(5)?,
        price: Money::new(row.get(6)?, parse_name(&row.get::<_, String>(7)?)?),
        purchased_at: row.get(8)?,
        expires_at: row.get(9)?,
        refunded_at: row.get(10)?,
    })
}

fn count_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<UsageCount> {
    Ok(UsageCount { trial: row.get(first)?, package: row.get(first + 1)?, payg: row.get(first + 2)? })
}

fn account_in(tx: &Transaction<'_>, owner: AccountId) -> Result<Option<BillingAccount>, BillingError> {
    tx.query_row(
        &format!("SELECT {ACCOUNT_COLUMNS} FROM billing_accounts WHERE owner_id = ?1"),
        [owner.0],
        account_from_row,
    )
    .optional()
    .map_err(storage)
}

/// The account, which must have activated the service once.
fn activated(tx: &Transaction<'_>, owner: AccountId) -> Result<BillingAccount, BillingError> {
    account_in(tx, owner)?.ok_or(BillingError::NotActivated(owner))
}

/// Moves the balance by `amount` and records why.
fn move_balance(
    tx: &Transaction<'_>,
    owner: AccountId,
    movement: Movement,
    amount: Money,
    reference: &str,
    now: i64,
) -> Result<(), BillingError> {
    tx.execute(
        "UPDATE billing_accounts SET balance_minor = balance_minor + ?2 WHERE owner_id = ?1",
        params![owner.0, amount.minor],
    )
    .map_err(storage)?;
    tx.execute(
        "INSERT INTO transactions (owner_id, at, movement, amount_minor, currency, reference) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![owner.0, now, name_of(&movement), amount.minor, name_of(&amount.currency), reference],
    )
    .map_err(storage)?;
    Ok(())
}

/// After a credit: the state it moves the account to ([`BillingAccount::state_after_credit`]).
fn after_credit(
    tx: &Transaction<'_>,
    owner: AccountId,
    grace_days: u32,
    now: i64,
) -> Result<BillingAccount, BillingError> {
    let account = activated(tx, owner)?;
    if let Some(state) = account.state_after_credit(grace_days, now) {
        set_state(tx, owner, state, None)?;
        return activated(tx, owner);
    }
    Ok(account)
}

fn set_state(
    tx: &Transaction<'_>,
    owner: AccountId,
    state: ServiceState,
    since: Option<i64>,
) -> Result<(), BillingError> {
    tx.execute(
        "UPDATE billing_accounts SET state = ?2, suspended_at = ?3 WHERE owner_id = ?1",
        params![owner.0, name_of(&state), since],
    )
    .map_err(storage)?;
    Ok(())
}

impl SqliteStore {
    /// Runs `work` in one immediate (write-locking) transaction.
    fn billing_write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, BillingError>,
    ) -> Result<T, BillingError> {
        let mut conn = self.connection(BillingError::Storage)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(storage)?;
        let value = work(&tx)?;
        tx.commit().map_err(storage)?;
        Ok(value)
    }

    /// Brings the bill of one period and service up to its usage; charges the difference.
    fn settle_period(
        tx: &Transaction<'_>,
        account: &BillingAccount,
        catalogue: &Catalogue,
        service: Service,
        period: &str,
        count: &UsageCount,
        now: i64,
    ) -> Result<Option<Bill>, BillingError> {
        let billed: Option<(UsageCount, i64)> = tx
            .query_row(
                "SELECT trial, package, payg, amount_minor FROM bills WHERE owner_id = ?1 AND period = ?2 AND service = ?3",
                params![account.owner.0, period, name_of(&service)],
                |r| Ok((count_from_row(r, 0)?, r.get(3)?)),
            )
            .optional()
            .map_err(storage)?;
        if billed.as_ref().is_some_and(|(c, _)| c == count) {
            return Ok(None);
        }
        let amount = catalogue.tariff(service).map_or(0, |t| t.charge(count.payg));
        let previous = billed.map_or(0, |(_, a)| a);
        tx.execute(
            "INSERT INTO bills (owner_id, period, service, trial, package, payg, amount_minor, currency, settled_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (owner_id, period, service) DO UPDATE SET trial = ?4, package = ?5, payg = ?6,
                 amount_minor = ?7, settled_at = ?9",
            params![
                account.owner.0,
                period,
                name_of(&service),
                count.trial,
                count.package,
                count.payg,
                amount,
                name_of(&catalogue.currency),
                now
            ],
        )
        .map_err(storage)?;
        if amount != previous {
            let charge = Money::new(previous - amount, catalogue.currency);
            move_balance(
                tx,
                account.owner,
                Movement::Settlement,
                charge,
                &format!("{period} {}", service.as_str()),
                now,
            )?;
        }
        let period = BillPeriod::parse(period).ok_or_else(|| storage(format!("`{period}` is not a period")))?;
        Ok(Some(Bill {
            owner: account.owner,
            period,
            service,
            count: count.clone(),
            amount: Money::new(amount, catalogue.currency),
            settled_at: now,
        }))
    }

    fn settle_account(
        tx: &Transaction<'_>,
        billing: &Billing,
        account: &BillingAccount,
        now: i64,
        done: &mut Settlement,
    ) -> Result<(), BillingError> {
        let catalogue = billing.catalogues.get(&account.catalogue)?;
        for (service, width, through) in billing.closed_periods(catalogue, now) {
            let mut statement = tx
                .prepare_cached(
                    "SELECT substr(day, 1, ?3) AS period, SUM(trial), SUM(package), SUM(payg) FROM usage_daily
                     WHERE owner_id = ?1 AND service = ?2 AND substr(day, 1, ?3) <= ?4 GROUP BY period ORDER BY period",
                )
                .map_err(storage)?;
            let periods = statement
                .query_map(params![account.owner.0, name_of(&service), width, through], |r| {
                    Ok((r.get::<_, String>(0)?, count_from_row(r, 1)?))
                })
                .map_err(storage)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(storage)?;
            for (period, count) in periods {
                if let Some(bill) = Self::settle_period(tx, account, catalogue, service, &period, &count, now)? {
                    done.bills.push(bill);
                }
            }
        }
        let account = activated(tx, account.owner)?;
        if let Some((state, since)) = done.conclude(&account, catalogue.grace_days, billing.suspend_in_arrears, now) {
            set_state(tx, account.owner, state, since)?;
        }
        Ok(())
    }
}

impl BillingRepository for SqliteStore {
    fn activate(&self, owner: AccountId, catalogue: &Catalogue, now: i64) -> Result<BillingAccount, BillingError> {
        self.billing_write(|tx| {
            match Activation::decide(account_in(tx, owner)?.as_ref(), catalogue, now)? {
                Activation::First { trial } => {
                    tx.execute(
                        "INSERT INTO billing_accounts (owner_id, catalogue, currency, balance_minor, state, activated_at, trial_granted)
                         VALUES (?1, ?2, ?3, 0, 'active', ?4, ?5)",
                        params![owner.0, catalogue.name, name_of(&catalogue.currency), now, trial.is_some()],
                    )
                    .map_err(storage)?;
                    if let Some((images, expires_at)) = trial {
                        tx.execute(
                            "INSERT INTO packages (owner_id, kind, offer, images, remaining, price_minor, currency, purchased_at, expires_at)
                             VALUES (?1, 'trial', 'trial', ?2, ?2, 0, ?3, ?4, ?5)",
                            params![owner.0, images, name_of(&catalogue.currency), now, expires_at],
                        )
                        .map_err(storage)?;
                    }
                }
                Activation::Again => {
                    tx.execute(
                        "UPDATE billing_accounts SET catalogue = ?2, state = 'active', suspended_at = NULL, activated_at = ?3
                         WHERE owner_id = ?1",
                        params![owner.0, catalogue.name, now],
                    )
                    .map_err(storage)?;
                }
            }
            activated(tx, owner)
        })
    }

    fn billing_account(&self, owner: AccountId) -> Result<Option<BillingAccount>, BillingError> {
        let conn = self.connection(BillingError::Storage)?;
        conn.query_row(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM billing_accounts WHERE owner_id = ?1"),
            [owner.0],
            account_from_row,
        )
        .optional()
        .map_err(storage)
    }

    fn billing_accounts(&self) -> Result<Vec<BillingAccount>, BillingError> {
        let conn = self.connection(BillingError::Storage)?;
        let mut statement = conn
            .prepare(&format!("SELECT {ACCOUNT_COLUMNS} FROM billing_accounts ORDER BY owner_id"))
            .map_err(storage)?;
        let rows = statement.query_map([], account_from_row).map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn meter(&self, usage: &Usage, calendar: &Calendar) -> Result<Source, BillingError> {
        self.billing_write(|tx| {
            let seen: Option<String> = tx
                .query_row("SELECT source FROM usage_events WHERE request_id = ?1", [&usage.request_id], |r| r.get(0))
                .optional()
                .map_err(storage)?;
            if let Some(source) = seen {
                return parse_name(&source).map_err(storage);
            }
            let drawn: Option<(i64, String)> = if usage.service.prepaid() {
                tx.query_row(
                    "SELECT id, kind FROM packages WHERE owner_id = ?1 AND remaining > 0 AND refunded_at IS NULL
                     AND expires_at > ?2 ORDER BY expires_at, id LIMIT 1",
                    params![usage.owner.0, usage.at],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(storage)?
            } else {
                None
            };
            let source = match &drawn {
                Some((id, kind)) => {
                    tx.execute("UPDATE packages SET remaining = remaining - 1 WHERE id = ?1", [id]).map_err(storage)?;
                    if parse_name::<PackageKind>(kind).map_err(storage)? == PackageKind::Trial {
                        Source::Trial
                    } else {
                        Source::Package
                    }
                }
                None => Source::Payg,
            };
            let day = calendar.day(usage.at);
            tx.execute(
                "INSERT INTO usage_events (request_id, owner_id, account_id, service, day, at, source, package_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    usage.request_id,
                    usage.owner.0,
                    usage.account.0,
                    name_of(&usage.service),
                    day,
                    usage.at,
                    name_of(&source),
                    drawn.map(|(id, _)| id)
                ],
            )
            .map_err(storage)?;
            // The column is one of three fixed names, never input.
            tx.execute(
                &format!(
                    "INSERT INTO usage_daily (owner_id, account_id, day, service, {0}) VALUES (?1, ?2, ?3, ?4, 1)
                     ON CONFLICT (owner_id, day, service, account_id) DO UPDATE SET {0} = {0} + 1",
                    source.as_str()
                ),
                params![usage.owner.0, usage.account.0, day, name_of(&usage.service)],
            )
            .map_err(storage)?;
            Ok(source)
        })
    }

    fn buy(&self, owner: AccountId, offer: &PackageOffer, now: i64) -> Result<Package, BillingError> {
        self.billing_write(|tx| {
            activated(tx, owner)?.check_purchase(offer)?;
            tx.execute(
                "INSERT INTO packages (owner_id, kind, offer, images, remaining, price_minor, currency, purchased_at, expires_at)
                 VALUES (?1, 'package', ?2, ?3, ?3, ?4, ?5, ?6, ?7)",
                params![
                    owner.0,
                    offer.offer,
                    offer.images,
                    offer.price.minor,
                    name_of(&offer.price.currency),
                    now,
                    add_months(now, offer.months)
                ],
            )
            .map_err(storage)?;
            let id = tx.last_insert_rowid();
            let cost = Money::new(-offer.price.minor, offer.price.currency);
            move_balance(tx, owner, Movement::Purchase, cost, &format!("package {id}"), now)?;
            tx.query_row(&format!("SELECT {PACKAGE_COLUMNS} FROM packages WHERE id = ?1"), [id], package_from_row)
                .map_err(storage)
        })
    }

    fn top_up(
        &self,
        owner: AccountId,
        amount: Money,
        grace_days: u32,
        now: i64,
    ) -> Result<BillingAccount, BillingError> {
        self.billing_write(|tx| {
            activated(tx, owner)?.check_top_up(amount)?;
            move_balance(tx, owner, Movement::TopUp, amount, "", now)?;
            after_credit(tx, owner, grace_days, now)
        })
    }

    fn refund(
        &self,
        owner: AccountId,
        package: i64,
        refund_days: u32,
        grace_days: u32,
        now: i64,
    ) -> Result<Package, BillingError> {
        self.billing_write(|tx| {
            let found = tx
                .query_row(
                    &format!("SELECT {PACKAGE_COLUMNS} FROM packages WHERE id = ?1 AND owner_id = ?2"),
                    params![package, owner.0],
                    package_from_row,
                )
                .optional()
                .map_err(storage)?
                .ok_or(BillingError::PackageNotFound(package))?;
            if let Some(reason) = found.refusal(refund_days, now) {
                return Err(BillingError::NotRefundable(reason));
            }
            tx.execute("UPDATE packages SET remaining = 0, refunded_at = ?2 WHERE id = ?1", params![package, now])
                .map_err(storage)?;
            move_balance(tx, owner, Movement::Refund, found.price, &format!("package {package}"), now)?;
            after_credit(tx, owner, grace_days, now)?;
            Ok(Package { remaining: 0, refunded_at: Some(now), ..found })
        })
    }

    fn packages(&self, owner: AccountId) -> Result<Vec<Package>, BillingError> {
        let conn = self.connection(BillingError::Storage)?;
        let mut statement = conn
            .prepare(&format!("SELECT {PACKAGE_COLUMNS} FROM packages WHERE owner_id = ?1 ORDER BY expires_at, id"))
            .map_err(storage)?;
        let rows = statement.query_map([owner.0], package_from_row).map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn usage(
        &self,
        owner: AccountId,
        account: Option<AccountId>,
        from: &str,
        to: &str,
    ) -> Result<Vec<UsageRow>, BillingError> {
        let conn = self.connection(BillingError::Storage)?;
        let mut statement = conn
            .prepare(
                "SELECT day, service, account_id, trial, package, payg FROM usage_daily
                 WHERE owner_id = ?1 AND day BETWEEN ?2 AND ?3 AND (?4 IS NULL OR account_id = ?4)
                 ORDER BY day, service, account_id",
            )
            .map_err(storage)?;
        let rows = statement
            .query_map(params![owner.0, from, to, account.map(|a| a.0)], |r| {
                Ok(UsageRow {
                    day: r.get(0)?,
                    service: parse_name(&r.get::<_, String>(1)?)?,
                    account: AccountId(r.get(2)?),
                    count: count_from_row(r, 3)?,
                })
            })
            .map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn bills(&self, owner: AccountId, from: &str, to: &str) -> Result<Vec<Bill>, BillingError> {
        let conn = self.connection(BillingError::Storage)?;
        let mut statement = conn
            .prepare(
                "SELECT period, service, trial, package, payg, amount_minor, currency, settled_at FROM bills
                 WHERE owner_id = ?1 AND substr(period, 1, 7) BETWEEN substr(?2, 1, 7) AND substr(?3, 1, 7)
                 AND (length(period) = 7 OR period BETWEEN ?2 AND ?3)
                 ORDER BY period, service",
            )
            .map_err(storage)?;
        let rows = statement
            .query_map(params![owner.0, from, to], |r| {
                Ok(Bill {
                    owner,
                    period: parse_name(&r.get::<_, String>(0)?)?,
                    service: parse_name(&r.get::<_, String>(1)?)?,
                    count: count_from_row(r, 2)?,
                    amount: Money::new(r.get(5)?, parse_name::<Currency>(&r.get::<_, String>(6)?)?),
                    settled_at: r.get(7)?,
                })
            })
            .map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn balance_changes(&self, owner: AccountId, from: i64, to: i64) -> Result<Vec<BalanceChange>, BillingError> {
        let conn = self.connection(BillingError::Storage)?;
        let mut statement = conn
            .prepare(
                "SELECT id, at, movement, amount_minor, currency, reference FROM transactions
                 WHERE owner_id = ?1 AND at BETWEEN ?2 AND ?3 ORDER BY id",
            )
            .map_err(storage)?;
        let rows = statement
            .query_map(params![owner.0, from, to], |r| {
                Ok(BalanceChange {
                    id: r.get(0)?,
                    owner,
                    at: r.get(1)?,
                    movement: parse_name(&r.get::<_, String>(2)?)?,
                    amount: Money::new(r.get(3)?, parse_name(&r.get::<_, String>(4)?)?),
                    reference: r.get(5)?,
                })
            })
            .map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn settle(&self, billing: &Billing, now: i64) -> Result<Settlement, BillingError> {
        let owners = self.billing_accounts()?.into_iter().map(|a| a.owner);
        Settlement::of_each(owners, |owner, done| {
            self.billing_write(|tx| Self::settle_account(tx, billing, &activated(tx, owner)?, now, done))
        })
    }

    fn totals(&self) -> Result<Vec<(AccountId, Service, UsageCount)>, BillingError> {
        let conn = self.connection(BillingError::Storage)?;
        let mut statement = conn
            .prepare(
                "SELECT owner_id, service, SUM(trial), SUM(package), SUM(payg) FROM usage_daily
                 GROUP BY owner_id, service ORDER BY owner_id, service",
            )
            .map_err(storage)?;
        let rows = statement
            .query_map([], |r| Ok((AccountId(r.get(0)?), parse_name(&r.get::<_, String>(1)?)?, count_from_row(r, 2)?)))
            .map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn purge_events(&self, before: i64) -> Result<u64, BillingError> {
        let conn = self.connection(BillingError::Storage)?;
        let removed = conn.execute("DELETE FROM usage_events WHERE at < ?1", [before]).map_err(storage)?;
        Ok(removed as u64)
    }
}

#[cfg(test)]
mod tests {
    use crate::conformance::billing as suite;

    #[test]
    fn billing_conforms() {
        let suites: [fn(crate::SqliteStore); 9] = [
            suite::the_trial_covers_images_until_it_expires_and_never_aigc,
            suite::stacked_packages_are_drawn_earliest_expiry_first,
            suite::daily_settlement_bills_pay_as_you_go_and_suspends_in_arrears,
            suite::a_top_up_within_seven_days_resumes_and_after_that_the_activation_is_destroyed,
            suite::activation_again_is_refused_while_in_arrears,
            suite::an_unused_package_is_refundable_for_thirty_days,
            suite::monthly_tiers_settle_once_the_month_closes,
            suite::concurrent_metering_is_exact,
            suite::racing_settlements_bill_each_day_once,
        ];
        for run in suites {
            let (_dir, store) = crate::sqlite::scratch_store();
            run(store);
        }
    }
}
