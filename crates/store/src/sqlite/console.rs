//! The console's sessions, passwords and failed sign-ins in SQLite (tables `console_sessions`,
//! `console_passwords`, `console_failures`).

use crate::sqlite::SqliteStore;
use engine::accounts::AccountId;
use engine::console::{ConsoleError, ConsoleRepository, Session, SessionRules, SEEN_RESOLUTION_SECS};
use rusqlite::{params, OptionalExtension};

fn storage(e: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Storage(e.to_string())
}

impl ConsoleRepository for SqliteStore {
    fn open_session(&self, token_hash: &str, session: &Session) -> Result<(), ConsoleError> {
        self.connection(ConsoleError::Storage)?
            .execute(
                "INSERT INTO console_sessions (token_hash, account_id, csrf, created_at, seen_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![token_hash, session.account.0, session.csrf, session.created_at, session.seen_at],
            )
            .map_err(storage)?;
        Ok(())
    }

    fn session(&self, token_hash: &str, rules: &SessionRules, now: i64) -> Result<Option<Session>, ConsoleError> {
        let conn = self.connection(ConsoleError::Storage)?;
        let found = conn
            .query_row(
                "SELECT account_id, csrf, created_at, seen_at FROM console_sessions WHERE token_hash = ?1",
                params![token_hash],
                |r| {
                    Ok(Session {
                        account: AccountId(r.get(0)?),
                        csrf: r.get(1)?,
                        created_at: r.get(2)?,
                        seen_at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(storage)?;
        let Some(mut session) = found else { return Ok(None) };
        if !rules.is_live(&session, now) {
            conn.execute("DELETE FROM console_sessions WHERE token_hash = ?1", params![token_hash]).map_err(storage)?;
            return Ok(None);
        }
        if now - session.seen_at >= SEEN_RESOLUTION_SECS {
            conn.execute("UPDATE console_sessions SET seen_at = ?2 WHERE token_hash = ?1", params![token_hash, now])
                .map_err(storage)?;
            session.seen_at = now;
        }
        Ok(Some(session))
    }

    fn close_session(&self, token_hash: &str) -> Result<(), ConsoleError> {
        self.connection(ConsoleError::Storage)?
            .execute("DELETE FROM console_sessions WHERE token_hash = ?1", params![token_hash])
            .map_err(storage)?;
        Ok(())
    }

    fn set_password(&self, account: AccountId, phc: Option<&str>) -> Result<(), ConsoleError> {
        let mut conn = self.connection(ConsoleError::Storage)?;
        let tx = conn.transaction().map_err(storage)?;
        match phc {
            Some(phc) => tx.execute(
                "INSERT INTO console_passwords (account_id, phc, set_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account_id) DO UPDATE SET phc = excluded.phc, set_at = excluded.set_at",
                params![account.0, phc, engine::stamp::now()],
            ),
            None => tx.execute("DELETE FROM console_passwords WHERE account_id = ?1", params![account.0]),
        }
        .map_err(storage)?;
        tx.execute("DELETE FROM console_sessions WHERE account_id = ?1", params![account.0]).map_err(storage)?;
        tx.commit().map_err(storage)
    }

    fn password(&self, account: AccountId) -> Result<Option<String>, ConsoleError> {
        self.connection(ConsoleError::Storage)?
            .query_row("SELECT phc FROM console_passwords WHERE account_id = ?1", params![account.0], |r| r.get(0))
            .optional()
            .map_err(storage)
    }

    fn note_failure(&self, subject: &str, now: i64, since: i64) -> Result<u32, ConsoleError> {
        let mut conn = self.connection(ConsoleError::Storage)?;
        let tx = conn.transaction().map_err(storage)?;
        tx.execute("INSERT INTO console_failures (subject, at) VALUES (?1, ?2)", params![subject, now])
            .map_err(storage)?;
        let count = tx
            .query_row(
                "SELECT COUNT(*) FROM console_failures WHERE subject = ?1 AND at >= ?2",
                params![subject, since],
                |r| r.get(0),
            )
            .map_err(storage)?;
        tx.commit().map_err(storage)?;
        Ok(count)
    }

    fn failures(&self, subject: &str, since: i64) -> Result<u32, ConsoleError> {
        self.connection(ConsoleError::Storage)?
            .query_row(
                "SELECT COUNT(*) FROM console_failures WHERE subject = ?1 AND at >= ?2",
                params![subject, since],
                |r| r.get(0),
            )
            .map_err(storage)
    }

    fn clear_failures(&self, subject: &str) -> Result<(), ConsoleError> {
        self.connection(ConsoleError::Storage)?
            .execute("DELETE FROM console_failures WHERE subject = ?1", params![subject])
            .map_err(storage)?;
        Ok(())
    }

    fn purge_sessions(&self, idle_before: i64, created_before: i64, failures_before: i64) -> Result<u64, ConsoleError> {
        let mut conn = self.connection(ConsoleError::Storage)?;
        let tx = conn.transaction().map_err(storage)?;
        let gone = tx
            .execute(
                "DELETE FROM console_sessions WHERE seen_at < ?1 OR created_at < ?2",
                params![idle_before, created_before],
            )
            .map_err(storage)?;
        tx.execute("DELETE FROM console_failures WHERE at < ?1", params![failures_before]).map_err(storage)?;
        tx.commit().map_err(storage)?;
        Ok(gone as u64)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn console_conforms() {
        let (_dir, store) = crate::sqlite::scratch_store();
        crate::conformance::console::sessions_passwords_and_failures(&store);
    }
}
