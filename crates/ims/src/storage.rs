//! `ims storage`: moving a deployment between storage backends.

use crate::settings::{redacted_url, Settings};
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;
use store::Sealer;

#[derive(Subcommand)]
pub enum StorageCommand {
    /// Copy a SQLite deployment (its `ims.db`) into an empty PostgreSQL database, as one
    /// consistent snapshot; stop the servers writing to it first (the copy fails, naming the
    /// tables, if anything was written meanwhile). The API secrets are copied sealed: the
    /// nodes that use the copy need the source's master key.
    Copy {
        /// The SQLite file, or the data directory holding `ims.db`; default: `data_dir`.
        #[arg(long)]
        from: Option<PathBuf>,
        /// The PostgreSQL database, `postgres://user:password@host:port/database`; it must exist.
        #[arg(long)]
        to: String,
    },
}

pub fn run(settings: &Settings, command: StorageCommand) -> anyhow::Result<()> {
    match command {
        StorageCommand::Copy { from, to } => {
            let from = from.unwrap_or_else(|| settings.data_dir.clone());
            let file = if from.is_dir() { from.join("ims.db") } else { from };
            anyhow::ensure!(file.is_file(), "no SQLite database at {}", file.display());
            // The source's key, never a new one: a new key could not open the copied secrets.
            let sealer = match &settings.master_key {
                Some(hex) => Sealer::from_hex(hex).map_err(anyhow::Error::msg).context("invalid master_key")?,
                None => {
                    let key = file.with_file_name("master.key");
                    anyhow::ensure!(key.is_file(), "no master key at {} (give master_key)", key.display());
                    Sealer::from_key_file(&key)?
                }
            };
            let report = store::copy::sqlite_to_postgres(&file, &to, sealer)
                .with_context(|| format!("cannot copy {} into {}", file.display(), redacted_url(&to)))?;
            for (table, rows) in &report.tables {
                println!("{table:<24} {rows:>10} rows");
            }
            println!(
                "copied {} into {}; counts compared. Start the nodes with storage.url set to it and the same master key.",
                file.display(),
                redacted_url(&to)
            );
            Ok(())
        }
    }
}
