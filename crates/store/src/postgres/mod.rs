//! The PostgreSQL store, shared by the nodes of a cluster: this module holds the pool, the
//! migrations, accounts and policies; one module per other repository trait.
//!
//! The traits are synchronous, so is the driver (`postgres`, pooled by `r2d2`): the server
//! calls every repository from blocking threads already. Each method is one transaction at
//! PostgreSQL's default READ COMMITTED; where a check and a write must not interleave with
//! another node's, the transaction first locks what it checks (the account's row for its keys,
//! an advisory lock per billing account, one for library samples). A connection waits at most
//! [`CONNECT_TIMEOUT`] to connect and a statement at most [`STATEMENT_TIMEOUT`], so a database
//! that is down or stuck fails the call (`storage` errors) instead of hanging it, and the pool
//! reconnects by itself when the database is back.

mod billing;
mod console;
mod faces;
mod history;
mod keywords;
mod libraries;
mod search;
mod tasks;

use crate::{Sealer, StoreError};
use engine::accounts::{
    check_key_room, generate_key_pair, validate_limits, validate_name, Access, Account, AccountError, AccountId,
    AccountRepository, ApiKey, Credential, KeyStatus, RateLimits, SecretKey,
};
use engine::policy::{Policy, PolicyError, PolicyRepository};
use engine::ratelimit::{slide, Admission, RateClass, RateError};
use engine::stamp::now;
use postgres::types::{ToSql, Type};
use postgres::{GenericClient, NoTls, Row};
use r2d2_postgres::PostgresConnectionManager;
use std::collections::VecDeque;
use std::time::Duration;

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
type Connection = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// How long opening a connection, or waiting for a free one in the pool, may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest one statement may run before the database cancels it.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections per node; PostgreSQL's default `max_connections` (100) fits six nodes.
const POOL_SIZE: u32 = 16;

/// Each entry moves the schema one version up; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema-2.sql"),
    include_str!("schema-3.sql"),
    include_str!("schema-4.sql"),
    include_str!("schema-5.sql"),
    include_str!("schema-6.sql"),
];

/// Advisory locks, as (class, key) pairs, in ims's own database.
pub(crate) mod lock {
    /// Held by the node that migrates the schema, for the whole migration.
    pub const SCHEMA: (i32, i32) = (1, 0);
    /// Held by the writers of library samples and their removal log (see `libraries.rs`).
    pub const SAMPLES: (i32, i32) = (2, 0);
    /// Held while the first main account of an empty database is made.
    pub const FIRST_ACCOUNT: (i32, i32) = (3, 0);
    /// Held by the writers of image-search groups and pictures (see `search.rs`).
    pub const SEARCH: (i32, i32) = (6, 0);
    /// Held by the node settling the bills: the others skip their turn.
    pub const SETTLEMENT: (i32, i32) = (5, 0);
    /// Held by every change to one billing account: its writers queue instead of racing.
    pub fn billing(owner: engine::accounts::AccountId) -> (i32, i32) {
        (4, owner.0 as i32)
    }
}

/// A database failure, whatever the repository; each repository's error takes it as `Storage`.
#[derive(Debug)]
pub(crate) struct Fault(pub(crate) String);

impl<E: std::error::Error> From<E> for Fault {
    fn from(e: E) -> Fault {
        Fault(e.to_string())
    }
}

macro_rules! storage_fault {
    ($($error:ty => $variant:path),* $(,)?) => {$(
        impl From<Fault> for $error {
            fn from(fault: Fault) -> $error {
                $variant(fault.0)
            }
        }
    )*};
}

storage_fault! {
    AccountError => AccountError::Storage,
    PolicyError => PolicyError::Store,
    engine::billing::BillingError => engine::billing::BillingError::Storage,
    engine::console::ConsoleError => engine::console::ConsoleError::Storage,
    engine::faces::FaceError => engine::faces::FaceError::Storage,
    engine::history::HistoryError => engine::history::HistoryError::Storage,
    engine::keywords::KeywordError => engine::keywords::KeywordError::Storage,
    engine::library::LibraryError => engine::library::LibraryError::Storage,
    engine::search::SearchError => engine::search::SearchError::Storage,
    engine::task::TaskError => engine::task::TaskError::Storage,
    RateError => RateError,
}

