//! Keyword libraries in SQLite (tables `keyword_libs`, `keywords`, and `keyword_version`, which
//! every change bumps in the same transaction).

use crate::name_of;
use crate::sqlite::{parse_name, SqliteStore};
use engine::accounts::AccountId;
use engine::decision::{Label, Suggestion};
use engine::keywords::{Keyword, KeywordError, KeywordLibrary, KeywordRepository};
use engine::stamp::now;
use rusqlite::{params, OptionalExtension, Row, Transaction};

fn storage(e: impl std::fmt::Display) -> KeywordError {
    KeywordError::Storage(e.to_string())
}

const LIB_COLUMNS: &str = "lib_id, owner_id, name, label, suggestion, created_at";

fn library_from_row(row: &Row<'_>) -> rusqlite::Result<KeywordLibrary> {
    Ok(KeywordLibrary {
        lib_id: row.get(0)?,
        owner: AccountId(row.get(1)?),
        lib_name: row.get(2)?,
        label: parse_name(&row.get::<_, String>(3)?)?,
        suggestion: parse_name(&row.get::<_, String>(4)?)?,
        created_at: row.get(5)?,
    })
}

fn keyword_from_row(row: &Row<'_>) -> rusqlite::Result<Keyword> {
    Ok(Keyword { sample_id: row.get(0)?, lib_id: row.get(1)?, content: row.get(2)?, created_at: row.get(3)? })
}

fn bump(tx: &Transaction<'_>) -> Result<(), KeywordError> {
    tx.execute("UPDATE keyword_version SET version = version + 1 WHERE id = 1", []).map_err(storage)?;
    Ok(())
}

fn owned(tx: &Transaction<'_>, owner: AccountId, lib_id: &str) -> Result<(), KeywordError> {
    tx.query_row("SELECT 1 FROM keyword_libs WHERE owner_id = ?1 AND lib_id = ?2", params![owner.0, lib_id], |_| Ok(()))
        .optional()
        .map_err(storage)?
        .ok_or_else(|| KeywordError::NotFound(lib_id.into()))
}

impl KeywordRepository for SqliteStore {
    fn create_keyword_library(
        &self,
        owner: AccountId,
        name: &str,
        label: Label,
        suggestion: Suggestion,
    ) -> Result<KeywordLibrary, KeywordError> {
        let library = KeywordLibrary::new(owner, name, label, suggestion)?;
        let mut conn = self.connection(KeywordError::Storage)?;
        let tx = conn.transaction().map_err(storage)?;
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO keyword_libs ({LIB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING"
                ),
                params![library.lib_id, owner.0, name, name_of(&label), name_of(&suggestion), library.created_at],
            )
            .map_err(storage)?;
        if inserted == 0 {
            return Err(KeywordError::Exists(name.into()));
        }
        bump(&tx)?;
        tx.commit().map_err(storage)?;
        Ok(library)
    }

    fn keyword_libraries(&self, owner: AccountId) -> Result<Vec<KeywordLibrary>, KeywordError> {
        let conn = self.connection(KeywordError::Storage)?;
        let mut stmt = conn
            .prepare(&format!("SELECT {LIB_COLUMNS} FROM keyword_libs WHERE owner_id = ?1 ORDER BY created_at, name"))
            .map_err(storage)?;
        let rows = stmt.query_map([owner.0], library_from_row).map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn delete_keyword_library(&self, owner: AccountId, lib_id: &str) -> Result<(), KeywordError> {
        let mut conn = self.connection(KeywordError::Storage)?;
        let tx = conn.transaction().map_err(storage)?;
        owned(&tx, owner, lib_id)?;
        tx.execute("DELETE FROM keywords WHERE lib_id = ?1", [lib_id]).map_err(storage)?;
        tx.execute("DELETE FROM keyword_libs WHERE lib_id = ?1", [lib_id]).map_err(storage)?;
        bump(&tx)?;
        tx.commit().map_err(storage)
    }

    fn add_keywords(&self, owner: AccountId, lib_id: &str, words: &[String]) -> Result<Vec<Keyword>, KeywordError> {
        let mut conn = self.connection(KeywordError::Storage)?;
        let tx = conn.transaction().map_err(storage)?;
        owned(&tx, owner, lib_id)?;
        let created_at = now();
        let mut added = Vec::new();
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO keywords (sample_id, lib_id, content, created_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT DO NOTHING",
                )
                .map_err(storage)?;
            for word in words {
                let keyword = Keyword::new(lib_id, word, created_at);
                if insert.execute(params![keyword.sample_id, lib_id, word, created_at]).map_err(storage)? == 1 {
                    added.push(keyword);
                }
            }
        }
        bump(&tx)?;
        tx.commit().map_err(storage)?;
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
        let mut conn = self.connection(KeywordError::Storage)?;
        let tx = conn.transaction().map_err(storage)?;
        owned(&tx, owner, lib_id)?;
        let total: u64 = tx
            .query_row(
                "SELECT COUNT(*) FROM keywords WHERE lib_id = ?1 AND instr(content, ?2) > 0",
                [lib_id, containing],
                |r| r.get(0),
            )
            .map_err(storage)?;
        let page = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT sample_id, lib_id, content, created_at FROM keywords WHERE lib_id = ?1
                     AND instr(content, ?2) > 0 ORDER BY rowid LIMIT {limit} OFFSET {offset}"
                ))
                .map_err(storage)?;
            let rows = stmt.query_map([lib_id, containing], keyword_from_row).map_err(storage)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(storage)?
        };
        Ok((page, total))
    }

    fn delete_keywords(&self, owner: AccountId, sample_ids: &[String]) -> Result<u64, KeywordError> {
        let mut conn = self.connection(KeywordError::Storage)?;
        let tx = conn.transaction().map_err(storage)?;
        let mut deleted = 0;
        for id in sample_ids {
            let n = tx
                .execute(
                    "DELETE FROM keywords WHERE sample_id = ?1
                     AND lib_id IN (SELECT lib_id FROM keyword_libs WHERE owner_id = ?2)",
                    params![id, owner.0],
                )
                .map_err(storage)?;
            if n == 0 {
                return Err(KeywordError::SampleNotFound(id.clone()));
            }
            deleted += n as u64;
        }
        bump(&tx)?;
        tx.commit().map_err(storage)?;
        Ok(deleted)
    }

    fn keywords_version(&self) -> Result<i64, KeywordError> {
        self.connection(KeywordError::Storage)?
            .query_row("SELECT version FROM keyword_version WHERE id = 1", [], |r| r.get(0))
            .map_err(storage)
    }

    fn all_keywords(&self) -> Result<Vec<(KeywordLibrary, Vec<String>)>, KeywordError> {
        let mut conn = self.connection(KeywordError::Storage)?;
        let tx = conn.transaction().map_err(storage)?;
        let libraries = {
            let mut stmt = tx.prepare(&format!("SELECT {LIB_COLUMNS} FROM keyword_libs")).map_err(storage)?;
            let rows = stmt.query_map([], library_from_row).map_err(storage)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(storage)?
        };
        let mut stmt = tx.prepare("SELECT content FROM keywords WHERE lib_id = ?1").map_err(storage)?;
        let mut all = Vec::with_capacity(libraries.len());
        for library in libraries {
            let words = stmt
                .query_map([&library.lib_id], |r| r.get::<_, String>(0))
                .map_err(storage)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(storage)?;
            all.push((library, words));
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn libraries_keywords_and_a_matcher_that_follows_them() {
        crate::conformance::keywords::libraries_keywords_and_a_matcher_that_follows_them(
            &crate::sqlite::scratch_store().1,
        );
    }
}
