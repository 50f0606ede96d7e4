//! Face matching against 1,000 and 100,000 people: the time to load them into the index, to
//! compare one face with all of them, and the index's memory (resident set size before and
//! after, and the centroids' own bytes). Descriptors are random (uniform in +-0.2, about the
//! spread of real ones), so no face matches: every comparison runs to the end, the worst case.
//! Run: `cargo bench -p engine --bench face_matching`.

use engine::accounts::AccountId;
use engine::decision::Label;
use engine::faces::{FaceAction, FaceChanges, FaceCursor, FaceLibrary, FaceMatcher, Person, DESCRIPTOR_LEN};
use rand::Rng;
use std::time::Instant;

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4
}

fn descriptor(rng: &mut impl Rng) -> Vec<f32> {
    (0..DESCRIPTOR_LEN).map(|_| rng.random_range(-0.2..0.2)).collect()
}

fn main() {
    let mut rng = rand::rng();
    println!("| people | load ms | one face vs all p50 ms | 50 faces ms | index MiB (RSS growth) | centroids MiB |");
    println!("|---|---|---|---|---|---|");
    for people in [1_000usize, 100_000] {
        let library = FaceLibrary::new(AccountId(1), "people", Label::Polity, FaceAction::Block, None).unwrap();
        let changes = FaceChanges {
            people: (0..people)
                .map(|i| Person {
                    key: i as i64,
                    person_id: format!("person-{i}"),
                    lib_id: library.lib_id.clone(),
                    name: format!("Person {i}"),
                    model: "m".into(),
                    centroid: descriptor(&mut rng),
                })
                .collect(),
            libraries: vec![library],
            removed: Vec::new(),
            cursor: FaceCursor { version: 1, removal_seq: 0 },
        };
        let before = rss_kib();
        let matcher = FaceMatcher::new();
        let started = Instant::now();
        matcher.apply(changes);
        let load = started.elapsed().as_secs_f64() * 1e3;
        let grown = rss_kib().saturating_sub(before) as f64 / 1024.0;
        let faces: Vec<Vec<f32>> = (0..50).map(|_| descriptor(&mut rng)).collect();
        let mut one: Vec<f64> = (0..20)
            .map(|i| {
                let started = Instant::now();
                matcher.lookup(AccountId(1), None, "m", &[Some(&faces[i])]);
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        one.sort_by(f64::total_cmp);
        let all: Vec<Option<&[f32]>> = faces.iter().map(|f| Some(f.as_slice())).collect();
        let started = Instant::now();
        matcher.lookup(AccountId(1), None, "m", &all);
        let fifty = started.elapsed().as_secs_f64() * 1e3;
        let centroids = (people * DESCRIPTOR_LEN * 4) as f64 / (1024.0 * 1024.0);
        println!("| {people} | {load:.1} | {:.2} | {fifty:.1} | {grown:.1} | {centroids:.1} |", one[one.len() / 2]);
    }
}