/// `?` for the driver's results in a repository method: a failure becomes its `Storage` error.
pub(crate) trait OrFault<T> {
    fn db<E: From<Fault>>(self) -> Result<T, E>;
}

impl<T, X: std::error::Error> OrFault<T> for Result<T, X> {
    fn db<E: From<Fault>>(self) -> Result<T, E> {
        self.map_err(|e| Fault::from(e).into())
    }
}

/// A stored enum name read back (see [`crate::name_of`]).
pub(crate) fn parse_name<T: serde::de::DeserializeOwned>(name: &str) -> Result<T, Fault> {
    Ok(crate::name_from(name)?)
}

/// Takes an advisory lock until the end of the transaction.
pub(crate) fn lock_for_transaction(tx: &mut impl GenericClient, (class, key): (i32, i32)) -> Result<(), Fault> {
    tx.execute_typed("SELECT pg_advisory_xact_lock($1, $2)", &[(&class, Type::INT4), (&key, Type::INT4)])?;
    Ok(())
}

pub struct PostgresStore {
    pool: Pool,
    sealer: Sealer,
}

impl PostgresStore {
    /// Connects to the database `url` names (it must exist) and brings its schema up to date.
    pub fn open(url: &str, sealer: Sealer) -> Result<Self, StoreError> {
        // The driver's message never quotes the URL, so a password in it stays out of logs.
        let mut config: postgres::Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let options = format!("-c statement_timeout={}", STATEMENT_TIMEOUT.as_millis());
        let options = match config.get_options() {
            Some(given) => format!("{given} {options}"),
            None => options,
        };
        config.options(&options).application_name("ims");
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(CONNECT_TIMEOUT)
            // A test query before each use (one round trip, about 0.1 ms): the driver notices a
            // connection the database closed (a restart) only when it next uses it, and the call
            // that did would fail; tested, it is replaced instead.
            .test_on_check_out(true)
            .build(manager)?;
        let store = PostgresStore { pool, sealer };
        store.migrate()?;
        Ok(store)
    }

    /// Runs the migrations this database lacks, under a lock: of nodes starting together on a
    /// new database, one migrates and the others wait, then find nothing to do.
    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        let (class, key) = lock::SCHEMA;
        conn.execute("SELECT pg_advisory_lock($1, $2)", &[&class, &key])?;
        let migrated = Self::migrate_locked(&mut conn);
        conn.execute("SELECT pg_advisory_unlock($1, $2)", &[&class, &key])?;
        migrated
    }

    fn migrate_locked(conn: &mut Connection) -> Result<(), StoreError> {
        conn.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )?;
        let version: i32 = conn.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?.get(0);
        let known = MIGRATIONS.len() as i32;
        if version > known {
            return Err(StoreError::SchemaTooNew { found: version.into(), known: known.into() });
        }
        for (done, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let mut tx = conn.transaction()?;
            tx.batch_execute(migration)?;
            tx.execute("INSERT INTO schema_migrations VALUES ($1, $2)", &[&(done as i32 + 1), &now()])?;
            tx.commit()?;
        }
        Ok(())
    }

    /// A pooled connection, its failure in the caller's error type.
    pub(crate) fn conn<E: From<Fault>>(&self) -> Result<Connection, E> {
        self.pool.get().db()
    }
}

