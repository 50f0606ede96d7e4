//! Image libraries and their samples in SQLite (tables `image_libs`, `image_samples`, and the
//! removal log `image_sample_removals` that in-memory indexes follow).

use crate::name_of;
use crate::sqlite::{parse_name, SqliteStore};
use engine::accounts::AccountId;
use engine::decision::Label;
use engine::library::{
    pack_hashes, unpack_hashes, Hash256, ImageLibrary, LibAction, LibraryChanges, LibraryCursor, LibraryError,
    LibraryRepository, Sample,
};
use rusqlite::{params, OptionalExtension, Row};

fn storage(e: impl std::fmt::Display) -> LibraryError {
    LibraryError::Storage(e.to_string())
}

const LIB_COLUMNS: &str = "lib_id, owner_id, name, label, action, created_at";
const SAMPLE_COLUMNS: &str = "seq, image_id, lib_id, name, hashes, created_at";

fn library_from_row(row: &Row<'_>) -> rusqlite::Result<ImageLibrary> {
    Ok(ImageLibrary {
        lib_id: row.get(0)?,
        owner: AccountId(row.get(1)?),
        lib_name: row.get(2)?,
        label: parse_name(&row.get::<_, String>(3)?)?,
        action: parse_name(&row.get::<_, String>(4)?)?,
        created_at: row.get(5)?,
    })
}

fn sample_from_row(row: &Row<'_>) -> rusqlite::Result<Sample> {
    Ok(Sample {
        seq: row.get(0)?,
        image_id: row.get(1)?,
        lib_id: row.get(2)?,
        name: row.get(3)?,
        hashes: unpack_hashes(&row.get::<_, Vec<u8>>(4)?),
        created_at: row.get(5)?,
    })
}

impl LibraryRepository for SqliteStore {
    fn create_library(
        &self,
        owner: AccountId,
        name: &str,
        label: Label,
        action: LibAction,
    ) -> Result<ImageLibrary, LibraryError> {
        let library = ImageLibrary::new(owner, name, label, action)?;
        let inserted = self
            .connection(LibraryError::Storage)?
            .execute(
                &format!(
                    "INSERT INTO image_libs ({LIB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING"
                ),
                params![library.lib_id, owner.0, name, name_of(&label), name_of(&action), library.created_at],
            )
            .map_err(storage)?;
        if inserted == 0 {
            return Err(LibraryError::Exists(name.into()));
        }
        Ok(library)
    }

