//! Asynchronous tasks in SQLite (table `tasks`). Every state change is one statement, so a
//! crash leaves each task in a state it can resume from.

use crate::sqlite::SqliteStore;
use engine::accounts::AccountId;
use engine::stamp::now_ms;
use engine::task::{Task, TaskError, TaskRepository, TaskState};
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

fn storage(e: impl std::fmt::Display) -> TaskError {
    TaskError::Storage(e.to_string())
}

const COLUMNS: &str = "task_id, account_id, secret_id, data_id, callback_url, request, state, result, attempts, \
                       next_attempt_ms, created_at, last_error";

fn task_from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        task_id: row.get(0)?,
        account: AccountId(row.get(1)?),
        secret_id: row.get(2)?,
        data_id: row.get(3)?,
        callback_url: row.get(4)?,
        request: row.get(5)?,
        state: TaskState::parse(&row.get::<_, String>(6)?).unwrap_or(TaskState::Failed),
        result: row.get(7)?,
        attempts: row.get(8)?,
        next_attempt_ms: row.get(9)?,
        created_at: row.get(10)?,
        last_error: row.get(11)?,
    })
}

impl SqliteStore {
    fn task_update(&self, sql: &str, params: impl rusqlite::Params, task_id: &str) -> Result<(), TaskError> {
        let changed = self.connection(TaskError::Storage)?.execute(sql, params).map_err(storage)?;
        if changed == 0 {
            return Err(TaskError::NotFound(task_id.into()));
        }
        Ok(())
    }
}

impl TaskRepository for SqliteStore {
    fn enqueue(&self, t: &Task) -> Result<(), TaskError> {
        self.connection(TaskError::Storage)?
            .execute(
                &format!("INSERT INTO tasks ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                params![
                    t.task_id,
                    t.account.0,
                    t.secret_id,
                    t.data_id,
                    t.callback_url,
                    t.request,
                    t.state.as_str(),
                    t.result,
                    t.attempts,
                    t.next_attempt_ms,
                    t.created_at,
                    t.last_error
                ],
            )
            .map_err(storage)?;
        Ok(())
    }