impl crate::Store for PostgresStore {
    fn ping(&self) -> Result<(), StoreError> {
        self.pool.get()?.execute("SELECT 1", &[])?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn admission(self: std::sync::Arc<Self>) -> std::sync::Arc<dyn Admission> {
        self
    }
}

impl Admission for PostgresStore {
    fn admit(&self, account: AccountId, class: RateClass, limit: u32) -> Result<bool, RateError> {
        let mut conn = self.conn::<RateError>()?;
        let mut tx = conn.transaction().db::<RateError>()?;
        // Makes the window or locks it, and reads it with the database's clock: one clock for
        // every node, whatever their own say.
        // Typed statements: one round trip each, no prepare (this runs on every call).
        let class = class.key().into_owned();
        let key: [(&(dyn ToSql + Sync), Type); 2] = [(&account.0, Type::INT8), (&class, Type::TEXT)];
        let row = tx
            .query_typed_one(
                "INSERT INTO rate_windows VALUES ($1, $2, '{}') ON CONFLICT (account_id, class)
                 DO UPDATE SET admitted = rate_windows.admitted
                 RETURNING admitted, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT",
                &key,
            )
            .db::<RateError>()?;
        let (mut window, now): (VecDeque<i64>, i64) = (row.get::<_, Vec<i64>>(0).into(), row.get(1));
        let admitted = slide(&mut window, now, |t| now - t >= 1000, limit);
        if admitted {
            tx.execute(
                "UPDATE rate_windows SET admitted = $3 WHERE account_id = $1 AND class = $2",
                &[&account.0, &class, &Vec::from(window)],
            )
            .db::<RateError>()?;
        }
        tx.commit().db::<RateError>()?;
        Ok(admitted)
    }
}

const ACCOUNT_COLUMNS: &str = "id, name, parent_id, access, sync_per_second, async_per_second, created_at";

fn account_from_row(row: &Row) -> Result<Account, Fault> {
    let limit = |i: usize| -> Result<Option<u32>, Fault> { Ok(row.try_get::<_, Option<i32>>(i)?.map(|n| n as u32)) };
    Ok(Account {
        id: AccountId(row.try_get(0)?),
        name: row.try_get(1)?,
        parent: row.try_get::<_, Option<i64>>(2)?.map(AccountId),
        access: Access::parse(row.try_get(3)?).unwrap_or(Access::None),
        limits: RateLimits { sync_per_second: limit(4)?, async_per_second: limit(5)? },
        created_at: row.try_get(6)?,
    })
}

fn key_from_row(row: &Row) -> Result<ApiKey, Fault> {
    Ok(ApiKey {
        secret_id: row.try_get(0)?,
        account: AccountId(row.try_get(1)?),
        status: if row.try_get::<_, &str>(2)? == "active" { KeyStatus::Active } else { KeyStatus::Disabled },
        created_at: row.try_get(3)?,
    })
}

/// The account; `lock` also locks its row until the transaction ends (key changes).
fn load_account(conn: &mut impl GenericClient, id: AccountId, lock: bool) -> Result<Account, AccountError> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1{}", if lock { " FOR UPDATE" } else { "" });
    let row = conn.query_opt(&sql, &[&id.0]).db::<AccountError>()?.ok_or(AccountError::AccountNotFound(id))?;
    Ok(account_from_row(&row)?)
}

fn load_key(conn: &mut impl GenericClient, secret_id: &str) -> Result<ApiKey, AccountError> {
    let row = conn
        .query_opt("SELECT secret_id, account_id, status, created_at FROM api_keys WHERE secret_id = $1", &[&secret_id])
        .db::<AccountError>()?
        .ok_or_else(|| AccountError::KeyNotFound(secret_id.to_string()))?;
    Ok(key_from_row(&row)?)
}

fn active_keys(conn: &mut impl GenericClient, account: AccountId) -> Result<usize, AccountError> {
    let row = conn
        .query_one("SELECT COUNT(*) FROM api_keys WHERE account_id = $1 AND status = 'active'", &[&account.0])
        .db::<AccountError>()?;
    Ok(row.get::<_, i64>(0) as usize)
}

fn insert_account(
    conn: &mut impl GenericClient,
    name: &str,
    parent: Option<AccountId>,
    access: Access,
) -> Result<Account, AccountError> {
    let row = conn
        .query_one(
            &format!(
                "INSERT INTO accounts (name, parent_id, access, created_at) VALUES ($1, $2, $3, $4)
                 RETURNING {ACCOUNT_COLUMNS}"
            ),
            &[&name, &parent.map(|p| p.0), &access.as_str(), &now()],
        )
        .db::<AccountError>()?;
    Ok(account_from_row(&row)?)
}

impl AccountRepository for PostgresStore {
    fn create_account(&self, name: &str, parent: Option<AccountId>) -> Result<Account, AccountError> {
        validate_name(name)?;
        let mut conn = self.conn::<AccountError>()?;
        let mut tx = conn.transaction().db::<AccountError>()?;
        let parent_account = parent.map(|p| load_account(&mut tx, p, false)).transpose()?;
        let access = Account::initial_access(parent_account.as_ref())?;
        let account = insert_account(&mut tx, name, parent, access)?;
        tx.commit().db::<AccountError>()?;
        Ok(account)
    }

