//! [`FaceRepository`]: face libraries per owner, people enrolled by name (a second enrolment
//! adds photos), centroids made again as photos come and go, removals, and a matcher that
//! follows changes made through any store.

use engine::accounts::{AccountId, AccountRepository};
use engine::decision::Label;
use engine::faces::{FaceAction, FaceError, FaceLibrary, FaceMatcher, FaceRepository, DESCRIPTOR_LEN};

const MODEL: &str = "model-a";

/// A descriptor with `value` in place `at` and zeros elsewhere.
fn descriptor(at: usize, value: f32) -> Vec<f32> {
    let mut d = vec![0.0; DESCRIPTOR_LEN];
    d[at] = value;
    d
}

fn library<S: FaceRepository>(store: &S, owner: AccountId, name: &str, action: FaceAction) -> FaceLibrary {
    let library = FaceLibrary::new(owner, name, Label::Polity, action, None).unwrap();
    store.create_face_library(&library).unwrap();
    library
}

/// A library with one person enrolled from one photo, for backend-specific tests; returns
/// the photo's descriptor.
pub fn enrolled<S: AccountRepository + FaceRepository>(store: &S) -> Vec<f32> {
    let owner = store.create_account("sealed", None).unwrap().id;
    let lib = library(store, owner, "people", FaceAction::Block);
    let photo: Vec<f32> = (0..DESCRIPTOR_LEN).map(|i| 0.01 * i as f32 - 0.5).collect();
    store.enrol(owner, &lib.lib_id, "someone", MODEL, std::slice::from_ref(&photo)).unwrap();
    photo
}

pub fn face_libraries_people_and_a_matcher_that_follows_them<S: AccountRepository + FaceRepository>(store: &S) {
    let a = store.create_account("a", None).unwrap().id;
    let b = store.create_account("b", None).unwrap().id;
    let leaders = library(store, a, "leaders", FaceAction::Block);
    let again = FaceLibrary::new(a, "leaders", Label::Custom, FaceAction::Allow, None).unwrap();
    assert!(matches!(store.create_face_library(&again), Err(FaceError::Exists(_))));
    library(store, b, "leaders", FaceAction::Allow);
    assert!(matches!(store.face_library(b, &leaders.lib_id), Err(FaceError::NotFound(_))));

    let matcher = FaceMatcher::new();
    matcher.refresh(store).unwrap();
    assert!(matcher.applies(a, None), "a library applies before it has people");

    // Two photos of X, then a third in a second call: one person, the centroid their mean.
    let (x_id, first) = store.enrol(a, &leaders.lib_id, "X", MODEL, &[descriptor(0, 1.0), descriptor(0, 2.0)]).unwrap();
    assert_eq!(first.len(), 2);
    let (same, _) = store.enrol(a, &leaders.lib_id, "X", MODEL, &[descriptor(0, 3.0)]).unwrap();
    assert_eq!(same, x_id, "the same name is the same person");
    let (y_id, _) = store.enrol(a, &leaders.lib_id, "Y", MODEL, &[descriptor(1, 1.0)]).unwrap();
    assert!(matches!(store.enrol(b, &leaders.lib_id, "Z", MODEL, &[descriptor(0, 1.0)]), Err(FaceError::NotFound(_))));
    assert!(matches!(store.enrol(a, &leaders.lib_id, " ", MODEL, &[descriptor(0, 1.0)]), Err(FaceError::Invalid(_))));
    assert!(matches!(store.enrol(a, &leaders.lib_id, "W", MODEL, &[vec![1.0; 3]]), Err(FaceError::Invalid(_))));

    let counts = store.face_libraries(a).unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!((counts[0].1.people, counts[0].1.photos), (2, 4));
    let (x_photos, total) = store.face_samples(a, &leaders.lib_id, Some(&x_id), 0, 10).unwrap();
    assert_eq!((x_photos.len(), total), (3, 3));
    assert!(x_photos.iter().all(|s| s.name == "X" && s.model == MODEL && s.person_id == x_id));
    assert_eq!(store.face_samples(a, &leaders.lib_id, None, 1, 2).unwrap(), (x_photos[1..3].to_vec(), 4));
    assert!(matches!(store.face_samples(b, &leaders.lib_id, None, 0, 10), Err(FaceError::NotFound(_))));

    matcher.refresh(store).unwrap();
    assert_eq!(matcher.len(), 2);
    let at_centroid = descriptor(0, 2.0);
    let lookup = matcher.lookup(a, None, MODEL, &[Some(&at_centroid)]).unwrap();
    assert_eq!(lookup.matches.len(), 1);
    assert_eq!((lookup.matches[0].person_id.as_str(), lookup.matches[0].distance), (x_id.as_str(), 0.0));
    assert!(matcher.lookup(b, None, MODEL, &[Some(&at_centroid)]).unwrap().matches.is_empty(), "b's library is empty");

    // Removing X's first photo moves the centroid to 2.5; the matcher follows.
    store.delete_face_sample(a, &x_photos[0].sample_id).unwrap();
    assert!(matches!(store.delete_face_sample(a, &x_photos[0].sample_id), Err(FaceError::SampleNotFound(_))));
    assert!(matches!(store.delete_face_sample(b, &x_photos[1].sample_id), Err(FaceError::SampleNotFound(_))));
    matcher.refresh(store).unwrap();
    let lookup = matcher.lookup(a, None, MODEL, &[Some(&at_centroid)]).unwrap();
    assert!((lookup.matches[0].distance - 0.5).abs() < 1e-6, "{:?}", lookup.matches);

    // A person whose last photo goes is gone; so is one removed whole.
    let (y_photos, _) = store.face_samples(a, &leaders.lib_id, Some(&y_id), 0, 10).unwrap();
    store.delete_face_sample(a, &y_photos[0].sample_id).unwrap();
    assert!(matches!(store.delete_person(a, &y_id), Err(FaceError::PersonNotFound(_))));
    assert!(matches!(store.delete_person(b, &x_id), Err(FaceError::PersonNotFound(_))));
    matcher.refresh(store).unwrap();
    assert_eq!(matcher.len(), 1);
    store.delete_person(a, &x_id).unwrap();
    matcher.refresh(store).unwrap();
    assert!(matcher.is_empty());

    // A later enrolment with another model: only the new model's photos make the centroid.
    let (z_id, _) = store.enrol(a, &leaders.lib_id, "Z", MODEL, &[descriptor(2, 1.0)]).unwrap();
    store.enrol(a, &leaders.lib_id, "Z", "model-b", &[descriptor(2, 5.0)]).unwrap();
    matcher.refresh(store).unwrap();
    let five = descriptor(2, 5.0);
    assert!(matcher.lookup(a, None, MODEL, &[Some(&five)]).unwrap().matches.is_empty(), "Z is model-b's now");
    assert_eq!(matcher.lookup(a, None, "model-b", &[Some(&five)]).unwrap().matches[0].person_id, z_id);

    assert!(matches!(store.delete_face_library(b, &leaders.lib_id), Err(FaceError::NotFound(_))));
    store.delete_face_library(a, &leaders.lib_id).unwrap();
    assert!(store.face_libraries(a).unwrap().is_empty());
    matcher.refresh(store).unwrap();
    assert!(matcher.is_empty() && !matcher.applies(a, None) && matcher.applies(b, None));
}
