//! The console's sessions, passwords and failed sign-ins in PostgreSQL (tables
//! `console_sessions`, `console_passwords`, `console_failures`).

use super::{OrFault, PostgresStore};
use engine::accounts::AccountId;
use engine::console::{ConsoleError, ConsoleRepository, Session, SessionRules, SEEN_RESOLUTION_SECS};

impl ConsoleRepository for PostgresStore {
    fn open_session(&self, token_hash: &str, session: &Session) -> Result<(), ConsoleError> {
        self.conn::<ConsoleError>()?
            .execute(
                "INSERT INTO console_sessions (token_hash, account_id, csrf, created_at, seen_at) VALUES ($1, $2, $3, $4, $5)",
                &[&token_hash, &session.account.0, &session.csrf, &session.created_at, &session.seen_at],
            )
            .db::<ConsoleError>()?;
        Ok(())
    }

    fn session(&self, token_hash: &str, rules: &SessionRules, now: i64) -> Result<Option<Session>, ConsoleError> {
        let mut conn = self.conn::<ConsoleError>()?;
        let Some(row) = conn
            .query_opt(
                "SELECT account_id, csrf, created_at, seen_at FROM console_sessions WHERE token_hash = $1",
                &[&token_hash],
            )
            .db::<ConsoleError>()?
        else {
            return Ok(None);
        };
        let mut session =
            Session { account: AccountId(row.get(0)), csrf: row.get(1), created_at: row.get(2), seen_at: row.get(3) };
        if !rules.is_live(&session, now) {
            conn.execute("DELETE FROM console_sessions WHERE token_hash = $1", &[&token_hash]).db::<ConsoleError>()?;
            return Ok(None);
        }
        if now - session.seen_at >= SEEN_RESOLUTION_SECS {
            conn.execute("UPDATE console_sessions SET seen_at = $2 WHERE token_hash = $1", &[&token_hash, &now])
                .db::<ConsoleError>()?;
            session.seen_at = now;
        }
        Ok(Some(session))
    }

    fn close_session(&self, token_hash: &str) -> Result<(), ConsoleError> {
        self.conn::<ConsoleError>()?
            .execute("DELETE FROM console_sessions WHERE token_hash = $1", &[&token_hash])
            .db::<ConsoleError>()?;
        Ok(())
    }

    fn set_password(&self, account: AccountId, phc: Option<&str>) -> Result<(), ConsoleError> {
        let mut conn = self.conn::<ConsoleError>()?;
        let mut tx = conn.transaction().db::<ConsoleError>()?;
        match phc {
            Some(phc) => tx.execute(
                "INSERT INTO console_passwords (account_id, phc, set_at) VALUES ($1, $2, $3)
                 ON CONFLICT (account_id) DO UPDATE SET phc = excluded.phc, set_at = excluded.set_at",
                &[&account.0, &phc, &engine::stamp::now()],
            ),
            None => tx.execute("DELETE FROM console_passwords WHERE account_id = $1", &[&account.0]),
        }
        .db::<ConsoleError>()?;
        tx.execute("DELETE FROM console_sessions WHERE account_id = $1", &[&account.0]).db::<ConsoleError>()?;
        tx.commit().db()
    }

    fn password(&self, account: AccountId) -> Result<Option<String>, ConsoleError> {
        let row = self
            .conn::<ConsoleError>()?
            .query_opt("SELECT phc FROM console_passwords WHERE account_id = $1", &[&account.0])
            .db::<ConsoleError>()?;
        Ok(row.map(|r| r.get(0)))
    }

    fn note_failure(&self, subject: &str, now: i64, since: i64) -> Result<u32, ConsoleError> {
        let mut conn = self.conn::<ConsoleError>()?;
        let mut tx = conn.transaction().db::<ConsoleError>()?;
        tx.execute("INSERT INTO console_failures (subject, at) VALUES ($1, $2)", &[&subject, &now])
            .db::<ConsoleError>()?;
        let count: i64 = tx
            .query_one("SELECT COUNT(*) FROM console_failures WHERE subject = $1 AND at >= $2", &[&subject, &since])
            .db::<ConsoleError>()?
            .get(0);
        tx.commit().db::<ConsoleError>()?;
        Ok(count as u32)
    }

    fn failures(&self, subject: &str, since: i64) -> Result<u32, ConsoleError> {
        let count: i64 = self
            .conn::<ConsoleError>()?
            .query_one("SELECT COUNT(*) FROM console_failures WHERE subject = $1 AND at >= $2", &[&subject, &since])
            .db::<ConsoleError>()?
            .get(0);
        Ok(count as u32)
    }

    fn clear_failures(&self, subject: &str) -> Result<(), ConsoleError> {
        self.conn::<ConsoleError>()?
            .execute("DELETE FROM console_failures WHERE subject = $1", &[&subject])
            .db::<ConsoleError>()?;
        Ok(())
    }

    fn purge_sessions(&self, idle_before: i64, created_before: i64, failures_before: i64) -> Result<u64, ConsoleError> {
        let mut conn = self.conn::<ConsoleError>()?;
        let mut tx = conn.transaction().db::<ConsoleError>()?;
        let gone = tx
            .execute(
                "DELETE FROM console_sessions WHERE seen_at < $1 OR created_at < $2",
                &[&idle_before, &created_before],
            )
            .db::<ConsoleError>()?;
        tx.execute("DELETE FROM console_failures WHERE at < $1", &[&failures_before]).db::<ConsoleError>()?;
        tx.commit().db::<ConsoleError>()?;
        Ok(gone)
    }
}
