//! Billing in PostgreSQL, the same tables as SQLite's (see `sqlite/billing.rs`). Every change
//! to one owner's billing runs in one transaction that first takes that owner's advisory lock
//! ([`lock::billing`]): writers of one account queue, as SQLite's immediate transactions make
//! them, while different accounts meter in parallel.

use super::{lock, lock_for_transaction, parse_name, Fault, OrFault, PostgresStore};
use crate::name_of;
use engine::accounts::AccountId;
use engine::billing::{
    add_months, Activation, BalanceChange, Bill, BillPeriod, Billing, BillingAccount, BillingError, BillingRepository,
    Calendar, Catalogue, Money, Movement, Package, PackageKind, PackageOffer, Service, ServiceState, Settlement,
    Source, Usage, UsageCount, UsageRow,
};
use postgres::types::Type;
use postgres::{GenericClient, Row, Transaction};

const ACCOUNT_COLUMNS: &str =
    "owner_id, catalogue, currency, balance_minor, state, activated_at, suspended_at, trial_granted";

fn account_from_row(row: &Row) -> Result<BillingAccount, Fault> {
    Ok(BillingAccount {
        owner: AccountId(row.try_get(0)?),
        catalogue: row.try_get(1)?,
        balance: Money::new(row.try_get(3)?, parse_name(row.try_get(2)?)?),
        state: parse_name(row.try_get(4)?)?,
        activated_at: row.try_get(5)?,
        suspended_at: row.try_get(6)?,
        trial_granted: row.try_get(7)?,
    })
}

const PACKAGE_COLUMNS: &str =
    "id, owner_id, kind, offer, images, remaining, price_minor, currency, purchased_at, expires_at, refunded_at";

fn package_from_row(row: &Row) -> Result<Package, Fault> {
    Ok(Package {
        id: row.try_get(0)?,
        owner: AccountId(row.try_get(1)?),
        kind: parse_name(row.try_get(2)?)?,
        offer: row.try_get(3)?,
        images: row.try_get::<_, i64>(4)? as u64,
        remaining: row.try_get::<_, i64>(5)? as u64,
        price: Money::new(row.try_get(6)?, parse_name(row.try_get(7)?)?),
        purchased_at: row.try_get(8)?,
        expires_at: row.try_get(9)?,
        refunded_at: row.try_get(10)?,
    })
}

fn count_from_row(row: &Row, first: usize) -> Result<UsageCount, Fault> {
    let n = |i: usize| -> Result<u64, Fault> { Ok(row.try_get::<_, i64>(first + i)? as u64) };
    Ok(UsageCount { trial: n(0)?, package: n(1)?, payg: n(2)? })
}

fn account_in(tx: &mut impl GenericClient, owner: AccountId) -> Result<Option<BillingAccount>, BillingError> {
    let row = tx
        .query_opt(&format!("SELECT {ACCOUNT_COLUMNS} FROM billing_accounts WHERE owner_id = $1"), &[&owner.0])
        .db::<BillingError>()?;
    Ok(row.map(|r| account_from_row(&r)).transpose()?)
}

/// The account, which must have activated the service once.
fn activated(tx: &mut impl GenericClient, owner: AccountId) -> Result<BillingAccount, BillingError> {
    account_in(tx, owner)?.ok_or(BillingError::NotActivated(owner))
}

/// Moves the balance by `amount` and records why.
fn move_balance(
    tx: &mut Transaction<'_>,
    owner: AccountId,
    movement: Movement,
    amount: Money,
    reference: &str,
    now: i64,
) -> Result<(), BillingError> {
    tx.execute(
        "UPDATE billing_accounts SET balance_minor = balance_minor + $2 WHERE owner_id = $1",
        &[&owner.0, &amount.minor],
    )
    .db::<BillingError>()?;
    tx.execute(
        "INSERT INTO transactions (owner_id, at, movement, amount_minor, currency, reference)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&owner.0, &now, &name_of(&movement), &amount.minor, &name_of(&amount.currency), &reference],
    )
    .db::<BillingError>()?;
    Ok(())
}

