//! The operator's verbs for accounts, keys and policies. They work on the database directly, so they
//! take effect on a running server at its next request.

use anyhow::Context;
use clap::{Args, Subcommand};
use engine::accounts::{Access, Account, AccountId, AccountRepository, ApiKey, KeyStatus, RateLimits};
use engine::billing::Billing;
use engine::policy::Policy;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
pub struct Output {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create a main account (activated with its trial, unless `billing.activate_new_accounts`
    /// is off), or a sub-account of `--parent` (created without access).
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
pub enum PolicyCommand {
    /// Create a policy (BizType) of a main account: the default policy's settings, then those
    /// of `--file` (a BizConfig as `policy show --json` prints it), then the flags.
    Create(PolicyEdit),
    /// Change a policy's settings (its name cannot change).
    Update(PolicyEdit),
    /// Show one policy; an empty BizType ("") shows the built-in default.
    Show {
        #[arg(long)]
        account: i64,
        biz_type: String,
        #[command(flatten)]
        output: Output,
    },
    /// List a main account's policies.
    List {
        #[arg(long)]
        account: i64,
        #[command(flatten)]
        output: Output,
    },
    /// Delete a policy.
    Delete {
        #[arg(long)]
        account: i64,
        biz_type: String,
    },
}

#[derive(Args)]
pub struct PolicyEdit {
    #[arg(long)]
    account: i64,
    biz_type: String,
    #[command(flatten)]
    settings: PolicySettings,
    #[command(flatten)]
    output: Output,
}

#[derive(Args)]
pub struct PolicySettings {
    /// A JSON BizConfig whose settings replace the current ones (its BizType is ignored).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Models that must agree before a label is reviewed or blocked (1-3).
    #[arg(long)]
    votes: Option<u8>,
    /// Record verdicts but always answer Pass.
    #[arg(long)]
    observe_only: Option<bool>,
    /// The image libraries applied, as LibIds separated by commas; `*` for all of the account's.
    #[arg(long)]
    image_libs: Option<String>,
}

impl PolicySettings {
    fn apply(self, mut policy: Policy) -> anyhow::Result<Policy> {
        if let Some(file) = self.file {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let given: Policy =
                serde_json::from_str(&text).with_context(|| format!("{} is not a BizConfig", file.display()))?;
            policy = Policy { biz_type: policy.biz_type, ..given };
        }
        if let Some(votes) = self.votes {
            policy.votes = votes;
        }
        if let Some(observe_only) = self.observe_only {
            policy.observe_only = observe_only;
        }
        if let Some(libs) = self.image_libs {
            policy.image_libs = match libs.trim() {
                "*" => None,
                list => Some(list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()),
            };
        }
        policy.validate()?;
        Ok(policy)
    }
}

fn print_policies(policies: &[Policy], output: &Output) {
    if output.json {
        println!("{}", serde_json::to_string_pretty(policies).expect("policies serialise"));
        return;
    }
    println!("{:<32} {:<20} {:>5}  {:<8} SCENES", "BIZTYPE", "NAME", "VOTES", "OBSERVE");
    for p in policies {
        let scenes: Vec<_> = p.scenes.iter().map(|s| s.as_str()).collect();
        println!("{:<32} {:<20} {:>5}  {:<8} {}", p.biz_type, p.name, p.votes, p.observe_only, scenes.join(","));
    }
}

/// Policies belong to main accounts.
fn main_account(repo: &dyn AccountRepository, id: i64) -> anyhow::Result<AccountId> {
    let account = repo.account(AccountId(id))?;
    anyhow::ensure!(account.is_main(), "account {id} is a sub-account: policies belong to its main account");
    Ok(account.id)
}

pub fn policy(store: &dyn store::Store, command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Create(PolicyEdit { account, biz_type, settings, output }) => {
            let owner = main_account(store, account)?;
            let policy = settings.apply(Policy::named(&biz_type)?)?;
            store.create_policy(owner, &policy)?;
            print_policies(&[policy], &output);
        }
        PolicyCommand::Update(PolicyEdit { account, biz_type, settings, output }) => {
            let owner = main_account(store, account)?;
            anyhow::ensure!(
                !biz_type.is_empty() && biz_type != engine::policy::DEFAULT_BIZ_TYPE,
                "the default policy is built in; create a named one"
            );
            let current = engine::policy::resolve(store, owner, &biz_type)?;
            let policy = settings.apply(current)?;
            store.update_policy(owner, &policy)?;
            print_policies(&[policy], &output);
        }
        PolicyCommand::Show { account, biz_type, output } => {
            let owner = main_account(store, account)?;
            print_policies(&[engine::policy::resolve(store, owner, &biz_type)?], &output);
        }
        PolicyCommand::List { account, output } => {
            print_policies(&store.policies(main_account(store, account)?)?, &output)
        }
        PolicyCommand::Delete { account, biz_type } => store.delete_policy(main_account(store, account)?, &biz_type)?,
    }
    Ok(())
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

pub fn account(repo: &dyn store::Store, billing: &Billing, command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::Create { name, parent, output } => {
            let account = repo.create_account(&name, parent.map(AccountId))?;
            if account.is_main() {
                crate::billing::activate_new(repo, billing, account.id)?;
            }
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
