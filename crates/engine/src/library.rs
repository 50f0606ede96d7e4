//! Image libraries (the cloud's black and white sample libraries) and how an image is matched
//! against them.
//!
//! A library belongs to a main account, carries a label and an action: `Allow` (a match overrides
//! the models and passes the image) or `Block` (a match blocks it with the library's label).
//! Samples are kept as PDQ perceptual hashes (256 bits); an image matches a sample when one of its
//! hashes is within [`MATCH_DISTANCE`] bits of one of the sample's. Hashes below
//! [`MIN_QUALITY`] (flat, featureless images) are not used: they match too much.
//!
//! [`HashIndex`] finds the hashes within a distance without scanning them all (multi-index
//! hashing); [`Matcher`] keeps one in memory, in step with the repository, which may be
//! changed by another process (the CLI): it reads only what changed since its last look.

use crate::accounts::AccountId;
use crate::decision::Label;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::RwLock;

/// Largest Hamming distance between two PDQ hashes of the same picture (Meta's recommendation).
pub const MATCH_DISTANCE: u32 = 31;
/// PDQ quality (0-100) under which a hash is discarded.
pub const MIN_QUALITY: u8 = 50;

/// A 256-bit PDQ hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hash256(pub [u64; 4]);

impl Hash256 {
    pub fn from_bytes(bytes: &[u8; 32]) -> Hash256 {
        Hash256(std::array::from_fn(|i| u64::from_be_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"))))
    }

    pub fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, word) in self.0.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    pub fn to_hex(self) -> String {
        self.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn distance(&self, other: &Hash256) -> u32 {
        self.0.iter().zip(&other.0).map(|(a, b)| (a ^ b).count_ones()).sum()
    }

    /// The `i`-th 16-bit chunk (0..16).
    fn chunk(&self, i: usize) -> u16 {
        (self.0[i / 4] >> ((i % 4) * 16)) as u16
    }
}

/// Packs hashes as stored: 32 bytes each.
pub fn pack_hashes(hashes: &[Hash256]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.to_bytes()).collect()
}

/// The inverse of [`pack_hashes`]; a trailing partial hash is ignored.
pub fn unpack_hashes(bytes: &[u8]) -> Vec<Hash256> {
    bytes.chunks_exact(32).map(|c| Hash256::from_bytes(c.try_into().expect("32 bytes"))).collect()
}

const CHUNKS: usize = 16;

/// The chunks are already uniformly distributed bits: they are their own hash.
#[derive(Default, Clone, Copy)]
struct ChunkHasher(u64);

impl std::hash::Hasher for ChunkHasher {
    fn finish(&self) -> u64 {
        // Spread the 16 bits over the word: hashbrown takes its control bits from the top.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u16(&mut self, n: u16) {
        self.0 = u64::from(n);
    }
}

type ChunkTable = HashMap<u16, Vec<u32>, std::hash::BuildHasherDefault<ChunkHasher>>;

/// Multi-index hashing: each hash is filed under each of its 16 chunks of 16 bits. Two hashes
/// within 31 bits differ by at most 1 bit in at least one chunk (pigeonhole: 16 chunks with 2 or
/// more each would make 32), so a search looks up each chunk and its 16 one-bit neighbours
/// (272 buckets) and checks only the hashes found there. Slots of removed hashes are reused.
pub struct HashIndex {
    hashes: Vec<Hash256>,
    keys: Vec<Option<u64>>,
    tables: Vec<ChunkTable>,
    free: Vec<u32>,
}

impl Default for HashIndex {
    /// An empty index with its 16 tables (a derived default would have none and file nothing).
    fn default() -> Self {
        HashIndex::new()
    }
}

impl HashIndex {
    pub fn new() -> HashIndex {
        HashIndex {
            hashes: Vec::new(),
            keys: Vec::new(),
            tables: (0..CHUNKS).map(|_| ChunkTable::default()).collect(),
            free: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.hashes.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Files `hash` for `key`; returns its slot, for [`HashIndex::remove`].
    pub fn insert(&mut self, hash: Hash256, key: u64) -> u32 {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.hashes[slot as usize] = hash;
                self.keys[slot as usize] = Some(key);
                slot
            }
            None => {
                self.hashes.push(hash);
                self.keys.push(Some(key));
                (self.hashes.len() - 1) as u32
            }
        };
        for (i, table) in self.tables.iter_mut().enumerate() {
            table.entry(hash.chunk(i)).or_default().push(slot);
        }
        slot
    }

