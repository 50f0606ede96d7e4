//! Face libraries in PostgreSQL: the tables of schema-4.sql, the same rules as SQLite's
//! (`crate::sqlite` faces): descriptors and centroids sealed, `face_version` bumped first by
//! every change (its row lock queues the writers), changed people carrying the new version.

use super::{parse_name, Fault, OrFault, PostgresStore};
use crate::name_of;
use engine::accounts::AccountId;
use engine::faces::{
    centroid, check_descriptor, check_person_name, pack_descriptor, unpack_descriptor, FaceChanges, FaceCounts,
    FaceCursor, FaceError, FaceLibrary, FaceRepository, FaceSample, Person,
};
use postgres::{GenericClient, IsolationLevel, Row, Transaction};

const LIB_COLUMNS: &str = "lib_id, owner_id, name, label, action, max_distance, created_at";
const SAMPLE_COLUMNS: &str =
    "s.sample_id, p.person_id, p.lib_id, p.name, s.model, s.created_at FROM face_samples s JOIN face_people p ON p.key = s.person_key";

fn library_from_row(row: &Row) -> Result<FaceLibrary, Fault> {
    Ok(FaceLibrary {
        lib_id: row.try_get(0)?,
        owner: AccountId(row.try_get(1)?),
        lib_name: row.try_get(2)?,
        label: parse_name(row.try_get(3)?)?,
        action: parse_name(row.try_get(4)?)?,
        max_distance: row.try_get(5)?,
        created_at: row.try_get(6)?,
    })
}

fn sample_from_row(row: &Row) -> Result<FaceSample, Fault> {
    Ok(FaceSample {
        sample_id: row.try_get(0)?,
        person_id: row.try_get(1)?,
        lib_id: row.try_get(2)?,
        name: row.try_get(3)?,
        model: row.try_get(4)?,
        created_at: row.try_get(5)?,
    })
}

/// The next version, taken first in the transaction that changes something.
fn bump(tx: &mut Transaction<'_>) -> Result<i64, FaceError> {
    let row = tx
        .query_one("UPDATE face_version SET version = version + 1 WHERE id = 1 RETURNING version", &[])
        .db::<FaceError>()?;
    Ok(row.get(0))
}

fn library_in(conn: &mut impl GenericClient, owner: AccountId, lib_id: &str) -> Result<FaceLibrary, FaceError> {
    let row = conn
        .query_opt(
            &format!("SELECT {LIB_COLUMNS} FROM face_libs WHERE owner_id = $1 AND lib_id = $2"),
            &[&owner.0, &lib_id],
        )
        .db::<FaceError>()?
        .ok_or_else(|| FaceError::NotFound(lib_id.into()))?;
    Ok(library_from_row(&row)?)
}

impl PostgresStore {
    /// As SQLite's: the centroid made again from the person's photos of their model (or, when
    /// none is left of it, of the latest photo's), under `version`; the person removed when no
    /// photo is left.
    fn recompute(&self, tx: &mut Transaction<'_>, key: i64, person_id: &str, version: i64) -> Result<(), FaceError> {
        let latest = tx
            .query_opt("SELECT model FROM face_samples WHERE person_key = $1 ORDER BY seq DESC LIMIT 1", &[&key])
            .db::<FaceError>()?;
        let Some(latest) = latest else {
            tx.execute("DELETE FROM face_people WHERE key = $1", &[&key]).db::<FaceError>()?;
            return Ok(());
        };
        let current: String =
            tx.query_one("SELECT model FROM face_people WHERE key = $1", &[&key]).db::<FaceError>()?.get(0);
        let has_current: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM face_samples WHERE person_key = $1 AND model = $2)",
                &[&key, &current],
            )
            .db::<FaceError>()?
            .get(0);
        let model = if has_current { current } else { latest.get(0) };
        let rows = tx
            .query(
                "SELECT sample_id, descriptor FROM face_samples WHERE person_key = $1 AND model = $2",
                &[&key, &model],
            )
            .db::<FaceError>()?;
        let descriptors = rows
            .iter()
            .map(|r| {
                let (id, blob): (String, Vec<u8>) = (r.get(0), r.get(1));
                Ok(unpack_descriptor(&self.sealer.open(&blob, id.as_bytes()).db::<FaceError>()?))
            })
            .collect::<Result<Vec<_>, FaceError>>()?;
        let sealed = self.sealer.seal(&pack_descriptor(&centroid(&descriptors)), person_id.as_bytes());
        tx.execute(
            "UPDATE face_people SET model = $2, centroid = $3, version = $4 WHERE key = $1",
            &[&key, &model, &sealed, &version],
        )
        .db::<FaceError>()?;
        Ok(())
    }
}

