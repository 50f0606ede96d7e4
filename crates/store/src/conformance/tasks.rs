//! [`TaskRepository`]: asynchronous tasks through their states.

use engine::accounts::AccountId;
use engine::task::{Task, TaskRepository, TaskState};

pub fn task(id: &str, at: i64) -> Task {
    Task {
        task_id: id.into(),
        account: AccountId(1),
        secret_id: "AKID".into(),
        data_id: format!("d-{id}"),
        callback_url: "https://example.com/cb".into(),
        request: "{}".into(),
        state: TaskState::Queued,
        result: None,
        attempts: 0,
        next_attempt_ms: at,
        created_at: at,
        last_error: String::new(),
    }
}

pub fn a_task_goes_through_its_states_under_leases_that_outlive_a_crash<S: TaskRepository>(store: &S) {
    store.enqueue(&task("t1", 10)).unwrap();
    store.enqueue(&task("t2", 11)).unwrap();
    assert!(store.enqueue(&task("t1", 12)).is_err(), "task ids are unique");

    let first = store.claim(100, 50).unwrap().unwrap();
    assert_eq!((first.task_id.as_str(), first.state, first.next_attempt_ms), ("t1", TaskState::Running, 150));
    let second = store.claim(100, 50).unwrap().unwrap();
    assert_eq!(second.task_id, "t2");
    assert!(store.claim(100, 50).unwrap().is_none());
    assert_eq!(store.backlog().unwrap(), (0, 2, 0));

    // t1's worker dies; t2's renews its lease. Once t1's lease ends, t1 is taken again.
    store.renew("t2", 300).unwrap();
    assert!(store.claim(149, 50).unwrap().is_none(), "a lease holds until it ends");
    let again = store.claim(150, 50).unwrap().unwrap();
    assert_eq!((again.task_id.as_str(), again.next_attempt_ms), ("t1", 200));
    assert!(store.claim(150, 50).unwrap().is_none(), "t2's renewed lease holds");
    store.moderated("t1", "{\"Response\":{}}", 20).unwrap();
    assert!(store.moderated("t1", "{}", 21).is_err(), "a result is stored once");
    assert!(store.renew("t1", 400).is_err(), "only a running task has a lease");
    assert_eq!(store.task("t1").unwrap().request, "", "the image is dropped once moderated");

    // A delivery attempt holds its task; a node that dies mid-attempt leaves it to the next.
    assert!(store.claim_due(19, 10, 5).unwrap().is_empty());
    let due = store.claim_due(20, 10, 5).unwrap();
    assert_eq!(due[0].result.as_deref(), Some("{\"Response\":{}}"));
    assert!(store.claim_due(24, 10, 5).unwrap().is_empty(), "held for the attempt in flight");
    assert_eq!(store.claim_due(25, 10, 5).unwrap().len(), 1, "taken again once the hold ends");

    store.delivery_failed("t1", "HTTP 500", Some(40)).unwrap();
    assert!(store.claim_due(39, 10, 5).unwrap().is_empty());
    store.delivered("t1", 40).unwrap();
    let done = store.task("t1").unwrap();
    assert_eq!((done.state, done.attempts), (TaskState::Delivered, 2));
    assert!(store.delivered("t1", 41).is_err(), "a delivered task is not delivered again");
    assert!(store.claim_due(1000, 10, 5).unwrap().is_empty());
}

/// Eight workers claiming twenty queued tasks at once: each task is claimed exactly once; then
/// eight delivery loops: each delivery is taken exactly once.
pub fn racing_claims_take_each_task_once<S: TaskRepository>(store: &S) {
    for i in 0..20 {
        store.enqueue(&task(&format!("race-{i}"), i)).unwrap();
    }
    let mut claimed: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    std::iter::from_fn(|| store.claim(0, 1000).unwrap()).map(|t| t.task_id).collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    claimed.sort();
    claimed.dedup();
    assert_eq!(claimed.len(), 20);

    for id in &claimed {
        store.moderated(id, "{}", 0).unwrap();
    }
    let mut delivering: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let batches = std::iter::from_fn(|| Some(store.claim_due(10, 3, 1000).unwrap()));
                    batches.take_while(|b| !b.is_empty()).flatten().map(|t| t.task_id).collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(delivering.len(), 20, "no delivery taken twice");
    delivering.sort();
    assert_eq!(delivering, claimed);
}