    pub fn remove(&mut self, slot: u32) {
        if self.keys.get(slot as usize).copied().flatten().is_none() {
            return;
        }
        let hash = self.hashes[slot as usize];
        for (i, table) in self.tables.iter_mut().enumerate() {
            if let Some(bucket) = table.get_mut(&hash.chunk(i)) {
                bucket.retain(|s| *s != slot);
            }
        }
        self.keys[slot as usize] = None;
        self.free.push(slot);
    }

    /// Every filed (key, distance) within `max_distance` (at most 31) of `query`, each key once
    /// with its smallest distance.
    pub fn search(&self, query: &Hash256, max_distance: u32) -> Vec<(u64, u32)> {
        debug_assert!(max_distance < 2 * CHUNKS as u32);
        // A hash found through several chunks is checked again each time: four popcounts cost
        // less than remembering what was seen.
        let mut found: Vec<(u64, u32)> = Vec::new();
        for (i, table) in self.tables.iter().enumerate() {
            let chunk = query.chunk(i);
            let probes = std::iter::once(chunk).chain((0..16).map(|bit| chunk ^ (1 << bit)));
            for probe in probes {
                for &slot in table.get(&probe).into_iter().flatten() {
                    let distance = self.hashes[slot as usize].distance(query);
                    if distance <= max_distance {
                        if let Some(key) = self.keys[slot as usize] {
                            found.push((key, distance));
                        }
                    }
                }
            }
        }
        found.sort_unstable();
        found.dedup_by_key(|(key, _)| *key);
        found
    }
}

named_enum! {
    /// What a library does with a match.
    pub enum LibAction {
        /// A white library: a match passes the image whatever the models say.
        Allow = "Allow",
        /// A black library: a match blocks the image with the library's label.
        Block = "Block",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageLibrary {
    pub lib_id: String,
    #[serde(skip)]
    pub owner: AccountId,
    pub lib_name: String,
    pub label: Label,
    pub action: LibAction,
    pub created_at: i64,
}

impl ImageLibrary {
    /// A new library, checked (name of 1-64 characters, not only spaces), with a fresh id,
    /// made now: what a store then keeps.
    pub fn new(owner: AccountId, name: &str, label: Label, action: LibAction) -> Result<Self, LibraryError> {
        if name.trim().is_empty() || name.chars().count() > 64 {
            return Err(LibraryError::Invalid("LibName must be 1 to 64 characters".into()));
        }
        let (lib_id, created_at) = (crate::stamp::new_id(), crate::stamp::now());
        Ok(ImageLibrary { lib_id, owner, lib_name: name.into(), label, action, created_at })
    }
}

/// One sample image of a library, as its hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The store's row number: increases with every sample added.
    pub seq: i64,
    pub image_id: String,
    pub lib_id: String,
    pub name: String,
    pub hashes: Vec<Hash256>,
    pub created_at: i64,
}

impl Sample {
    /// A new sample, checked (a name of at most 256 characters, at least one hash), with a
    /// fresh id, made now; its `seq` is 0 until a store keeps it.
    pub fn new(lib_id: &str, name: &str, hashes: &[Hash256]) -> Result<Sample, LibraryError> {
        if name.chars().count() > 256 {
            return Err(LibraryError::Invalid("a sample name has at most 256 characters".into()));
        }
        if hashes.is_empty() {
            return Err(LibraryError::Invalid("the image has no usable hash (too flat or too small)".into()));
        }
        Ok(Sample {
            seq: 0,
            image_id: crate::stamp::new_id(),
            lib_id: lib_id.into(),
            name: name.into(),
            hashes: hashes.to_vec(),
            created_at: crate::stamp::now(),
        })
    }
}

/// What changed in the libraries since a cursor.
#[derive(Debug, Default)]
pub struct LibraryChanges {
    /// Every library, when samples were added or removed (a library's name, label and action
    /// never change, and one without samples matches nothing); empty otherwise.
    pub libraries: Vec<ImageLibrary>,
    pub added: Vec<Sample>,
    pub removed: Vec<i64>,
    pub cursor: LibraryCursor,
}

/// How far a reader has followed the libraries: the last sample added, the last removal seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LibraryCursor {
    pub sample_seq: i64,
    pub removal_seq: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("invalid library: {0}")]
    Invalid(String),
    #[error("a library named `{0}` already exists")]
    Exists(String),
    #[error("no library `{0}`")]
    NotFound(String),
    #[error("no sample `{0}`")]
    SampleNotFound(String),
    #[error("storage: {0}")]
    Storage(String),
}

