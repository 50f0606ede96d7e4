//! Per-account request-rate limits.
//!
//! A sliding one-second window: a request is admitted when fewer than `limit` requests of the
//! same account and class were admitted in the second before it. Unlike a fixed window it never
//! lets `2 x limit` through across a window boundary, and unlike a token bucket refilled
//! continuously it refuses exactly the surplus of a burst, which is what the cloud promises
//! ("100 requests per second") and what the tests check. Refused requests do not count.
//!
//! [`Admission`] is where a server asks: one node keeps its windows in memory
//! ([`RateLimiter`]); the nodes of a cluster keep them in the shared database, so that an
//! account's limit holds for the cluster as a whole. Both apply the same rule, [`slide`].

use crate::accounts::AccountId;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which limit a request draws on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// `ImageModeration` and every other synchronous action.
    Sync,
    /// `CreateImageModerationAsyncTask`.
    Async,
    /// `SearchImage` in one image-search group (by its `GroupId`): the group's `MaxQps`, on top
    /// of the account's synchronous limit.
    Group(String),
}

impl RateClass {
    /// Its name where windows are stored.
    pub fn key(&self) -> std::borrow::Cow<'static, str> {
        match self {
            RateClass::Sync => "sync".into(),
            RateClass::Async => "async".into(),
            RateClass::Group(group_id) => format!("group:{group_id}").into(),
        }
    }
}

/// The limiter's answer when it cannot tell (the database that keeps the windows failed).
#[derive(Debug, thiserror::Error)]
#[error("rate limit storage: {0}")]
pub struct RateError(pub String);

/// Admits requests under per-account limits.
///
/// Concurrency contract: of any number of calls racing for one account and class, on any node
/// sharing the implementation's state, exactly as many are admitted as the window has room for.
pub trait Admission: Send + Sync {
    /// Admits one request now if fewer than `limit` of the account's requests of `class` were
    /// admitted in the second before; may block (a database round trip).
    fn admit(&self, account: AccountId, class: RateClass, limit: u32) -> Result<bool, RateError>;
}

/// The sliding-window rule on one window (admission times, oldest first): drops the times
/// `gone` says have left the window, then admits `now` if fewer than `limit` remain.
pub fn slide<T: Copy>(admitted: &mut VecDeque<T>, now: T, gone: impl Fn(T) -> bool, limit: u32) -> bool {
    while admitted.front().is_some_and(|&t| gone(t)) {
        admitted.pop_front();
    }
    if admitted.len() < limit as usize {
        admitted.push_back(now);
        true
    } else {
        false
    }
}

/// The admission times of one account and class within the last period, oldest first.
type Window = Arc<Mutex<VecDeque<Instant>>>;

#[derive(Debug)]
pub struct RateLimiter {
    period: Duration,
    windows: Mutex<HashMap<(AccountId, RateClass), Window>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(Duration::from_secs(1))
    }
}

impl RateLimiter {
    pub fn new(period: Duration) -> Self {
        RateLimiter { period, windows: Mutex::new(HashMap::new()) }
    }

    /// Admits one request at `now` if the account is under `limit` for the class.
    pub fn try_acquire(&self, account: AccountId, class: RateClass, limit: u32, now: Instant) -> bool {
        // The map lock is held only to find the account's window, so accounts do not contend.
        let window = {
            let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            windows.entry((account, class)).or_default().clone()
        };
        let mut admitted = window.lock().unwrap_or_else(|e| e.into_inner());
        slide(&mut admitted, now, |t| now.saturating_duration_since(t) >= self.period, limit)
    }
}

impl Admission for RateLimiter {
    fn admit(&self, account: AccountId, class: RateClass, limit: u32) -> Result<bool, RateError> {
        Ok(self.try_acquire(account, class, limit, Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn refuses_exactly_the_surplus_of_a_burst() {
        let limiter = RateLimiter::default();
        let now = Instant::now();
        let admitted = (0..130).filter(|_| limiter.try_acquire(AccountId(1), RateClass::Sync, 100, now)).count();
        assert_eq!(admitted, 100);
    }

    #[test]
    fn window_slides() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        assert!(limiter.try_acquire(AccountId(1), RateClass::Sync, 2, t0));
        assert!(limiter.try_acquire(AccountId(1), RateClass::Sync, 2, t0 + Duration::from_millis(500)));
        assert!(!limiter.try_acquire(AccountId(1), RateClass::Sync, 2, t0 + Duration::from_millis(999)));
        // The first admission leaves the window at exactly one second.
        assert!(limiter.try_acquire(AccountId(1), RateClass::Sync, 2, t0 + Duration::from_millis(1000)));
        assert!(!limiter.try_acquire(AccountId(1), RateClass::Sync, 2, t0 + Duration::from_millis(1499)));
        assert!(limiter.try_acquire(AccountId(1), RateClass::Sync, 2, t0 + Duration::from_millis(1500)));
    }

    #[test]
    fn accounts_and_classes_are_independent() {
        let limiter = RateLimiter::default();
        let now = Instant::now();
        assert!(limiter.try_acquire(AccountId(1), RateClass::Sync, 1, now));
        assert!(!limiter.try_acquire(AccountId(1), RateClass::Sync, 1, now));
        assert!(limiter.try_acquire(AccountId(1), RateClass::Async, 1, now));
        assert!(limiter.try_acquire(AccountId(2), RateClass::Sync, 1, now));
    }

    #[test]
    fn exact_under_concurrency() {
        let limiter = Arc::new(RateLimiter::default());
        let admitted = Arc::new(AtomicUsize::new(0));
        let now = Instant::now();
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (limiter, admitted) = (limiter.clone(), admitted.clone());
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        if limiter.try_acquire(AccountId(7), RateClass::Sync, 250, now) {
                            admitted.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(admitted.load(Ordering::SeqCst), 250);
    }
}
