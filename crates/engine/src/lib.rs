//! The moderation core. It knows nothing of HTTP or of the database: the server calls it, the
//! store implements its repository traits.
//!
//! - [`accounts`]: main accounts, sub-accounts, their grants and API keys;
//! - [`ratelimit`]: the per-account request-rate limiter;
//! - [`decision`]: how findings become a Block / Review / Pass verdict.

pub mod accounts;
pub mod decision;
pub mod ratelimit;
