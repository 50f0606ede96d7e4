//! One suite per repository trait, for every backend: what each trait's contract (its
//! documentation in `engine`) promises, whatever stores it. Each backend's tests call these on
//! a fresh store of their own (SQLite in `sqlite.rs`); a new backend runs the same functions.

pub mod billing;
pub mod console;
pub mod faces;
pub mod history;
pub mod keywords;
pub mod libraries;
pub mod rates;
pub mod search;
pub mod tasks;

use engine::accounts::{Access, AccountError, AccountId, AccountRepository, KeyStatus, RateLimits, MAX_ACTIVE_KEYS};
use engine::policy::{Policy, PolicyError, PolicyRepository};

pub fn accounts_and_grants(s: &dyn AccountRepository) {
    let main = s.create_account("acme", None).unwrap();
    assert!(main.is_main());
    assert_eq!(main.access, Access::Full);
    let sub = s.create_account("ops", Some(main.id)).unwrap();
    assert_eq!(sub.access, Access::None);
    assert_eq!(sub.owner(), main.id);
    assert!(matches!(s.create_account("x", Some(sub.id)), Err(AccountError::NotAMainAccount(_))));
    assert!(matches!(s.create_account("x", Some(AccountId(99))), Err(AccountError::AccountNotFound(_))));
    assert!(matches!(s.create_account("", None), Err(AccountError::InvalidName)));
    assert_eq!(s.set_access(sub.id, Access::ReadOnly).unwrap().access, Access::ReadOnly);
    assert!(matches!(s.set_access(main.id, Access::None), Err(AccountError::NotASubAccount(_))));
    let limits = RateLimits { sync_per_second: Some(5), async_per_second: None };
    assert_eq!(s.set_limits(sub.id, limits).unwrap().limits, limits);
    let zero = RateLimits { sync_per_second: Some(0), async_per_second: None };
    assert!(matches!(s.set_limits(sub.id, zero), Err(AccountError::InvalidLimit)));
    let ids: Vec<AccountId> = s.accounts().unwrap().iter().map(|a| a.id).collect();
    assert_eq!(ids, [main.id, sub.id], "every account, by id");
}

pub fn at_most_two_active_keys(s: &dyn AccountRepository) {
    let a = s.create_account("acme", None).unwrap();
    let (k1, secret1) = s.create_key(a.id).unwrap();
    let (k2, _) = s.create_key(a.id).unwrap();
    assert!(matches!(s.create_key(a.id), Err(AccountError::TooManyKeys { .. })));
    s.set_key_status(&k1.secret_id, KeyStatus::Disabled).unwrap();
    assert!(s.credential(&k1.secret_id).unwrap().is_none(), "a disabled key does not authenticate");
    let (k3, _) = s.create_key(a.id).unwrap();
    assert!(matches!(s.set_key_status(&k1.secret_id, KeyStatus::Active), Err(AccountError::TooManyKeys { .. })));
    s.delete_key(&k3.secret_id).unwrap();
    s.set_key_status(&k1.secret_id, KeyStatus::Active).unwrap();
    s.set_key_status(&k1.secret_id, KeyStatus::Active).unwrap();
    let credential = s.credential(&k1.secret_id).unwrap().unwrap();
    assert_eq!(credential.secret_key, secret1);
    assert_eq!(credential.account.id, a.id);
    assert_eq!(s.keys(Some(a.id)).unwrap().len(), 2);
    assert!(s.credential(&k2.secret_id).unwrap().is_some());
    assert!(s.credential("AKIDunknown").unwrap().is_none());
    assert!(matches!(s.delete_key("AKIDunknown"), Err(AccountError::KeyNotFound(_))));
}

/// Eight nodes starting at once on an empty store: one makes the first account.
pub fn racing_first_accounts_make_one(s: &dyn AccountRepository) {
    let made = std::thread::scope(|scope| {
        let racers: Vec<_> =
            (0..8).map(|i| scope.spawn(move || s.create_first_account(&format!("first {i}")))).collect();
        racers.into_iter().map(|r| r.join().unwrap().unwrap()).filter(Option::is_some).count()
    });
    assert_eq!(made, 1);
    assert_eq!(s.accounts().unwrap().len(), 1);
    assert!(s.create_first_account("later").unwrap().is_none());
}

/// Eight key creations at once for one account: exactly [`MAX_ACTIVE_KEYS`] succeed.
pub fn racing_key_creations_stop_at_the_limit(s: &dyn AccountRepository) {
    let a = s.create_account("racing", None).unwrap();
    let created = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..8).map(|_| scope.spawn(|| s.create_key(a.id))).collect();
        racers.into_iter().map(|r| r.join().unwrap()).filter(Result::is_ok).count()
    });
    assert_eq!(created, MAX_ACTIVE_KEYS);
    assert_eq!(s.keys(Some(a.id)).unwrap().len(), MAX_ACTIVE_KEYS);
}

pub fn policies_are_per_owner_and_names_are_unique<S: AccountRepository + PolicyRepository>(store: &S) {
    let a = store.create_account("a", None).unwrap().id;
    let b = store.create_account("b", None).unwrap().id;
    let mut forum = Policy::named("forum").unwrap();
    store.create_policy(a, &forum).unwrap();
    assert_eq!(store.create_policy(a, &forum), Err(PolicyError::Exists("forum".into())));
    store.create_policy(b, &forum).unwrap();
    forum.votes = 1;
    store.update_policy(a, &forum).unwrap();
    store.update_policy(a, &forum).unwrap();
    assert_eq!(store.policy(a, "forum").unwrap().unwrap().votes, 1);
    assert_eq!(store.policy(b, "forum").unwrap().unwrap().votes, 2, "b's policy untouched");
    assert_eq!(store.policies(a).unwrap().len(), 1);
    store.delete_policy(a, "forum").unwrap();
    assert_eq!(store.policy(a, "forum").unwrap(), None);
    assert_eq!(store.delete_policy(a, "forum"), Err(PolicyError::NotFound("forum".into())));
    forum.votes = 9;
    assert!(store.update_policy(b, &forum).is_err(), "invalid settings refused");
}

/// Eight creations of one policy name at once: one succeeds, the others are refused `Exists`.
pub fn racing_policy_creations_make_one<S: AccountRepository + PolicyRepository>(store: &S) {
    let owner = store.create_account("racing policies", None).unwrap().id;
    let policy = Policy::named("contested").unwrap();
    let answers: Vec<Result<(), PolicyError>> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..8).map(|_| scope.spawn(|| store.create_policy(owner, &policy))).collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 1, "{answers:?}");
    assert!(answers.iter().all(|a| a.is_ok() || *a == Err(PolicyError::Exists("contested".into()))), "{answers:?}");
}
