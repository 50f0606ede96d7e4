//! Asynchronous moderation tasks (`CreateImageModerationAsyncTask`): persisted before the call is
//! answered, moderated by a worker, then delivered to the customer's callback until it answers
//! 2xx or the delivery deadline passes.
//!
//! A task moves `Queued` -> `Running` -> `Delivering` -> `Delivered` (or `Failed` once the
//! deadline passed). Every node of a cluster takes work from the same store under a lease: a
//! worker claims a task for a while (`tasks.lease_secs`) and renews the lease while it works;
//! a node that dies stops renewing, and once the lease ends any node takes the task again, the
//! restarted node included. A delivery attempt is held the same way. A delivery is marked done
//! in the same instant its 2xx arrives, so after a crash only a delivery whose 2xx was in
//! flight can be repeated; receivers deduplicate by the task id.

use crate::accounts::AccountId;

named_enum! {
    pub enum TaskState {
        Queued = "queued",
        Running = "running",
        Delivering = "delivering",
        Delivered = "delivered",
        Failed = "failed",
    }
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The `RequestId` the creating call answered with.
    pub task_id: String,
    pub account: AccountId,
    /// The key that created it: deliveries are signed with its secret.
    pub secret_id: String,
    pub data_id: String,
    pub callback_url: String,
    /// The request's parameters (JSON); emptied once the result exists.
    pub request: String,
    pub state: TaskState,
    /// The callback body (JSON) once moderated.
    pub result: Option<String>,
    pub attempts: u32,
    /// In unix milliseconds (backoffs start at one second, so whole seconds would round them by
    /// up to half their length): while `Running`, when the worker's lease ends; while
    /// `Delivering`, when the next attempt is due, or when the lease of an attempt in flight ends.
    pub next_attempt_ms: i64,
    pub created_at: i64,
    pub last_error: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("no task `{0}`")]
    NotFound(String),
    #[error("storage: {0}")]
    Storage(String),
}

/// Where asynchronous tasks are kept, from the call that queued them to their last delivery.
///
/// Concurrency contract: each method is one atomic change or read; `claim` and `claim_due`
/// hand each task to exactly one of any number of racing claimers (on any node) until the
/// lease they set ends; `enqueue` refuses a task id it has.
pub trait TaskRepository: Send + Sync {
    /// Stores a new `Queued` task; the call is answered only after this returned.
    fn enqueue(&self, task: &Task) -> Result<(), TaskError>;
    /// Takes the oldest task to moderate, queued or `Running` under a lease that ended by
    /// `now_ms` (its worker died), and marks it `Running` under a lease until
    /// `now_ms + lease_ms`.
    fn claim(&self, now_ms: i64, lease_ms: i64) -> Result<Option<Task>, TaskError>;
    /// Extends the lease of a running task to `until_ms`: its worker is still at it.
    fn renew(&self, task_id: &str, until_ms: i64) -> Result<(), TaskError>;
    /// Stores the result of a running task and makes it due for delivery at `now_ms`; refused
    /// once the task is no longer `Running` (another worker finished it after a lease ended).
    fn moderated(&self, task_id: &str, result: &str, now_ms: i64) -> Result<(), TaskError>;
    /// Takes up to `limit` delivering tasks due at `now_ms`, oldest first, and holds them for
    /// one attempt until `now_ms + lease_ms`.
    fn claim_due(&self, now_ms: i64, limit: u32, lease_ms: i64) -> Result<Vec<Task>, TaskError>;
    /// A delivery was answered 2xx at `now` (unix seconds).
    fn delivered(&self, task_id: &str, now: i64) -> Result<(), TaskError>;
    /// A delivery failed: retry at `next_attempt_ms`, or give up when that is `None`.
    fn delivery_failed(&self, task_id: &str, error: &str, next_attempt_ms: Option<i64>) -> Result<(), TaskError>;
    fn task(&self, task_id: &str) -> Result<Task, TaskError>;
    /// How many tasks are in each unfinished state (queued, running, delivering).
    fn backlog(&self) -> Result<(u64, u64, u64), TaskError>;
}

/// When attempt `attempts + 1` of a delivery is due (unix ms) after a failure at `now_ms`:
/// 1 s, 2 s, 4 s... capped at `max_backoff_secs`, or `None` when that would be past
/// `deadline_ms`.
pub fn next_attempt(now_ms: i64, attempts: u32, max_backoff_secs: i64, deadline_ms: i64) -> Option<i64> {
    let backoff_secs = 1i64.checked_shl(attempts.min(30)).unwrap_or(i64::MAX).min(max_backoff_secs.max(1));
    let next = now_ms.saturating_add(backoff_secs.saturating_mul(1000));
    (next <= deadline_ms).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stops_at_the_deadline() {
        assert_eq!(next_attempt(100_250, 0, 300, 10_000_000), Some(101_250));
        assert_eq!(next_attempt(100_250, 1, 300, 10_000_000), Some(102_250));
        assert_eq!(next_attempt(100_250, 5, 300, 10_000_000), Some(132_250));
        assert_eq!(next_attempt(100_250, 20, 300, 10_000_000), Some(400_250));
        assert_eq!(next_attempt(100_250, 63, 300, 10_000_000), Some(400_250));
        assert_eq!(next_attempt(100_250, 3, 300, 108_249), None);
        assert_eq!(next_attempt(100_250, 3, 300, 108_250), Some(108_250));
    }

    #[test]
    fn states_round_trip() {
        for s in ["queued", "running", "delivering", "delivered", "failed"] {
            assert_eq!(TaskState::parse(s).unwrap().as_str(), s);
        }
        assert!(TaskState::parse("x").is_none());
    }
}
