//! The operator's verbs for accounts and keys. They work on the database directly, so they
//! take effect on a running server at its next request.

use anyhow::Context;
use clap::{Args, Subcommand};
use engine::accounts::{Access, Account, AccountId, AccountRepository, ApiKey, KeyStatus, RateLimits};
use serde_json::json;

#[derive(Args)]
pub struct Output {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create a main account, or a sub-account of `--parent` (created without access).
    Create {
        #[arg(long)]
        name: String,
        /// The main account of the new sub-account.
        #[arg(long)]
        parent: Option<i64>,
        #[command(flatten)]
        output: Output,
    },
    /// List every account.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Grant a sub-account access: none, read-only or full.
    Grant {
        id: i64,
        #[arg(long, value_parser = parse_access)]
        access: Access,
        #[command(flatten)]
        output: Output,
    },
    /// Set an account's requests per second; `default` returns to the configured default.
    Limits {
        id: i64,
        /// Limit for ImageModeration and other synchronous actions.
        #[arg(long = "sync", value_parser = parse_limit)]
        sync_per_second: Option<Limit>,
        /// Limit for CreateImageModerationAsyncTask.
        #[arg(long = "async", value_parser = parse_limit)]
        async_per_second: Option<Limit>,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a key pair for an account (at most two active); the secret is shown only now.
    Create {
        account: i64,
        #[command(flatten)]
        output: Output,
    },
    /// List keys (never their secrets).
    List {
        #[arg(long)]
        account: Option<i64>,
        #[command(flatten)]
        output: Output,
    },
    /// Stop a key from authenticating, keeping it for later re-enabling.
    Disable { secret_id: String },
    /// Let a disabled key authenticate again.
    Enable { secret_id: String },
    /// Remove a key for good.
    Delete { secret_id: String },
}

fn parse_access(s: &str) -> Result<Access, String> {
    Access::parse(s).ok_or_else(|| "expected none, read-only or full".to_string())
}

/// A rate limit given on the command line: a number, or `default` for the configured one.
#[derive(Clone, Copy)]
pub struct Limit(Option<u32>);

fn parse_limit(s: &str) -> Result<Limit, String> {
    if s == "default" {
        return Ok(Limit(None));
    }
    match s.parse::<u32>() {
        Ok(n) if n > 0 => Ok(Limit(Some(n))),
        _ => Err("expected a positive number of requests per second, or `default`".to_string()),
    }
}

fn limit_text(limit: Option<u32>) -> String {
    limit.map_or("default".to_string(), |n| n.to_string())
}

fn print_accounts(accounts: &[Account], output: &Output) {
    if output.json {
        println!("{}", serde_json::to_string_pretty(accounts).expect("accounts serialise"));
        return;
    }
    println!("{:>6}  {:<24} {:>6}  {:<10} {:>8} {:>8}", "ID", "NAME", "PARENT", "ACCESS", "SYNC/S", "ASYNC/S");
    for a in accounts {
        println!(
            "{:>6}  {:<24} {:>6}  {:<10} {:>8} {:>8}",
            a.id,
            a.name,
            a.parent.map_or("-".to_string(), |p| p.to_string()),
            a.access.as_str(),
            limit_text(a.limits.sync_per_second),
            limit_text(a.limits.async_per_second)
        );
    }
}

fn print_keys(keys: &[ApiKey], output: &Output) {
    if output.json {
        println!("{}", serde_json::to_string_pretty(keys).expect("keys serialise"));
        return;
    }
    println!("{:<38} {:>7}  {:<8}", "SECRET ID", "ACCOUNT", "STATUS");
    for k in keys {
        println!("{:<38} {:>7}  {:<8}", k.secret_id, k.account, k.status.as_str());
    }
}

pub fn account(repo: &dyn AccountRepository, command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::Create { name, parent, output } => {
            let account = repo.create_account(&name, parent.map(AccountId))?;
            print_accounts(&[account], &output);
        }
        AccountCommand::List { output } => print_accounts(&repo.accounts()?, &output),
        AccountCommand::Grant { id, access, output } => {
            print_accounts(&[repo.set_access(AccountId(id), access)?], &output);
        }
        AccountCommand::Limits { id, sync_per_second, async_per_second, output } => {
            let current = repo.account(AccountId(id))?.limits;
            let limits = RateLimits {
                sync_per_second: sync_per_second.map_or(current.sync_per_second, |l| l.0),
                async_per_second: async_per_second.map_or(current.async_per_second, |l| l.0),
            };
            print_accounts(&[repo.set_limits(AccountId(id), limits)?], &output);
        }
    }
    Ok(())
}

pub fn key(repo: &dyn AccountRepository, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create { account, output } => {
            let (key, secret) = repo.create_key(AccountId(account))?;
            if output.json {
                let shown = json!({"SecretId": key.secret_id, "SecretKey": secret.expose(), "Account": key.account});
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                println!(
                    "SecretId:  {}\nSecretKey: {}\n(keep the SecretKey now: `ims key list` never shows it)",
                    key.secret_id,
                    secret.expose()
                );
            }
        }
        KeyCommand::List { account, output } => print_keys(&repo.keys(account.map(AccountId))?, &output),
        KeyCommand::Disable { secret_id } => {
            repo.set_key_status(&secret_id, KeyStatus::Disabled).context("cannot disable the key")?;
        }
        KeyCommand::Enable { secret_id } => {
            repo.set_key_status(&secret_id, KeyStatus::Active).context("cannot enable the key")?;
        }
        KeyCommand::Delete { secret_id } => repo.delete_key(&secret_id).context("cannot delete the key")?,
    }
    Ok(())
}
