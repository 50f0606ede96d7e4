//! Keyword libraries in PostgreSQL (tables `keyword_libs`, `keywords`, and `keyword_version`,
//! which every change bumps in the same transaction: its row lock also queues the writers).

use super::{parse_name, Fault, OrFault, PostgresStore};
use crate::name_of;
use engine::accounts::AccountId;
use engine::decision::{Label, Suggestion};
use engine::keywords::{Keyword, KeywordError, KeywordLibrary, KeywordRepository};
use engine::stamp::now;
use postgres::{GenericClient, Row, Transaction};

const LIB_COLUMNS: &str = "lib_id, owner_id, name, label, suggestion, created_at";

fn library_from_row(row: &Row) -> Result<KeywordLibrary, Fault> {
    Ok(KeywordLibrary {
        lib_id: row.try_get(0)?,
        owner: AccountId(row.try_get(1)?),
        lib_name: row.try_get(2)?,
        label: parse_name(row.try_get(3)?)?,
        suggestion: parse_name(row.try_get(4)?)?,
        created_at: row.try_get(5)?,
    })
}

fn keyword_from_row(row: &Row) -> Result<Keyword, Fault> {
    Ok(Keyword {
        sample_id: row.try_get(0)?,
        lib_id: row.try_get(1)?,
        content: row.try_get(2)?,
        created_at: row.try_get(3)?,
    })
}

fn bump(tx: &mut Transaction<'_>) -> Result<(), KeywordError> {
    tx.execute("UPDATE keyword_version SET version = version + 1 WHERE id = 1", &[]).db::<KeywordError>()?;
    Ok(())
}

fn owned(tx: &mut impl GenericClient, owner: AccountId, lib_id: &str) -> Result<(), KeywordError> {
    tx.query_opt("SELECT 1 FROM keyword_libs WHERE owner_id = $1 AND lib_id = $2", &[&owner.0, &lib_id])
        .db::<KeywordError>()?
        .map(drop)
        .ok_or_else(|| KeywordError::NotFound(lib_id.into()))
}

impl KeywordRepository for PostgresStore {
    fn create_keyword_library(
        &self,
        owner: AccountId,
        name: &str,
        label: Label,
        suggestion: Suggestion,
    ) -> Result<KeywordLibrary, KeywordError> {
        let library = KeywordLibrary::new(owner, name, label, suggestion)?;
        let mut conn = self.conn::<KeywordError>()?;
        let mut tx = conn.transaction().db::<KeywordError>()?;
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO keyword_libs ({LIB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
                ),
                &[&library.lib_id, &owner.0, &name, &name_of(&label), &name_of(&suggestion), &library.created_at],
            )
            .db::<KeywordError>()?;
        if inserted == 0 {
            return Err(KeywordError::Exists(name.into()));
        }
        bump(&mut tx)?;
        tx.commit().db::<KeywordError>()?;
        Ok(library)
    }

    fn keyword_libraries(&self, owner: AccountId) -> Result<Vec<KeywordLibrary>, KeywordError> {
        let rows = self
            .conn::<KeywordError>()?
            .query(
                &format!("SELECT {LIB_COLUMNS} FROM keyword_libs WHERE owner_id = $1 ORDER BY created_at, name"),
                &[&owner.0],
            )
            .db::<KeywordError>()?;
        Ok(rows.iter().map(library_from_row).collect::<Result<_, _>>()?)
    }

    fn delete_keyword_library(&self, owner: AccountId, lib_id: &str) -> Result<(), KeywordError> {
        let mut conn = self.conn::<KeywordError>()?;
        let mut tx = conn.transaction().db::<KeywordError>()?;
        owned(&mut tx, owner, lib_id)?;
        tx.execute("DELETE FROM keyword_libs WHERE lib_id = $1", &[&lib_id]).db::<KeywordError>()?;
        bump(&mut tx)?;
        tx.commit().db()
    }

