//! The wire contract of the `ims` API 3.0: everything a client sees, and nothing about how a
//! verdict is made.
//!
//! - [`error`]: the one table of API error codes and their messages in both languages;
//! - [`sign`]: TC3-HMAC-SHA256 and the legacy HmacSHA1/HmacSHA256 signatures;
//! - [`schema`]: the vendored tccli definitions, used to validate and type request parameters;
//! - [`wire`]: the request and response types of each action and version.

pub mod error;
pub mod schema;
pub mod sign;
pub mod wire;

pub use error::{ApiError, Code, Lang};
