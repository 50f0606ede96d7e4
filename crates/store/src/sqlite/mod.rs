//! The embedded SQLite store: this module holds the pool, the migrations, accounts and
//! policies; one module per other repository trait.
//!
//! One database file in the data directory, in WAL mode so the server's readers and the CLI's
//! writers do not block each other: an account or key changed with the CLI takes effect on the
//! running server's next request. Migrations are numbered and recorded in `user_version`.

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
use engine::stamp::now;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

type Pool = r2d2::Pool<SqliteConnectionManager>;

/// Each entry moves the schema one version up; never edit one that has shipped.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        parent_id INTEGER REFERENCES accounts(id),
        access TEXT NOT NULL CHECK (access IN ('none', 'read-only', 'full')),
        sync_per_second INTEGER,
        async_per_second INTEGER,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE api_keys (
        secret_id TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        sealed_secret BLOB NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
        created_at INTEGER NOT NULL
    );
    CREATE INDEX api_keys_by_account ON api_keys(account_id);
"#,
    r#"
    CREATE TABLE policies (
        owner_id INTEGER NOT NULL REFERENCES accounts(id),
        biz_type TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (owner_id, biz_type)
    );
"#,
    r#"
    CREATE TABLE results (
        request_id TEXT PRIMARY KEY,
        owner_id INTEGER NOT NULL,
        account_id INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        origin TEXT NOT NULL CHECK (origin IN ('sync', 'async')),
        biz_type TEXT NOT NULL,
        data_id TEXT NOT NULL,
        file_md5 TEXT NOT NULL,
        file_url TEXT NOT NULL,
        suggestion TEXT NOT NULL,
        label TEXT NOT NULL,
        sub_label TEXT NOT NULL,
        score INTEGER NOT NULL,
        flagged TEXT NOT NULL,
        text TEXT NOT NULL,
        hits TEXT NOT NULL,
        response TEXT NOT NULL,
        thumbnail BLOB,
        hashes BLOB NOT NULL,
        corrected_suggestion TEXT,
        corrected_label TEXT,
        correction_note TEXT,
        corrected_by INTEGER,
        corrected_at INTEGER
    );
    CREATE INDEX results_by_owner ON results(owner_id, created_at);
    CREATE INDEX results_by_time ON results(created_at);

    CREATE TABLE image_libs (
        lib_id TEXT PRIMARY KEY,
        owner_id INTEGER NOT NULL REFERENCES accounts(id),
        name TEXT NOT NULL,
        label TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('Allow', 'Block')),
        created_at INTEGER NOT NULL,
        UNIQUE (owner_id, name)
    );
    CREATE TABLE image_samples (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        image_id TEXT NOT NULL UNIQUE,
        lib_id TEXT NOT NULL REFERENCES image_libs(lib_id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        hashes BLOB NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX image_samples_by_lib ON image_samples(lib_id, seq);
    -- Readers that keep an index in memory follow removals by this log's sequence.
    CREATE TABLE image_sample_removals (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sample_seq INTEGER NOT NULL
    );
    CREATE TRIGGER image_sample_removed AFTER DELETE ON image_samples
    BEGIN
        INSERT INTO image_sample_removals (sample_seq) VALUES (old.seq);
    END;

    CREATE TABLE tasks (
        task_id TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL,
        secret_id TEXT NOT NULL,
        data_id TEXT NOT NULL,
        callback_url TEXT NOT NULL,
        request TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'delivering', 'delivered', 'failed')),
        result TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        last_error TEXT NOT NULL DEFAULT '',
        delivered_at INTEGER
    );
    CREATE INDEX tasks_by_state ON tasks(state, next_attempt_at);
"#,
    r#"
    CREATE TABLE keyword_libs (
        lib_id TEXT PRIMARY KEY,
        owner_id INTEGER NOT NULL REFERENCES accounts(id),
        name TEXT NOT NULL,
        label TEXT NOT NULL,
        suggestion TEXT NOT NULL CHECK (suggestion IN ('Block', 'Review')),
        created_at INTEGER NOT NULL,
        UNIQUE (owner_id, name)
    );
    CREATE TABLE keywords (
        sample_id TEXT PRIMARY KEY,
        lib_id TEXT NOT NULL REFERENCES keyword_libs(lib_id) ON DELETE CASCADE,
        content TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (lib_id, content)
    );
    -- Bumped by every change to keyword libraries, so matchers know when to rebuild.
    CREATE TABLE keyword_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
    INSERT INTO keyword_version VALUES (1, 0);
