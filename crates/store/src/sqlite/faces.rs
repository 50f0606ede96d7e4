//! Face libraries in SQLite: `face_libs`, `face_people` (each person's centroid, sealed),
//! `face_samples` (each photo's descriptor, sealed), the removal log `face_removals` and
//! `face_version`, which every change bumps in its transaction; changed people carry the new
//! version, so an index reads exactly what changed.

use crate::name_of;
use crate::sqlite::{parse_name, SqliteStore};
use engine::accounts::AccountId;
use engine::faces::{
    centroid, check_descriptor, check_person_name, pack_descriptor, unpack_descriptor, FaceChanges, FaceCounts,
    FaceCursor, FaceError, FaceLibrary, FaceRepository, FaceSample, Person,
};
use rusqlite::{params, OptionalExtension, Row, Transaction};

fn storage(e: impl std::fmt::Display) -> FaceError {
    FaceError::Storage(e.to_string())
}

const LIB_COLUMNS: &str = "lib_id, owner_id, name, label, action, max_distance, created_at";
const SAMPLE_COLUMNS: &str =
    "s.sample_id, p.person_id, p.lib_id, p.name, s.model, s.created_at FROM face_samples s JOIN face_people p ON p.key = s.person_key";

fn library_from_row(row: &Row<'_>) -> rusqlite::Result<FaceLibrary> {
    Ok(FaceLibrary {
        lib_id: row.get(0)?,
        owner: AccountId(row.get(1)?),
        lib_name: row.get(2)?,
        label: parse_name(&row.get::<_, String>(3)?)?,
        action: parse_name(&row.get::<_, String>(4)?)?,
        max_distance: row.get::<_, f64>(5)? as f32,
        created_at: row.get(6)?,
    })
}

fn sample_from_row(row: &Row<'_>) -> rusqlite::Result<FaceSample> {
    Ok(FaceSample {
        sample_id: row.get(0)?,
        person_id: row.get(1)?,
        lib_id: row.get(2)?,
        name: row.get(3)?,
        model: row.get(4)?,
        created_at: row.get(5)?,
    })
}

/// The next version, taken in the transaction that changes something.
fn bump(tx: &Transaction<'_>) -> Result<i64, FaceError> {
    tx.query_row("UPDATE face_version SET version = version + 1 WHERE id = 1 RETURNING version", [], |r| r.get(0))
        .map_err(storage)
}

fn library_in(tx: &Transaction<'_>, owner: AccountId, lib_id: &str) -> Result<FaceLibrary, FaceError> {
    tx.query_row(
        &format!("SELECT {LIB_COLUMNS} FROM face_libs WHERE owner_id = ?1 AND lib_id = ?2"),
        params![owner.0, lib_id],
        library_from_row,
    )
    .optional()
    .map_err(storage)?
    .ok_or_else(|| FaceError::NotFound(lib_id.into()))
}

impl SqliteStore {
    /// Makes a person's centroid again from their photos of the latest enrolment's model (or,
    /// when none is left of it, of the latest photo's), under `version`; removes the person
    /// when no photo is left.
    fn recompute(&self, tx: &Transaction<'_>, key: i64, person_id: &str, version: i64) -> Result<(), FaceError> {
        let model: Option<String> = tx
            .query_row("SELECT model FROM face_samples WHERE person_key = ?1 ORDER BY seq DESC LIMIT 1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(storage)?;
        let Some(latest) = model else {
            tx.execute("DELETE FROM face_people WHERE key = ?1", [key]).map_err(storage)?;
            return Ok(());
        };
        let current: String =
            tx.query_row("SELECT model FROM face_people WHERE key = ?1", [key], |r| r.get(0)).map_err(storage)?;
        let has_current: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM face_samples WHERE person_key = ?1 AND model = ?2)",
                params![key, current],
                |r| r.get(0),
            )
            .map_err(storage)?;
        let model = if has_current { current } else { latest };
        let mut stmt = tx
            .prepare("SELECT sample_id, descriptor FROM face_samples WHERE person_key = ?1 AND model = ?2")
            .map_err(storage)?;
        let sealed = stmt
            .query_map(params![key, model], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .map_err(storage)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(storage)?;
        let descriptors = sealed
            .iter()
            .map(|(id, blob)| Ok(unpack_descriptor(&self.sealer.open(blob, id.as_bytes()).map_err(storage)?)))
            .collect::<Result<Vec<_>, FaceError>>()?;
        let sealed_centroid = self.sealer.seal(&pack_descriptor(&centroid(&descriptors)), person_id.as_bytes());
        tx.execute(
            "UPDATE face_people SET model = ?2, centroid = ?3, version = ?4 WHERE key = ?1",
            params![key, model, sealed_centroid, version],
        )
        .map_err(storage)?;
        Ok(())
    }
}

