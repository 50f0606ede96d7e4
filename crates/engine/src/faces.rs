//! Face libraries: people to block, review or allow, recognised by their faces.
//!
//! A library belongs to a main account and carries a label (`Polity` for public figures: the
//! `PolityFace` scene; any other: `FaceLib`), an action and a match distance. A person is a
//! name in a library with one or more photos; each photo is kept only as the descriptor the
//! face embedder made of it (never the photo), sealed at rest by the store, with the id of the
//! model that made it. Matching compares each face found in an image with each person's
//! *centroid* (the mean of their photos' descriptors of the current model): one vector of 128
//! values a person, so that 100,000 people take 51 MB and a face is compared with all of them
//! in milliseconds ([`FaceMatcher`]). A face matches a person within the library's distance
//! (dlib's 0.6 by default; measured in docs/benchmarks.md); its closest match decides: a block
//! library blocks the image, a review library sends it to review, an allow library clears that
//! face of the other libraries' matches (the models still judge the image).

use crate::accounts::AccountId;
use crate::decision::{Finding, Label, Suggestion};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::RwLock;

/// The length of a descriptor.
pub const DESCRIPTOR_LEN: usize = 128;
/// dlib's own threshold: faces closer than this are one person.
pub const DEFAULT_MATCH_DISTANCE: f32 = 0.6;

named_enum! {
    /// What a face library does with a face it recognises.
    pub enum FaceAction {
        /// The image is blocked with the library's label, the person's name as sub-label.
        Block = "Block",
        /// The image goes to a person with the library's label.
        Review = "Review",
        /// The face is cleared of other libraries' matches.
        Allow = "Allow",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceLibrary {
    pub lib_id: String,
    #[serde(skip)]
    pub owner: AccountId,
    pub lib_name: String,
    pub label: Label,
    pub action: FaceAction,
    /// The largest distance at which a face is this library's person.
    pub max_distance: f32,
    pub created_at: i64,
}

impl FaceLibrary {
    /// A new library, checked (a name of 1-64 characters, not only spaces; a distance in
    /// (0, 2)), with a fresh id, made now.
    pub fn new(
        owner: AccountId,
        name: &str,
        label: Label,
        action: FaceAction,
        max_distance: Option<f32>,
    ) -> Result<FaceLibrary, FaceError> {
        if name.trim().is_empty() || name.chars().count() > 64 {
            return Err(FaceError::Invalid("LibName must be 1 to 64 characters".into()));
        }
        let max_distance = max_distance.unwrap_or(DEFAULT_MATCH_DISTANCE);
        if !(max_distance > 0.0 && max_distance < 2.0) {
            return Err(FaceError::Invalid("MaxDistance must be above 0 and below 2".into()));
        }
        Ok(FaceLibrary {
            lib_id: crate::stamp::new_id(),
            owner,
            lib_name: name.into(),
            label,
            action,
            max_distance,
            created_at: crate::stamp::now(),
        })
    }

    /// The object scene its matches are answered in.
    pub fn scene(&self) -> &'static str {
        if self.label == Label::Polity {
            "PolityFace"
        } else {
            "FaceLib"
        }
    }
}

/// A person's name: 1-128 characters, not only spaces.
pub fn check_person_name(name: &str) -> Result<(), FaceError> {
    if name.trim().is_empty() || name.chars().count() > 128 {
        return Err(FaceError::Invalid("Name must be 1 to 128 characters".into()));
    }
    Ok(())
}

/// Checks a descriptor before it is stored: the embedder's length, finite values.
pub fn check_descriptor(descriptor: &[f32]) -> Result<(), FaceError> {
    if descriptor.len() != DESCRIPTOR_LEN || !descriptor.iter().all(|v| v.is_finite()) {
        return Err(FaceError::Invalid(format!("a face descriptor has {DESCRIPTOR_LEN} finite values")));
    }
    Ok(())
}

/// The mean of descriptors (of one model).
pub fn centroid(descriptors: &[Vec<f32>]) -> Vec<f32> {
    let mut sum = vec![0f32; DESCRIPTOR_LEN];
    for d in descriptors {
        for (s, v) in sum.iter_mut().zip(d) {
            *s += v;
        }
    }
    let n = descriptors.len().max(1) as f32;
    sum.iter().map(|s| s / n).collect()
}

/// The squared Euclidean distance of two descriptors, in eight lanes the compiler vectorises.
fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for k in 0..8 {
            let d = x[k] - y[k];
            lanes[k] += d * d;
        }
    }
    lanes.iter().sum()
}