    fn create_first_account(&self, name: &str) -> Result<Option<Account>, AccountError> {
        validate_name(name)?;
        let mut conn = self.conn::<AccountError>()?;
        let mut tx = conn.transaction().db::<AccountError>()?;
        lock_for_transaction(&mut tx, lock::FIRST_ACCOUNT)?;
        let exists =
            tx.query_opt("SELECT 1 FROM accounts WHERE parent_id IS NULL LIMIT 1", &[]).db::<AccountError>()?;
        if exists.is_some() {
            return Ok(None);
        }
        let account = insert_account(&mut tx, name, None, Access::Full)?;
        tx.commit().db::<AccountError>()?;
        Ok(Some(account))
    }

    fn account(&self, id: AccountId) -> Result<Account, AccountError> {
        load_account(&mut *self.conn::<AccountError>()?, id, false)
    }

    fn accounts(&self) -> Result<Vec<Account>, AccountError> {
        let rows = self
            .conn::<AccountError>()?
            .query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"), &[])
            .db::<AccountError>()?;
        Ok(rows.iter().map(account_from_row).collect::<Result<_, _>>()?)
    }

    fn set_access(&self, id: AccountId, access: Access) -> Result<Account, AccountError> {
        let mut conn = self.conn::<AccountError>()?;
        load_account(&mut *conn, id, false)?.check_grantable()?;
        conn.execute("UPDATE accounts SET access = $1 WHERE id = $2", &[&access.as_str(), &id.0])
            .db::<AccountError>()?;
        load_account(&mut *conn, id, false)
    }

