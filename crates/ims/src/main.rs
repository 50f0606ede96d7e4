//! `ims`: the image moderation server and its operator's command line.

mod admin;
mod billing;
mod cert;
mod console;
mod faces;
mod inputs;
mod keywords;
mod library;
mod moderate;
mod serve;
mod settings;
mod storage;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use figment::providers::Serialized;
use figment::Figment;
use settings::Settings;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use store::{Sealer, Store};

#[derive(Parser)]
#[command(name = "ims", version, about = "Self-hosted image moderation, compatible with Tencent Cloud IMS API 3.0")]
struct Cli {
    /// A TOML configuration file (see docs/configuration.md).
    #[arg(long, global = true, env = "IMS_CONFIG")]
    config: Option<PathBuf>,
    /// Where the database and master key live (overrides `data_dir`).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the API server.
    Serve(ServeArgs),
    /// Main accounts and sub-accounts, their grants and rate limits.
    #[command(subcommand)]
    Account(admin::AccountCommand),
    /// API key pairs (SecretId / SecretKey).
    #[command(subcommand)]
    Key(admin::KeyCommand),
    /// Policies (BizType): scenes, thresholds, votes, observe-only.
    #[command(subcommand)]
    Policy(admin::PolicyCommand),
    /// Image libraries (allow and block lists matched by perceptual hash) and their samples.
    #[command(subcommand)]
    Library(library::LibraryCommand),
    /// Face libraries (people to block, review or allow) and their photos' descriptors.
    #[command(subcommand)]
    Facelib(faces::FaceCommand),
    /// Keyword libraries (words matched in the text of images) and their words.
    #[command(subcommand)]
    Keywords(keywords::KeywordsCommand),
    /// Price lists, activation, top-ups, packages, refunds, usage, bills and settlement.
    #[command(subcommand)]
    Billing(billing::BillingCommand),
    /// Moderate files, directories and URL lists in a batch, here or on a running server.
    Moderate(moderate::ModerateArgs),
    /// Certificates for HTTPS trials and tests.
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// The console's passwords.
    #[command(subcommand)]
    Console(console::ConsoleCommand),
    /// Move a deployment from SQLite to PostgreSQL (a cluster's shared database).
    #[command(subcommand)]
    Storage(storage::StorageCommand),
    /// Print the effective configuration, secrets hidden.
    Config,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (overrides `server.listen`); port 0 picks a free one.
    #[arg(long)]
    listen: Option<SocketAddr>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut overrides = Figment::new();
    if let Some(dir) = &cli.data_dir {
        overrides = overrides.merge(Serialized::default("data_dir", dir));
    }
    if let Command::Serve(ServeArgs { listen: Some(listen) }) = &cli.command {
        overrides = overrides.merge(Serialized::default("server.listen", listen.to_string()));
    }
    let settings = Settings::load(cli.config.as_deref(), overrides).context("invalid configuration")?;
    match cli.command {
        Command::Serve(_) => serve::run(settings),
        Command::Account(command) => admin::account(open_store(&settings)?.as_ref(), &prices(&settings)?, command),
        Command::Billing(command) => billing::run(open_store(&settings)?.as_ref(), &prices(&settings)?, command),
        Command::Key(command) => admin::key(open_store(&settings)?.as_ref(), command),
        Command::Policy(command) => admin::policy(open_store(&settings)?.as_ref(), command),
        Command::Library(command) => {
            let fetcher = media::fetch::Fetcher::new(settings.fetch.clone()).map_err(anyhow::Error::msg)?;
            library::run(open_store(&settings)?.as_ref(), &fetcher, command)
        }
        Command::Keywords(command) => keywords::run(open_store(&settings)?.as_ref(), command),
        Command::Facelib(command) => faces::run(&settings, open_store(&settings)?.as_ref(), command),
        Command::Console(command) => console::run(open_store(&settings)?.as_ref(), command),
        Command::Moderate(args) => moderate::run(settings, args),
        Command::Cert(command) => cert::run(&settings.data_dir, command),
        Command::Storage(command) => storage::run(&settings, command),
        Command::Config => {
            print!("{}", settings.to_redacted_toml());
            Ok(())
        }
    }
}

/// The price lists and settlement calendar of `[billing]`.
pub fn prices(settings: &Settings) -> anyhow::Result<engine::billing::Billing> {
    engine::billing::Billing::from_settings(&settings.billing).context("invalid [billing] settings")
}

/// Opens the store `storage.url` names, or the embedded database in the data directory
/// (creating both on first use).
pub fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let dir = &settings.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let sealer = match &settings.master_key {
        Some(hex) => Sealer::from_hex(hex).map_err(anyhow::Error::msg).context("invalid master_key")?,
        None => Sealer::from_key_file(&dir.join("master.key"))?,
    };
    let url = settings.storage.url.as_deref();
    let store = store::open(url, dir, sealer).with_context(|| match url {
        Some(url) => format!("cannot open the database at {}", settings::redacted_url(url)),
        None => format!("cannot open the database in {}", dir.display()),
    })?;
    tracing::info!(backend = store.backend(), "store open");
    Ok(store)
}
