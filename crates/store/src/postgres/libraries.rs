//! Image libraries and their samples in PostgreSQL (tables `image_libs`, `image_samples`, and
//! the removal log `image_sample_removals` that in-memory indexes follow).
//!
//! Readers follow both tables by sequence number, so a number must never become visible after
//! a larger one: a reader would move its cursor past it and miss the row. Every writer of
//! samples or removals therefore holds [`lock::SAMPLES`] until it commits, so numbers commit in
//! the order they are drawn. Samples are added one at a time by people, never in bulk, so the
//! queue costs nothing that matters.

use super::{lock, lock_for_transaction, parse_name, Fault, OrFault, PostgresStore};
use crate::name_of;
use engine::accounts::AccountId;
use engine::decision::Label;
use engine::library::{
    pack_hashes, unpack_hashes, Hash256, ImageLibrary, LibAction, LibraryChanges, LibraryCursor, LibraryError,
    LibraryRepository, Sample,
};
use postgres::{GenericClient, IsolationLevel, Row};

const LIB_COLUMNS: &str = "lib_id, owner_id, name, label, action, created_at";
const SAMPLE_COLUMNS: &str = "seq, image_id, lib_id, name, hashes, created_at";

fn library_from_row(row: &Row) -> Result<ImageLibrary, Fault> {
    Ok(ImageLibrary {
        lib_id: row.try_get(0)?,
        owner: AccountId(row.try_get(1)?),
        lib_name: row.try_get(2)?,
        label: parse_name(row.try_get(3)?)?,
        action: parse_name(row.try_get(4)?)?,
        created_at: row.try_get(5)?,
    })
}

fn sample_from_row(row: &Row) -> Result<Sample, Fault> {
    Ok(Sample {
        seq: row.try_get(0)?,
        image_id: row.try_get(1)?,
        lib_id: row.try_get(2)?,
        name: row.try_get(3)?,
        hashes: unpack_hashes(row.try_get(4)?),
        created_at: row.try_get(5)?,
    })
}

fn library_in(conn: &mut impl GenericClient, owner: AccountId, lib_id: &str) -> Result<ImageLibrary, LibraryError> {
    let row = conn
        .query_opt(
            &format!("SELECT {LIB_COLUMNS} FROM image_libs WHERE owner_id = $1 AND lib_id = $2"),
            &[&owner.0, &lib_id],
        )
        .db::<LibraryError>()?
        .ok_or_else(|| LibraryError::NotFound(lib_id.into()))?;
    Ok(library_from_row(&row)?)
}

impl LibraryRepository for PostgresStore {
    fn create_library(
        &self,
        owner: AccountId,
        name: &str,
        label: Label,
        action: LibAction,
    ) -> Result<ImageLibrary, LibraryError> {
        let library = ImageLibrary::new(owner, name, label, action)?;
        let inserted = self
            .conn::<LibraryError>()?
            .execute(
                &format!(
                    "INSERT INTO image_libs ({LIB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
                ),
                &[&library.lib_id, &owner.0, &name, &name_of(&label), &name_of(&action), &library.created_at],
            )
            .db::<LibraryError>()?;
        if inserted == 0 {
            return Err(LibraryError::Exists(name.into()));
        }
        Ok(library)
    }

    fn libraries(&self, owner: AccountId) -> Result<Vec<ImageLibrary>, LibraryError> {
        let rows = self
            .conn::<LibraryError>()?
            .query(
                &format!("SELECT {LIB_COLUMNS} FROM image_libs WHERE owner_id = $1 ORDER BY created_at, name"),
                &[&owner.0],
            )
            .db::<LibraryError>()?;
        Ok(rows.iter().map(library_from_row).collect::<Result<_, _>>()?)
    }

    fn library(&self, owner: AccountId, lib_id: &str) -> Result<ImageLibrary, LibraryError> {
        library_in(&mut *self.conn::<LibraryError>()?, owner, lib_id)
    }

    fn delete_library(&self, owner: AccountId, lib_id: &str) -> Result<(), LibraryError> {
        let mut conn = self.conn::<LibraryError>()?;
        let mut tx = conn.transaction().db::<LibraryError>()?;
        library_in(&mut tx, owner, lib_id)?;
        lock_for_transaction(&mut tx, lock::SAMPLES)?;
        // Samples first, row by row through the trigger that logs removals.
        tx.execute("DELETE FROM image_samples WHERE lib_id = $1", &[&lib_id]).db::<LibraryError>()?;
        tx.execute("DELETE FROM image_libs WHERE owner_id = $1 AND lib_id = $2", &[&owner.0, &lib_id])
            .db::<LibraryError>()?;
        tx.commit().db()
    }