/// Descriptors as stored (before sealing): little-endian floats.
pub fn pack_descriptor(descriptor: &[f32]) -> Vec<u8> {
    descriptor.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn unpack_descriptor(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// A person as the index keeps them.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// The store's row number (stable for the person's life).
    pub key: i64,
    pub person_id: String,
    pub lib_id: String,
    pub name: String,
    /// The model of the photos the centroid is made of (the latest enrolment's).
    pub model: String,
    pub centroid: Vec<f32>,
}

/// One enrolled photo, as the API shows it: no descriptor.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceSample {
    pub sample_id: String,
    pub person_id: String,
    pub lib_id: String,
    /// The person's name.
    pub name: String,
    /// The model that made its descriptor.
    pub model: String,
    pub created_at: i64,
}

impl FaceSample {
    /// A new photo of the person, with a fresh id, made now: what a store then keeps.
    pub fn new(person_id: &str, lib_id: &str, name: &str, model: &str) -> FaceSample {
        FaceSample {
            sample_id: crate::stamp::new_id(),
            person_id: person_id.into(),
            lib_id: lib_id.into(),
            name: name.into(),
            model: model.into(),
            created_at: crate::stamp::now(),
        }
    }
}

/// A library's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaceCounts {
    pub people: u64,
    pub photos: u64,
}

/// How far a reader has followed the people: the last version seen, the last removal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaceCursor {
    pub version: i64,
    pub removal_seq: i64,
}

/// What changed since a cursor. Creating or deleting a library is a change too (a library
/// applies before it has people).
#[derive(Debug, Default)]
pub struct FaceChanges {
    /// Every library, when anything changed; empty otherwise.
    pub libraries: Vec<FaceLibrary>,
    /// People added or changed (new photos, photos removed).
    pub people: Vec<Person>,
    /// Keys of people removed.
    pub removed: Vec<i64>,
    pub cursor: FaceCursor,
}

#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    #[error("invalid face library request: {0}")]
    Invalid(String),
    #[error("a face library named `{0}` already exists")]
    Exists(String),
    #[error("no face library `{0}`")]
    NotFound(String),
    #[error("no person `{0}`")]
    PersonNotFound(String),
    #[error("no face sample `{0}`")]
    SampleNotFound(String),
    #[error("storage: {0}")]
    Storage(String),
}

/// Where face libraries, their people and the photos' descriptors are kept, per owner. The
/// descriptors are biometric data: a store seals them at rest and never returns them but as a
/// person's centroid to the index ([`FaceRepository::face_changes`]).
///
/// Concurrency contract: each method is one atomic change or read; of two creations of one
/// library name racing, one succeeds; two enrolments of one new name racing make one person;
/// every change is visible to the next refresh of a [`FaceMatcher`] reading from any store.
pub trait FaceRepository: Send + Sync {
    fn create_face_library(&self, library: &FaceLibrary) -> Result<(), FaceError>;
    fn face_libraries(&self, owner: AccountId) -> Result<Vec<(FaceLibrary, FaceCounts)>, FaceError>;
    fn face_library(&self, owner: AccountId, lib_id: &str) -> Result<FaceLibrary, FaceError>;
    /// Deletes the library, its people and their descriptors.
    fn delete_face_library(&self, owner: AccountId, lib_id: &str) -> Result<(), FaceError>;
    /// Adds photos (their descriptors, made by `model`) to the person `name` of the library,
    /// who is created when new; the person's centroid is made again from their photos of
    /// `model`. Returns the person's id and the new samples.
    fn enrol(
        &self,
        owner: AccountId,
        lib_id: &str,
        name: &str,
        model: &str,
        descriptors: &[Vec<f32>],
    ) -> Result<(String, Vec<FaceSample>), FaceError>;
    /// A page of a library's photos (of one person when `person_id` is given), oldest first,
    /// and their total.
    fn face_samples(
        &self,
        owner: AccountId,
        lib_id: &str,
        person_id: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<FaceSample>, u64), FaceError>;
    /// Removes a photo; a person left without photos is removed with it.
    fn delete_face_sample(&self, owner: AccountId, sample_id: &str) -> Result<(), FaceError>;
    /// Removes a person and every photo of theirs.
    fn delete_person(&self, owner: AccountId, person_id: &str) -> Result<(), FaceError>;
    fn face_changes(&self, cursor: FaceCursor) -> Result<FaceChanges, FaceError>;
}

