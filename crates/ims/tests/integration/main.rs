//! The integration tests: each starts the real `ims` binary and talks to it over real HTTP,
//! with the real Tencent Cloud SDKs (installed by `scripts/test.sh`), raw requests and the CLI.

mod accounts;
mod analysis;
mod batch;
mod billing;
mod browser;
mod cluster;
mod console;
mod envelope;
mod faces;
mod fetch;
mod harness;
mod history;
mod https;
mod images;
mod keywords;
mod libraries;
mod sdk_node;
mod sdk_python;
mod search;
mod shape;
#[path = "../../../../tests/support/shared.rs"]
mod shared;
mod tasks;
mod verdicts;
mod views;
