//! `ims keywords`: keyword libraries and their words, on the database directly (a running server
//! rebuilds its matcher on its next request).

use crate::library::parse_name;
use anyhow::Context;
use clap::Subcommand;
use engine::accounts::AccountId;
use engine::decision::{Label, Suggestion};
use engine::keywords::{validate_keyword, KeywordLibrary, KeywordRepository};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum KeywordsCommand {
    /// Create a keyword library.
    Create {
        #[arg(long)]
        account: i64,
        #[arg(long)]
        name: String,
        /// The label of its hits (Porn, Ad, Polity, Abuse, Illegal, Custom...).
        #[arg(long)]
        label: String,
        /// `block` or `review`.
        #[arg(long, default_value = "block")]
        suggestion: String,
        #[arg(long)]
        json: bool,
    },
    /// List a main account's keyword libraries.
    List {
        #[arg(long)]
        account: i64,
        #[arg(long)]
        json: bool,
    },
    /// Delete a keyword library and its words.
    Delete {
        #[arg(long)]
        account: i64,
        lib_id: String,
    },
    /// Add words given as arguments and/or in a file (one a line; `#` starts a comment).
    Add {
        #[arg(long)]
        account: i64,
        lib_id: String,
        words: Vec<String>,
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// List a library's words.
    Samples {
        #[arg(long)]
        account: i64,
        lib_id: String,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 1000)]
        limit: u64,
    },
    /// Remove words by SampleId.
    Remove {
        #[arg(long)]
        account: i64,
        #[arg(required = true)]
        sample_ids: Vec<String>,
    },
}

fn print(libraries: &[KeywordLibrary], json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(libraries).expect("libraries serialise"));
        return;
    }
    println!("{:<36}  {:<24} {:<8} SUGGESTION", "LIBID", "NAME", "LABEL");
    for l in libraries {
        println!("{:<36}  {:<24} {:<8} {}", l.lib_id, l.lib_name, l.label.as_str(), l.suggestion.as_str());
    }
}

pub fn run(store: &dyn KeywordRepository, command: KeywordsCommand) -> anyhow::Result<()> {
    match command {
        KeywordsCommand::Create { account, name, label, suggestion, json } => {
            let label: Label = parse_name(&label, "label")?;
            let suggestion = match suggestion.to_ascii_lowercase().as_str() {
                "block" => Suggestion::Block,
                "review" => Suggestion::Review,
                other => anyhow::bail!("--suggestion is block or review, not `{other}`"),
            };
            print(&[store.create_keyword_library(AccountId(account), &name, label, suggestion)?], json);
        }
        KeywordsCommand::List { account, json } => print(&store.keyword_libraries(AccountId(account))?, json),
        KeywordsCommand::Delete { account, lib_id } => {
            store.delete_keyword_library(AccountId(account), &lib_id)?;
            println!("deleted {lib_id}");
        }
        KeywordsCommand::Add { account, lib_id, mut words, file } => {
            if let Some(file) = file {
                let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
                words.extend(
                    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from),
                );
            }
            let words: Vec<String> = words.iter().map(|w| w.trim().to_string()).collect();
            for word in &words {
                validate_keyword(word)?;
            }
            let added = store.add_keywords(AccountId(account), &lib_id, &words)?;
            println!("{} added, {} already there", added.len(), words.len() - added.len());
        }
        KeywordsCommand::Samples { account, lib_id, offset, limit } => {
            let (words, total) = store.keywords(AccountId(account), &lib_id, "", offset, limit)?;
            for w in &words {
                println!("{}  {}", w.sample_id, w.content);
            }
            println!("{total} keywords");
        }
        KeywordsCommand::Remove { account, sample_ids } => {
            let removed = store.delete_keywords(AccountId(account), &sample_ids)?;
            println!("removed {removed}");
        }
    }
    Ok(())
}
