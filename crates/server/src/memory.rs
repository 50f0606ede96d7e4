//! Memory that comes back when the traffic ends. Freed model buffers (ONNX Runtime's arena is
//! off by default, `inference.memory_arena`) and decoded images return to glibc's malloc, which
//! keeps them in its heaps:
//! - [`limit_allocator_arenas`]: glibc gives each thread that meets contention a heap of its own
//!   (up to 8 per core), and a buffer freed in one heap serves no other; with two, the robustness
//!   corpus peaked at 896 MiB instead of 1,596 MiB;
//! - [`spawn_trimmer`]: once no image is in flight, `malloc_trim` hands the free pages back to
//!   the system (1,435 MiB after the corpus became 808 MiB a minute later; both levers: 390 MiB).
//!
//! Measured with `cargo bench -p ims --bench server` (docs/benchmarks.md).

use crate::AppState;
use std::time::Duration;

/// How often the server checks whether it has gone idle.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Trims malloc's heaps each time the server goes idle after moderating.
pub fn spawn_trimmer(state: AppState) {
    tokio::spawn(async move {
        let capacity = state.settings.max_images_in_flight.max(1);
        let mut worked_since_trim = false;
        let mut interval = tokio::time::interval(CHECK_EVERY);
        loop {
            interval.tick().await;
            let idle = state.in_flight.available_permits() >= capacity;
            if !idle {
                worked_since_trim = true;
            } else if worked_since_trim {
                worked_since_trim = false;
                let _ = tokio::task::spawn_blocking(trim).await;
            }
        }
    });
}

/// At most two malloc heaps for the whole process, unless the operator chose a number with
/// `GLIBC_TUNABLES=glibc.malloc.arena_max=N`; call before any thread starts.
pub fn limit_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if !std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.arena_max")) {
        // SAFETY: mallopt only sets a malloc parameter; called before other threads exist.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks and releases malloc's own free memory; it takes malloc's
    // locks, so it is safe while other threads allocate.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
