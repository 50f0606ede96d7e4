//! Asynchronous tasks in PostgreSQL (table `tasks`). Workers claim tasks with `FOR UPDATE SKIP
//! LOCKED`: the workers of every node take different tasks without waiting on each other, and
//! a claim holds its task under a lease (`next_attempt_ms`) that any node may take over once
//! it ends.

use super::{Fault, OrFault, PostgresStore};
use engine::accounts::AccountId;
use engine::stamp::now_ms;
use engine::task::{Task, TaskError, TaskRepository, TaskState};
use postgres::types::ToSql;
use postgres::Row;

const COLUMNS: &str = "task_id, account_id, secret_id, data_id, callback_url, request, state, result, attempts, \
                       next_attempt_ms, created_at, last_error";

fn task_from_row(row: &Row) -> Result<Task, Fault> {
    Ok(Task {
        task_id: row.try_get(0)?,
        account: AccountId(row.try_get(1)?),
        secret_id: row.try_get(2)?,
        data_id: row.try_get(3)?,
        callback_url: row.try_get(4)?,
        request: row.try_get(5)?,
        state: TaskState::parse(row.try_get(6)?).unwrap_or(TaskState::Failed),
        result: row.try_get(7)?,
        attempts: row.try_get::<_, i32>(8)? as u32,
        next_attempt_ms: row.try_get(9)?,
        created_at: row.try_get(10)?,
        last_error: row.try_get(11)?,
    })
}

impl PostgresStore {
    fn task_update(&self, sql: &str, params: &[&(dyn ToSql + Sync)], task_id: &str) -> Result<(), TaskError> {
        if self.conn::<TaskError>()?.execute(sql, params).db::<TaskError>()? == 0 {
            return Err(TaskError::NotFound(task_id.into()));
        }
        Ok(())
    }
}

impl TaskRepository for PostgresStore {
    fn enqueue(&self, t: &Task) -> Result<(), TaskError> {
        self.conn::<TaskError>()?
            .execute(
                &format!("INSERT INTO tasks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"),
                &[
                    &t.task_id,
                    &t.account.0,
                    &t.secret_id,
                    &t.data_id,
                    &t.callback_url,
                    &t.request,
                    &t.state.as_str(),
                    &t.result,
                    &(t.attempts as i32),
                    &t.next_attempt_ms,
                    &t.created_at,
                    &t.last_error,
                ],
            )
            .db::<TaskError>()?;
        Ok(())
    }

    fn claim(&self, now_ms: i64, lease_ms: i64) -> Result<Option<Task>, TaskError> {
        let row = self
            .conn::<TaskError>()?
            .query_opt(
                &format!(
                    "UPDATE tasks SET state = 'running', next_attempt_ms = $2 WHERE task_id = (
                         SELECT task_id FROM tasks WHERE state IN ('queued', 'running')
                         AND (state = 'queued' OR next_attempt_ms <= $1)
                         ORDER BY created_at, task_id LIMIT 1 FOR UPDATE SKIP LOCKED)
                     RETURNING {COLUMNS}"
                ),
                &[&now_ms, &(now_ms + lease_ms)],
            )
            .db::<TaskError>()?;
        Ok(row.map(|r| task_from_row(&r)).transpose()?)
    }

    fn renew(&self, task_id: &str, until_ms: i64) -> Result<(), TaskError> {
        self.task_update(
            "UPDATE tasks SET next_attempt_ms = $2 WHERE task_id = $1 AND state = 'running'",
            &[&task_id, &until_ms],
            task_id,
        )
    }

    fn moderated(&self, task_id: &str, result: &str, now_ms: i64) -> Result<(), TaskError> {
        self.task_update(
            "UPDATE tasks SET state = 'delivering', result = $2, request = '', next_attempt_ms = $3
             WHERE task_id = $1 AND state = 'running'",
            &[&task_id, &result, &now_ms],
            task_id,
        )
    }

    fn claim_due(&self, now_ms: i64, limit: u32, lease_ms: i64) -> Result<Vec<Task>, TaskError> {
        let rows = self
            .conn::<TaskError>()?
            .query(
                &format!(
                    "UPDATE tasks SET next_attempt_ms = $3 WHERE task_id IN (
                         SELECT task_id FROM tasks WHERE state = 'delivering' AND next_attempt_ms <= $1
                         ORDER BY next_attempt_ms, task_id LIMIT $2 FOR UPDATE SKIP LOCKED)
                     RETURNING {COLUMNS}"
                ),
                &[&now_ms, &i64::from(limit), &(now_ms + lease_ms)],
            )
            .db::<TaskError>()?;
        let mut due = rows.iter().map(task_from_row).collect::<Result<Vec<_>, _>>()?;
        due.sort_by(|a, b| (a.created_at, &a.task_id).cmp(&(b.created_at, &b.task_id)));
        Ok(due)
    }

    fn delivered(&self, task_id: &str, at: i64) -> Result<(), TaskError> {
        self.task_update(
            "UPDATE tasks SET state = 'delivered', attempts = attempts + 1, delivered_at = $2, last_error = ''
             WHERE task_id = $1 AND state = 'delivering'",
            &[&task_id, &at],
            task_id,
        )
    }

    fn delivery_failed(&self, task_id: &str, error: &str, next_attempt_ms: Option<i64>) -> Result<(), TaskError> {
        let (state, next) = match next_attempt_ms {
            Some(at) => ("delivering", at),
            None => ("failed", now_ms()),
        };
        self.task_update(
            "UPDATE tasks SET state = $2, attempts = attempts + 1, next_attempt_ms = $3, last_error = $4
             WHERE task_id = $1 AND state = 'delivering'",
            &[&task_id, &state, &next, &error],
            task_id,
        )
    }

    fn task(&self, task_id: &str) -> Result<Task, TaskError> {
        let row = self
            .conn::<TaskError>()?
            .query_opt(&format!("SELECT {COLUMNS} FROM tasks WHERE task_id = $1"), &[&task_id])
            .db::<TaskError>()?
            .ok_or_else(|| TaskError::NotFound(task_id.into()))?;
        Ok(task_from_row(&row)?)
    }

    fn backlog(&self) -> Result<(u64, u64, u64), TaskError> {
        let row = self
            .conn::<TaskError>()?
            .query_one(
                "SELECT COUNT(*) FILTER (WHERE state = 'queued'), COUNT(*) FILTER (WHERE state = 'running'),
                        COUNT(*) FILTER (WHERE state = 'delivering')
                 FROM tasks WHERE state IN ('queued', 'running', 'delivering')",
                &[],
            )
            .db::<TaskError>()?;
        Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64, row.get::<_, i64>(2) as u64))
    }
}
