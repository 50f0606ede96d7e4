//! Accounts, grants and API keys.
//!
//! A main account holds API keys and may create sub-accounts. A sub-account can call the API
//! only once its main account has granted it read-only or full access. Every account, main or
//! sub, holds at most [`MAX_ACTIVE_KEYS`] active key pairs, either of which signs requests.

use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How many key pairs of one account may be active at once (two, so keys can be rotated).
pub const MAX_ACTIVE_KEYS: usize = 2;

/// An account's id; the default (0) is no account's, what a record read back without its
/// owner (a library inside a stored verdict) carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub i64);

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

named_enum! {
    /// What a sub-account may do, as granted by its main account. Main accounts always have `Full`.
    pub enum Access {
        /// Not granted: every API call is refused.
        None = "none",
        /// Describe and list actions only.
        ReadOnly = "read-only",
        /// Every action, including moderation calls and changes.
        Full = "full",
    }
}

impl Access {
    pub fn permits(self, operation: Operation) -> bool {
        match self {
            Access::Full => true,
            Access::ReadOnly => operation == Operation::Read,
            Access::None => false,
        }
    }
}

/// Whether an action only reads the account's data or changes it (moderating an image writes a
/// result and is billed, so it is a write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Read,
    Write,
}

/// Requests per second an account may make; `None` means the deployment's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimits {
    pub sync_per_second: Option<u32>,
    pub async_per_second: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    /// The main account of a sub-account; `None` for a main account.
    pub parent: Option<AccountId>,
    /// The grant of a sub-account; always `Full` for a main account.
    pub access: Access,
    pub limits: RateLimits,
    /// Unix seconds.
    pub created_at: i64,
}

impl Account {
    pub fn is_main(&self) -> bool {
        self.parent.is_none()
    }

    /// The grant an account starts with under `parent`: full for a main account (no parent),
    /// none for a sub-account until its main account grants it; only a main account has
    /// sub-accounts.
    pub fn initial_access(parent: Option<&Account>) -> Result<Access, AccountError> {
        match parent {
            None => Ok(Access::Full),
            Some(parent) if parent.is_main() => Ok(Access::None),
            Some(parent) => Err(AccountError::NotAMainAccount(parent.id)),
        }
    }

    /// Refused for a main account: grants apply to sub-accounts only.
    pub fn check_grantable(&self) -> Result<(), AccountError> {
        if self.is_main() {
            return Err(AccountError::NotASubAccount(self.id));
        }
        Ok(())
    }

    /// The account whose data this one works on: itself for a main account, its main account
    /// for a sub-account (sub-accounts act on their main account's policies and libraries).
    pub fn owner(&self) -> AccountId {
        self.parent.unwrap_or(self.id)
    }

    pub fn permits(&self, operation: Operation) -> bool {
        self.access.permits(operation)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Disabled,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Disabled => "disabled",
        }
    }
}

/// An API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub secret_id: String,
    pub account: AccountId,
    pub status: KeyStatus,
    pub created_at: i64,
}

/// A secret key. Its `Debug` is redacted so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl SecretKey {
    pub fn new(value: String) -> Self {
        SecretKey(value)
    }

    /// The secret itself, for signing checks and the one-time display at creation.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A fresh key pair: `AKID` and 32 alphanumerics, and a 32-alphanumeric secret, the cloud's format.
pub fn generate_key_pair() -> (String, SecretKey) {
    let mut rng = rand::rng();
    let secret_id = format!("AKID{}", Alphanumeric.sample_string(&mut rng, 32));
    let secret_key = SecretKey(Alphanumeric.sample_string(&mut rng, 32));
    (secret_id, secret_key)
}

/// Whether a string has the shape of a SecretId at all (else `AuthFailure.InvalidSecretId`).
pub fn is_well_formed_secret_id(secret_id: &str) -> bool {
    (4..=128).contains(&secret_id.len())
        && secret_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What authenticating a request needs: the secret of an active key and its account.
#[derive(Debug, Clone)]
pub struct Credential {
    pub secret_key: SecretKey,
    pub account: Account,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("account {0} does not exist")]
    AccountNotFound(AccountId),
    #[error("key {0} does not exist")]
    KeyNotFound(String),
    #[error("account {0} is a sub-account; only a main account can have sub-accounts")]
    NotAMainAccount(AccountId),
    #[error("account {0} is a main account; grants apply to sub-accounts only")]
    NotASubAccount(AccountId),
    #[error("account {account} already has {MAX_ACTIVE_KEYS} active keys; disable or delete one first")]
    TooManyKeys { account: AccountId },
    #[error("account name must be 1 to 64 characters")]
    InvalidName,
    #[error("a rate limit must be at least 1 request per second")]
    InvalidLimit,
    #[error("storage: {0}")]
    Storage(String),
}

