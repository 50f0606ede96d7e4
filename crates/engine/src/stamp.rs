//! Ids and clocks. Every record any backend writes is stamped here, so the SQLite and the
//! PostgreSQL store agree on the formats, and the nodes of a cluster on time (to the accuracy
//! of their clock synchronisation: timestamps are the writing node's, not the database's).

/// Unix seconds now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A fresh unique id (a random UUID, the form the cloud uses for request, task and sample ids).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