"#,
    r#"
    CREATE TABLE billing_accounts (
        owner_id INTEGER PRIMARY KEY REFERENCES accounts(id),
        catalogue TEXT NOT NULL,
        currency TEXT NOT NULL,
        balance_minor INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('active', 'suspended', 'destroyed')),
        activated_at INTEGER NOT NULL,
        suspended_at INTEGER,
        trial_granted INTEGER NOT NULL
    );
    CREATE TABLE packages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        owner_id INTEGER NOT NULL REFERENCES accounts(id),
        kind TEXT NOT NULL CHECK (kind IN ('trial', 'package')),
        offer TEXT NOT NULL,
        images INTEGER NOT NULL,
        remaining INTEGER NOT NULL CHECK (remaining >= 0),
        price_minor INTEGER NOT NULL,
        currency TEXT NOT NULL,
        purchased_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        refunded_at INTEGER
    );
    CREATE INDEX packages_to_draw ON packages(owner_id, expires_at, id) WHERE remaining > 0;
    CREATE TABLE usage_events (
        request_id TEXT PRIMARY KEY,
        owner_id INTEGER NOT NULL,
        account_id INTEGER NOT NULL,
        service TEXT NOT NULL,
        day TEXT NOT NULL,
        at INTEGER NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('trial', 'package', 'payg')),
        package_id INTEGER
    );
    CREATE INDEX usage_events_by_time ON usage_events(at);
    CREATE TABLE usage_daily (
        owner_id INTEGER NOT NULL,
        account_id INTEGER NOT NULL,
        day TEXT NOT NULL,
        service TEXT NOT NULL,
        trial INTEGER NOT NULL DEFAULT 0,
        package INTEGER NOT NULL DEFAULT 0,
        payg INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (owner_id, day, service, account_id)
    );
    CREATE TABLE bills (
        owner_id INTEGER NOT NULL,
        period TEXT NOT NULL,
        service TEXT NOT NULL,
        trial INTEGER NOT NULL,
        package INTEGER NOT NULL,
        payg INTEGER NOT NULL,
        amount_minor INTEGER NOT NULL,
        currency TEXT NOT NULL,
        settled_at INTEGER NOT NULL,
        PRIMARY KEY (owner_id, period, service)
    );
    CREATE TABLE transactions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        owner_id INTEGER NOT NULL,
        at INTEGER NOT NULL,
        movement TEXT NOT NULL CHECK (movement IN ('topup', 'purchase', 'refund', 'settlement')),
        amount_minor INTEGER NOT NULL,
        currency TEXT NOT NULL,
        reference TEXT NOT NULL
    );
    CREATE INDEX transactions_by_owner ON transactions(owner_id, at);
    -- Main accounts from before billing keep working: activated on the built-in list, no trial.
    INSERT INTO billing_accounts (owner_id, catalogue, currency, balance_minor, state, activated_at, trial_granted)
        SELECT id, 'cn', 'CNY', 0, 'active', created_at, 0 FROM accounts WHERE parent_id IS NULL;
"#,
    r#"
    ALTER TABLE results ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE results ADD COLUMN device_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE results ADD COLUMN context TEXT NOT NULL DEFAULT '';
    CREATE INDEX results_by_user ON results(owner_id, user_id, created_at) WHERE user_id <> '';
    CREATE INDEX results_by_device ON results(owner_id, device_id, created_at) WHERE device_id <> '';
"#,
    // Delivery retries are scheduled in milliseconds (see `Task::next_attempt_ms`).
    r#"
    ALTER TABLE tasks RENAME COLUMN next_attempt_at TO next_attempt_ms;
    UPDATE tasks SET next_attempt_ms = next_attempt_ms * 1000;
