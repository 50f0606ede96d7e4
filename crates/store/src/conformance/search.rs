//! [`GroupRepository`]: image-search groups per account, their pictures and limits, and an index
//! that follows changes made through any store.

use engine::accounts::AccountRepository;
use engine::library::Hash256;
use engine::search::{
    GroupIndex, GroupRepository, Picture, SearchError, SearchGroup, MAX_GROUPS, MAX_PICTURES_PER_ENTITY,
};

pub fn groups_pictures_limits_and_an_index_that_follows_them<S: AccountRepository + GroupRepository>(store: &S) {
    let a = store.create_account("a", None).unwrap().id;
    let b = store.create_account("b", None).unwrap().id;
    let group = |owner, id: &str, capacity| SearchGroup::new(owner, id, "name", "brief", capacity, 0).unwrap();
    store.create_group(&group(a, "shop", 3)).unwrap();
    assert_eq!(store.create_group(&group(a, "shop", 3)), Err(SearchError::GroupExists("shop".into())));
    store.create_group(&group(b, "shop", 100)).unwrap();
    for n in 1..MAX_GROUPS {
        store.create_group(&group(a, &format!("g{n}"), 100)).unwrap();
    }
    assert_eq!(store.create_group(&group(a, "one_more", 100)), Err(SearchError::TooManyGroups));
    let listed = store.groups(a, None, 0, 100).unwrap();
    assert_eq!(listed.len() as u64, MAX_GROUPS);
    assert!(listed.iter().any(|(g, count)| g.group_id == "shop" && *count == 0), "with its count");
    assert_eq!(store.groups(a, None, 28, 10).unwrap().len(), 2, "a page");
    let one = store.groups(a, Some("g5"), 0, 10).unwrap();
    assert_eq!((one.len(), one[0].0.group_id.as_str()), (1, "g5"));
    assert!(store.groups(a, Some("nope"), 0, 10).unwrap().is_empty());
    assert_eq!(store.group(a, "g5").unwrap(), one[0].0, "one group, as listed");
    assert_eq!(store.group(b, "g5"), Err(SearchError::GroupNotFound("g5".into())), "another account's");

    let (h1, h2, h3) =
        (Hash256([1, 2, 3, 4]), Hash256([u64::MAX, 0, u64::MAX, 0]), Hash256([u64::MAX, u64::MAX, 0, 0]));
    let picture = |owner, group: &str, entity: &str, name: &str, hash| {
        Picture::new(owner, group, entity, name, "notes", r#"{"price": 5}"#, vec![hash]).unwrap()
    };
    let first = store.add_picture(&picture(a, "shop", "e1", "p1", h1)).unwrap();
    assert_eq!(
        store.add_picture(&picture(a, "shop", "e2", "p1", h2)),
        Err(SearchError::PictureExists("p1".into())),
        "a name is unique in the group"
    );
    store.add_picture(&picture(a, "shop", "e1", "p2", h2)).unwrap();
    store.add_picture(&picture(a, "g1", "e1", "p1", h1)).unwrap();
    assert_eq!(
        store.add_picture(&picture(b, "g1", "e1", "p1", h1)),
        Err(SearchError::GroupNotFound("g1".into())),
        "another account's group"
    );
    store.add_picture(&picture(a, "shop", "e2", "p3", h3)).unwrap();
    assert_eq!(store.add_picture(&picture(a, "shop", "e2", "p4", h3)), Err(SearchError::GroupFull(3)));
    for n in 0..MAX_PICTURES_PER_ENTITY {
        store.add_picture(&picture(a, "g2", "full", &format!("p{n}"), h3)).unwrap();
    }
    assert_eq!(
        store.add_picture(&picture(a, "g2", "full", "one_more", h3)),
        Err(SearchError::EntityFull("full".into()))
    );
    assert_eq!(store.groups(a, Some("shop"), 0, 1).unwrap()[0].1, 3);

    let of_e1 = store.pictures(a, "shop", "e1", None).unwrap();
    let names: Vec<&str> = of_e1.iter().map(|p| p.pic_name.as_str()).collect();
    assert_eq!(names, ["p1", "p2"]);
    assert_eq!(
        (of_e1[0].seq, of_e1[0].custom_content.as_str(), of_e1[0].tags.as_str()),
        (first, "notes", r#"{"price": 5}"#)
    );
    assert!(of_e1[0].hashes.is_empty(), "hashes stay in the store");
    assert_eq!(store.pictures(a, "shop", "e1", Some("p2")).unwrap().len(), 1);
    assert!(store.pictures(a, "shop", "nobody", None).unwrap().is_empty());
    assert_eq!(store.pictures(b, "g1", "e1", None), Err(SearchError::GroupNotFound("g1".into())));

    let index = GroupIndex::new();
    index.refresh(store).unwrap();
    assert_eq!(index.search(a, "shop", &[h1]), vec![(first, 100)]);
    assert!(index.search(b, "shop", &[h1]).is_empty(), "another account's group of the same id");
    assert_eq!(index.search(a, "g1", &[h1]).len(), 1, "each group on its own");
    let found = store.pictures_by_seq(a, &[first]).unwrap();
    assert_eq!(found[0].pic_name, "p1");
    assert!(store.pictures_by_seq(b, &[first]).unwrap().is_empty(), "another account's rows");

    // Tags change in place; removals reach the index on its next refresh.
    assert_eq!(store.update_tags(a, "shop", "e1", None, r#"{"price": 7}"#), Ok(2));
    assert_eq!(store.update_tags(a, "shop", "e1", Some("p9"), "{}"), Err(SearchError::PictureNotFound("e1".into())));
    assert_eq!(store.pictures(a, "shop", "e1", Some("p1")).unwrap()[0].tags, r#"{"price": 7}"#);
    assert_eq!(store.delete_pictures(a, "shop", "e1", Some("p1")), Ok(1));
    assert_eq!(store.delete_pictures(a, "shop", "e1", Some("p1")), Err(SearchError::PictureNotFound("e1".into())));
    index.refresh(store).unwrap();
    assert!(index.search(a, "shop", &[h1]).is_empty());
    assert_eq!(store.delete_pictures(a, "shop", "e2", None), Ok(1), "a whole entity");
    assert_eq!(store.add_picture(&picture(a, "shop", "e3", "p1", h1)).map(|_| ()), Ok(()), "room again, name free");
    index.refresh(store).unwrap();
    assert_eq!(index.search(a, "shop", &[h1, h3]).len(), 1);
}

/// Pictures added to one entity at once, from many threads: exactly the entity's limit is kept.
pub fn racing_pictures_stop_at_the_entity_limit<S: AccountRepository + GroupRepository>(store: &S) {
    let a = store.create_account("a", None).unwrap().id;
    store.create_group(&SearchGroup::new(a, "g", "g", "", 1000, 0).unwrap()).unwrap();
    let kept = std::thread::scope(|scope| {
        let adds: Vec<_> = (0..2 * MAX_PICTURES_PER_ENTITY)
            .map(|n| {
                scope.spawn(move || {
                    let picture = Picture::new(a, "g", "e", &format!("p{n}"), "", "", vec![Hash256([n, 0, 0, 0])]);
                    store.add_picture(&picture.unwrap()).is_ok()
                })
            })
            .collect();
        adds.into_iter().filter_map(|t| t.join().unwrap().then_some(())).count()
    });
    assert_eq!(kept as u64, MAX_PICTURES_PER_ENTITY);
}
