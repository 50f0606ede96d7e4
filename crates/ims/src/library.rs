//! `ims library`: image libraries and their samples, on the database directly (a running server
//! picks up the changes on its next request).

use crate::inputs::expand;
use anyhow::Context;
use clap::Subcommand;
use engine::accounts::AccountId;
use engine::decision::Label;
use engine::library::{ImageLibrary, LibAction, LibraryRepository};
use media::fetch::Fetcher;

#[derive(Subcommand)]
pub enum LibraryCommand {
    /// Create an image library.
    Create {
        #[arg(long)]
        account: i64,
        #[arg(long)]
        name: String,
        /// The label a match carries (Porn, Sexy, Terror, Polity, Illegal, Abuse, Ad, Custom, Normal...).
        #[arg(long)]
        label: String,
        /// `allow` (a match passes the image) or `block` (a match blocks it).
        #[arg(long)]
        action: String,
        #[arg(long)]
        json: bool,
    },
    /// List a main account's libraries.
    List {
        #[arg(long)]
        account: i64,
        #[arg(long)]
        json: bool,
    },
    /// Delete a library and its samples.
    Delete {
        #[arg(long)]
        account: i64,
        lib_id: String,
    },
    /// Add images: files, directories (recursively), http(s) URLs, or @FILE listing them.
    Add {
        #[arg(long)]
        account: i64,
        lib_id: String,
        #[arg(required = true)]
        inputs: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List a library's samples.
    Samples {
        #[arg(long)]
        account: i64,
        lib_id: String,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 100)]
        limit: u64,
        #[arg(long)]
        json: bool,
    },
    /// Remove samples by ImageId.
    Remove {
        #[arg(long)]
        account: i64,
        #[arg(required = true)]
        image_ids: Vec<String>,
    },
}

/// An API name (a label...) as its type.
pub fn parse_name<T: serde::de::DeserializeOwned>(name: &str, what: &str) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::Value::String(name.into())).with_context(|| format!("unknown {what} `{name}`"))
}

fn print_libraries(libraries: &[ImageLibrary], json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(libraries).expect("libraries serialise"));
        return;
    }
    println!("{:<36}  {:<24} {:<8} ACTION", "LIBID", "NAME", "LABEL");
    for l in libraries {
        println!("{:<36}  {:<24} {:<8} {}", l.lib_id, l.lib_name, l.label.as_str(), l.action.as_str());
    }
}

pub fn run(store: &dyn LibraryRepository, fetcher: &Fetcher, command: LibraryCommand) -> anyhow::Result<()> {
    match command {
        LibraryCommand::Create { account, name, label, action, json } => {
            let label: Label = parse_name(&label, "label")?;
            let action: LibAction = match action.to_ascii_lowercase().as_str() {
                "allow" => LibAction::Allow,
                "block" => LibAction::Block,
                other => anyhow::bail!("--action is allow or block, not `{other}`"),
            };
            let library = store.create_library(AccountId(account), &name, label, action)?;
            print_libraries(&[library], json);
        }
        LibraryCommand::List { account, json } => print_libraries(&store.libraries(AccountId(account))?, json),
        LibraryCommand::Delete { account, lib_id } => {
            store.delete_library(AccountId(account), &lib_id)?;
            println!("deleted {lib_id}");
        }
        LibraryCommand::Add { account, lib_id, inputs, json } => {
            let owner = AccountId(account);
            store.library(owner, &lib_id)?;
            let inputs = expand(&inputs)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let mut added = Vec::new();
            let mut failed = 0;
            for input in &inputs {
                let outcome = runtime.block_on(input.read(fetcher)).and_then(|bytes| {
                    let decoded = media::decode(&bytes, media::Sampling::default())?;
                    let hashes = server::libraries::sample_hashes(&decoded.frames[0].image);
                    anyhow::ensure!(!hashes.is_empty(), "too little detail to be recognised (PDQ quality under 50)");
                    Ok(store.add_sample(owner, &lib_id, &input.short_name(), &hashes)?)
                });
                match outcome {
                    Ok(sample) => {
                        if !json {
                            println!("{}  {}", sample.image_id, input.short_name());
                        }
                        added.push(serde_json::json!({"ImageId": sample.image_id, "Name": sample.name}));
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("{}: {e:#}", input.short_name());
                    }
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&added)?);
            }
            anyhow::ensure!(failed == 0, "{failed} of {} images could not be added", inputs.len());
        }
        LibraryCommand::Samples { account, lib_id, offset, limit, json } => {
            let (samples, total) = store.samples(AccountId(account), &lib_id, offset, limit)?;
            if json {
                let shown: Vec<_> = samples
                    .iter()
                    .map(|s| serde_json::json!({"ImageId": s.image_id, "Name": s.name, "Hashes": s.hashes.len(), "CreatedAt": s.created_at}))
                    .collect();
                println!("{}", serde_json::json!({"Samples": shown, "TotalCount": total}));
            } else {
                for s in &samples {
                    println!("{}  {:>2} hashes  {}", s.image_id, s.hashes.len(), s.name);
                }
                println!("{total} samples");
            }
        }
        LibraryCommand::Remove { account, image_ids } => {
            for id in image_ids {
                store.delete_sample(AccountId(account), &id)?;
                println!("removed {id}");
            }
        }
    }
    Ok(())
}