"#,
    // The console (see `console.rs`): sessions by the hash of their token, passwords, failures.
    r#"
    CREATE TABLE console_sessions (
        token_hash TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        csrf TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        seen_at INTEGER NOT NULL
    );
    CREATE INDEX console_sessions_by_account ON console_sessions(account_id);
    CREATE TABLE console_passwords (
        account_id INTEGER PRIMARY KEY REFERENCES accounts(id),
        phc TEXT NOT NULL,
        set_at INTEGER NOT NULL
    );
    CREATE TABLE console_failures (subject TEXT NOT NULL, at INTEGER NOT NULL);
    CREATE INDEX console_failures_by_subject ON console_failures(subject, at);
"#,
    // What the detectors reported for each result, so a policy's change can be previewed; and
    // results asked for in the console. SQLite cannot change a CHECK constraint in place: the
    // table is made again, rowids (the listings' tie-break) kept.
    r#"
    CREATE TABLE results_new (
        request_id TEXT PRIMARY KEY,
        owner_id INTEGER NOT NULL,
        account_id INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        origin TEXT NOT NULL CHECK (origin IN ('sync', 'async', 'console')),
        biz_type TEXT NOT NULL,
        data_id TEXT NOT NULL,
        file_md5 TEXT NOT NULL,
        file_url TEXT NOT NULL,
        suggestion TEXT NOT NULL,
        label TEXT NOT NULL,
        sub_label TEXT NOT NULL,
        score INTEGER NOT NULL,
        flagged TEXT NOT NULL,
        text TEXT NOT NULL,
        hits TEXT NOT NULL,
        response TEXT NOT NULL,
        thumbnail BLOB,
        hashes BLOB NOT NULL,
        corrected_suggestion TEXT,
        corrected_label TEXT,
        correction_note TEXT,
        corrected_by INTEGER,
        corrected_at INTEGER,
        user_id TEXT NOT NULL DEFAULT '',
        device_id TEXT NOT NULL DEFAULT '',
        context TEXT NOT NULL DEFAULT '',
        observations TEXT
    );
    INSERT INTO results_new (rowid, request_id, owner_id, account_id, created_at, origin, biz_type, data_id, file_md5, file_url, suggestion, label, sub_label, score, flagged, text, hits, response, thumbnail, hashes, corrected_suggestion, corrected_label, correction_note, corrected_by, corrected_at, user_id, device_id, context)
        SELECT rowid, request_id, owner_id, account_id, created_at, origin, biz_type, data_id, file_md5, file_url, suggestion, label, sub_label, score, flagged, text, hits, response, thumbnail, hashes, corrected_suggestion, corrected_label, correction_note, corrected_by, corrected_at, user_id, device_id, context FROM results;
    DROP TABLE results;
    ALTER TABLE results_new RENAME TO results;
    -- Listings read this index alone (the filters' columns are in it), then the page's rows.
    CREATE INDEX results_for_listing ON results(owner_id, created_at, suggestion, label, biz_type, corrected_at, flagged);
    CREATE INDEX results_by_data_id ON results(owner_id, data_id, created_at);
    CREATE INDEX results_by_time ON results(created_at);
    CREATE INDEX results_by_user ON results(owner_id, user_id, created_at) WHERE user_id <> '';
    CREATE INDEX results_by_device ON results(owner_id, device_id, created_at) WHERE device_id <> '';
"#,
    r#"
    -- Face libraries (issue 19). Descriptors and centroids are sealed like the API secrets.
    CREATE TABLE face_libs (
        lib_id TEXT PRIMARY KEY,
        owner_id INTEGER NOT NULL REFERENCES accounts(id),
        name TEXT NOT NULL,
        label TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('Block', 'Review', 'Allow')),
        max_distance REAL NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (owner_id, name)
    );
    CREATE TABLE face_people (
        key INTEGER PRIMARY KEY AUTOINCREMENT,
        person_id TEXT NOT NULL UNIQUE,
        lib_id TEXT NOT NULL REFERENCES face_libs(lib_id),
        name TEXT NOT NULL,
        model TEXT NOT NULL,
        centroid BLOB NOT NULL,
        version INTEGER NOT NULL,
        UNIQUE (lib_id, name)
    );
    CREATE INDEX face_people_by_version ON face_people(version);
    CREATE TABLE face_samples (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sample_id TEXT NOT NULL UNIQUE,
        person_key INTEGER NOT NULL REFERENCES face_people(key),
        model TEXT NOT NULL,
        descriptor BLOB NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX face_samples_by_person ON face_samples(person_key, seq);
    -- Indexes in memory follow removed people by this log, changed ones by their version.
    CREATE TABLE face_removals (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        person_key INTEGER NOT NULL
    );
    CREATE TRIGGER face_person_removed AFTER DELETE ON face_people
    BEGIN
        INSERT INTO face_removals (person_key) VALUES (old.key);
    END;
    CREATE TABLE face_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
    INSERT INTO face_version VALUES (1, 0);
"#,
    r#"
    -- The service each result was metered as (issue 20): image-analysis (tiia) calls are kept
    -- beside moderation results. Results from before were moderations.
    ALTER TABLE results ADD COLUMN service TEXT NOT NULL DEFAULT 'IMAGE';
    -- Listings still read this index alone: the service is one of the filters now.
    DROP INDEX results_for_listing;
    CREATE INDEX results_for_listing
        ON results(owner_id, created_at, suggestion, label, biz_type, corrected_at, flagged, service);
"#,
    r#"
    -- Image search (tiia's CreateGroup, CreateImage, issue 20): each account's groups and their
    -- pictures, filed as PDQ hashes like the image libraries' samples.
    CREATE TABLE search_groups (
        owner_id INTEGER NOT NULL REFERENCES accounts(id),
        group_id TEXT NOT NULL,
        name TEXT NOT NULL,
        brief TEXT NOT NULL,
        max_capacity INTEGER NOT NULL,
        max_qps INTEGER NOT NULL,
        group_type INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (owner_id, group_id)
    );
    CREATE TABLE search_pictures (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        owner_id INTEGER NOT NULL,
        group_id TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        pic_name TEXT NOT NULL,
        custom_content TEXT NOT NULL,
        tags TEXT NOT NULL,
        hashes BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (owner_id, group_id, pic_name),
        FOREIGN KEY (owner_id, group_id) REFERENCES search_groups(owner_id, group_id)
    );
    CREATE INDEX search_pictures_by_entity ON search_pictures(owner_id, group_id, entity_id, seq);
    -- Indexes in memory follow removals by this log's sequence.
    CREATE TABLE search_picture_removals (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        picture_seq INTEGER NOT NULL
    );
    CREATE TRIGGER search_picture_removed AFTER DELETE ON search_pictures
    BEGIN
        INSERT INTO search_picture_removals (picture_seq) VALUES (old.seq);
    END;
"#,
];

pub struct SqliteStore {
    pool: Pool,
    sealer: Sealer,
}

/// A stored enum name read back (see [`crate::name_of`]), as a row-mapping error if unknown.
pub(crate) fn parse_name<T: serde::de::DeserializeOwned>(name: &str) -> rusqlite::Result<T> {
    crate::name_from(name)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn storage(e: impl std::fmt::Display) -> AccountError {
    AccountError::Storage(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path, sealer: Sealer) -> Result<Self, StoreError> {
        // WAL is a property of the file: set it once, before the pool opens connections in
        // parallel (changing it from several connections at once fails with "locked").
        rusqlite::Connection::open(path)?.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        let manager = SqliteConnectionManager::file(path).with_init(|c| {
            c.busy_timeout(Duration::from_secs(5))?;
            c.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
        });
        let pool = r2d2::Pool::builder().max_size(8).min_idle(Some(1)).build(manager)?;
        let store = SqliteStore { pool, sealer };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::SchemaTooNew { found: version, known });
        }
        for migration in &MIGRATIONS[version as usize..] {
            tx.execute_batch(migration)?;
        }
        tx.pragma_update(None, "user_version", known)?;
        tx.commit()?;
        Ok(())
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, AccountError> {
        self.pool.get().map_err(storage)
    }

    /// A pooled connection, its error in the caller's error type.
    pub(crate) fn connection<E>(
        &self,
        error: impl Fn(String) -> E,
    ) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, E> {
        self.pool.get().map_err(|e| error(e.to_string()))
    }
}

impl crate::Store for SqliteStore {
    fn ping(&self) -> Result<(), StoreError> {
        self.pool.get()?.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn admission(self: std::sync::Arc<Self>) -> std::sync::Arc<dyn engine::ratelimit::Admission> {
        std::sync::Arc::new(engine::ratelimit::RateLimiter::default())
    }
}

const ACCOUNT_COLUMNS: &str = "id, name, parent_id, access, sync_per_second, async_per_second, created_at";

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<Account> {
    let access: String = row.get(3)?;
    Ok(Account {
        id: AccountId(row.get(0)?),
        name: row.get(1)?,
        parent: row.get::<_, Option<i64>>(2)?.map(AccountId),
        access: Access::parse(&access).unwrap_or(Access::None),
        limits: RateLimits { sync_per_second: row.get(4)?, async_per_second: row.get(5)? },
        created_at: row.get(6)?,
    })
}

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    let status: String = row.get(2)?;
    Ok(ApiKey {
        secret_id: row.get(0)?,
        account: AccountId(row.get(1)?),
        status: if status == "active" { KeyStatus::Active } else { KeyStatus::Disabled },
        created_at: row.get(3)?,
    })
}

fn load_account(conn: &rusqlite::Connection, id: AccountId) -> Result<Account, AccountError> {
    conn.query_row(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"), [id.0], account_from_row)
        .optional()
        .map_err(storage)?
        .ok_or(AccountError::AccountNotFound(id))
}

fn load_key(conn: &rusqlite::Connection, secret_id: &str) -> Result<ApiKey, AccountError> {
    conn.query_row(
        "SELECT secret_id, account_id, status, created_at FROM api_keys WHERE secret_id = ?1",
        [secret_id],
        key_from_row,
    )
    .optional()
    .map_err(storage)?
    .ok_or_else(|| AccountError::KeyNotFound(secret_id.to_string()))
}

fn active_keys(conn: &rusqlite::Connection, account: AccountId) -> Result<usize, AccountError> {
    conn.query_row("SELECT COUNT(*) FROM api_keys WHERE account_id = ?1 AND status = 'active'", [account.0], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as usize)
    .map_err(storage)
}

impl AccountRepository for SqliteStore {
    fn create_account(&self, name: &str, parent: Option<AccountId>) -> Result<Account, AccountError> {
        validate_name(name)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(storage)?;
        let parent_account = parent.map(|p| load_account(&tx, p)).transpose()?;
        let access = Account::initial_access(parent_account.as_ref())?;
        tx.execute(
            "INSERT INTO accounts (name, parent_id, access, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, parent.map(|p| p.0), access.as_str(), now()],
        )
        .map_err(storage)?;
        let account = load_account(&tx, AccountId(tx.last_insert_rowid()))?;
        tx.commit().map_err(storage)?;
        Ok(account)
    }

    fn create_first_account(&self, name: &str) -> Result<Option<Account>, AccountError> {
        validate_name(name)?;
        let mut conn = self.conn()?;
        // IMMEDIATE: of two processes on an empty file, the second sees the first's account.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(storage)?;
        let exists = tx
            .query_row("SELECT 1 FROM accounts WHERE parent_id IS NULL LIMIT 1", [], |_| Ok(()))
            .optional()
            .map_err(storage)?;
        if exists.is_some() {
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO accounts (name, parent_id, access, created_at) VALUES (?1, NULL, 'full', ?2)",
            params![name, now()],
        )
        .map_err(storage)?;
        let account = load_account(&tx, AccountId(tx.last_insert_rowid()))?;
        tx.commit().map_err(storage)?;
        Ok(Some(account))
    }

    fn account(&self, id: AccountId) -> Result<Account, AccountError> {
        load_account(&*self.conn()?, id)
    }

    fn accounts(&self) -> Result<Vec<Account>, AccountError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id")).map_err(storage)?;
        let rows = stmt.query_map([], account_from_row).map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn set_access(&self, id: AccountId, access: Access) -> Result<Account, AccountError> {
        let conn = self.conn()?;
        load_account(&conn, id)?.check_grantable()?;
        conn.execute("UPDATE accounts SET access = ?1 WHERE id = ?2", params![access.as_str(), id.0])
            .map_err(storage)?;
        load_account(&conn, id)
    }

    fn set_limits(&self, id: AccountId, limits: RateLimits) -> Result<Account, AccountError> {
        validate_limits(limits)?;
        let conn = self.conn()?;
        load_account(&conn, id)?;
        conn.execute(
            "UPDATE accounts SET sync_per_second = ?1, async_per_second = ?2 WHERE id = ?3",
            params![limits.sync_per_second, limits.async_per_second, id.0],
        )
        .map_err(storage)?;
        load_account(&conn, id)
    }

    fn create_key(&self, account: AccountId) -> Result<(ApiKey, SecretKey), AccountError> {
        let mut conn = self.conn()?;
        // IMMEDIATE: two concurrent creations cannot both see one active key and both insert.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(storage)?;
        load_account(&tx, account)?;
        check_key_room(account, active_keys(&tx, account)?)?;
        let (secret_id, secret_key) = generate_key_pair();
        let sealed = self.sealer.seal(secret_key.expose().as_bytes(), secret_id.as_bytes());
        tx.execute(
            "INSERT INTO api_keys (secret_id, account_id, sealed_secret, status, created_at) VALUES (?1, ?2, ?3, 'active', ?4)",
            params![secret_id, account.0, sealed, now()],
        )
        .map_err(storage)?;
        let key = load_key(&tx, &secret_id)?;
        tx.commit().map_err(storage)?;
        Ok((key, secret_key))
    }

    fn keys(&self, account: Option<AccountId>) -> Result<Vec<ApiKey>, AccountError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(
                "SELECT secret_id, account_id, status, created_at FROM api_keys
                 WHERE ?1 IS NULL OR account_id = ?1 ORDER BY account_id, created_at, secret_id",
            )
            .map_err(storage)?;
        let rows = stmt.query_map([account.map(|a| a.0)], key_from_row).map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn set_key_status(&self, secret_id: &str, status: KeyStatus) -> Result<ApiKey, AccountError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(storage)?;
        let key = load_key(&tx, secret_id)?;
        if status == KeyStatus::Active && key.status != KeyStatus::Active {
            check_key_room(key.account, active_keys(&tx, key.account)?)?;
        }
        tx.execute("UPDATE api_keys SET status = ?1 WHERE secret_id = ?2", params![status.as_str(), secret_id])
            .map_err(storage)?;
        let key = load_key(&tx, secret_id)?;
        tx.commit().map_err(storage)?;
        Ok(key)
    }

    fn delete_key(&self, secret_id: &str) -> Result<(), AccountError> {
        let changed =
            self.conn()?.execute("DELETE FROM api_keys WHERE secret_id = ?1", [secret_id]).map_err(storage)?;
        if changed == 0 {
            return Err(AccountError::KeyNotFound(secret_id.to_string()));
        }
        Ok(())
    }

    fn credential(&self, secret_id: &str) -> Result<Option<Credential>, AccountError> {
        let conn = self.conn()?;
        let found = conn
            .query_row(
                "SELECT account_id, sealed_secret FROM api_keys WHERE secret_id = ?1 AND status = 'active'",
                [secret_id],
                |r| Ok((AccountId(r.get(0)?), r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()
            .map_err(storage)?;
        let Some((account, sealed)) = found else { return Ok(None) };
        let secret = self.sealer.open(&sealed, secret_id.as_bytes()).map_err(storage)?;
        let secret = String::from_utf8(secret).map_err(storage)?;
        Ok(Some(Credential { secret_key: SecretKey::new(secret), account: load_account(&conn, account)? }))
    }
}

fn policy_storage(e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Store(e.to_string())
}

fn policy_from_body(body: String) -> Result<Policy, PolicyError> {
    serde_json::from_str(&body).map_err(policy_storage)
}

impl SqliteStore {
    /// Validates and stores a policy with `sql` (parameters: owner, name, body, now); returns
    /// the rows changed.
    fn write_policy(&self, sql: &str, owner: AccountId, policy: &Policy) -> Result<usize, PolicyError> {
        policy.validate()?;
        let body = serde_json::to_string(policy).map_err(policy_storage)?;
        self.pool
            .get()
            .map_err(policy_storage)?
            .execute(sql, params![owner.0, policy.biz_type, body, now()])
            .map_err(policy_storage)
    }
}

impl PolicyRepository for SqliteStore {
    fn create_policy(&self, owner: AccountId, policy: &Policy) -> Result<(), PolicyError> {
        let sql = "INSERT INTO policies (owner_id, biz_type, body, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
                   ON CONFLICT DO NOTHING";
        if self.write_policy(sql, owner, policy)? == 0 {
            return Err(PolicyError::Exists(policy.biz_type.clone()));
        }
        Ok(())
    }

    fn update_policy(&self, owner: AccountId, policy: &Policy) -> Result<(), PolicyError> {
        let sql = "UPDATE policies SET body = ?3, updated_at = ?4 WHERE owner_id = ?1 AND biz_type = ?2";
        if self.write_policy(sql, owner, policy)? == 0 {
            return Err(PolicyError::NotFound(policy.biz_type.clone()));
        }
        Ok(())
    }

    fn policy(&self, owner: AccountId, biz_type: &str) -> Result<Option<Policy>, PolicyError> {
        self.pool
            .get()
            .map_err(policy_storage)?
            .query_row(
                "SELECT body FROM policies WHERE owner_id = ?1 AND biz_type = ?2",
                params![owner.0, biz_type],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(policy_storage)?
            .map(policy_from_body)
            .transpose()
    }

    fn policies(&self, owner: AccountId) -> Result<Vec<Policy>, PolicyError> {
        let conn = self.pool.get().map_err(policy_storage)?;
        let mut stmt =
            conn.prepare("SELECT body FROM policies WHERE owner_id = ?1 ORDER BY biz_type").map_err(policy_storage)?;
        let bodies = stmt.query_map([owner.0], |r| r.get::<_, String>(0)).map_err(policy_storage)?;
        bodies.map(|b| policy_from_body(b.map_err(policy_storage)?)).collect()
    }

    fn delete_policy(&self, owner: AccountId, biz_type: &str) -> Result<(), PolicyError> {
        let changed = self
            .pool
            .get()
            .map_err(policy_storage)?
            .execute("DELETE FROM policies WHERE owner_id = ?1 AND biz_type = ?2", params![owner.0, biz_type])
            .map_err(policy_storage)?;
        if changed == 0 {
            return Err(PolicyError::NotFound(biz_type.into()));
        }
        Ok(())
    }
}

/// A store on a fresh database in a folder of its own (gone with the folder), for tests.
#[cfg(test)]
pub(crate) fn scratch_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ims.db"), Sealer::from_key(&[1; 32])).unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_conform() {
        for suite in [crate::conformance::accounts_and_grants, crate::conformance::at_most_two_active_keys] {
            suite(&scratch_store().1);
        }
    }

    #[test]
    fn racing_writes_conform() {
        let (_dir, s) = scratch_store();
        crate::conformance::racing_key_creations_stop_at_the_limit(&s);
        crate::conformance::racing_policy_creations_make_one(&s);
        crate::conformance::racing_first_accounts_make_one(&scratch_store().1);
    }

    #[test]
    fn rate_limits_conform() {
        use crate::Store;
        let (_dir, store) = scratch_store();
        let store = std::sync::Arc::new(store);
        crate::conformance::rates::racing_admissions_are_exact_and_the_window_slides(store.admission().as_ref());
    }

    #[test]
    fn policies_conform() {
        crate::conformance::policies_are_per_owner_and_names_are_unique(&scratch_store().1);
    }

    #[test]
    fn secrets_are_not_stored_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ims.db");
        let s = SqliteStore::open(&path, Sealer::from_key(&[1; 32])).unwrap();
        let a = s.create_account("acme", None).unwrap();
        let (_, secret) = s.create_key(a.id).unwrap();
        drop(s);
        let mut bytes = std::fs::read(&path).unwrap();
        for suffix in ["-wal", "-shm"] {
            bytes.extend(std::fs::read(dir.path().join(format!("ims.db{suffix}"))).unwrap_or_default());
        }
        assert!(!bytes.windows(32).any(|w| w == secret.expose().as_bytes()));
        // Reopening migrates nothing and reads the same data.
        let s = SqliteStore::open(&path, Sealer::from_key(&[1; 32])).unwrap();
        assert_eq!(s.accounts().unwrap().len(), 1);
    }
}