/// Where accounts and keys are kept. Implemented by the `store` crate (SQLite, PostgreSQL), and
/// checked for every backend by one conformance suite (`store::conformance`).
///
/// Concurrency contract: each method is one atomic change (or one consistent read); two calls
/// racing each other are as if one ran first. None is idempotent unless it says so: a retried
/// `create_*` creates twice.
pub trait AccountRepository: Send + Sync {
    /// A main account (`parent` none, full access) or a sub-account of a main one (no access
    /// until granted); the name is checked ([`validate_name`]).
    fn create_account(&self, name: &str, parent: Option<AccountId>) -> Result<Account, AccountError>;
    /// A main account, made only where there is none yet (the first start of a deployment);
    /// `None` where one exists. Of calls racing on an empty store (nodes starting together),
    /// exactly one makes it.
    fn create_first_account(&self, name: &str) -> Result<Option<Account>, AccountError>;
    fn account(&self, id: AccountId) -> Result<Account, AccountError>;
    /// Every account, by id.
    fn accounts(&self) -> Result<Vec<Account>, AccountError>;
    /// A sub-account's grant; refused for a main account. Idempotent.
    fn set_access(&self, id: AccountId, access: Access) -> Result<Account, AccountError>;
    /// Idempotent; the limits are checked ([`validate_limits`]).
    fn set_limits(&self, id: AccountId, limits: RateLimits) -> Result<Account, AccountError>;
    /// Creates an active key pair; refused when the account already has [`MAX_ACTIVE_KEYS`]
    /// active keys, also when several creations race (at most that many succeed).
    fn create_key(&self, account: AccountId) -> Result<(ApiKey, SecretKey), AccountError>;
    fn keys(&self, account: Option<AccountId>) -> Result<Vec<ApiKey>, AccountError>;
    /// Idempotent; enabling is refused past [`MAX_ACTIVE_KEYS`], as for `create_key`.
    fn set_key_status(&self, secret_id: &str, status: KeyStatus) -> Result<ApiKey, AccountError>;
    /// Refused with [`AccountError::KeyNotFound`] when already gone.
    fn delete_key(&self, secret_id: &str) -> Result<(), AccountError>;
    /// The secret and account of an active key, or `None` for an unknown or disabled one.
    fn credential(&self, secret_id: &str) -> Result<Option<Credential>, AccountError>;
}

/// Refused when `account`, with `active` active keys, may not have one more.
pub fn check_key_room(account: AccountId, active: usize) -> Result<(), AccountError> {
    if active >= MAX_ACTIVE_KEYS {
        return Err(AccountError::TooManyKeys { account });
    }
    Ok(())
}

pub fn validate_name(name: &str) -> Result<(), AccountError> {
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(AccountError::InvalidName);
    }
    Ok(())
}

pub fn validate_limits(limits: RateLimits) -> Result<(), AccountError> {
    if limits.sync_per_second == Some(0) || limits.async_per_second == Some(0) {
        return Err(AccountError::InvalidLimit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_accounts_keys_and_grants_follow_the_rules() {
        let main = Account {
            id: AccountId(1),
            name: "acme".into(),
            parent: None,
            access: Access::Full,
            limits: RateLimits::default(),
            created_at: 0,
        };
        let sub = Account { id: AccountId(2), parent: Some(main.id), access: Access::None, ..main.clone() };
        assert_eq!(Account::initial_access(None).unwrap(), Access::Full);
        assert_eq!(Account::initial_access(Some(&main)).unwrap(), Access::None);
        assert!(matches!(Account::initial_access(Some(&sub)), Err(AccountError::NotAMainAccount(AccountId(2)))));
        assert!(sub.check_grantable().is_ok());
        assert!(matches!(main.check_grantable(), Err(AccountError::NotASubAccount(_))));
        assert!(check_key_room(main.id, MAX_ACTIVE_KEYS - 1).is_ok());
        assert!(matches!(check_key_room(main.id, MAX_ACTIVE_KEYS), Err(AccountError::TooManyKeys { .. })));
    }

    #[test]
    fn grants() {
        assert!(Access::Full.permits(Operation::Write));
        assert!(Access::ReadOnly.permits(Operation::Read));
        assert!(!Access::ReadOnly.permits(Operation::Write));
        assert!(!Access::None.permits(Operation::Read));
        for a in [Access::None, Access::ReadOnly, Access::Full] {
            assert_eq!(Access::parse(a.as_str()), Some(a));
        }
    }

    #[test]
    fn generated_keys_have_the_cloud_shape() {
        let (id, key) = generate_key_pair();
        assert!(id.starts_with("AKID") && id.len() == 36 && is_well_formed_secret_id(&id));
        assert_eq!(key.expose().len(), 32);
        assert_ne!(generate_key_pair().0, id);
        assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
    }

    #[test]
    fn secret_id_shape() {
        assert!(!is_well_formed_secret_id(""));
        assert!(!is_well_formed_secret_id("AKID with space"));
        assert!(!is_well_formed_secret_id(&"A".repeat(129)));
    }

    #[test]
    fn names_and_limits() {
        assert!(validate_name("acme").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name(&"x".repeat(65)).is_err());
        assert!(validate_limits(RateLimits { sync_per_second: Some(0), async_per_second: None }).is_err());
        assert!(validate_limits(RateLimits::default()).is_ok());
    }
}
