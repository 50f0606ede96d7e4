//! [`LibraryRepository`]: image libraries per owner, their samples, and a matcher that follows
//! changes made through any store.

use engine::accounts::AccountRepository;
use engine::decision::Label;
use engine::library::{Hash256, LibAction, LibraryError, LibraryRepository, Matcher};

pub fn libraries_samples_and_a_matcher_that_follows_changes<S: AccountRepository + LibraryRepository>(store: &S) {
    let a = store.create_account("a", None).unwrap().id;
    let b = store.create_account("b", None).unwrap().id;
    let block = store.create_library(a, "banned", Label::Porn, LibAction::Block).unwrap();
    assert!(matches!(store.create_library(a, "banned", Label::Ad, LibAction::Allow), Err(LibraryError::Exists(_))));
    assert!(matches!(store.create_library(a, " ", Label::Ad, LibAction::Allow), Err(LibraryError::Invalid(_))));
    store.create_library(b, "banned", Label::Ad, LibAction::Allow).unwrap();
    assert!(matches!(store.library(b, &block.lib_id), Err(LibraryError::NotFound(_))));

    let h1 = Hash256([1, 2, 3, 4]);
    let h2 = Hash256([u64::MAX, 0, u64::MAX, 0]);
    let s1 = store.add_sample(a, &block.lib_id, "one", &[h1]).unwrap();
    assert!(matches!(store.add_sample(b, &block.lib_id, "x", &[h1]), Err(LibraryError::NotFound(_))));
    assert!(matches!(store.add_sample(a, &block.lib_id, "x", &[]), Err(LibraryError::Invalid(_))));

    let matcher = Matcher::new();
    matcher.refresh(store).unwrap();
    assert_eq!(matcher.find(a, None, &[h1])[0].image_id, s1.image_id);
    assert!(matcher.find(b, None, &[h1]).is_empty(), "another owner's library");
    assert!(matcher.find(a, Some(&["other".into()]), &[h1]).is_empty(), "a library the policy does not link");

    // Changes made by "another process" reach the matcher on its next refresh.
    let s2 = store.add_sample(a, &block.lib_id, "two", &[h2]).unwrap();
    store.delete_sample(a, &s1.image_id).unwrap();
    assert!(matches!(store.delete_sample(a, &s1.image_id), Err(LibraryError::SampleNotFound(_))));
    matcher.refresh(store).unwrap();
    assert!(matcher.find(a, None, &[h1]).is_empty());
    assert_eq!(matcher.find(a, None, &[h2])[0].image_id, s2.image_id);
    assert_eq!(store.samples(a, &block.lib_id, 0, 10).unwrap().1, 1);

    store.delete_library(a, &block.lib_id).unwrap();
    matcher.refresh(store).unwrap();
    assert!(matcher.is_empty());
    assert_eq!(store.libraries(a).unwrap().len(), 0);
}
