//! The record of every moderation result (synchronous and asynchronous), per main account,
//! kept for a configurable number of days, with queries, statistics and corrections.

use crate::accounts::AccountId;
use crate::decision::{Label, Suggestion};
use crate::library::Hash256;

pub const SECONDS_PER_DAY: i64 = 86_400;

named_enum! {
    /// How a result was asked for.
    pub enum Origin {
        Sync = "sync",
        Async = "async",
    }
}

/// An operator's verdict on a result the machine got wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Correction {
    pub suggestion: Suggestion,
    pub label: Label,
    pub note: String,
    pub by: AccountId,
    pub at: i64,
}

/// One moderation result as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The `RequestId` of the call (or the task) that produced it.
    pub request_id: String,
    /// The main account that owns it.
    pub owner: AccountId,
    /// The key's account that asked (a sub-account or the main account).
    pub account: AccountId,
    pub created_at: i64,
    pub origin: Origin,
    pub biz_type: String,
    pub data_id: String,
    pub file_md5: String,
    pub file_url: String,
    /// The caller's `User.UserId` and `Device.DeviceId`, empty when not given.
    pub user_id: String,
    pub device_id: String,
    /// The caller's `User` and `Device` as sent (JSON), for risk review; empty when not given.
    pub context: String,
    pub suggestion: Suggestion,
    pub label: Label,
    pub sub_label: String,
    pub score: u8,
    /// Every label that reached Review or Block, for filtering.
    pub flagged: Vec<Label>,
    /// Text read in the image.
    pub text: String,
    /// What was matched: keywords, library samples (`lib:<ImageId>`).
    pub hits: Vec<String>,
    /// The answer as the caller received it (the fields of the response, JSON).
    pub response: String,
    /// A small JPEG of the image.
    pub thumbnail: Option<Vec<u8>>,
    /// The image's PDQ hashes, so a correction can add it to a library without the image.
    pub hashes: Vec<Hash256>,
    pub correction: Option<Correction>,
}

/// Which records a query wants; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Inclusive lower bound of `created_at`.
    pub from: Option<i64>,
    /// Exclusive upper bound of `created_at`.
    pub to: Option<i64>,
    pub biz_type: Option<String>,
    pub suggestion: Option<Suggestion>,
    /// Records whose verdict or flagged labels include this label.
    pub label: Option<Label>,
    pub data_id: Option<String>,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub corrected: Option<bool>,
}

/// Counts of verdicts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub pass: u64,
    pub review: u64,
    pub block: u64,
}

/// Statistics over the records a filter selects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub overview: Counts,
    /// Per UTC day (`YYYY-MM-DD`), oldest first.
    pub per_day: Vec<(String, Counts)>,
    /// Per label, the records it was flagged in (Review or Block), most first.
    pub per_label: Vec<(Label, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("no result `{0}`")]
    NotFound(String),
    #[error("invalid query: {0}")]
    Invalid(String),
    #[error("storage: {0}")]
    Storage(String),
}

/// Where moderation results are kept, per owner, for 30 days (the console and
/// `DescribeImsList` read them).
///
/// Concurrency contract: each method is one atomic change or read; a correction replaces the
/// one before it; `purge` may run beside writers and removes only what is older than its cutoff.
pub trait HistoryRepository: Send + Sync {
    fn record(&self, record: &Record) -> Result<(), HistoryError>;
    fn result(&self, owner: AccountId, request_id: &str) -> Result<Record, HistoryError>;
    /// A page (newest first) and the total the filter selects.
    fn results(
        &self,
        owner: AccountId,
        filter: &Filter,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Record>, u64), HistoryError>;
    fn stats(&self, owner: AccountId, filter: &Filter) -> Result<Stats, HistoryError>;
    fn correct(&self, owner: AccountId, request_id: &str, correction: &Correction) -> Result<(), HistoryError>;
    /// Deletes every record created before `before`; returns how many.
    fn purge(&self, before: i64) -> Result<u64, HistoryError>;
}

/// The oldest creation time kept at `now` when records live `days` days.
pub fn retention_cutoff(now: i64, days: u32) -> i64 {
    now - i64::from(days) * SECONDS_PER_DAY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_is_whole_days_back() {
        assert_eq!(retention_cutoff(100 * SECONDS_PER_DAY, 30), 70 * SECONDS_PER_DAY);
        assert_eq!(retention_cutoff(5, 0), 5);
    }
}