impl FaceRepository for PostgresStore {
    fn create_face_library(&self, library: &FaceLibrary) -> Result<(), FaceError> {
        let mut conn = self.conn::<FaceError>()?;
        let mut tx = conn.transaction().db::<FaceError>()?;
        bump(&mut tx)?;
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO face_libs ({LIB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
                ),
                &[
                    &library.lib_id,
                    &library.owner.0,
                    &library.lib_name,
                    &name_of(&library.label),
                    &name_of(&library.action),
                    &library.max_distance,
                    &library.created_at,
                ],
            )
            .db::<FaceError>()?;
        if inserted == 0 {
            return Err(FaceError::Exists(library.lib_name.clone()));
        }
        tx.commit().db()
    }

    fn face_libraries(&self, owner: AccountId) -> Result<Vec<(FaceLibrary, FaceCounts)>, FaceError> {
        let rows = self
            .conn::<FaceError>()?
            .query(
                &format!(
                    "SELECT {LIB_COLUMNS},
                        (SELECT COUNT(*) FROM face_people p WHERE p.lib_id = l.lib_id),
                        (SELECT COUNT(*) FROM face_samples s JOIN face_people p ON p.key = s.person_key WHERE p.lib_id = l.lib_id)
                     FROM face_libs l WHERE owner_id = $1 ORDER BY created_at, name"
                ),
                &[&owner.0],
            )
            .db::<FaceError>()?;
        rows.iter()
            .map(|r| {
                let (people, photos): (i64, i64) = (r.get(7), r.get(8));
                Ok((library_from_row(r)?, FaceCounts { people: people as u64, photos: photos as u64 }))
            })
            .collect()
    }

    fn face_library(&self, owner: AccountId, lib_id: &str) -> Result<FaceLibrary, FaceError> {
        library_in(&mut *self.conn::<FaceError>()?, owner, lib_id)
    }

    fn delete_face_library(&self, owner: AccountId, lib_id: &str) -> Result<(), FaceError> {
        let mut conn = self.conn::<FaceError>()?;
        let mut tx = conn.transaction().db::<FaceError>()?;
        bump(&mut tx)?;
        library_in(&mut tx, owner, lib_id)?;
        tx.execute(
            "DELETE FROM face_samples WHERE person_key IN (SELECT key FROM face_people WHERE lib_id = $1)",
            &[&lib_id],
        )
        .db::<FaceError>()?;
        tx.execute("DELETE FROM face_people WHERE lib_id = $1", &[&lib_id]).db::<FaceError>()?;
        tx.execute("DELETE FROM face_libs WHERE lib_id = $1", &[&lib_id]).db::<FaceError>()?;
        tx.commit().db()
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
        let mut conn = self.conn::<FaceError>()?;
        let mut tx = conn.transaction().db::<FaceError>()?;
        let version = bump(&mut tx)?;
        library_in(&mut tx, owner, lib_id)?;
        let existing = tx
            .query_opt("SELECT key, person_id FROM face_people WHERE lib_id = $1 AND name = $2", &[&lib_id, &name])
            .db::<FaceError>()?;
        let (key, person_id): (i64, String) = match existing {
            Some(row) => (row.get(0), row.get(1)),
            None => {
                let person_id = engine::stamp::new_id();
                let empty: Vec<u8> = Vec::new();
                let row = tx
                    .query_one(
                        "INSERT INTO face_people (person_id, lib_id, name, model, centroid, version)
                         VALUES ($1, $2, $3, $4, $5, $6) RETURNING key",
                        &[&person_id, &lib_id, &name, &model, &empty, &version],
                    )
                    .db::<FaceError>()?;
                (row.get(0), person_id)
            }
        };
        // The newest enrolment's model is the person's from now on.
        tx.execute("UPDATE face_people SET model = $2 WHERE key = $1", &[&key, &model]).db::<FaceError>()?;
        let mut samples = Vec::with_capacity(descriptors.len());
        for descriptor in descriptors {
            let sample = FaceSample::new(&person_id, lib_id, name, model);
            let sealed = self.sealer.seal(&pack_descriptor(descriptor), sample.sample_id.as_bytes());
            tx.execute(
                "INSERT INTO face_samples (sample_id, person_key, model, descriptor, created_at) VALUES ($1, $2, $3, $4, $5)",
                &[&sample.sample_id, &key, &model, &sealed, &sample.created_at],
            )
            .db::<FaceError>()?;
            samples.push(sample);
        }
        self.recompute(&mut tx, key, &person_id, version)?;
        tx.commit().db::<FaceError>()?;
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
        let mut conn = self.conn::<FaceError>()?;
        let mut tx = conn.build_transaction().read_only(true).start().db::<FaceError>()?;
        library_in(&mut tx, owner, lib_id)?;
        let person = person_id.unwrap_or("");
        let filter = "p.lib_id = $1 AND ($2 = '' OR p.person_id = $2)";
        let total: i64 = tx
            .query_one(
                &format!(
                    "SELECT COUNT(*) FROM face_samples s JOIN face_people p ON p.key = s.person_key WHERE {filter}"
                ),
                &[&lib_id, &person],
            )
            .db::<FaceError>()?
            .get(0);
        let rows = tx
            .query(
                &format!("SELECT {SAMPLE_COLUMNS} WHERE {filter} ORDER BY s.seq LIMIT {limit} OFFSET {offset}"),
                &[&lib_id, &person],
            )
            .db::<FaceError>()?;
        let samples = rows.iter().map(sample_from_row).collect::<Result<_, _>>()?;
        tx.commit().db::<FaceError>()?;
        Ok((samples, total as u64))
    }