    fn add_keywords(&self, owner: AccountId, lib_id: &str, words: &[String]) -> Result<Vec<Keyword>, KeywordError> {
        let mut conn = self.conn::<KeywordError>()?;
        let mut tx = conn.transaction().db::<KeywordError>()?;
        owned(&mut tx, owner, lib_id)?;
        let created_at = now();
        let insert = tx
            .prepare(
                "INSERT INTO keywords (sample_id, lib_id, content, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
            )
            .db::<KeywordError>()?;
        let mut added = Vec::new();
        for word in words {
            let keyword = Keyword::new(lib_id, word, created_at);
            if tx.execute(&insert, &[&keyword.sample_id, &lib_id, word, &created_at]).db::<KeywordError>()? == 1 {
                added.push(keyword);
            }
        }
        bump(&mut tx)?;
        tx.commit().db::<KeywordError>()?;
        Ok(added)
    }

    fn keywords(
        &self,
        owner: AccountId,
        lib_id: &str,
        containing: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Keyword>, u64), KeywordError> {
        let mut conn = self.conn::<KeywordError>()?;
        let mut tx = conn.build_transaction().read_only(true).start().db::<KeywordError>()?;
        owned(&mut tx, owner, lib_id)?;
        let total: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM keywords WHERE lib_id = $1 AND strpos(content, $2) > 0",
                &[&lib_id, &containing],
            )
            .db::<KeywordError>()?
            .get(0);
        let rows = tx
            .query(
                "SELECT sample_id, lib_id, content, created_at FROM keywords WHERE lib_id = $1
                 AND strpos(content, $2) > 0 ORDER BY seq LIMIT $3 OFFSET $4",
                &[&lib_id, &containing, &(limit as i64), &(offset as i64)],
            )
            .db::<KeywordError>()?;
        Ok((rows.iter().map(keyword_from_row).collect::<Result<_, _>>()?, total as u64))
    }

    fn delete_keywords(&self, owner: AccountId, sample_ids: &[String]) -> Result<u64, KeywordError> {
        let mut conn = self.conn::<KeywordError>()?;
        let mut tx = conn.transaction().db::<KeywordError>()?;
        let mut deleted = 0;
        for id in sample_ids {
            let n = tx
                .execute(
                    "DELETE FROM keywords WHERE sample_id = $1
                     AND lib_id IN (SELECT lib_id FROM keyword_libs WHERE owner_id = $2)",
                    &[id, &owner.0],
                )
                .db::<KeywordError>()?;
            if n == 0 {
                return Err(KeywordError::SampleNotFound(id.clone()));
            }
            deleted += n;
        }
        bump(&mut tx)?;
        tx.commit().db::<KeywordError>()?;
        Ok(deleted)
    }

    fn keywords_version(&self) -> Result<i64, KeywordError> {
        let row = self
            .conn::<KeywordError>()?
            .query_typed_one("SELECT version FROM keyword_version WHERE id = 1", &[])
            .db::<KeywordError>()?;
        Ok(row.get(0))
    }

    fn all_keywords(&self) -> Result<Vec<(KeywordLibrary, Vec<String>)>, KeywordError> {
        let mut conn = self.conn::<KeywordError>()?;
        // One snapshot: the libraries and their words as of one moment.
        let mut tx = conn
            .build_transaction()
            .read_only(true)
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .start()
            .db::<KeywordError>()?;
        let libraries = tx.query(&format!("SELECT {LIB_COLUMNS} FROM keyword_libs"), &[]).db::<KeywordError>()?;
        let words = tx.prepare("SELECT content FROM keywords WHERE lib_id = $1").db::<KeywordError>()?;
        let mut all = Vec::with_capacity(libraries.len());
        for row in &libraries {
            let library = library_from_row(row)?;
            let rows = tx.query(&words, &[&library.lib_id]).db::<KeywordError>()?;
            all.push((library, rows.iter().map(|r| r.get(0)).collect()));
        }
        Ok(all)
    }
}