    fn add_sample(
        &self,
        owner: AccountId,
        lib_id: &str,
        name: &str,
        hashes: &[Hash256],
    ) -> Result<Sample, LibraryError> {
        let mut conn = self.conn::<LibraryError>()?;
        let mut tx = conn.transaction().db::<LibraryError>()?;
        library_in(&mut tx, owner, lib_id)?;
        let sample = Sample::new(lib_id, name, hashes)?;
        lock_for_transaction(&mut tx, lock::SAMPLES)?;
        let row = tx
            .query_one(
                "INSERT INTO image_samples (image_id, lib_id, name, hashes, created_at) VALUES ($1, $2, $3, $4, $5)
                 RETURNING seq",
                &[&sample.image_id, &lib_id, &name, &pack_hashes(hashes), &sample.created_at],
            )
            .db::<LibraryError>()?;
        tx.commit().db::<LibraryError>()?;
        Ok(Sample { seq: row.get(0), ..sample })
    }

    fn samples(
        &self,
        owner: AccountId,
        lib_id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Sample>, u64), LibraryError> {
        let mut conn = self.conn::<LibraryError>()?;
        let mut tx = conn.build_transaction().read_only(true).start().db::<LibraryError>()?;
        library_in(&mut tx, owner, lib_id)?;
        let total: i64 = tx
            .query_one("SELECT COUNT(*) FROM image_samples WHERE lib_id = $1", &[&lib_id])
            .db::<LibraryError>()?
            .get(0);
        let rows = tx
            .query(
                &format!(
                    "SELECT {SAMPLE_COLUMNS} FROM image_samples WHERE lib_id = $1 ORDER BY seq LIMIT $2 OFFSET $3"
                ),
                &[&lib_id, &(limit as i64), &(offset as i64)],
            )
            .db::<LibraryError>()?;
        Ok((rows.iter().map(sample_from_row).collect::<Result<_, _>>()?, total as u64))
    }

    fn delete_sample(&self, owner: AccountId, image_id: &str) -> Result<(), LibraryError> {
        let mut conn = self.conn::<LibraryError>()?;
        let mut tx = conn.transaction().db::<LibraryError>()?;
        lock_for_transaction(&mut tx, lock::SAMPLES)?;
        let deleted = tx
            .execute(
                "DELETE FROM image_samples WHERE image_id = $1
                 AND lib_id IN (SELECT lib_id FROM image_libs WHERE owner_id = $2)",
                &[&image_id, &owner.0],
            )
            .db::<LibraryError>()?;
        if deleted == 0 {
            return Err(LibraryError::SampleNotFound(image_id.into()));
        }
        tx.commit().db()
    }

    fn changes(&self, cursor: LibraryCursor) -> Result<LibraryChanges, LibraryError> {
        let mut conn = self.conn::<LibraryError>()?;
        // One snapshot: the cursor returned matches exactly what was read.
        let mut tx = conn
            .build_transaction()
            .read_only(true)
            .isolation_level(IsolationLevel::RepeatableRead)
            .start()
            .db::<LibraryError>()?;
        let added = tx
            .query(
                &format!("SELECT {SAMPLE_COLUMNS} FROM image_samples WHERE seq > $1 ORDER BY seq"),
                &[&cursor.sample_seq],
            )
            .db::<LibraryError>()?;
        let added = added.iter().map(sample_from_row).collect::<Result<Vec<_>, _>>()?;
        let removals = tx
            .query(
                "SELECT seq, sample_seq FROM image_sample_removals WHERE seq > $1 ORDER BY seq",
                &[&cursor.removal_seq],
            )
            .db::<LibraryError>()?;
        let removals: Vec<(i64, i64)> = removals.iter().map(|r| (r.get(0), r.get(1))).collect();
        let libraries = if added.is_empty() && removals.is_empty() {
            Vec::new()
        } else {
            let rows = tx.query(&format!("SELECT {LIB_COLUMNS} FROM image_libs"), &[]).db::<LibraryError>()?;
            rows.iter().map(library_from_row).collect::<Result<_, _>>()?
        };
        // A sample added and removed again since the cursor shows only in the removals: the
        // cursor still moves past it.
        let last_removed = removals.iter().map(|(_, sample)| *sample).max().unwrap_or(0);
        let next = LibraryCursor {
            sample_seq: added.last().map_or(cursor.sample_seq, |s| s.seq).max(last_removed).max(cursor.sample_seq),
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
