//! Persistence. The engine defines one repository trait per concern; this crate implements
//! them on an embedded SQLite database (the default, nothing to install).
//!
//! - [`sqlite`]: the SQLite store, its connection pool and migrations, accounts and policies;
//! - [`billing`]: metering, packages, balances and bills; [`history`]: moderation results; [`libraries`]: image libraries; [`keywords`]: keyword
//!   libraries; [`tasks`]: async tasks;
//! - [`seal`]: encryption at rest for the secrets the server must read back (API secret keys);
//! - `conformance` (tests): each repository trait's contract, run against every backend.

pub mod billing;
#[cfg(test)]
mod conformance;
pub mod history;
pub mod keywords;
pub mod libraries;
pub mod seal;
pub mod sqlite;
pub mod tasks;

pub use seal::Sealer;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("master key file {path}: {reason}")]
    MasterKey { path: String, reason: String },
    #[error("a sealed secret could not be opened: wrong master key or corrupted data")]
    Unseal,
    #[error("the database schema version {found} is newer than this binary knows ({known})")]
    SchemaTooNew { found: i64, known: i64 },
}