/// Where image libraries and their samples' hashes are kept, per owner.
///
/// Concurrency contract: each method is one atomic change or read; of two creations of one
/// library name racing, one succeeds; every change is visible to the next refresh of a
/// [`Matcher`] reading from any store.
pub trait LibraryRepository: Send + Sync {
    fn create_library(
        &self,
        owner: AccountId,
        name: &str,
        label: Label,
        action: LibAction,
    ) -> Result<ImageLibrary, LibraryError>;
    fn libraries(&self, owner: AccountId) -> Result<Vec<ImageLibrary>, LibraryError>;
    fn library(&self, owner: AccountId, lib_id: &str) -> Result<ImageLibrary, LibraryError>;
    /// Deletes the library and its samples.
    fn delete_library(&self, owner: AccountId, lib_id: &str) -> Result<(), LibraryError>;
    fn add_sample(
        &self,
        owner: AccountId,
        lib_id: &str,
        name: &str,
        hashes: &[Hash256],
    ) -> Result<Sample, LibraryError>;
    /// A page of a library's samples and their total.
    fn samples(
        &self,
        owner: AccountId,
        lib_id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Sample>, u64), LibraryError>;
    fn delete_sample(&self, owner: AccountId, image_id: &str) -> Result<(), LibraryError>;
    /// Everything added or removed after `cursor`, with every library when there is any
    /// (they are few): matching reads this on every request, so nothing else is read.
    fn changes(&self, cursor: LibraryCursor) -> Result<LibraryChanges, LibraryError>;
}

/// A sample an image matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LibraryMatch {
    pub library: ImageLibrary,
    pub image_id: String,
    pub sample_name: String,
    pub distance: u32,
}

impl LibraryMatch {
    /// Similarity as an API score: 100 for identical hashes, 0 at half the bits apart.
    pub fn score(&self) -> u8 {
        (100 - (self.distance.min(128) * 100 / 128)) as u8
    }
}

/// Rows of a store filed in a [`HashIndex`] under their hashes, by their row number (`seq`),
/// so that a reader following the store's changes can add and remove them: the image
/// libraries' [`Matcher`] and image search's groups (`search::GroupIndex`) keep one.
pub struct Filed<T> {
    index: HashIndex,
    entries: HashMap<i64, (T, Vec<u32>)>,
}

impl<T> Default for Filed<T> {
    fn default() -> Self {
        Filed { index: HashIndex::default(), entries: HashMap::new() }
    }
}

impl<T> Filed<T> {
    /// How many hashes are filed.
    pub fn hashes(&self) -> usize {
        self.index.len()
    }

    /// Files `entry` under `hashes`, unless row `seq` is filed already (a change read twice).
    pub fn insert(&mut self, seq: i64, hashes: &[Hash256], entry: T) {
        if self.entries.contains_key(&seq) {
            return;
        }
        let slots = hashes.iter().map(|h| self.index.insert(*h, seq as u64)).collect();
        self.entries.insert(seq, (entry, slots));
    }

