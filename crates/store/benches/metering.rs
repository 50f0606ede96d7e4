//! How much metering adds to each moderated image: `meter` is one immediate SQLite transaction
//! on the answer's path. Prints a table: sequential and concurrent metering, a repeated key, and
//! one settlement run.
//!
//! `cargo bench -p store --bench metering` (IMAGES=20000 by default).

use engine::accounts::AccountRepository;
use engine::billing::{Billing, BillingRepository, BillingSettings, Service, Usage};
use std::sync::Arc;
use std::time::Instant;
use store::{Sealer, SqliteStore};

fn main() {
    let images: usize = std::env::var("IMAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("ims.db"), Sealer::from_key(&[1; 32])).unwrap());
    let billing = Billing::from_settings(&BillingSettings::default()).unwrap();
    let owner = store.create_account("bench", None).unwrap().id;
    let now = chrono::Utc::now().timestamp();
    store.activate(owner, billing.catalogue_of("cn"), now).unwrap();
    let usage = |key: String| Usage { request_id: key, account: owner, owner, service: Service::Image, at: now };

    println!("{:<44} {:>10} {:>12}", "case", "us/image", "images/s");
    let row = |name: &str, count: usize, started: Instant| {
        let secs = started.elapsed().as_secs_f64();
        println!("{name:<44} {:>10.1} {:>12.0}", secs * 1e6 / count as f64, count as f64 / secs);
    };

    let started = Instant::now();
    for i in 0..images {
        store.meter(&usage(format!("seq-{i}")), &billing.calendar).unwrap();
    }
    row("sequential (trial, then pay-as-you-go)", images, started);

    let threads = 8;
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (store, calendar) = (store.clone(), billing.calendar);
            std::thread::spawn(move || {
                for i in 0..images / threads {
                    let key = format!("par-{t}-{i}");
                    let usage = Usage { request_id: key, account: owner, owner, service: Service::Image, at: now };
                    store.meter(&usage, &calendar).unwrap();
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    row(&format!("{threads} threads at once"), images / threads * threads, started);

    let started = Instant::now();
    for _ in 0..images / 10 {
        store.meter(&usage("seq-0".into()), &billing.calendar).unwrap();
    }
    row("the same key again (idempotent no-op)", images / 10, started);

    let started = Instant::now();
    let done = store.settle(&billing, now + 2 * 86_400).unwrap();
    println!("settlement of {} bill(s): {:.1} ms", done.bills.len(), started.elapsed().as_secs_f64() * 1e3);
}
