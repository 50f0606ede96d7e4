//! Every file of ../shared/data/robustness through ingestion: no panic, no hang, each file either
//! decodes or is refused with a documented error, and files named as broken or bombs are refused.
//! Prints the counts per format. Skips (saying so, or failing under CI=true) when ../shared is absent.

#[path = "../../../tests/support/shared.rs"]
mod shared;

use media::{decode, MediaError, Sampling};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A file that takes longer than this to ingest is a hang.
const PER_FILE: Duration = Duration::from_secs(20);

fn shared() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    dir.join("MANIFEST.csv").exists().then_some(dir)
}

/// `intent_by_name` and `pillow_status` of MANIFEST.csv for each robustness file.
fn intents(root: &Path) -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(root.join("MANIFEST.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let path_col = header.iter().position(|h| *h == "path").unwrap();
    let intent_col = header.iter().position(|h| *h == "intent_by_name").unwrap();
    let pillow_col = header.iter().position(|h| *h == "pillow_status").unwrap();
    lines
        .filter_map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let intent = (cells.get(intent_col)?.to_string(), cells.get(pillow_col)?.to_string());
            Some((cells.get(path_col)?.to_string(), intent))
        })
        .collect()
}

/// The outcome's name: `decoded`, or the error's kind.
fn outcome(result: &Result<media::Decoded, MediaError>) -> &'static str {
    match result {
        Ok(_) => "decoded",
        Err(MediaError::NotAnImage) => "not-an-image",
        Err(MediaError::Decode(_)) => "undecodable",
        Err(MediaError::FileTooSmall { .. }) => "too-small-file",
        Err(MediaError::TooFewPixels { .. }) => "too-few-pixels",
        Err(MediaError::TooManyPixels { .. }) => "too-many-pixels",
        Err(MediaError::AspectRatioTooLarge { .. }) => "aspect-ratio",
        Err(MediaError::Empty) => "empty",
        Err(e) => panic!("unexpected error kind for a file: {e}"),
    }
}

#[test]
fn every_robustness_file_decodes_or_is_refused_with_a_documented_error() {
    let Some(root) = shared() else {
        shared::absent("the robustness corpus");
        return;
    };
    let intents = intents(&root);
    let all = shared::files_under(&root.join("robustness"));
    let mut counts: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, PathBuf::new());
    for path in all {
        let relative = path.strip_prefix(&root).unwrap().to_string_lossy().to_string();
        if relative.contains("LICENSE") || relative.ends_with(".md") || relative.ends_with(".txt") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let sniffed = media::format::sniff(&bytes).map_or("other", |f| f.name()).to_string();
        let (tx, rx) = mpsc::channel();
        let started = Instant::now();
        std::thread::spawn(move || {
            let result = std::panic::catch_unwind(|| decode(&bytes, Sampling::default()));
            let _ = tx.send(result);
        });
        let result = match rx.recv_timeout(PER_FILE) {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => {
                failures.push(format!("{relative}: panicked"));
                continue;
            }
            Err(_) => {
                failures.push(format!("{relative}: no answer within {PER_FILE:?}"));
                continue;
            }
        };
        let elapsed = started.elapsed();
        if elapsed > slowest.0 {
            slowest = (elapsed, path.clone());
        }
        let kind = outcome(&result);
        let (intent, pillow) = intents.get(&relative).cloned().unwrap_or_default();
        // Bombs are always refused. A file named broken must be refused unless its pixel data
        // is intact (Pillow decodes it: a broken ICC profile, EXIF or density field only).
        let named_broken =
            ["malformed", "corrupt", "truncated"].iter().any(|w| intent.contains(w)) || relative.contains("/bad/");
        let must_fail = intent.contains("bomb") || (named_broken && pillow != "ok");
        if must_fail && kind == "decoded" {
            failures.push(format!("{relative}: named {intent:?} but decoded"));
        }
        *counts.entry((sniffed, kind)).or_default() += 1;
    }
    println!("{:<8} {:<16} {:>6}", "FORMAT", "OUTCOME", "FILES");
    for ((format, kind), n) in &counts {
        println!("{format:<8} {kind:<16} {n:>6}");
    }
    println!("slowest file: {:?} ({})", slowest.0, slowest.1.display());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