    pub fn remove(&mut self, seq: i64) {
        if let Some((_, slots)) = self.entries.remove(&seq) {
            for slot in slots {
                self.index.remove(slot);
            }
        }
    }

    pub fn get(&self, seq: i64) -> Option<&T> {
        self.entries.get(&seq).map(|(entry, _)| entry)
    }

    /// Each row with a hash within `max_distance` (at most 31) of one of `hashes`, with its
    /// smallest distance.
    pub fn nearest(&self, hashes: &[Hash256], max_distance: u32) -> HashMap<i64, u32> {
        let mut best: HashMap<i64, u32> = HashMap::new();
        for hash in hashes {
            for (key, distance) in self.index.search(hash, max_distance) {
                let entry = best.entry(key as i64).or_insert(distance);
                *entry = (*entry).min(distance);
            }
        }
        best
    }
}

#[derive(Default)]
struct MatcherState {
    samples: Filed<Sample>,
    libraries: HashMap<String, ImageLibrary>,
    cursor: LibraryCursor,
}

/// The in-memory index of every library's samples, refreshed from the repository.
#[derive(Default)]
pub struct Matcher {
    state: RwLock<MatcherState>,
}

impl Matcher {
    pub fn new() -> Matcher {
        Matcher::default()
    }

    pub fn len(&self) -> usize {
        self.state.read().expect("matcher lock").samples.hashes()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies what changed since the last refresh (cheap when nothing did: two range reads).
    pub fn refresh(&self, repository: &dyn LibraryRepository) -> Result<(), LibraryError> {
        let cursor = self.state.read().expect("matcher lock").cursor;
        let changes = repository.changes(cursor)?;
        if changes.cursor == cursor && changes.added.is_empty() && changes.removed.is_empty() {
            return Ok(());
        }
        let mut state = self.state.write().expect("matcher lock");
        state.libraries = changes.libraries.into_iter().map(|l| (l.lib_id.clone(), l)).collect();
        for seq in changes.removed {
            state.samples.remove(seq);
        }
        for sample in changes.added {
            let hashes = sample.hashes.clone();
            state.samples.insert(sample.seq, &hashes, sample);
        }
        state.cursor = changes.cursor;
        Ok(())
    }

    /// Whether any library of the owner applies (of those `only` names, when given): the
    /// `Similar` scene is only reported where a library was looked at.
    pub fn applies(&self, owner: AccountId, only: Option<&[String]>) -> bool {
        let state = self.state.read().expect("matcher lock");
        state.libraries.values().any(|l| l.owner == owner && only.is_none_or(|ids| ids.contains(&l.lib_id)))
    }

    /// The owner's samples within [`MATCH_DISTANCE`] of any of `hashes`, in the libraries
    /// `only` names (all of the owner's when `None`), closest first, one per sample.
    pub fn find(&self, owner: AccountId, only: Option<&[String]>, hashes: &[Hash256]) -> Vec<LibraryMatch> {
        let state = self.state.read().expect("matcher lock");
        let best = state.samples.nearest(hashes, MATCH_DISTANCE);
        let mut matches: Vec<LibraryMatch> = best
            .into_iter()
            .filter_map(|(seq, distance)| {
                let sample = state.samples.get(seq)?;
                let library = state.libraries.get(&sample.lib_id)?;
                let linked = only.is_none_or(|ids| ids.contains(&library.lib_id));
                (library.owner == owner && linked).then(|| LibraryMatch {
                    library: library.clone(),
                    image_id: sample.image_id.clone(),
                    sample_name: sample.name.clone(),
                    distance,
                })
            })
            .collect();
        matches.sort_by(|a, b| a.distance.cmp(&b.distance).then_with(|| a.image_id.cmp(&b.image_id)));
        matches
    }
}

/// The library verdict: the closest match decides; at equal distance a block library wins.
pub fn deciding_match(matches: &[LibraryMatch]) -> Option<&LibraryMatch> {
    matches.iter().min_by_key(|m| (m.distance, m.library.action == LibAction::Allow))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn random_hash(rng: &mut impl Rng) -> Hash256 {
        Hash256(std::array::from_fn(|_| rng.random()))
    }

    fn flip_bits(hash: Hash256, bits: &[usize]) -> Hash256 {
        let mut words = hash.0;
        for &bit in bits {
            words[bit / 64] ^= 1 << (bit % 64);
        }
        Hash256(words)
    }

    #[test]
    fn bytes_round_trip() {
        let mut rng = rand::rng();
        let hash = random_hash(&mut rng);
        assert_eq!(Hash256::from_bytes(&hash.to_bytes()), hash);
        assert_eq!(unpack_hashes(&pack_hashes(&[hash, hash])), vec![hash, hash]);
    }

    #[test]
    fn index_finds_exactly_the_hashes_within_the_distance() {
        let mut rng = rand::rng();
        let mut index = HashIndex::new();
        let base: Vec<Hash256> = (0..2000).map(|_| random_hash(&mut rng)).collect();
        for (i, h) in base.iter().enumerate() {
            index.insert(*h, i as u64);
        }
        for (i, h) in base.iter().enumerate().take(200) {
            // 31 bits apart, spread so that every chunk but one has 2 flipped bits.
            let bits: Vec<usize> = (0..256).step_by(8).take(31).map(|b| (b + i) % 256).collect();
            let near = flip_bits(*h, &bits);
            assert_eq!(near.distance(h), 31);
            let found = index.search(&near, MATCH_DISTANCE);
            assert!(found.contains(&(i as u64, 31)), "{i}: {found:?}");
            let far = flip_bits(*h, &(0..32).map(|b| b * 8).collect::<Vec<_>>());
            assert!(!index.search(&far, MATCH_DISTANCE).iter().any(|(k, _)| *k == i as u64));
        }
    }

    #[test]
    fn removed_hashes_are_not_found_and_slots_are_reused() {
        let mut rng = rand::rng();
        let mut index = HashIndex::new();
        let a = random_hash(&mut rng);
        let slot = index.insert(a, 7);
        assert_eq!(index.search(&a, 0), vec![(7, 0)]);
        index.remove(slot);
        assert!(index.search(&a, 31).is_empty());
        assert_eq!(index.insert(random_hash(&mut rng), 8), slot);
        assert_eq!(index.len(), 1);
    }

    fn library(id: &str, owner: i64, action: LibAction) -> ImageLibrary {
        ImageLibrary {
            lib_id: id.into(),
            owner: AccountId(owner),
            lib_name: id.into(),
            label: Label::Porn,
            action,
            created_at: 0,
        }
    }

    #[test]
    fn new_libraries_and_samples_are_checked() {
        let new = |name: &str| ImageLibrary::new(AccountId(1), name, Label::Porn, LibAction::Block);
        assert!(new(&"n".repeat(64)).is_ok());
        assert!(new(&"n".repeat(65)).is_err() && new("  ").is_err());
        let hash = Hash256::from_bytes(&[7; 32]);
        let (a, b) = (Sample::new("lib", &"s".repeat(256), &[hash]).unwrap(), Sample::new("lib", "", &[hash]).unwrap());
        assert_ne!(a.image_id, b.image_id);
        assert!(Sample::new("lib", &"s".repeat(257), &[hash]).is_err());
        assert!(Sample::new("lib", "flat", &[]).is_err());
    }

    #[test]
    fn closest_match_decides_and_block_wins_ties() {
        let m = |action, distance| LibraryMatch {
            library: library("l", 1, action),
            image_id: String::new(),
            sample_name: String::new(),
            distance,
        };
        let matches = [m(LibAction::Allow, 3), m(LibAction::Block, 3), m(LibAction::Allow, 1)];
        assert_eq!(deciding_match(&matches).unwrap().distance, 1);
        assert_eq!(deciding_match(&matches[..2]).unwrap().library.action, LibAction::Block);
        assert_eq!(m(LibAction::Block, 0).score(), 100);
        assert_eq!(m(LibAction::Block, 31).score(), 76);
    }
}
