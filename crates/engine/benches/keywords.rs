//! Keyword matching time against the number of keywords: one OCR-sized text (a page of mixed
//! Chinese and English, 400 characters) matched against libraries of 10 to 100,000 keywords.
//! `cargo bench -p engine --bench keywords` prints a table.

use engine::accounts::AccountId;
use engine::decision::{Label, Suggestion};
use engine::keywords::{KeywordLibrary, KeywordMatcher};
use rand::{Rng, SeedableRng};
use std::time::Instant;

fn main() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let hanzi = |rng: &mut rand::rngs::StdRng| char::from_u32(rng.random_range(0x4E00..0x9FA5)).unwrap();
    let text: String = (0..200)
        .map(|i| if i % 5 == 0 { format!("word{i} ") } else { hanzi(&mut rng).to_string() })
        .collect::<String>()
        + "加微信 赌博 online casino";
    let library = KeywordLibrary {
        lib_id: "lib".into(),
        owner: AccountId(1),
        lib_name: "bench".into(),
        label: Label::Illegal,
        suggestion: Suggestion::Block,
        created_at: 0,
    };
    println!("Keyword matching of a {}-character text; median of 200 runs", text.chars().count());
    println!("| keywords | build ms | match us | hits |");
    println!("|---|---|---|---|");
    for n in [10usize, 1_000, 10_000, 100_000] {
        let mut words: Vec<String> =
            (0..n - 2).map(|_| (0..rng.random_range(2..5)).map(|_| hanzi(&mut rng)).collect()).collect();
        words.extend(["赌博".to_string(), "casino".to_string()]);
        let matcher = KeywordMatcher::new();
        let start = Instant::now();
        matcher.build(vec![(library.clone(), words)], 1).unwrap();
        let build = start.elapsed().as_secs_f64() * 1000.0;
        let mut times: Vec<f64> = (0..200)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(matcher.find(AccountId(1), None, &text));
                start.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        times.sort_by(|a, b| a.total_cmp(b));
        let hits = matcher.find(AccountId(1), None, &text).len();
        println!("| {n:>7} | {build:>8.1} | {:>8.1} | {hits} |", times[100]);
    }
}
