//! [`HistoryRepository`]: results per owner, filters, pages, statistics, corrections and
//! retention.

use engine::accounts::{AccountId, AccountRepository};
use engine::billing::Service;
use engine::decision::{Label, Suggestion};
use engine::evidence::{Evidence, Place};
use engine::history::*;
use engine::verdict::Observations;

pub fn record(owner: AccountId, id: &str, at: i64, suggestion: Suggestion, label: Label) -> Record {
    Record {
        request_id: id.into(),
        owner,
        account: owner,
        created_at: at,
        origin: Origin::Sync,
        service: Service::Image,
        biz_type: if id.starts_with('b') { "beta".into() } else { String::new() },
        data_id: format!("data-{id}"),
        file_md5: String::new(),
        file_url: String::new(),
        user_id: format!("user-{}", &id[1..]),
        device_id: if id.starts_with('b') { "phone-7".into() } else { String::new() },
        context: String::new(),
        suggestion,
        label,
        sub_label: String::new(),
        score: 90,
        flagged: if suggestion == Suggestion::Pass { vec![] } else { vec![label, Label::Sexy] },
        text: String::new(),
        hits: vec![],
        response: "{}".into(),
        thumbnail: Some(vec![1, 2, 3]),
        hashes: vec![],
        // Kept with the Block results, none with the others (as for results from before).
        observations: (suggestion == Suggestion::Block).then(|| Observations {
            views: vec![(Place::default(), Evidence { open_nsfw: Some(0.93), ..Evidence::default() })],
            text: Some(vec![]),
            codes: None,
            library: None,
            faces: Some(vec![engine::evidence::Face {
                frame: 0,
                score: 0.9,
                bbox: [1, 2, 30, 40],
                descriptor: None,
                age: None,
            }]),
            face_lookup: None,
            objects: Some(vec![engine::evidence::Object { frame: 0, class: 2, score: 0.8, bbox: [5, 6, 70, 30] }]),
        }),
        correction: None,
    }
}

pub fn filters_pages_stats_corrections_and_retention<S: AccountRepository + HistoryRepository>(store: &S) {
    let a = store.create_account("a", None).unwrap().id;
    let b = store.create_account("b", None).unwrap().id;
    // A simulated clock: day 100 onwards.
    let day = |d: i64| d * SECONDS_PER_DAY;
    store.record(&record(a, "a1", day(100), Suggestion::Pass, Label::Normal)).unwrap();
    store.record(&record(a, "a2", day(100) + 5, Suggestion::Block, Label::Porn)).unwrap();
    store.record(&record(a, "b3", day(101), Suggestion::Review, Label::Terror)).unwrap();
    store.record(&record(b, "a4", day(101), Suggestion::Block, Label::Porn)).unwrap();

    let all = Filter::default();
    let (page, total) = store.results(a, &all, 0, 2).unwrap();
    assert_eq!(total, 3);
    assert_eq!(page.iter().map(|r| r.request_id.as_str()).collect::<Vec<_>>(), ["b3", "a2"]);
    assert_eq!(page[1], record(a, "a2", day(100) + 5, Suggestion::Block, Label::Porn));
    let sexy = Filter { label: Some(Label::Sexy), ..Default::default() };
    assert_eq!(store.results(a, &sexy, 0, 10).unwrap().1, 2, "flagged labels filter too");
    let porn_block = Filter { suggestion: Some(Suggestion::Block), label: Some(Label::Porn), ..Default::default() };
    assert_eq!(store.results(a, &porn_block, 0, 10).unwrap().1, 1);
    let range = Filter { from: Some(day(101)), to: Some(day(102)), ..Default::default() };
    assert_eq!(store.results(a, &range, 0, 10).unwrap().1, 1);
    let policy = Filter { biz_type: Some("beta".into()), ..Default::default() };
    assert_eq!(store.results(a, &policy, 0, 10).unwrap().0[0].request_id, "b3");
    let data = Filter { data_id: Some("data-a1".into()), ..Default::default() };
    assert_eq!(store.results(a, &data, 0, 10).unwrap().0[0].request_id, "a1");
    let user = Filter { user_id: Some("user-2".into()), ..Default::default() };
    assert_eq!(store.results(a, &user, 0, 10).unwrap().0[0].request_id, "a2");
    let device = Filter { device_id: Some("phone-7".into()), ..Default::default() };
    assert_eq!(
        store.results(a, &device, 0, 10).unwrap().0.iter().map(|r| r.request_id.as_str()).collect::<Vec<_>>(),
        ["b3"]
    );
    assert!(matches!(store.result(b, "a1"), Err(HistoryError::NotFound(_))), "another owner's result");

    let stats = store.stats(a, &all).unwrap();
    assert_eq!(stats.overview, Counts { total: 3, pass: 1, review: 1, block: 1 });
    assert_eq!(stats.per_day.len(), 2);
    assert_eq!(stats.per_day[0].1, Counts { total: 2, pass: 1, review: 0, block: 1 });
    assert_eq!(stats.per_label[0], (Label::Sexy, 2));
    assert_eq!(stats.per_policy, [(String::new(), 2), ("beta".to_owned(), 1)], "the busiest policies first");

    // Image-analysis calls are kept beside moderation results, told apart by their service.
    let tiia = record(a, "t5", day(101) + 1, Suggestion::Pass, Label::Normal);
    store.record(&Record { service: Service::Label, ..tiia }).unwrap();
    let analysis = Filter { services: vec![Service::Label, Service::Car], ..Default::default() };
    let (page, total) = store.results(a, &analysis, 0, 10).unwrap();
    assert_eq!((total, page[0].service), (1, Service::Label));
    assert_eq!(store.results(a, &Filter::moderation(), 0, 10).unwrap().1, 3);
    assert_eq!(store.stats(a, &Filter::moderation()).unwrap().overview.total, 3);
    assert_eq!(store.results(a, &all, 0, 10).unwrap().1, 4, "every service");

    let correction = Correction {
        suggestion: Suggestion::Pass,
        label: Label::Normal,
        note: "a painting".into(),
        by: a,
        at: day(102),
    };
    store.correct(a, "a2", &correction).unwrap();
    assert_eq!(store.result(a, "a2").unwrap().correction, Some(correction.clone()));
    assert!(matches!(store.correct(b, "a2", &correction), Err(HistoryError::NotFound(_))));
    let corrected = Filter { corrected: Some(true), ..Default::default() };
    assert_eq!(store.results(a, &corrected, 0, 10).unwrap().1, 1);

    // Kept 30 days: at day 130 + 1 s the results of day 100 are purged, those of 101 kept.
    assert_eq!(store.purge(retention_cutoff(day(130), 30)).unwrap(), 0);
    assert_eq!(store.purge(retention_cutoff(day(130) + 6, 30)).unwrap(), 2);
    assert_eq!(store.results(a, &all, 0, 10).unwrap().1, 2);
    assert_eq!(store.results(b, &all, 0, 10).unwrap().1, 1);
}
