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

/// Every file under `dir`, however deep, sorted.
#[allow(dead_code)] // not every test binary that includes this file walks a folder
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    files
}
