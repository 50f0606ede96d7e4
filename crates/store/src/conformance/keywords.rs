//! [`KeywordRepository`]: keyword libraries per owner, their words, and a matcher that follows
//! changes made through any store.

use engine::accounts::AccountRepository;
use engine::decision::{Label, Suggestion};
use engine::keywords::{KeywordError, KeywordMatcher, KeywordRepository};

pub fn libraries_keywords_and_a_matcher_that_follows_them<S: AccountRepository + KeywordRepository>(store: &S) {
    let a = store.create_account("a", None).unwrap().id;
    let b = store.create_account("b", None).unwrap().id;
    let lib = store.create_keyword_library(a, "gambling", Label::Illegal, Suggestion::Block).unwrap();
    assert!(matches!(
        store.create_keyword_library(a, "gambling", Label::Ad, Suggestion::Review),
        Err(KeywordError::Exists(_))
    ));
    assert!(matches!(store.create_keyword_library(a, "x", Label::Ad, Suggestion::Pass), Err(KeywordError::Invalid(_))));
    let added = store.add_keywords(a, &lib.lib_id, &["赌博".into(), "casino".into(), "赌博".into()]).unwrap();
    assert_eq!(added.len(), 2, "a keyword the library has is skipped");
    let found = store.keywords(a, &lib.lib_id, "赌", 0, 10).unwrap();
    assert_eq!((found.0.len(), found.0[0].content.as_str(), found.1), (1, "赌博", 1), "a search by part of a word");
    assert_eq!(store.keywords(a, &lib.lib_id, "sin", 0, 10).unwrap().0[0].content, "casino");
    assert_eq!(store.keywords(a, &lib.lib_id, "poker", 0, 10).unwrap().1, 0);
    assert!(matches!(store.add_keywords(b, &lib.lib_id, &["x".into()]), Err(KeywordError::NotFound(_))));

    let matcher = KeywordMatcher::new();
    matcher.refresh(store).unwrap();
    assert_eq!(matcher.find(a, None, "online CASINO").len(), 1);
    assert!(matcher.find(b, None, "online casino").is_empty());

    let version = store.keywords_version().unwrap();
    store.delete_keywords(a, &[added[1].sample_id.clone()]).unwrap();
    assert!(store.keywords_version().unwrap() > version);
    assert!(matches!(store.delete_keywords(a, &[added[1].sample_id.clone()]), Err(KeywordError::SampleNotFound(_))));
    matcher.refresh(store).unwrap();
    assert!(matcher.find(a, None, "online casino").is_empty(), "effective at once");
    assert_eq!(store.keywords(a, &lib.lib_id, "", 0, 10).unwrap().1, 1);

    store.delete_keyword_library(a, &lib.lib_id).unwrap();
    matcher.refresh(store).unwrap();
    assert!(matcher.find(a, None, "赌博").is_empty());
    assert!(store.keyword_libraries(a).unwrap().is_empty());
}
