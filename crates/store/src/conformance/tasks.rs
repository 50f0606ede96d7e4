//! [`TaskRepository`]: asynchronous tasks through their states.

use engine::accounts::AccountId;
use engine::task::{Task, TaskRepository, TaskState};

fn task(id: &str, at: i64) -> Task {
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

pub fn a_task_goes_through_its_states_and_survives_a_crash_while_running<S: TaskRepository>(store: &S) {
    store.enqueue(&task("t1", 10)).unwrap();
    store.enqueue(&task("t2", 11)).unwrap();
    assert!(store.enqueue(&task("t1", 12)).is_err(), "task ids are unique");

    let first = store.claim().unwrap().unwrap();
    assert_eq!((first.task_id.as_str(), first.state), ("t1", TaskState::Running));
    let second = store.claim().unwrap().unwrap();
    assert_eq!(second.task_id, "t2");
    assert!(store.claim().unwrap().is_none());
    assert_eq!(store.backlog().unwrap(), (0, 2, 0));

    // The process dies with both running: they are queued again at the next start.
    assert_eq!(store.requeue_running().unwrap(), 2);
    let again = store.claim().unwrap().unwrap();
    assert_eq!(again.task_id, "t1");
    store.moderated("t1", "{\"Response\":{}}", 20).unwrap();
    assert!(store.due(19, 10).unwrap().is_empty());
    assert_eq!(store.due(20, 10).unwrap()[0].result.as_deref(), Some("{\"Response\":{}}"));
    assert_eq!(store.task("t1").unwrap().request, "", "the image is dropped once moderated");

    store.delivery_failed("t1", "HTTP 500", Some(25)).unwrap();
    assert!(store.due(24, 10).unwrap().is_empty());
    store.delivered("t1", 25).unwrap();
    let done = store.task("t1").unwrap();
    assert_eq!((done.state, done.attempts), (TaskState::Delivered, 2));
    assert!(store.delivered("t1", 26).is_err(), "a delivered task is not delivered again");
    assert!(store.due(100, 10).unwrap().is_empty());
}

/// Eight workers claiming twenty queued tasks at once: each task is claimed exactly once.
pub fn racing_claims_take_each_task_once<S: TaskRepository>(store: &S) {
    for i in 0..20 {
        store.enqueue(&task(&format!("race-{i}"), i)).unwrap();
    }
    let mut claimed: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| std::iter::from_fn(|| store.claim().unwrap()).map(|t| t.task_id).collect::<Vec<_>>())
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    claimed.sort();
    claimed.dedup();
    assert_eq!(claimed.len(), 20);
}
