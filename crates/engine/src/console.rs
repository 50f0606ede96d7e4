//! The console's sign-in: sessions, console passwords and the throttle on failed sign-ins.
//!
//! A session is known to the database only by the SHA-256 of its token (the cookie's value), so
//! a copy of the database does not hand out sessions; it is kept there, not in a node's memory,
//! so that every node of a cluster serves it.

use crate::accounts::AccountId;
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub account: AccountId,
    /// The token every change must carry besides the cookie (a form field): another site can
    /// make the browser send the cookie, but cannot read this.
    pub csrf: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last request, at most [`SEEN_RESOLUTION_SECS`] stale.
    pub seen_at: i64,
}

/// A session's last-seen time is written at most this often (not on every page view).
pub const SEEN_RESOLUTION_SECS: i64 = 60;

/// A fresh session for `account`: the token for the cookie, and the session to store under
/// its [`token_hash`].
pub fn new_session(account: AccountId, now: i64) -> (String, Session) {
    let mut rng = rand::rng();
    let token = Alphanumeric.sample_string(&mut rng, 43);
    let csrf = Alphanumeric.sample_string(&mut rng, 32);
    (token, Session { account, csrf, created_at: now, seen_at: now })
}

/// What the database knows a session by.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A console password as an argon2id PHC string (salted; the parameters are argon2's defaults:
/// 19 MiB, 2 passes), what [`ConsoleRepository::set_password`] stores.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` is the one `phc` was made from (in constant time).
pub fn password_matches(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc)
        .is_ok_and(|hash| argon2::Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// The shortest console password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a console password has at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("hashing the password: {0}")]
    Hash(String),
}

/// How long sessions live, and how many failed sign-ins are let through (`[console]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRules {
    /// A session unused this long is over.
    pub idle_secs: i64,
    /// A session this old is over, however busy.
    pub lifetime_secs: i64,
    /// Failed sign-ins of one subject (a SecretId, an account, an address) within
    /// `failure_window_secs` after which it is refused until the window has passed.
    pub max_failures: u32,
    pub failure_window_secs: i64,
}

impl SessionRules {
    /// Whether `session` may still be used at `now`.
    pub fn is_live(&self, session: &Session, now: i64) -> bool {
        now - session.seen_at < self.idle_secs && now - session.created_at < self.lifetime_secs
    }

    /// The oldest `seen_at` a live session can have at `now` (older ones may be purged).
    pub fn idle_cutoff(&self, now: i64) -> i64 {
        now - self.idle_secs
    }

    /// Failures counted from here on.
    pub fn failure_window_start(&self, now: i64) -> i64 {
        now - self.failure_window_secs
    }

    /// Whether a subject with `failures` recent failures may try again.
    pub fn may_try(&self, failures: u32) -> bool {
        failures < self.max_failures
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("storage: {0}")]
    Storage(String),
}

/// Where the console's sessions, passwords and failed sign-ins are kept.
///
/// Concurrency contract: each method is one atomic change or read. `open_session` and
/// `set_password` are not idempotent (a retry opens a second session, which is harmless);
/// `close_session`, `clear_failures` and `purge_sessions` are. `note_failure` counts every
/// failure of racing callers: none is lost.
pub trait ConsoleRepository: Send + Sync {
    fn open_session(&self, token_hash: &str, session: &Session) -> Result<(), ConsoleError>;
    /// The session stored under `token_hash` if `rules` say it is live at `now` (its `seen_at`
    /// moved to `now` when it is [`SEEN_RESOLUTION_SECS`] stale); `None` otherwise, and an
    /// expired one is deleted.
    fn session(&self, token_hash: &str, rules: &SessionRules, now: i64) -> Result<Option<Session>, ConsoleError>;
    fn close_session(&self, token_hash: &str) -> Result<(), ConsoleError>;
    /// Sets (or with `None` removes) an account's console password, as an argon2id PHC
    /// string, and closes every session of the account.
    fn set_password(&self, account: AccountId, phc: Option<&str>) -> Result<(), ConsoleError>;
    fn password(&self, account: AccountId) -> Result<Option<String>, ConsoleError>;
    /// Records a failed sign-in of `subject` at `now`; returns its failures since `since`,
    /// this one included.
    fn note_failure(&self, subject: &str, now: i64, since: i64) -> Result<u32, ConsoleError>;
    /// `subject`'s failures since `since`.
    fn failures(&self, subject: &str, since: i64) -> Result<u32, ConsoleError>;
    /// Forgets `subject`'s failures (after it signed in).
    fn clear_failures(&self, subject: &str) -> Result<(), ConsoleError>;
    /// Deletes sessions last seen before `idle_before` or created before `created_before`, and
    /// failures before `failures_before`; returns how many sessions went.
    fn purge_sessions(&self, idle_before: i64, created_before: i64, failures_before: i64) -> Result<u64, ConsoleError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: SessionRules =
        SessionRules { idle_secs: 1800, lifetime_secs: 43_200, max_failures: 5, failure_window_secs: 900 };

    #[test]
    fn a_session_ends_when_idle_or_old() {
        let (token, session) = new_session(AccountId(7), 1000);
        assert_eq!(token.len(), 43);
        assert_ne!(token_hash(&token), token);
        assert!(RULES.is_live(&session, 1000 + 1799));
        assert!(!RULES.is_live(&session, 1000 + 1800), "idle for the whole idle time");
        let busy = Session { seen_at: 1000 + 43_199, ..session };
        assert!(RULES.is_live(&busy, 1000 + 43_199));
        assert!(!RULES.is_live(&busy, 1000 + 43_200), "past its lifetime, however busy");
    }

    #[test]
    fn passwords_are_salted_argon2id_and_checked() {
        assert!(matches!(hash_password("short"), Err(PasswordError::TooShort)));
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert_ne!(phc, hash_password("correct horse battery").unwrap(), "a fresh salt each time");
        assert!(password_matches("correct horse battery", &phc));
        assert!(!password_matches("correct horse batterY", &phc));
        assert!(!password_matches("anything", "not a hash"));
    }

    #[test]
    fn the_fifth_failure_stops_the_sixth_try() {
        assert!(RULES.may_try(4));
        assert!(!RULES.may_try(5));
        assert_eq!(RULES.failure_window_start(10_000), 9_100);
    }
}
