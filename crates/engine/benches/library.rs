//! Library lookup time at 10^4, 10^5 and 10^6 PDQ hashes: the multi-index hash index against a
//! linear scan of the same hashes, for queries that match a filed hash (12 bits away) and
//! queries that match nothing. Prints a table; `cargo bench -p engine --bench library`.

use engine::library::{Hash256, HashIndex, MATCH_DISTANCE};
use rand::{Rng, SeedableRng};
use std::time::Instant;

fn random_hash(rng: &mut impl Rng) -> Hash256 {
    Hash256(std::array::from_fn(|_| rng.random()))
}

fn near(hash: Hash256, rng: &mut impl Rng, bits: u32) -> Hash256 {
    let mut words = hash.0;
    let mut flipped = std::collections::HashSet::new();
    while flipped.len() < bits as usize {
        let bit = rng.random_range(0..256);
        if flipped.insert(bit) {
            words[bit / 64] ^= 1 << (bit % 64);
        }
    }
    Hash256(words)
}

/// Median microseconds of `f` over `queries`.
fn median_us(queries: &[Hash256], mut f: impl FnMut(&Hash256) -> usize) -> (f64, usize) {
    let mut times = Vec::with_capacity(queries.len());
    let mut found = 0;
    for q in queries {
        let start = Instant::now();
        found += f(q);
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    (times[times.len() / 2], found)
}

/// Peak resident memory of this process, MiB (Linux).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kib.unwrap_or(0.0) / 1024.0
}

fn main() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    println!("PDQ library lookup (distance <= {MATCH_DISTANCE}); median of 200 queries each; microseconds");
    println!("| hashes | build s | index: match | index: no match | linear scan: match | speed-up |");
    println!("|---|---|---|---|---|---|");
    for n in [10_000usize, 100_000, 1_000_000] {
        let hashes: Vec<Hash256> = (0..n).map(|_| random_hash(&mut rng)).collect();
        let start = Instant::now();
        let mut index = HashIndex::new();
        for (i, h) in hashes.iter().enumerate() {
            index.insert(*h, i as u64);
        }
        let build = start.elapsed().as_secs_f64();
        let matching: Vec<Hash256> = (0..200).map(|i| near(hashes[i * (n / 200)], &mut rng, 12)).collect();
        let unrelated: Vec<Hash256> = (0..200).map(|_| random_hash(&mut rng)).collect();
        let (hit, found) = median_us(&matching, |q| index.search(q, MATCH_DISTANCE).len());
        assert!(found >= 200, "every near query finds its hash");
        let (miss, _) = median_us(&unrelated, |q| index.search(q, MATCH_DISTANCE).len());
        let (scan, scanned) =
            median_us(&matching[..20], |q| hashes.iter().filter(|h| h.distance(q) <= MATCH_DISTANCE).count());
        assert!(scanned >= 20);
        println!("| {n:>9} | {build:>6.2} | {hit:>9.1} | {miss:>9.1} | {scan:>9.1} | {:>6.0}x |", scan / hit);
    }
    println!("\npeak RSS of the bench process (the 10^6 index and its source hashes): {:.0} MiB", peak_rss_mib());
}