impl FaceRepository for SqliteStore {
    fn create_face_library(&self, library: &FaceLibrary) -> Result<(), FaceError> {
        let mut conn = self.connection(FaceError::Storage)?;
        let tx = conn.transaction().map_err(storage)?;
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO face_libs ({LIB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING"
                ),
                params![
                    library.lib_id,
                    library.owner.0,
                    library.lib_name,
                    name_of(&library.label),
                    name_of(&library.action),
                    f64::from(library.max_distance),
                    library.created_at
                ],
            )
            .map_err(storage)?;
        if inserted == 0 {
            return Err(FaceError::Exists(library.lib_name.clone()));
        }
        bump(&tx)?;
        tx.commit().map_err(storage)
    }

    fn face_libraries(&self, owner: AccountId) -> Result<Vec<(FaceLibrary, FaceCounts)>, FaceError> {
        let conn = self.connection(FaceError::Storage)?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {LIB_COLUMNS},
                    (SELECT COUNT(*) FROM face_people p WHERE p.lib_id = l.lib_id),
                    (SELECT COUNT(*) FROM face_samples s JOIN face_people p ON p.key = s.person_key WHERE p.lib_id = l.lib_id)
                 FROM face_libs l WHERE owner_id = ?1 ORDER BY created_at, name"
            ))
            .map_err(storage)?;
        let rows = stmt
            .query_map([owner.0], |r| Ok((library_from_row(r)?, FaceCounts { people: r.get(7)?, photos: r.get(8)? })))
            .map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn face_library(&self, owner: AccountId, lib_id: &str) -> Result<FaceLibrary, FaceError> {
        let mut conn = self.connection(FaceError::Storage)?;
        let tx = conn.transaction().map_err(storage)?;
        library_in(&tx, owner, lib_id)
    }

    fn delete_face_library(&self, owner: AccountId, lib_id: &str) -> Result<(), FaceError> {
        let mut conn = self.connection(FaceError::Storage)?;
        let tx = conn.transaction().map_err(storage)?;
        library_in(&tx, owner, lib_id)?;
        tx.execute(
            "DELETE FROM face_samples WHERE person_key IN (SELECT key FROM face_people WHERE lib_id = ?1)",
            [lib_id],
        )
        .map_err(storage)?;
        tx.execute("DELETE FROM face_people WHERE lib_id = ?1", [lib_id]).map_err(storage)?;
        tx.execute("DELETE FROM face_libs WHERE lib_id = ?1", [lib_id]).map_err(storage)?;
        bump(&tx)?;
        tx.commit().map_err(storage)
    }

    fn enrol(
        &self,
        owner: AccountId,
        lib_id: &str,
        name: &str,
        model: &str,
        descriptors: &[Vec<f32>],
    ) -> Result<(String, Vec<FaceSample>), FaceError> {
        check_person_name(name)?;
        descriptors.iter().try_for_each(|d| check_descriptor(d))?;
        let mut conn = self.connection(FaceError::Storage)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(storage)?;
        library_in(&tx, owner, lib_id)?;
        let version = bump(&tx)?;
        let existing: Option<(i64, String)> = tx
            .query_row(
                "SELECT key, person_id FROM face_people WHERE lib_id = ?1 AND name = ?2",
                params![lib_id, name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(storage)?;
        let (key, person_id) = match existing {
            Some(found) => found,
            None => {
                let person_id = engine::stamp::new_id();
                tx.execute(
                    "INSERT INTO face_people (person_id, lib_id, name, model, centroid, version) VALUES (?1, ?2, ?3, ?4, x'', ?5)",
                    params![person_id, lib_id, name, model, version],
                )
                .map_err(storage)?;
                (tx.last_insert_rowid(), person_id)
            }
        };
        // The newest enrolment's model is the person's from now on.
        tx.execute("UPDATE face_people SET model = ?2 WHERE key = ?1", params![key, model]).map_err(storage)?;
        let mut samples = Vec::with_capacity(descriptors.len());
        for descriptor in descriptors {
            let sample = FaceSample::new(&person_id, lib_id, name, model);
            let sealed = self.sealer.seal(&pack_descriptor(descriptor), sample.sample_id.as_bytes());
            tx.execute(
                "INSERT INTO face_samples (sample_id, person_key, model, descriptor, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![sample.sample_id, key, model, sealed, sample.created_at],
            )
            .map_err(storage)?;
            samples.push(sample);
        }
        self.recompute(&tx, key, &person_id, version)?;
        tx.commit().map_err(storage)?;
        Ok((person_id, samples))
    }

    fn face_samples(
        &self,
        owner: AccountId,
        lib_id: &str,
        person_id: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<FaceSample>, u64), FaceError> {
        let mut conn = self.connection(FaceError::Storage)?;
        let tx = conn.transaction().map_err(storage)?;
        library_in(&tx, owner, lib_id)?;
        let person = person_id.unwrap_or("");
        let filter = "p.lib_id = ?1 AND (?2 = '' OR p.person_id = ?2)";
        let total: u64 = tx
            .query_row(
                &format!(
                    "SELECT COUNT(*) FROM face_samples s JOIN face_people p ON p.key = s.person_key WHERE {filter}"
                ),
                params![lib_id, person],
                |r| r.get(0),
            )
            .map_err(storage)?;
        let mut stmt = tx
            .prepare(&format!("SELECT {SAMPLE_COLUMNS} WHERE {filter} ORDER BY s.seq LIMIT {limit} OFFSET {offset}"))
            .map_err(storage)?;
        let samples =
            stmt.query_map(params![lib_id, person], sample_from_row).map_err(storage)?.collect::<Result<_, _>>();
        Ok((samples.map_err(storage)?, total))
    }

    fn delete_face_sample(&self, owner: AccountId, sample_id: &str) -> Result<(), FaceError> {
        let mut conn = self.connection(FaceError::Storage)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(storage)?;
        let (key, person_id): (i64, String) = tx
            .query_row(
                "SELECT p.key, p.person_id FROM face_samples s JOIN face_people p ON p.key = s.person_key
                 JOIN face_libs l ON l.lib_id = p.lib_id WHERE l.owner_id = ?1 AND s.sample_id = ?2",
                params![owner.0, sample_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(storage)?
            .ok_or_else(|| FaceError::SampleNotFound(sample_id.into()))?;
        tx.execute("DELETE FROM face_samples WHERE sample_id = ?1", [sample_id]).map_err(storage)?;
        let version = bump(&tx)?;
        self.recompute(&tx, key, &person_id, version)?;
        tx.commit().map_err(storage)
    }

    fn delete_person(&self, owner: AccountId, person_id: &str) -> Result<(), FaceError> {
        let mut conn = self.connection(FaceError::Storage)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(storage)?;
        let key: i64 = tx
            .query_row(
                "SELECT p.key FROM face_people p JOIN face_libs l ON l.lib_id = p.lib_id WHERE l.owner_id = ?1 AND p.person_id = ?2",
                params![owner.0, person_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage)?
            .ok_or_else(|| FaceError::PersonNotFound(person_id.into()))?;
        tx.execute("DELETE FROM face_samples WHERE person_key = ?1", [key]).map_err(storage)?;
        tx.execute("DELETE FROM face_people WHERE key = ?1", [key]).map_err(storage)?;
        bump(&tx)?;
        tx.commit().map_err(storage)
    }

    fn face_changes(&self, cursor: FaceCursor) -> Result<FaceChanges, FaceError> {
        let mut conn = self.connection(FaceError::Storage)?;
        // One read transaction: the cursor returned matches exactly what was read.
        let tx = conn.transaction().map_err(storage)?;
        let version: i64 =
            tx.query_row("SELECT version FROM face_version WHERE id = 1", [], |r| r.get(0)).map_err(storage)?;
        if version == cursor.version {
            return Ok(FaceChanges { cursor, ..FaceChanges::default() });
        }
        let people = {
            let mut stmt = tx
                .prepare("SELECT key, person_id, lib_id, name, model, centroid FROM face_people WHERE version > ?1")
                .map_err(storage)?;
            let rows = stmt
                .query_map([cursor.version], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get::<_, Vec<u8>>(5)?,
                    ))
                })
                .map_err(storage)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(storage)?
        };
        let people = people
            .into_iter()
            .map(|(key, person_id, lib_id, name, model, sealed)| {
                let centroid = unpack_descriptor(&self.sealer.open(&sealed, person_id.as_bytes()).map_err(storage)?);
                Ok(Person { key, person_id, lib_id, name, model, centroid })
            })
            .collect::<Result<Vec<_>, FaceError>>()?;
        let removals = {
            let mut stmt =
                tx.prepare("SELECT seq, person_key FROM face_removals WHERE seq > ?1 ORDER BY seq").map_err(storage)?;
            let rows = stmt
                .query_map([cursor.removal_seq], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                .map_err(storage)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(storage)?
        };
        let libraries = {
            let mut stmt = tx.prepare(&format!("SELECT {LIB_COLUMNS} FROM face_libs")).map_err(storage)?;
            let rows = stmt.query_map([], library_from_row).map_err(storage)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(storage)?
        };
        Ok(FaceChanges {
            libraries,
            people,
            cursor: FaceCursor { version, removal_seq: removals.last().map_or(cursor.removal_seq, |(seq, _)| *seq) },
            removed: removals.into_iter().map(|(_, key)| key).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn face_libraries_people_and_a_matcher_that_follows_them() {
        crate::conformance::faces::face_libraries_people_and_a_matcher_that_follows_them(
            &crate::sqlite::scratch_store().1,
        );
    }

    #[test]
    fn descriptors_are_sealed_at_rest() {
        let (_dir, store) = crate::sqlite::scratch_store();
        let descriptor = crate::conformance::faces::enrolled(&store);
        let conn = store.connection(engine::faces::FaceError::Storage).unwrap();
        let plain = engine::faces::pack_descriptor(&descriptor);
        for (table, column) in [("face_samples", "descriptor"), ("face_people", "centroid")] {
            let blobs: Vec<Vec<u8>> = conn
                .prepare(&format!("SELECT {column} FROM {table}"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(!blobs.is_empty());
            for blob in blobs {
                assert!(!blob.windows(16).any(|w| w == &plain[..16]), "{table}.{column} holds the descriptor in clear");
            }
        }
    }
}