    fn delete_face_sample(&self, owner: AccountId, sample_id: &str) -> Result<(), FaceError> {
        let mut conn = self.conn::<FaceError>()?;
        let mut tx = conn.transaction().db::<FaceError>()?;
        let version = bump(&mut tx)?;
        let row = tx
            .query_opt(
                "SELECT p.key, p.person_id FROM face_samples s JOIN face_people p ON p.key = s.person_key
                 JOIN face_libs l ON l.lib_id = p.lib_id WHERE l.owner_id = $1 AND s.sample_id = $2",
                &[&owner.0, &sample_id],
            )
            .db::<FaceError>()?
            .ok_or_else(|| FaceError::SampleNotFound(sample_id.into()))?;
        let (key, person_id): (i64, String) = (row.get(0), row.get(1));
        tx.execute("DELETE FROM face_samples WHERE sample_id = $1", &[&sample_id]).db::<FaceError>()?;
        self.recompute(&mut tx, key, &person_id, version)?;
        tx.commit().db()
    }

    fn delete_person(&self, owner: AccountId, person_id: &str) -> Result<(), FaceError> {
        let mut conn = self.conn::<FaceError>()?;
        let mut tx = conn.transaction().db::<FaceError>()?;
        bump(&mut tx)?;
        let key: i64 = tx
            .query_opt(
                "SELECT p.key FROM face_people p JOIN face_libs l ON l.lib_id = p.lib_id
                 WHERE l.owner_id = $1 AND p.person_id = $2",
                &[&owner.0, &person_id],
            )
            .db::<FaceError>()?
            .ok_or_else(|| FaceError::PersonNotFound(person_id.into()))?
            .get(0);
        tx.execute("DELETE FROM face_samples WHERE person_key = $1", &[&key]).db::<FaceError>()?;
        tx.execute("DELETE FROM face_people WHERE key = $1", &[&key]).db::<FaceError>()?;
        tx.commit().db()
    }

    fn face_changes(&self, cursor: FaceCursor) -> Result<FaceChanges, FaceError> {
        let mut conn = self.conn::<FaceError>()?;
        // One snapshot: the cursor returned matches exactly what was read.
        let mut tx = conn
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .db::<FaceError>()?;
        let version: i64 = tx.query_one("SELECT version FROM face_version WHERE id = 1", &[]).db::<FaceError>()?.get(0);
        if version == cursor.version {
            return Ok(FaceChanges { cursor, ..FaceChanges::default() });
        }
        let people = tx
            .query(
                "SELECT key, person_id, lib_id, name, model, centroid FROM face_people WHERE version > $1",
                &[&cursor.version],
            )
            .db::<FaceError>()?
            .iter()
            .map(|r| {
                let (person_id, sealed): (String, Vec<u8>) = (r.get(1), r.get(5));
                let centroid = unpack_descriptor(&self.sealer.open(&sealed, person_id.as_bytes()).db::<FaceError>()?);
                Ok(Person { key: r.get(0), person_id, lib_id: r.get(2), name: r.get(3), model: r.get(4), centroid })
            })
            .collect::<Result<Vec<_>, FaceError>>()?;
        let removals: Vec<(i64, i64)> = tx
            .query("SELECT seq, person_key FROM face_removals WHERE seq > $1 ORDER BY seq", &[&cursor.removal_seq])
            .db::<FaceError>()?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let libraries = tx
            .query(&format!("SELECT {LIB_COLUMNS} FROM face_libs"), &[])
            .db::<FaceError>()?
            .iter()
            .map(library_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().db::<FaceError>()?;
        Ok(FaceChanges {
            libraries,
            people,
            cursor: FaceCursor { version, removal_seq: removals.last().map_or(cursor.removal_seq, |(seq, _)| *seq) },
            removed: removals.into_iter().map(|(_, key)| key).collect(),
        })
    }
}