/// A face of the image recognised as a library's person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceMatch {
    /// The face's index among the faces found (`ObjectId`).
    pub face: usize,
    pub library: FaceLibrary,
    pub person_id: String,
    pub name: String,
    pub distance: f32,
}

impl FaceMatch {
    /// Similarity as an API score: 100 at distance 0, 50 at the library's distance.
    pub fn score(&self) -> u8 {
        (100.0 - 50.0 * self.distance / self.library.max_distance).round().clamp(0.0, 100.0) as u8
    }

    /// What the match makes of the image; `None` for an allow library's.
    pub fn finding(&self) -> Option<Finding> {
        let suggestion = match self.library.action {
            FaceAction::Block => Suggestion::Block,
            FaceAction::Review => Suggestion::Review,
            FaceAction::Allow => return None,
        };
        Some(Finding { label: self.library.label, sub_label: self.name.clone(), score: self.score(), suggestion })
    }
}

/// Where face libraries were looked at: which scenes apply, and what matched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaceLookup {
    /// A library labelled `Polity` applied (the `PolityFace` scene).
    pub polity: bool,
    /// A library of another label applied (the `FaceLib` scene).
    pub other: bool,
    /// Each face's matches, the closest first per face.
    pub matches: Vec<FaceMatch>,
}

impl FaceLookup {
    /// The match that decides each face: its closest; at equal distance block, then review,
    /// then allow. A face whose deciding match is an allow library's has no other.
    pub fn deciding(&self) -> Vec<&FaceMatch> {
        let rank = |a: FaceAction| match a {
            FaceAction::Block => 0,
            FaceAction::Review => 1,
            FaceAction::Allow => 2,
        };
        let mut best: Vec<&FaceMatch> = Vec::new();
        for m in &self.matches {
            match best.iter_mut().find(|b| b.face == m.face) {
                Some(b) => {
                    if (m.distance, rank(m.library.action)) < (b.distance, rank(b.library.action)) {
                        *b = m;
                    }
                }
                None => best.push(m),
            }
        }
        best
    }
}

/// One owner's people, their centroids side by side for a fast scan.
#[derive(Default)]
struct OwnerPeople {
    keys: Vec<i64>,
    centroids: Vec<f32>,
    position: HashMap<i64, usize>,
}

impl OwnerPeople {
    fn upsert(&mut self, key: i64, centroid: &[f32]) {
        match self.position.get(&key) {
            Some(&i) => self.centroids[i * DESCRIPTOR_LEN..(i + 1) * DESCRIPTOR_LEN].copy_from_slice(centroid),
            None => {
                self.position.insert(key, self.keys.len());
                self.keys.push(key);
                self.centroids.extend_from_slice(centroid);
            }
        }
    }

    fn remove(&mut self, key: i64) {
        let Some(i) = self.position.remove(&key) else { return };
        let last = self.keys.len() - 1;
        self.keys.swap_remove(i);
        if i != last {
            let (head, tail) = self.centroids.split_at_mut(last * DESCRIPTOR_LEN);
            head[i * DESCRIPTOR_LEN..(i + 1) * DESCRIPTOR_LEN].copy_from_slice(&tail[..DESCRIPTOR_LEN]);
            self.position.insert(self.keys[i], i);
        }
        self.centroids.truncate(last * DESCRIPTOR_LEN);
    }
}

#[derive(Default)]
struct FaceIndex {
    libraries: HashMap<String, FaceLibrary>,
    people: HashMap<i64, Person>,
    owners: HashMap<AccountId, OwnerPeople>,
    cursor: FaceCursor,
}

/// Every person's centroid in memory, refreshed from the repository (which another node or
/// the CLI may change): it reads only what changed since its last look.
#[derive(Default)]
pub struct FaceMatcher {
    index: RwLock<FaceIndex>,
}

impl FaceMatcher {
    pub fn new() -> FaceMatcher {
        FaceMatcher::default()
    }

