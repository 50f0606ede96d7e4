//! The shared test data, `../shared/data`: CI always has it, a user's clone may not. Each test
//! binary that reads it includes this file (`#[path]`), so the rule is written once.

/// Called where a test finds ../shared/data absent, before it skips or falls back: one visible
/// line, or, under `CI=true`, a failure, so that CI never passes by skipping.
pub fn absent(what_for: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true, but ../shared/data is absent ({what_for})");
    }
    println!("SKIPPED: ../shared/data is absent ({what_for})");
}
