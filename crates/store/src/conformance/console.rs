//! `ConsoleRepository`: sessions live while used and die when idle, old, closed or when the
//! password changes; passwords are per account; failures are counted exactly, also when racing.

use engine::accounts::{AccountId, AccountRepository};
use engine::console::{new_session, token_hash, ConsoleRepository, Session, SessionRules, SEEN_RESOLUTION_SECS};

const RULES: SessionRules =
    SessionRules { idle_secs: 1800, lifetime_secs: 43_200, max_failures: 5, failure_window_secs: 900 };

pub fn sessions_passwords_and_failures<S: ConsoleRepository + AccountRepository>(s: &S) {
    let acme = s.create_account("acme", None).unwrap().id;
    let other = s.create_account("other", None).unwrap().id;
    let t0 = 1_000_000;

    // A session is found by its token's hash only, and seen_at follows use at its resolution.
    let (token, session) = new_session(acme, t0);
    s.open_session(&token_hash(&token), &session).unwrap();
    assert!(s.session(&token, &RULES, t0).unwrap().is_none(), "the token itself is not the key");
    assert_eq!(s.session(&token_hash(&token), &RULES, t0 + 10).unwrap().unwrap(), session, "not stale yet");
    let seen = s.session(&token_hash(&token), &RULES, t0 + SEEN_RESOLUTION_SECS).unwrap().unwrap();
    assert_eq!(seen.seen_at, t0 + SEEN_RESOLUTION_SECS);
    let later = t0 + SEEN_RESOLUTION_SECS + RULES.idle_secs - 1;
    assert!(s.session(&token_hash(&token), &RULES, later).unwrap().is_some(), "used, so still live");
    let idle = later + RULES.idle_secs;
    assert!(s.session(&token_hash(&token), &RULES, idle).unwrap().is_none(), "idle too long");
    assert!(s.session(&token_hash(&token), &RULES, t0).unwrap().is_none(), "an expired session is deleted");

    // Closing, and a password change, end sessions; only the account's own.
    let open = |account: AccountId| {
        let (token, session) = new_session(account, t0);
        s.open_session(&token_hash(&token), &session).unwrap();
        token_hash(&token)
    };
    let (a1, a2, o1) = (open(acme), open(acme), open(other));
    s.close_session(&a1).unwrap();
    s.close_session(&a1).unwrap();
    assert!(s.session(&a1, &RULES, t0).unwrap().is_none());
    assert!(s.session(&a2, &RULES, t0).unwrap().is_some());
    assert_eq!(s.password(acme).unwrap(), None);
    s.set_password(acme, Some("$argon2id$first")).unwrap();
    s.set_password(acme, Some("$argon2id$second")).unwrap();
    assert_eq!(s.password(acme).unwrap().as_deref(), Some("$argon2id$second"));
    assert_eq!(s.password(other).unwrap(), None);
    assert!(s.session(&a2, &RULES, t0).unwrap().is_none(), "a new password signs the account out");
    assert!(s.session(&o1, &RULES, t0).unwrap().is_some(), "another account's session stays");
    s.set_password(acme, None).unwrap();
    assert_eq!(s.password(acme).unwrap(), None);

    // Purging takes idle and old sessions, and old failures.
    let fresh = open(other);
    let old = {
        let (token, session) = new_session(other, t0 - RULES.lifetime_secs);
        s.open_session(&token_hash(&token), &Session { seen_at: t0, ..session }).unwrap();
        token_hash(&token)
    };
    assert_eq!(s.purge_sessions(t0 - RULES.idle_secs, t0 - RULES.lifetime_secs + 1, t0).unwrap(), 1);
    assert!(s.session(&fresh, &RULES, t0).unwrap().is_some());
    assert!(s.session(&old, &RULES, t0 - 1).unwrap().is_none());

    // Failures: counted in their window, per subject, none lost to racing.
    assert_eq!(s.note_failure("id:AKIDx", t0 - 1000, t0 - 1900).unwrap(), 1);
    assert_eq!(s.note_failure("id:AKIDx", t0, RULES.failure_window_start(t0)).unwrap(), 1, "the first is too old");
    assert_eq!(s.failures("id:AKIDx", t0 - 2000).unwrap(), 2);
    assert_eq!(s.failures("ip:10.0.0.1", 0).unwrap(), 0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| s.note_failure("ip:10.0.0.1", t0, 0).unwrap());
        }
    });
    assert_eq!(s.failures("ip:10.0.0.1", 0).unwrap(), 8);
    s.clear_failures("ip:10.0.0.1").unwrap();
    assert_eq!(s.failures("ip:10.0.0.1", 0).unwrap(), 0);
    assert_eq!(s.failures("id:AKIDx", 0).unwrap(), 2, "another subject's failures stay");
    s.purge_sessions(0, 0, t0).unwrap();
    assert_eq!(s.failures("id:AKIDx", 0).unwrap(), 1, "failures before the cutoff are purged");
}