    /// People indexed, all owners together.
    pub fn len(&self) -> usize {
        self.index.read().expect("face index lock").people.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies what changed since the last refresh (cheap when nothing did).
    pub fn refresh(&self, repository: &dyn FaceRepository) -> Result<(), FaceError> {
        let cursor = self.index.read().expect("face index lock").cursor;
        self.apply(repository.face_changes(cursor)?);
        Ok(())
    }

    /// Applies what a repository said changed since this index's cursor.
    pub fn apply(&self, changes: FaceChanges) {
        let cursor = self.index.read().expect("face index lock").cursor;
        if changes.cursor == cursor && changes.people.is_empty() && changes.removed.is_empty() {
            return;
        }
        let mut index = self.index.write().expect("face index lock");
        let index = &mut *index;
        index.libraries = changes.libraries.into_iter().map(|l| (l.lib_id.clone(), l)).collect();
        for key in changes.removed {
            if let Some(person) = index.people.remove(&key) {
                let owner = index.libraries.get(&person.lib_id).map(|l| l.owner);
                for (o, people) in index.owners.iter_mut() {
                    if owner.is_none_or(|owner| owner == *o) {
                        people.remove(key);
                    }
                }
            }
        }
        for person in changes.people {
            let Some(owner) = index.libraries.get(&person.lib_id).map(|l| l.owner) else { continue };
            index.owners.entry(owner).or_default().upsert(person.key, &person.centroid);
            index.people.insert(person.key, person);
        }
        index.cursor = changes.cursor;
    }

    /// The libraries of the owner that apply (those `only` names, when given).
    fn applied<'a>(
        index: &'a FaceIndex,
        owner: AccountId,
        only: Option<&'a [String]>,
    ) -> impl Iterator<Item = &'a FaceLibrary> {
        index.libraries.values().filter(move |l| l.owner == owner && only.is_none_or(|ids| ids.contains(&l.lib_id)))
    }

    /// Whether any face library of the owner applies: faces are then looked for and described.
    pub fn applies(&self, owner: AccountId, only: Option<&[String]>) -> bool {
        Self::applied(&self.index.read().expect("face index lock"), owner, only).next().is_some()
    }

    /// Each face's people within their library's distance, by face, closest first; `None` when
    /// no library applies. Faces without a descriptor (beyond `faces.max_per_image`) and people
    /// enrolled with another model than `model` are not compared.
    pub fn lookup(
        &self,
        owner: AccountId,
        only: Option<&[String]>,
        model: &str,
        descriptors: &[Option<&[f32]>],
    ) -> Option<FaceLookup> {
        let index = self.index.read().expect("face index lock");
        let applied: HashMap<&str, &FaceLibrary> =
            Self::applied(&index, owner, only).map(|l| (l.lib_id.as_str(), l)).collect();
        if applied.is_empty() {
            return None;
        }
        let mut lookup = FaceLookup {
            polity: applied.values().any(|l| l.label == Label::Polity),
            other: applied.values().any(|l| l.label != Label::Polity),
            matches: Vec::new(),
        };
        let Some(people) = index.owners.get(&owner) else { return Some(lookup) };
        // One pass over the centroids, each compared with every face while it is in cache; a
        // person is looked up only when within the widest applied library's distance.
        let widest = applied.values().map(|l| l.max_distance).fold(0.0, f32::max);
        let faces: Vec<(usize, &[f32])> = descriptors
            .iter()
            .enumerate()
            .filter_map(|(i, d)| Some((i, (*d)?)))
            .filter(|(_, d)| d.len() == DESCRIPTOR_LEN)
            .collect();
        for (i, centroid) in people.centroids.chunks_exact(DESCRIPTOR_LEN).enumerate() {
            for &(face, descriptor) in &faces {
                let squared = squared_distance(centroid, descriptor);
                if squared > widest * widest {
                    continue;
                }
                let Some(person) = index.people.get(&people.keys[i]) else { continue };
                let Some(library) = applied.get(person.lib_id.as_str()) else { continue };
                let distance = squared.sqrt();
                if distance <= library.max_distance && person.model == model {
                    lookup.matches.push(FaceMatch {
                        face,
                        library: (*library).clone(),
                        person_id: person.person_id.clone(),
                        name: person.name.clone(),
                        distance,
                    });
                }
            }
        }
        lookup.matches.sort_by(|a, b| a.face.cmp(&b.face).then(a.distance.total_cmp(&b.distance)));
        Some(lookup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library(id: &str, label: Label, action: FaceAction) -> FaceLibrary {
        FaceLibrary {
            lib_id: id.into(),
            owner: AccountId(1),
            lib_name: id.into(),
            label,
            action,
            max_distance: 0.6,
            created_at: 0,
        }
    }

    /// A descriptor with `value` in its first place and zeros elsewhere.
    fn at(value: f32) -> Vec<f32> {
        let mut d = vec![0.0; DESCRIPTOR_LEN];
        d[0] = value;
        d
    }

    fn person(key: i64, lib: &str, name: &str, centroid: Vec<f32>) -> Person {
        Person { key, person_id: format!("p{key}"), lib_id: lib.into(), name: name.into(), model: "m".into(), centroid }
    }

    #[test]
    fn faces_match_people_within_their_library_distance() {
        let matcher = FaceMatcher::new();
        let libraries = vec![
            library("politicians", Label::Polity, FaceAction::Block),
            library("staff", Label::Custom, FaceAction::Allow),
        ];
        let people = vec![
            person(1, "politicians", "A", at(1.0)),
            person(2, "politicians", "B", at(-1.0)),
            person(3, "staff", "A", at(1.1)),
        ];
        matcher.apply(FaceChanges {
            libraries,
            people,
            removed: vec![],
            cursor: FaceCursor { version: 3, removal_seq: 0 },
        });
        assert_eq!(matcher.len(), 3);
        let (near_a, far) = (at(0.9), at(0.0));
        let lookup = matcher.lookup(AccountId(1), None, "m", &[Some(&near_a), Some(&far), None]).unwrap();
        assert!(lookup.polity && lookup.other);
        let found: Vec<(usize, &str, &str)> =
            lookup.matches.iter().map(|m| (m.face, m.name.as_str(), m.library.lib_id.as_str())).collect();
        assert_eq!(found, [(0, "A", "politicians"), (0, "A", "staff")], "closest first; 1.0 away is too far");
        assert_eq!(lookup.matches[0].score(), 92);
        // The staff library allows A: at 0.2 it is farther than the politicians' 0.1, so the block decides.
        assert_eq!(lookup.deciding()[0].library.action, FaceAction::Block);
        assert!(matcher.lookup(AccountId(1), None, "another model", &[Some(&near_a)]).unwrap().matches.is_empty());
        assert!(matcher.lookup(AccountId(2), None, "m", &[Some(&near_a)]).is_none(), "another owner's libraries");
        let only = ["staff".to_string()];
        let lookup = matcher.lookup(AccountId(1), Some(&only), "m", &[Some(&near_a)]).unwrap();
        assert!(!lookup.polity && lookup.matches.len() == 1 && lookup.deciding()[0].finding().is_none(), "allowed");
    }

    #[test]
    fn people_removed_or_changed_are_followed() {
        let mut people = OwnerPeople::default();
        for key in 1..=3 {
            people.upsert(key, &at(key as f32));
        }
        people.remove(1);
        people.upsert(3, &at(30.0));
        assert_eq!(people.keys, [3, 2]);
        assert_eq!((people.centroids[0], people.centroids[DESCRIPTOR_LEN]), (30.0, 2.0));
        people.remove(2);
        people.remove(3);
        assert!(people.keys.is_empty() && people.centroids.is_empty() && people.position.is_empty());
    }

    #[test]
    fn libraries_names_descriptors_are_checked() {
        let new = |name: &str, d| FaceLibrary::new(AccountId(1), name, Label::Polity, FaceAction::Block, d);
        assert_eq!(new("people", None).unwrap().max_distance, DEFAULT_MATCH_DISTANCE);
        assert!(new(" ", None).is_err() && new(&"n".repeat(65), None).is_err());
        assert!(new("x", Some(0.0)).is_err() && new("x", Some(2.0)).is_err() && new("x", Some(f32::NAN)).is_err());
        assert_eq!(new("x", None).unwrap().scene(), "PolityFace");
        assert!(check_person_name(&"n".repeat(128)).is_ok() && check_person_name(&"n".repeat(129)).is_err());
        assert!(
            check_descriptor(&at(1.0)).is_ok()
                && check_descriptor(&[1.0]).is_err()
                && check_descriptor(&at(f32::NAN)).is_err()
        );
        assert_eq!(unpack_descriptor(&pack_descriptor(&at(0.25))), at(0.25));
        assert_eq!(centroid(&[at(1.0), at(3.0)]), at(2.0));
    }
}
