//! `ims console`: the console's passwords (an account may also sign in with its API keys).

use anyhow::Context;
use clap::Subcommand;
use engine::accounts::{AccountId, AccountRepository};
use engine::console::{hash_password, ConsoleRepository};
use std::io::BufRead;

#[derive(Subcommand)]
pub enum ConsoleCommand {
    /// Set an account's console password, read from the first line of standard input (so that
    /// it stays out of the shell's history and the process list); signs the account out
    /// everywhere. At least 12 characters; kept as an argon2id hash.
    Password {
        account: i64,
        /// Remove the password instead: the account signs in with its API keys only.
        #[arg(long)]
        clear: bool,
    },
}

pub fn run<S: AccountRepository + ConsoleRepository + ?Sized>(
    store: &S,
    command: ConsoleCommand,
) -> anyhow::Result<()> {
    match command {
        ConsoleCommand::Password { account, clear } => {
            let account = store.account(AccountId(account))?;
            let phc = if clear {
                None
            } else {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
                Some(hash_password(line.trim_end_matches(['\r', '\n']))?)
            };
            store.set_password(account.id, phc.as_deref()).context("cannot store the password")?;
            let done = if clear { "removed" } else { "set" };
            eprintln!("console password of account {} ({}) {done}; its sessions are closed", account.id, account.name);
        }
    }
    Ok(())
}
