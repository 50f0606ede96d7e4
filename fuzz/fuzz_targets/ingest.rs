//! Fuzzes ingestion as the server runs it on `FileContent`: header checks, then decoding of
//! the sampled frames. Any panic that escapes `media::decode`, any crash in a C decoder, and any
//! allocation beyond libFuzzer's limit is a finding. Run: see docs/benchmarks.md ("Fuzzing").
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = media::decode(data, media::Sampling::default());
});