    fn claim(&self, now_ms: i64, lease_ms: i64) -> Result<Option<Task>, TaskError> {
        let mut conn = self.connection(TaskError::Storage)?;
        // IMMEDIATE: two workers cannot read the same task before either marks it.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(storage)?;
        let task = tx
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM tasks
                     WHERE state = 'queued' OR (state = 'running' AND next_attempt_ms <= ?1)
                     ORDER BY created_at, task_id LIMIT 1"
                ),
                [now_ms],
                task_from_row,
            )
            .optional()
            .map_err(storage)?;
        let until = now_ms + lease_ms;
        if let Some(task) = &task {
            tx.execute(
                "UPDATE tasks SET state = 'running', next_attempt_ms = ?2 WHERE task_id = ?1",
                params![task.task_id, until],
            )
            .map_err(storage)?;
        }
        tx.commit().map_err(storage)?;
        Ok(task.map(|t| Task { state: TaskState::Running, next_attempt_ms: until, ..t }))
    }

    fn renew(&self, task_id: &str, until_ms: i64) -> Result<(), TaskError> {
        self.task_update(
            "UPDATE tasks SET next_attempt_ms = ?2 WHERE task_id = ?1 AND state = 'running'",
            params![task_id, until_ms],
            task_id,
        )
    }

    fn moderated(&self, task_id: &str, result: &str, now_ms: i64) -> Result<(), TaskError> {
        self.task_update(
            "UPDATE tasks SET state = 'delivering', result = ?2, request = '', next_attempt_ms = ?3
             WHERE task_id = ?1 AND state = 'running'",
            params![task_id, result, now_ms],
            task_id,
        )
    }

    fn claim_due(&self, now_ms: i64, limit: u32, lease_ms: i64) -> Result<Vec<Task>, TaskError> {
        let mut conn = self.connection(TaskError::Storage)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(storage)?;
        let due = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM tasks WHERE state = 'delivering' AND next_attempt_ms <= ?1
                     ORDER BY next_attempt_ms, task_id LIMIT ?2"
                ))
                .map_err(storage)?;
            let rows = stmt.query_map(params![now_ms, limit], task_from_row).map_err(storage)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(storage)?
        };
        let until = now_ms + lease_ms;
        for task in &due {
            tx.execute("UPDATE tasks SET next_attempt_ms = ?2 WHERE task_id = ?1", params![task.task_id, until])
                .map_err(storage)?;
        }
        tx.commit().map_err(storage)?;
        Ok(due.into_iter().map(|t| Task { next_attempt_ms: until, ..t }).collect())
    }

    fn delivered(&self, task_id: &str, at: i64) -> Result<(), TaskError> {
        self.task_update(
            "UPDATE tasks SET state = 'delivered', attempts = attempts + 1, delivered_at = ?2, last_error = ''
             WHERE task_id = ?1 AND state = 'delivering'",
            params![task_id, at],
            task_id,
        )
    }

    fn delivery_failed(&self, task_id: &str, error: &str, next_attempt_ms: Option<i64>) -> Result<(), TaskError> {
        let (state, next) = match next_attempt_ms {
            Some(at) => ("delivering", at),
            None => ("failed", now_ms()),
        };
        self.task_update(
            "UPDATE tasks SET state = ?2, attempts = attempts + 1, next_attempt_ms = ?3, last_error = ?4
             WHERE task_id = ?1 AND state = 'delivering'",
            params![task_id, state, next, error],
            task_id,
        )
    }

    fn task(&self, task_id: &str) -> Result<Task, TaskError> {
        self.connection(TaskError::Storage)?
            .query_row(&format!("SELECT {COLUMNS} FROM tasks WHERE task_id = ?1"), [task_id], task_from_row)
            .optional()
            .map_err(storage)?
            .ok_or_else(|| TaskError::NotFound(task_id.into()))
    }

    fn backlog(&self) -> Result<(u64, u64, u64), TaskError> {
        self.connection(TaskError::Storage)?
            .query_row(
                "SELECT COALESCE(SUM(state = 'queued'), 0), COALESCE(SUM(state = 'running'), 0),
                        COALESCE(SUM(state = 'delivering'), 0) FROM tasks WHERE state IN ('queued', 'running', 'delivering')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sealer;

    #[test]
    fn a_task_goes_through_its_states_under_leases_that_outlive_a_crash() {
        crate::conformance::tasks::a_task_goes_through_its_states_under_leases_that_outlive_a_crash(
            &crate::sqlite::scratch_store().1,
        );
    }

    #[test]
    fn racing_claims_conform() {
        crate::conformance::tasks::racing_claims_take_each_task_once(&crate::sqlite::scratch_store().1);
    }

    #[test]
    fn retries_scheduled_in_seconds_by_an_older_version_are_kept_in_milliseconds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ims.db");
        let before_milliseconds = crate::sqlite::MIGRATIONS
            .iter()
            .position(|m| m.contains("RENAME COLUMN next_attempt_at TO next_attempt_ms"))
            .expect("the migration to milliseconds");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            for migration in &crate::sqlite::MIGRATIONS[..before_milliseconds] {
                conn.execute_batch(migration).unwrap();
            }
            conn.pragma_update(None, "user_version", before_milliseconds as i64).unwrap();
            conn.execute(
                "INSERT INTO tasks (task_id, account_id, secret_id, data_id, callback_url, request, state, result,
                                    attempts, next_attempt_at, created_at, last_error)
                 VALUES ('old', 1, 'AKID', '', 'https://example.com/cb', '', 'delivering', '{}', 1, 1700000002, 1700000000, '')",
                [],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path, Sealer::from_key(&[1; 32])).unwrap();
        assert_eq!(store.task("old").unwrap().next_attempt_ms, 1_700_000_002_000);
        assert!(store.claim_due(1_700_000_001_999, 10, 1).unwrap().is_empty());
        assert_eq!(store.claim_due(1_700_000_002_000, 10, 1).unwrap().len(), 1);
    }
}
