//! [`Admission`]: the sliding one-second window, exact under racing callers (on PostgreSQL
//! they stand for the nodes of a cluster).

use engine::accounts::AccountId;
use engine::ratelimit::{Admission, RateClass};
use std::time::Duration;

pub fn racing_admissions_are_exact_and_the_window_slides(limits: &dyn Admission) {
    let admitted = std::thread::scope(|scope| {
        let callers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| (0..40).filter(|_| limits.admit(AccountId(1), RateClass::Sync, 100).unwrap()).count())
            })
            .collect();
        callers.into_iter().map(|c| c.join().unwrap()).sum::<usize>()
    });
    assert_eq!(admitted, 100, "320 calls at once against a limit of 100");
    assert!(limits.admit(AccountId(1), RateClass::Async, 1).unwrap(), "classes are apart");
    assert!(limits.admit(AccountId(1), RateClass::Group("g".into()), 1).unwrap(), "a group has its own");
    assert!(!limits.admit(AccountId(1), RateClass::Group("g".into()), 1).unwrap());
    assert!(limits.admit(AccountId(1), RateClass::Group("h".into()), 1).unwrap(), "groups are apart");
    assert!(limits.admit(AccountId(2), RateClass::Sync, 1).unwrap(), "accounts are apart");
    assert!(!limits.admit(AccountId(2), RateClass::Sync, 1).unwrap());
    std::thread::sleep(Duration::from_millis(1050));
    assert!(limits.admit(AccountId(2), RateClass::Sync, 1).unwrap(), "a second later the window has moved on");
}
