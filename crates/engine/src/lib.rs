//! The moderation core. It knows nothing of HTTP or of the database: the server calls it, the
//! store implements its repository traits.
//!
//! - [`accounts`]: main accounts, sub-accounts, their grants and API keys;
//! - [`billing`]: metering, price lists, packages, balances, settlement and arrears;
//! - [`ratelimit`]: the per-account request-rate limiter;
//! - [`evidence`]: what the models saw in a frame;
//! - [`policy`]: policies (`BizType`) and how the models' votes become findings;
//! - [`decision`]: how findings become a Block / Review / Pass verdict;
//! - [`verdict`]: the one composition rule: frames, text, codes and library matches under a
//!   policy become the answer, its scenes and its explanation;
//! - [`library`]: image libraries and matching by perceptual hash;
//! - [`search`]: image search's groups of pictures, found again by perceptual hash;
//! - [`objects`]: the object detector's classes, their names and categories, tags and vehicles;
//! - [`keywords`]: keyword libraries and matching that sees through evasions;
//! - [`ads`]: links, phone numbers, contact handles and QR codes as ads;
//! - [`console`]: the console's sessions, passwords and sign-in throttle;
//! - [`history`]: the record of every result, its queries and corrections;
//! - [`task`]: asynchronous tasks and their callback deliveries;
//! - [`stamp`]: ids and clocks, the same for every store.

// First: the modules below define their named enums with its macro.
#[macro_use]
mod named;

pub mod accounts;
pub mod ads;
pub mod billing;
pub mod console;
pub mod decision;
pub mod evidence;
pub mod faces;
pub mod history;
pub mod keywords;
pub mod library;
pub mod objects;
pub mod policy;
pub mod ratelimit;
pub mod search;
pub mod stamp;
pub mod task;
pub mod verdict;