    fn set_limits(&self, id: AccountId, limits: RateLimits) -> Result<Account, AccountError> {
        validate_limits(limits)?;
        let mut conn = self.conn::<AccountError>()?;
        load_account(&mut *conn, id, false)?;
        let (sync, r#async) = (limits.sync_per_second.map(|n| n as i32), limits.async_per_second.map(|n| n as i32));
        conn.execute(
            "UPDATE accounts SET sync_per_second = $1, async_per_second = $2 WHERE id = $3",
            &[&sync, &r#async, &id.0],
        )
        .db::<AccountError>()?;
        load_account(&mut *conn, id, false)
    }

    fn create_key(&self, account: AccountId) -> Result<(ApiKey, SecretKey), AccountError> {
        let mut conn = self.conn::<AccountError>()?;
        let mut tx = conn.transaction().db::<AccountError>()?;
        // The account's row, locked: two creations cannot both count one active key.
        load_account(&mut tx, account, true)?;
        check_key_room(account, active_keys(&mut tx, account)?)?;
        let (secret_id, secret_key) = generate_key_pair();
        let sealed = self.sealer.seal(secret_key.expose().as_bytes(), secret_id.as_bytes());
        tx.execute(
            "INSERT INTO api_keys (secret_id, account_id, sealed_secret, status, created_at)
             VALUES ($1, $2, $3, 'active', $4)",
            &[&secret_id, &account.0, &sealed, &now()],
        )
        .db::<AccountError>()?;
        let key = load_key(&mut tx, &secret_id)?;
        tx.commit().db::<AccountError>()?;
        Ok((key, secret_key))
    }

    fn keys(&self, account: Option<AccountId>) -> Result<Vec<ApiKey>, AccountError> {
        let rows = self
            .conn::<AccountError>()?
            .query(
                "SELECT secret_id, account_id, status, created_at FROM api_keys
                 WHERE $1::BIGINT IS NULL OR account_id = $1 ORDER BY account_id, created_at, secret_id",
                &[&account.map(|a| a.0)],
            )
            .db::<AccountError>()?;
        Ok(rows.iter().map(key_from_row).collect::<Result<_, _>>()?)
    }

    fn set_key_status(&self, secret_id: &str, status: KeyStatus) -> Result<ApiKey, AccountError> {
        let mut conn = self.conn::<AccountError>()?;
        let mut tx = conn.transaction().db::<AccountError>()?;
        let key = load_key(&mut tx, secret_id)?;
        if status == KeyStatus::Active && key.status != KeyStatus::Active {
            load_account(&mut tx, key.account, true)?;
            check_key_room(key.account, active_keys(&mut tx, key.account)?)?;
        }
        tx.execute("UPDATE api_keys SET status = $1 WHERE secret_id = $2", &[&status.as_str(), &secret_id])
            .db::<AccountError>()?;
        let key = load_key(&mut tx, secret_id)?;
        tx.commit().db::<AccountError>()?;
        Ok(key)
    }

    fn delete_key(&self, secret_id: &str) -> Result<(), AccountError> {
        let deleted = self
            .conn::<AccountError>()?
            .execute("DELETE FROM api_keys WHERE secret_id = $1", &[&secret_id])
            .db::<AccountError>()?;
        if deleted == 0 {
            return Err(AccountError::KeyNotFound(secret_id.to_string()));
        }
        Ok(())
    }

    fn credential(&self, secret_id: &str) -> Result<Option<Credential>, AccountError> {
        // Every API call asks this: one statement, typed, so one round trip (no prepare).
        let found = self
            .conn::<AccountError>()?
            .query_typed_opt(
                "SELECT a.id, a.name, a.parent_id, a.access, a.sync_per_second, a.async_per_second, a.created_at,
                        k.sealed_secret
                 FROM api_keys k JOIN accounts a ON a.id = k.account_id
                 WHERE k.secret_id = $1 AND k.status = 'active'",
                &[(&secret_id, Type::TEXT)],
            )
            .db::<AccountError>()?;
        let Some(row) = found else { return Ok(None) };
        let account = account_from_row(&row)?;
        let sealed: Vec<u8> = row.get(7);
        let secret = self.sealer.open(&sealed, secret_id.as_bytes()).db::<AccountError>()?;
        let secret = String::from_utf8(secret).db::<AccountError>()?;
        Ok(Some(Credential { secret_key: SecretKey::new(secret), account }))
    }
}

fn policy_from_body(body: &str) -> Result<Policy, PolicyError> {
    serde_json::from_str(body).db()
}

impl PostgresStore {
    /// Validates and stores a policy with `sql` (parameters: owner, name, body, now); returns
    /// the rows changed.
    fn write_policy(&self, sql: &str, owner: AccountId, policy: &Policy) -> Result<u64, PolicyError> {
        policy.validate()?;
        let body = serde_json::to_string(policy).db::<PolicyError>()?;
        self.conn::<PolicyError>()?.execute(sql, &[&owner.0, &policy.biz_type, &body, &now()]).db()
    }
}

impl PolicyRepository for PostgresStore {
    fn create_policy(&self, owner: AccountId, policy: &Policy) -> Result<(), PolicyError> {
        let sql = "INSERT INTO policies (owner_id, biz_type, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
                   ON CONFLICT DO NOTHING";
        if self.write_policy(sql, owner, policy)? == 0 {
            return Err(PolicyError::Exists(policy.biz_type.clone()));
        }
        Ok(())
    }

    fn update_policy(&self, owner: AccountId, policy: &Policy) -> Result<(), PolicyError> {
        let sql = "UPDATE policies SET body = $3, updated_at = $4 WHERE owner_id = $1 AND biz_type = $2";
        if self.write_policy(sql, owner, policy)? == 0 {
            return Err(PolicyError::NotFound(policy.biz_type.clone()));
        }
        Ok(())
    }

    fn policy(&self, owner: AccountId, biz_type: &str) -> Result<Option<Policy>, PolicyError> {
        let row = self
            .conn::<PolicyError>()?
            .query_typed_opt(
                "SELECT body FROM policies WHERE owner_id = $1 AND biz_type = $2",
                &[(&owner.0, Type::INT8), (&biz_type, Type::TEXT)],
            )
            .db::<PolicyError>()?;
        row.map(|r| policy_from_body(r.get(0))).transpose()
    }

    fn policies(&self, owner: AccountId) -> Result<Vec<Policy>, PolicyError> {
        let rows = self
            .conn::<PolicyError>()?
            .query("SELECT body FROM policies WHERE owner_id = $1 ORDER BY biz_type", &[&owner.0])
            .db::<PolicyError>()?;
        rows.iter().map(|r| policy_from_body(r.get(0))).collect()
    }

    fn delete_policy(&self, owner: AccountId, biz_type: &str) -> Result<(), PolicyError> {
        let deleted = self
            .conn::<PolicyError>()?
            .execute("DELETE FROM policies WHERE owner_id = $1 AND biz_type = $2", &[&owner.0, &biz_type])
            .db::<PolicyError>()?;
        if deleted == 0 {
            return Err(PolicyError::NotFound(biz_type.into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