    fn libraries(&self, owner: AccountId) -> Result<Vec<ImageLibrary>, LibraryError> {
        let conn = self.connection(LibraryError::Storage)?;
        let mut stmt = conn
            .prepare(&format!("SELECT {LIB_COLUMNS} FROM image_libs WHERE owner_id = ?1 ORDER BY created_at, name"))
            .map_err(storage)?;
        let rows = stmt.query_map([owner.0], library_from_row).map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn library(&self, owner: AccountId, lib_id: &str) -> Result<ImageLibrary, LibraryError> {
        self.connection(LibraryError::Storage)?
            .query_row(
                &format!("SELECT {LIB_COLUMNS} FROM image_libs WHERE owner_id = ?1 AND lib_id = ?2"),
                params![owner.0, lib_id],
                library_from_row,
            )
            .optional()
            .map_err(storage)?
            .ok_or_else(|| LibraryError::NotFound(lib_id.into()))
    }

    fn delete_library(&self, owner: AccountId, lib_id: &str) -> Result<(), LibraryError> {
        self.library(owner, lib_id)?;
        let mut conn = self.connection(LibraryError::Storage)?;
        let tx = conn.transaction().map_err(storage)?;
        // Samples first, one by one through the trigger that logs removals.
        tx.execute("DELETE FROM image_samples WHERE lib_id = ?1", [lib_id]).map_err(storage)?;
        tx.execute("DELETE FROM image_libs WHERE owner_id = ?1 AND lib_id = ?2", params![owner.0, lib_id])
            .map_err(storage)?;
        tx.commit().map_err(storage)
    }

    fn add_sample(
        &self,
        owner: AccountId,
        lib_id: &str,
        name: &str,
        hashes: &[Hash256],
    ) -> Result<Sample, LibraryError> {
        self.library(owner, lib_id)?;
        let sample = Sample::new(lib_id, name, hashes)?;
        let conn = self.connection(LibraryError::Storage)?;
        conn.execute(
            "INSERT INTO image_samples (image_id, lib_id, name, hashes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![sample.image_id, lib_id, name, pack_hashes(hashes), sample.created_at],
        )
        .map_err(storage)?;
        Ok(Sample { seq: conn.last_insert_rowid(), ..sample })
    }

    fn samples(
        &self,
        owner: AccountId,
        lib_id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Sample>, u64), LibraryError> {
        self.library(owner, lib_id)?;
        let conn = self.connection(LibraryError::Storage)?;
        let total: u64 = conn
            .query_row("SELECT COUNT(*) FROM image_samples WHERE lib_id = ?1", [lib_id], |r| r.get(0))
            .map_err(storage)?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {SAMPLE_COLUMNS} FROM image_samples WHERE lib_id = ?1 ORDER BY seq LIMIT {limit} OFFSET {offset}"
            ))
            .map_err(storage)?;
        let samples = stmt.query_map([lib_id], sample_from_row).map_err(storage)?.collect::<Result<_, _>>();
        Ok((samples.map_err(storage)?, total))
    }

    fn delete_sample(&self, owner: AccountId, image_id: &str) -> Result<(), LibraryError> {
        let deleted = self
            .connection(LibraryError::Storage)?
            .execute(
                "DELETE FROM image_samples WHERE image_id = ?1
                 AND lib_id IN (SELECT lib_id FROM image_libs WHERE owner_id = ?2)",
                params![image_id, owner.0],
            )
            .map_err(storage)?;
        if deleted == 0 {
            return Err(LibraryError::SampleNotFound(image_id.into()));
        }
        Ok(())
    }

    fn changes(&self, cursor: LibraryCursor) -> Result<LibraryChanges, LibraryError> {
        let mut conn = self.connection(LibraryError::Storage)?;
        // One read transaction: the cursor returned matches exactly what was read.
        let tx = conn.transaction().map_err(storage)?;
        let added = {
            let mut stmt = tx
                .prepare(&format!("SELECT {SAMPLE_COLUMNS} FROM image_samples WHERE seq > ?1 ORDER BY seq"))
                .map_err(storage)?;
            let rows = stmt.query_map([cursor.sample_seq], sample_from_row).map_err(storage)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(storage)?
        };
        let removals = {
            let mut stmt = tx
                .prepare("SELECT seq, sample_seq FROM image_sample_removals WHERE seq > ?1 ORDER BY seq")
                .map_err(storage)?;
            let rows = stmt
                .query_map([cursor.removal_seq], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                .map_err(storage)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(storage)?
        };
        let libraries = if added.is_empty() && removals.is_empty() {
            Vec::new()
        } else {
            let mut stmt = tx.prepare(&format!("SELECT {LIB_COLUMNS} FROM image_libs")).map_err(storage)?;
            let rows = stmt.query_map([], library_from_row).map_err(storage)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(storage)?
        };
        let sample_seq: i64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'image_samples'", [], |r| {
                r.get(0)
            })
            .map_err(storage)?;
        let next = LibraryCursor {
            sample_seq: sample_seq.max(cursor.sample_seq),
            removal_seq: removals.last().map_or(cursor.removal_seq, |(seq, _)| *seq),
        };
        Ok(LibraryChanges {
            libraries,
            added,
            removed: removals.into_iter().map(|(_, sample)| sample).collect(),
            cursor: next,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn libraries_samples_and_a_matcher_that_follows_changes() {
        crate::conformance::libraries::libraries_samples_and_a_matcher_that_follows_changes(
            &crate::sqlite::scratch_store().1,
        );
    }
}
