//! `ims facelib`: face libraries and their people, on the database directly (a running server
//! picks up the changes on its next request). `add` loads the face models to describe the
//! photos; photos are never stored, only their descriptors (sealed).

use crate::inputs::expand;
use crate::library::parse_name;
use crate::settings::Settings;
use anyhow::Context;
use clap::Subcommand;
use engine::accounts::AccountId;
use engine::decision::Label;
use engine::faces::{FaceAction, FaceLibrary, FaceRepository};
use inference::analyzer::{Analyzer, Backend, FaceNeeds};
use media::fetch::Fetcher;

#[derive(Subcommand)]
pub enum FaceCommand {
    /// Create a face library.
    Create {
        #[arg(long)]
        account: i64,
        #[arg(long)]
        name: String,
        /// The label a recognised person carries: `Polity` (public figures, scene PolityFace)
        /// or any other (Custom, Illegal... scene FaceLib).
        #[arg(long)]
        label: String,
        /// `block`, `review` or `allow`.
        #[arg(long)]
        action: String,
        /// The largest distance at which a face is the library's person (default 0.6).
        #[arg(long)]
        max_distance: Option<f32>,
    },
    /// List a main account's face libraries.
    List {
        #[arg(long)]
        account: i64,
        #[arg(long)]
        json: bool,
    },
    /// Delete a face library, its people and their descriptors.
    Delete {
        #[arg(long)]
        account: i64,
        lib_id: String,
    },
    /// Enrol photos of one person (files, directories, http(s) URLs, or @FILE listing them);
    /// a name already in the library adds photos to that person.
    Add {
        #[arg(long)]
        account: i64,
        lib_id: String,
        #[arg(long)]
        name: String,
        /// Take the largest face of photos that show several.
        #[arg(long)]
        largest_face: bool,
        #[arg(required = true)]
        inputs: Vec<String>,
    },
    /// List a library's photos (of one person with --person).
    Samples {
        #[arg(long)]
        account: i64,
        lib_id: String,
        #[arg(long)]
        person: Option<String>,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Remove photos by SampleId, or whole people with --person.
    Remove {
        #[arg(long)]
        account: i64,
        #[arg(long)]
        person: Vec<String>,
        sample_ids: Vec<String>,
    },
}

pub fn run(settings: &Settings, store: &dyn FaceRepository, command: FaceCommand) -> anyhow::Result<()> {
    match command {
        FaceCommand::Create { account, name, label, action, max_distance } => {
            let label: Label = parse_name(&label, "label")?;
            let action = FaceAction::parse(&capitalised(&action))
                .with_context(|| format!("--action is block, review or allow, not `{action}`"))?;
            let library = FaceLibrary::new(AccountId(account), &name, label, action, max_distance)?;
            store.create_face_library(&library)?;
            println!("{}", library.lib_id);
        }
        FaceCommand::List { account, json } => {
            let libraries = store.face_libraries(AccountId(account))?;
            if json {
                let shown: Vec<_> = libraries
                    .iter()
                    .map(|(l, c)| serde_json::json!({"Library": l, "PersonCount": c.people, "SampleCount": c.photos}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&shown)?);
                return Ok(());
            }
            println!(
                "{:<36}  {:<24} {:<8} {:<7} {:>8} {:>7} PHOTOS",
                "LIBID", "NAME", "LABEL", "ACTION", "DISTANCE", "PEOPLE"
            );
            for (l, c) in &libraries {
                println!(
                    "{:<36}  {:<24} {:<8} {:<7} {:>8.2} {:>7} {}",
                    l.lib_id,
                    l.lib_name,
                    l.label.as_str(),
                    l.action.as_str(),
                    l.max_distance,
                    c.people,
                    c.photos
                );
            }
        }
        FaceCommand::Delete { account, lib_id } => {
            store.delete_face_library(AccountId(account), &lib_id)?;
            println!("deleted {lib_id}");
        }
        FaceCommand::Add { account, lib_id, name, largest_face, inputs } => {
            let owner = AccountId(account);
            store.face_library(owner, &lib_id)?;
            let analyzer = Analyzer::runtime(&settings.inference)
                .and_then(|runtime| Analyzer::load(&runtime, &settings.inference, &settings.faces))
                .context("cannot load the models (scripts/fetch.py installs them)")?;
            let model = analyzer.face_model().context("the face embedder is off (faces.detector, faces.embedder)")?;
            let fetcher = Fetcher::new(settings.fetch.clone()).map_err(anyhow::Error::msg)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            // Every photo is described before any is stored, as the API does.
            let mut descriptors = Vec::new();
            for input in expand(&inputs)? {
                let bytes = runtime.block_on(input.read(&fetcher))?;
                let decoded = media::decode(&bytes, media::Sampling::default())
                    .with_context(|| format!("{}: not an image ims reads", input.short_name()))?;
                let needs = FaceNeeds { describe: true, age: false };
                let faces = analyzer.faces(&decoded.frames[0].image, 1.0, needs, None)?.unwrap_or_default();
                let descriptor = server::faces::the_face(faces, largest_face, &input.short_name())
                    .map_err(|e| anyhow::anyhow!("{}: {}", e.code.as_str(), e.message(protocol::Lang::En)))?;
                descriptors.push(descriptor);
            }
            let (person_id, samples) = store.enrol(owner, &lib_id, &name, model, &descriptors)?;
            for s in &samples {
                println!("{}  {}", s.sample_id, s.name);
            }
            println!("{} photos of {name} ({person_id})", samples.len());
        }
        FaceCommand::Samples { account, lib_id, person, offset, limit } => {
            let (samples, total) = store.face_samples(AccountId(account), &lib_id, person.as_deref(), offset, limit)?;
            for s in &samples {
                println!("{}  {}  {}  {}", s.sample_id, s.person_id, s.model, s.name);
            }
            println!("{total} photos");
        }
        FaceCommand::Remove { account, person, sample_ids } => {
            anyhow::ensure!(!person.is_empty() || !sample_ids.is_empty(), "name photos (SampleIds) or --person");
            for id in sample_ids {
                store.delete_face_sample(AccountId(account), &id)?;
                println!("removed {id}");
            }
            for id in person {
                store.delete_person(AccountId(account), &id)?;
                println!("removed person {id}");
            }
        }
    }
    Ok(())
}

/// `block` -> `Block`: the CLI takes actions in any case.
fn capitalised(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    let mut chars = lower.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}
