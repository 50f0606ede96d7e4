//! Persistence. The engine defines one repository trait per concern; this crate implements
//! every one of them twice, with the same contracts:
//!
//! - [`sqlite`]: embedded SQLite in the data folder, the default (nothing to install);
//! - [`postgres`]: PostgreSQL, shared by the nodes of a cluster;
//! - [`copy`]: a SQLite deployment moved into PostgreSQL (`ims storage copy`);
//! - [`seal`]: encryption at rest for the secrets the server must read back (API secret keys);
//! - [`testing`]: a throwaway PostgreSQL server for tests and benchmarks;
//! - `conformance` (tests): each repository trait's contract, run against both backends.
//!
//! [`open`] picks the backend from `storage.url`.

#[cfg(test)]
mod conformance;
pub mod copy;
mod history;
pub mod postgres;
pub mod seal;
pub mod sqlite;
pub mod testing;

pub use postgres::PostgresStore;
pub use seal::Sealer;
pub use sqlite::SqliteStore;

use engine::accounts::AccountRepository;
use engine::billing::BillingRepository;
use engine::console::ConsoleRepository;
use engine::faces::FaceRepository;
use engine::history::HistoryRepository;
use engine::keywords::KeywordRepository;
use engine::library::LibraryRepository;
use engine::policy::PolicyRepository;
use engine::ratelimit::Admission;
use engine::search::GroupRepository;
use engine::task::TaskRepository;
use std::path::Path;
use std::sync::Arc;

/// Every repository a server needs, on one database.
pub trait Store:
    AccountRepository
    + PolicyRepository
    + LibraryRepository
    + KeywordRepository
    + HistoryRepository
    + TaskRepository
    + BillingRepository
    + ConsoleRepository
    + FaceRepository
    + GroupRepository
{
    /// Whether the database answers now (`/healthz`, `/readyz`).
    fn ping(&self) -> Result<(), StoreError>;
    /// `sqlite` or `postgres`, for logs and metrics.
    fn backend(&self) -> &'static str;
    /// Where the rate limits' windows are kept: this process's memory for SQLite (one node),
    /// the shared database for PostgreSQL, so a limit holds for a cluster as a whole.
    fn admission(self: Arc<Self>) -> Arc<dyn Admission>;
}

/// Opens the store `url` names (`postgres://` or `postgresql://`: PostgreSQL), or the SQLite
/// database `ims.db` in `data_dir` when there is no URL; brings its schema up to date.
pub fn open(url: Option<&str>, data_dir: &Path, sealer: Sealer) -> Result<Arc<dyn Store>, StoreError> {
    match url {
        None => Ok(Arc::new(SqliteStore::open(&data_dir.join("ims.db"), sealer)?)),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(PostgresStore::open(url, sealer)?))
        }
        Some(_) => Err(StoreError::Url("storage.url must start with postgres:// or postgresql://".into())),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("storage.url: {0}")]
    Url(String),
    #[error("master key file {path}: {reason}")]
    MasterKey { path: String, reason: String },
    #[error("a sealed secret could not be opened: wrong master key or corrupted data")]
    Unseal,
    #[error("the database schema version {found} is newer than this binary knows ({known})")]
    SchemaTooNew { found: i64, known: i64 },
}

/// Enum names are stored as the API spells them (their serde names).
pub(crate) fn name_of<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => unreachable!("unit enums serialise as strings"),
    }
}

/// A stored enum name read back.
pub(crate) fn name_from<T: serde::de::DeserializeOwned>(name: &str) -> Result<T, serde_json::Error> {
    serde_json::from_value(serde_json::Value::String(name.into()))
}
