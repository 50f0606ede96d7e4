//! What the store adds to each request, on SQLite and on PostgreSQL (a throwaway local server,
//! `store::testing`): the key lookup every call makes, the rate-limit decision (a limit of 100
//! a second, the default: each second 100 are admitted and written, the rest only read), the history
//! record, metering (sequential, and 8 threads at once for one account and for eight), a
//! repeated metering key, and one settlement run. Prints one table per backend.
//!
//! `cargo bench -p store --bench operations` (`N=5000` operations per row by default).

use engine::accounts::AccountId;
use engine::billing::{Billing, BillingSettings, Service, Usage};
use engine::decision::{Label, Suggestion};
use engine::history::{Origin, Record};
use engine::ratelimit::RateClass;
use std::sync::Arc;
use std::time::Instant;
use store::testing::TempPostgres;
use store::{Sealer, Store};

fn main() {
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = store::open(None, dir.path(), Sealer::from_key(&[1; 32])).unwrap();
    run("SQLite (embedded, WAL)", sqlite, n);
    match TempPostgres::start() {
        Some(server) => {
            let url = server.create_database("bench");
            let postgres = store::open(Some(&url), dir.path(), Sealer::from_key(&[1; 32])).unwrap();
            run("PostgreSQL 15 (local, TCP, fsync off)", postgres, n);
        }
        None => println!("\nPostgreSQL: not installed, no rows"),
    }
}

fn record(owner: AccountId, id: String, at: i64) -> Record {
    Record {
        request_id: id,
        owner,
        account: owner,
        created_at: at,
        origin: Origin::Sync,
        service: engine::billing::Service::Image,
        biz_type: String::new(),
        data_id: "bench".into(),
        file_md5: "0".repeat(32),
        file_url: String::new(),
        user_id: String::new(),
        device_id: String::new(),
        context: String::new(),
        suggestion: Suggestion::Pass,
        label: Label::Normal,
        sub_label: String::new(),
        score: 0,
        flagged: vec![],
        text: String::new(),
        hits: vec![],
        response: "{\"Suggestion\":\"Pass\"}".repeat(20),
        thumbnail: Some(vec![7; 6_000]),
        hashes: vec![],
        observations: None,
        correction: None,
    }
}

/// `count` calls of `work(thread, i)` from `threads` threads; prints µs per call and calls/s.
fn row(name: &str, threads: usize, count: usize, work: impl Fn(usize, usize) + Sync) {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let work = &work;
            scope.spawn(move || (0..count / threads).for_each(|i| work(t, i)));
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let done = count / threads * threads;
    println!("| {name} | {:.1} | {:.0} |", secs * 1e6 / done as f64, done as f64 / secs);
}

fn run(backend: &str, store: Arc<dyn Store>, n: usize) {
    let billing = Billing::from_settings(&BillingSettings::default()).unwrap();
    let now = engine::stamp::now();
    let owners: Vec<AccountId> =
        (0..8).map(|i| store.create_account(&format!("bench {i}"), None).unwrap().id).collect();
    for owner in &owners {
        store.activate(*owner, billing.catalogue_of("cn"), now).unwrap();
    }
    let (key, _) = store.create_key(owners[0]).unwrap();
    let limits = store.clone().admission();
    let meter = |owner: AccountId, key: String| {
        let usage = Usage { request_id: key, account: owner, owner, service: Service::Image, at: now };
        store.meter(&usage, &billing.calendar).unwrap();
    };

    println!("\n### {backend}\n\n| operation | µs each | per second |\n|---|---|---|");
    row("ping (SELECT 1)", 1, n, |_, _| store.ping().unwrap());
    row("key lookup (every call)", 1, n, |_, _| drop(store.credential(&key.secret_id).unwrap()));
    row("key lookup, 8 threads", 8, n, |_, _| drop(store.credential(&key.secret_id).unwrap()));
    row("rate-limit decision (limit 100/s)", 1, n, |_, _| {
        let _ = limits.admit(owners[0], RateClass::Sync, 100).unwrap();
    });
    row("rate-limit decision, 8 threads, one account", 8, n, |_, _| {
        let _ = limits.admit(owners[1], RateClass::Sync, 100).unwrap();
    });
    row("rate-limit decision, 8 threads, 8 accounts", 8, n, |t, _| {
        let _ = limits.admit(owners[t], RateClass::Async, 100).unwrap();
    });
    row("history record (6 KB thumbnail)", 1, n, |_, i| {
        store.record(&record(owners[0], format!("h-{i}"), now)).unwrap()
    });
    row("history record, 8 threads", 8, n, |t, i| store.record(&record(owners[t], format!("h-{t}-{i}"), now)).unwrap());
    row("metering", 1, n, |_, i| meter(owners[0], format!("seq-{i}")));
    row("metering, 8 threads, one account (they queue)", 8, n, |t, i| meter(owners[1], format!("one-{t}-{i}")));
    row("metering, 8 threads, 8 accounts", 8, n, |t, i| meter(owners[t], format!("many-{t}-{i}")));
    row("metering the same key again (no-op)", 1, n, |_, _| meter(owners[0], "seq-0".into()));
    let started = Instant::now();
    let done = store.settle(&billing, now + 2 * 86_400).unwrap();
    println!("\nsettlement of {} bill(s): {:.1} ms", done.bills.len(), started.elapsed().as_secs_f64() * 1e3);
}