/// After a credit: the state it moves the account to ([`BillingAccount::state_after_credit`]).
fn after_credit(
    tx: &mut Transaction<'_>,
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
    tx: &mut Transaction<'_>,
    owner: AccountId,
    state: ServiceState,
    since: Option<i64>,
) -> Result<(), BillingError> {
    tx.execute(
        "UPDATE billing_accounts SET state = $2, suspended_at = $3 WHERE owner_id = $1",
        &[&owner.0, &name_of(&state), &since],
    )
    .db::<BillingError>()?;
    Ok(())
}

impl PostgresStore {
    /// Settles every account, one transaction each.
    fn settle_all(&self, billing: &Billing, now: i64) -> Result<Settlement, BillingError> {
        let owners = self.billing_accounts()?.into_iter().map(|a| a.owner);
        Settlement::of_each(owners, |owner, done| {
            self.billing_write(owner, |tx| {
                let account = activated(tx, owner)?;
                Self::settle_account(tx, billing, &account, now, done)
            })
        })
    }

    /// Runs `work` in one transaction holding `owner`'s billing lock.
    fn billing_write<T>(
        &self,
        owner: AccountId,
        work: impl FnOnce(&mut Transaction<'_>) -> Result<T, BillingError>,
    ) -> Result<T, BillingError> {
        let mut conn = self.conn::<BillingError>()?;
        let mut tx = conn.transaction().db::<BillingError>()?;
        lock_for_transaction(&mut tx, lock::billing(owner))?;
        let value = work(&mut tx)?;
        tx.commit().db::<BillingError>()?;
        Ok(value)
    }

    /// Brings the bill of one period and service up to its usage; charges the difference.
    fn settle_period(
        tx: &mut Transaction<'_>,
        account: &BillingAccount,
        catalogue: &Catalogue,
        service: Service,
        period: &str,
        count: &UsageCount,
        now: i64,
    ) -> Result<Option<Bill>, BillingError> {
        let billed = tx
            .query_opt(
                "SELECT trial, package, payg, amount_minor FROM bills WHERE owner_id = $1 AND period = $2 AND service = $3",
                &[&account.owner.0, &period, &name_of(&service)],
            )
            .db::<BillingError>()?;
        let billed: Option<(UsageCount, i64)> =
            billed.map(|r| Ok::<_, Fault>((count_from_row(&r, 0)?, r.try_get(3)?))).transpose()?;
        if billed.as_ref().is_some_and(|(c, _)| c == count) {
            return Ok(None);
        }
        let amount = catalogue.tariff(service).map_or(0, |t| t.charge(count.payg));
        let previous = billed.map_or(0, |(_, a)| a);
        let (trial, package, payg) = (count.trial as i64, count.package as i64, count.payg as i64);
        tx.execute(
            "INSERT INTO bills (owner_id, period, service, trial, package, payg, amount_minor, currency, settled_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (owner_id, period, service) DO UPDATE SET trial = $4, package = $5, payg = $6,
                 amount_minor = $7, settled_at = $9",
            &[
                &account.owner.0,
                &period,
                &name_of(&service),
                &trial,
                &package,
                &payg,
                &amount,
                &name_of(&catalogue.currency),
                &now,
            ],
        )
        .db::<BillingError>()?;
        if amount != previous {
            let charge = Money::new(previous - amount, catalogue.currency);
            let reference = format!("{period} {}", service.as_str());
            move_balance(tx, account.owner, Movement::Settlement, charge, &reference, now)?;
        }
        let period = BillPeriod::parse(period).ok_or_else(|| Fault(format!("`{period}` is not a period")))?;
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
        tx: &mut Transaction<'_>,
        billing: &Billing,
        account: &BillingAccount,
        now: i64,
        done: &mut Settlement,
    ) -> Result<(), BillingError> {
        let catalogue = billing.catalogues.get(&account.catalogue)?;
        for (service, width, through) in billing.closed_periods(catalogue, now) {
            let rows = tx
                .query(
                    "SELECT substr(day, 1, $3) AS period, SUM(trial)::BIGINT, SUM(package)::BIGINT, SUM(payg)::BIGINT
                     FROM usage_daily WHERE owner_id = $1 AND service = $2 AND substr(day, 1, $3) <= $4
                     GROUP BY period ORDER BY period",
                    &[&account.owner.0, &name_of(&service), &(width as i32), &through],
                )
                .db::<BillingError>()?;
            for row in rows {
                let (period, count): (String, UsageCount) = (row.get(0), count_from_row(&row, 1)?);
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

impl BillingRepository for PostgresStore {
    fn activate(&self, owner: AccountId, catalogue: &Catalogue, now: i64) -> Result<BillingAccount, BillingError> {
        self.billing_write(owner, |tx| {
            match Activation::decide(account_in(tx, owner)?.as_ref(), catalogue, now)? {
                Activation::First { trial } => {
                    tx.execute(
                        "INSERT INTO billing_accounts (owner_id, catalogue, currency, balance_minor, state, activated_at,
                                                       trial_granted)
                         VALUES ($1, $2, $3, 0, 'active', $4, $5)",
                        &[&owner.0, &catalogue.name, &name_of(&catalogue.currency), &now, &trial.is_some()],
                    )
                    .db::<BillingError>()?;
                    if let Some((images, expires_at)) = trial {
                        tx.execute(
                            "INSERT INTO packages (owner_id, kind, offer, images, remaining, price_minor, currency,
                                                   purchased_at, expires_at)
                             VALUES ($1, 'trial', 'trial', $2, $2, 0, $3, $4, $5)",
                            &[&owner.0, &(images as i64), &name_of(&catalogue.currency), &now, &expires_at],
                        )
                        .db::<BillingError>()?;
                    }
                }
                Activation::Again => {
                    tx.execute(
                        "UPDATE billing_accounts SET catalogue = $2, state = 'active', suspended_at = NULL,
                         activated_at = $3 WHERE owner_id = $1",
                        &[&owner.0, &catalogue.name, &now],
                    )
                    .db::<BillingError>()?;
                }
            }
            activated(tx, owner)
        })
    }

    fn billing_account(&self, owner: AccountId) -> Result<Option<BillingAccount>, BillingError> {
        account_in(&mut *self.conn::<BillingError>()?, owner)
    }

    fn billing_accounts(&self) -> Result<Vec<BillingAccount>, BillingError> {
        let rows = self
            .conn::<BillingError>()?
            .query(&format!("SELECT {ACCOUNT_COLUMNS} FROM billing_accounts ORDER BY owner_id"), &[])
            .db::<BillingError>()?;
        Ok(rows.iter().map(account_from_row).collect::<Result<_, _>>()?)
    }

    fn meter(&self, usage: &Usage, calendar: &Calendar) -> Result<Source, BillingError> {
        // On every moderated image: typed statements, one round trip each (no prepare).
        self.billing_write(usage.owner, |tx| {
            let seen = tx
                .query_typed_opt(
                    "SELECT source FROM usage_events WHERE request_id = $1",
                    &[(&usage.request_id, Type::TEXT)],
                )
                .db::<BillingError>()?;
            if let Some(row) = seen {
                return Ok(parse_name(row.get(0))?);
            }
            let drawn: Option<(i64, String)> = if usage.service.prepaid() {
                tx.query_typed_opt(
                    "SELECT id, kind FROM packages WHERE owner_id = $1 AND remaining > 0 AND refunded_at IS NULL
                     AND expires_at > $2 ORDER BY expires_at, id LIMIT 1",
                    &[(&usage.owner.0, Type::INT8), (&usage.at, Type::INT8)],
                )
                .db::<BillingError>()?
                .map(|r| (r.get(0), r.get(1)))
            } else {
                None
            };
            let source = match &drawn {
                Some((id, kind)) => {
                    tx.execute_typed(
                        "UPDATE packages SET remaining = remaining - 1 WHERE id = $1",
                        &[(id, Type::INT8)],
                    )
                    .db::<BillingError>()?;
                    if parse_name::<PackageKind>(kind)? == PackageKind::Trial {
                        Source::Trial
                    } else {
                        Source::Package
                    }
                }
                None => Source::Payg,
            };
            let (day, service, source_name) = (calendar.day(usage.at), name_of(&usage.service), name_of(&source));
            let package = drawn.map(|(id, _)| id);
            tx.execute_typed(
                "INSERT INTO usage_events (request_id, owner_id, account_id, service, day, at, source, package_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    (&usage.request_id, Type::TEXT),
                    (&usage.owner.0, Type::INT8),
                    (&usage.account.0, Type::INT8),
                    (&service, Type::TEXT),
                    (&day, Type::TEXT),
                    (&usage.at, Type::INT8),
                    (&source_name, Type::TEXT),
                    (&package, Type::INT8),
                ],
            )
            .db::<BillingError>()?;
            // The column is one of three fixed names, never input.
            tx.execute_typed(
                &format!(
                    "INSERT INTO usage_daily (owner_id, account_id, day, service, {0}) VALUES ($1, $2, $3, $4, 1)
                     ON CONFLICT (owner_id, day, service, account_id) DO UPDATE SET {0} = usage_daily.{0} + 1",
                    source.as_str()
                ),
                &[
                    (&usage.owner.0, Type::INT8),
                    (&usage.account.0, Type::INT8),
                    (&day, Type::TEXT),
                    (&service, Type::TEXT),
                ],
            )
            .db::<BillingError>()?;
            Ok(source)
        })
    }

    fn buy(&self, owner: AccountId, offer: &PackageOffer, now: i64) -> Result<Package, BillingError> {
        self.billing_write(owner, |tx| {
            activated(tx, owner)?.check_purchase(offer)?;
            let row = tx
                .query_one(
                    &format!(
                        "INSERT INTO packages (owner_id, kind, offer, images, remaining, price_minor, currency,
                                               purchased_at, expires_at)
                         VALUES ($1, 'package', $2, $3, $3, $4, $5, $6, $7) RETURNING {PACKAGE_COLUMNS}"
                    ),
                    &[
                        &owner.0,
                        &offer.offer,
                        &(offer.images as i64),
                        &offer.price.minor,
                        &name_of(&offer.price.currency),
                        &now,
                        &add_months(now, offer.months),
                    ],
                )
                .db::<BillingError>()?;
            let package = package_from_row(&row)?;
            let cost = Money::new(-offer.price.minor, offer.price.currency);
            move_balance(tx, owner, Movement::Purchase, cost, &format!("package {}", package.id), now)?;
            Ok(package)
        })
    }

    fn top_up(
        &self,
        owner: AccountId,
        amount: Money,
        grace_days: u32,
        now: i64,
    ) -> Result<BillingAccount, BillingError> {
        self.billing_write(owner, |tx| {
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
        self.billing_write(owner, |tx| {
            let row = tx
                .query_opt(
                    &format!("SELECT {PACKAGE_COLUMNS} FROM packages WHERE id = $1 AND owner_id = $2"),
                    &[&package, &owner.0],
                )
                .db::<BillingError>()?
                .ok_or(BillingError::PackageNotFound(package))?;
            let found = package_from_row(&row)?;
            if let Some(reason) = found.refusal(refund_days, now) {
                return Err(BillingError::NotRefundable(reason));
            }
            tx.execute("UPDATE packages SET remaining = 0, refunded_at = $2 WHERE id = $1", &[&package, &now])
                .db::<BillingError>()?;
            move_balance(tx, owner, Movement::Refund, found.price, &format!("package {package}"), now)?;
            after_credit(tx, owner, grace_days, now)?;
            Ok(Package { remaining: 0, refunded_at: Some(now), ..found })
        })
    }

    fn packages(&self, owner: AccountId) -> Result<Vec<Package>, BillingError> {
        let rows = self
            .conn::<BillingError>()?
            .query(
                &format!("SELECT {PACKAGE_COLUMNS} FROM packages WHERE owner_id = $1 ORDER BY expires_at, id"),
                &[&owner.0],
            )
            .db::<BillingError>()?;
        Ok(rows.iter().map(package_from_row).collect::<Result<_, _>>()?)
    }

    fn usage(
        &self,
        owner: AccountId,
        account: Option<AccountId>,
        from: &str,
        to: &str,
    ) -> Result<Vec<UsageRow>, BillingError> {
        let rows = self
            .conn::<BillingError>()?
            .query(
                "SELECT day, service, account_id, trial, package, payg FROM usage_daily
                 WHERE owner_id = $1 AND day BETWEEN $2 AND $3 AND ($4::BIGINT IS NULL OR account_id = $4)
                 ORDER BY day, service, account_id",
                &[&owner.0, &from, &to, &account.map(|a| a.0)],
            )
            .db::<BillingError>()?;
        let row = |r: &Row| -> Result<UsageRow, Fault> {
            Ok(UsageRow {
                day: r.try_get(0)?,
                service: parse_name(r.try_get(1)?)?,
                account: AccountId(r.try_get(2)?),
                count: count_from_row(r, 3)?,
            })
        };
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    fn bills(&self, owner: AccountId, from: &str, to: &str) -> Result<Vec<Bill>, BillingError> {
        let rows = self
            .conn::<BillingError>()?
            .query(
                "SELECT period, service, trial, package, payg, amount_minor, currency, settled_at FROM bills
                 WHERE owner_id = $1 AND substr(period, 1, 7) BETWEEN substr($2, 1, 7) AND substr($3, 1, 7)
                 AND (length(period) = 7 OR period BETWEEN $2 AND $3)
                 ORDER BY period, service",
                &[&owner.0, &from, &to],
            )
            .db::<BillingError>()?;
        let bill = |r: &Row| -> Result<Bill, Fault> {
            Ok(Bill {
                owner,
                period: parse_name(r.try_get(0)?)?,
                service: parse_name(r.try_get(1)?)?,
                count: count_from_row(r, 2)?,
                amount: Money::new(r.try_get(5)?, parse_name(r.try_get(6)?)?),
                settled_at: r.try_get(7)?,
            })
        };
        Ok(rows.iter().map(bill).collect::<Result<_, _>>()?)
    }

    fn balance_changes(&self, owner: AccountId, from: i64, to: i64) -> Result<Vec<BalanceChange>, BillingError> {
        let rows = self
            .conn::<BillingError>()?
            .query(
                "SELECT id, at, movement, amount_minor, currency, reference FROM transactions
                 WHERE owner_id = $1 AND at BETWEEN $2 AND $3 ORDER BY id",
                &[&owner.0, &from, &to],
            )
            .db::<BillingError>()?;
        let change = |r: &Row| -> Result<BalanceChange, Fault> {
            Ok(BalanceChange {
                id: r.try_get(0)?,
                owner,
                at: r.try_get(1)?,
                movement: parse_name(r.try_get(2)?)?,
                amount: Money::new(r.try_get(3)?, parse_name(r.try_get(4)?)?),
                reference: r.try_get(5)?,
            })
        };
        Ok(rows.iter().map(change).collect::<Result<_, _>>()?)
    }

    fn settle(&self, billing: &Billing, now: i64) -> Result<Settlement, BillingError> {
        // One node settles at a time; the others find nothing left when their turn comes.
        let mut holder = self.conn::<BillingError>()?;
        let (class, key) = lock::SETTLEMENT;
        let held: bool =
            holder.query_one("SELECT pg_try_advisory_lock($1, $2)", &[&class, &key]).db::<BillingError>()?.get(0);
        if !held {
            return Ok(Settlement::default());
        }
        let settled = self.settle_all(billing, now);
        holder.execute("SELECT pg_advisory_unlock($1, $2)", &[&class, &key]).db::<BillingError>()?;
        settled
    }

    fn totals(&self) -> Result<Vec<(AccountId, Service, UsageCount)>, BillingError> {
        let rows = self
            .conn::<BillingError>()?
            .query(
                "SELECT owner_id, service, SUM(trial)::BIGINT, SUM(package)::BIGINT, SUM(payg)::BIGINT FROM usage_daily
                 GROUP BY owner_id, service ORDER BY owner_id, service",
                &[],
            )
            .db::<BillingError>()?;
        let total = |r: &Row| -> Result<(AccountId, Service, UsageCount), Fault> {
            Ok((AccountId(r.try_get(0)?), parse_name(r.try_get(1)?)?, count_from_row(r, 2)?))
        };
        Ok(rows.iter().map(total).collect::<Result<_, _>>()?)
    }

    fn purge_events(&self, before: i64) -> Result<u64, BillingError> {
        self.conn::<BillingError>()?.execute("DELETE FROM usage_events WHERE at < $1", &[&before]).db()
    }
}
