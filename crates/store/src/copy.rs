//! `ims storage copy`: a SQLite deployment moved into PostgreSQL, table by table.
//!
//! The source is read in one read transaction, so what is copied is one consistent snapshot,
//! whatever servers still do to the file. Writes after the snapshot are not copied: once done,
//! the copy counts the source again and fails, naming the tables, when anything changed
//! (stop the servers and copy again into a new database). The destination must be empty; it is
//! migrated first, filled in one transaction (all or nothing), and its row counts are compared
//! with the snapshot's.

use crate::postgres::{Fault, PostgresStore};
use crate::{Sealer, StoreError};
use postgres::types::{ToSql, Type};
use rusqlite::types::Value;
use rusqlite::OptionalExtension;
use std::path::Path;

/// Every table, parents before children; each copied whole, in its insertion order.
const TABLES: &[(&str, &str)] = &[
    ("accounts", "id"),
    ("api_keys", "rowid"),
    ("policies", "rowid"),
    ("results", "rowid"),
    ("image_libs", "rowid"),
    ("image_samples", "seq"),
    ("image_sample_removals", "seq"),
    ("tasks", "rowid"),
    ("keyword_libs", "rowid"),
    ("keywords", "rowid"),
    ("billing_accounts", "owner_id"),
    ("packages", "id"),
    ("usage_events", "rowid"),
    ("usage_daily", "rowid"),
    ("bills", "rowid"),
    ("transactions", "id"),
    ("console_passwords", "account_id"),
    ("console_sessions", "rowid"),
    ("console_failures", "rowid"),
    ("face_libs", "rowid"),
    ("face_people", "key"),
    ("face_samples", "seq"),
    ("face_removals", "seq"),
    ("search_groups", "rowid"),
    ("search_pictures", "seq"),
    ("search_picture_removals", "seq"),
];

/// The one-row tables that carry a version, set to the source's rather than copied.
const VERSIONS: &[&str] = &["keyword_version", "face_version"];

/// The identity columns whose sequences must continue after the copied rows.
const IDENTITIES: &[(&str, &str)] = &[
    ("accounts", "id"),
    ("results", "seq"),
    ("image_samples", "seq"),
    ("image_sample_removals", "seq"),
    ("keywords", "seq"),
    ("packages", "id"),
    ("transactions", "id"),
    ("face_people", "key"),
    ("face_samples", "seq"),
    ("face_removals", "seq"),
    ("search_pictures", "seq"),
    ("search_picture_removals", "seq"),
];

/// How many rows of each table were copied.
#[derive(Debug)]
pub struct CopyReport {
    pub tables: Vec<(&'static str, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("source: {0}")]
    Source(#[from] rusqlite::Error),
    #[error("destination: {0}")]
    Destination(String),
    #[error("the destination already holds {0} accounts: copy into a new, empty database")]
    NotEmpty(i64),
    #[error("the master key given does not open the copied API secrets: use the source deployment's")]
    WrongMasterKey,
    #[error("table {table}: {copied} rows copied, but the destination has {found}")]
    Mismatch { table: &'static str, copied: u64, found: u64 },
    #[error(
        "the source changed during the copy ({0}): the copy holds the snapshot from its start; stop every server \
         writing to the source and copy again into a new database"
    )]
    SourceChanged(String),
}

impl From<Fault> for CopyError {
    fn from(fault: Fault) -> CopyError {
        CopyError::Destination(fault.0)
    }
}

impl From<postgres::Error> for CopyError {
    fn from(e: postgres::Error) -> CopyError {
        CopyError::Destination(e.to_string())
    }
}

/// Copies the SQLite database `source` (an `ims.db`) into the empty PostgreSQL database `to`.
pub fn sqlite_to_postgres(source: &Path, to: &str, sealer: Sealer) -> Result<CopyReport, CopyError> {
    // Opening it as the store does brings an older file's schema up to date first.
    drop(crate::SqliteStore::open(source, sealer.clone())?);
    let mut reader = rusqlite::Connection::open_with_flags(source, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    // The nodes will open the secrets with this key: one that cannot is refused now, not then.
    let sealed: Option<(String, Vec<u8>)> = reader
        .query_row("SELECT secret_id, sealed_secret FROM api_keys LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((secret_id, sealed)) = sealed {
        sealer.open(&sealed, secret_id.as_bytes()).map_err(|_| CopyError::WrongMasterKey)?;
    }
    let destination = PostgresStore::open(to, sealer)?;
    let mut target = destination.conn::<Fault>()?;
    let accounts: i64 = target.query_one("SELECT COUNT(*) FROM accounts", &[])?.get(0);
    if accounts > 0 {
        return Err(CopyError::NotEmpty(accounts));
    }
    let snapshot = reader.transaction()?;
    let mut tx = target.transaction()?;
    let mut tables = Vec::new();
    for &(table, order) in TABLES {
        tables.push((table, copy_table(&snapshot, &mut tx, table, order)?));
    }
    for table in VERSIONS {
        let version: i64 =
            snapshot.query_row(&format!("SELECT version FROM {table} WHERE id = 1"), [], |r| r.get(0))?;
        tx.execute(&format!("UPDATE {table} SET version = $1 WHERE id = 1"), &[&version])?;
    }
    for (table, column) in IDENTITIES {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), COALESCE(MAX({column}), 0) + 1, false)
                 FROM {table}"
            ),
            &[],
        )?;
    }
    for &(table, copied) in &tables {
        let found: i64 = tx.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])?.get(0);
        if found as u64 != copied {
            return Err(CopyError::Mismatch { table, copied, found: found as u64 });
        }
    }
    tx.commit()?;
    snapshot.finish()?;

    // Counted again outside the snapshot: any difference was written during the copy.
    let changed: Vec<String> = tables
        .iter()
        .filter_map(|&(table, copied)| {
            let now: i64 = reader.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).ok()?;
            (now as u64 != copied).then(|| format!("{table}: {copied} copied, {now} now"))
        })
        .collect();
    if !changed.is_empty() {
        return Err(CopyError::SourceChanged(changed.join(", ")));
    }
    Ok(CopyReport { tables })
}

/// Copies one table's rows, each column converted to the destination column's type.
fn copy_table(
    source: &rusqlite::Transaction<'_>,
    target: &mut postgres::Transaction<'_>,
    table: &str,
    order: &str,
) -> Result<u64, CopyError> {
    let mut select = source.prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))?;
    let columns: Vec<String> = select.column_names().iter().map(|c| c.to_string()).collect();
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let insert = target.prepare(&format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        columns.join(", "),
        placeholders.join(", ")
    ))?;
    let types = insert.params().to_vec();
    let mut rows = select.query([])?;
    let mut copied = 0;
    while let Some(row) = rows.next()? {
        let values: Vec<Box<dyn ToSql + Sync>> = (0..columns.len())
            .map(|i| convert(row.get::<_, Value>(i)?, &types[i], table, &columns[i]))
            .collect::<Result<_, CopyError>>()?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        target.execute(&insert, &refs)?;
        copied += 1;
    }
    Ok(copied)
}

/// One SQLite value as the PostgreSQL column's type wants it.
fn convert(value: Value, to: &Type, table: &str, column: &str) -> Result<Box<dyn ToSql + Sync>, CopyError> {
    let mismatch = || CopyError::Destination(format!("{table}.{column}: cannot store {value:?} as {to}"));
    Ok(match (&value, to) {
        (Value::Null, &Type::INT8) => Box::new(None::<i64>),
        (Value::Null, &Type::INT4) => Box::new(None::<i32>),
        (Value::Null, &Type::TEXT) => Box::new(None::<String>),
        (Value::Null, &Type::BYTEA) => Box::new(None::<Vec<u8>>),
        (Value::Integer(n), &Type::INT8) => Box::new(*n),
        (Value::Integer(n), &Type::INT4) => Box::new(i32::try_from(*n).map_err(|_| mismatch())?),
        (Value::Integer(n), &Type::BOOL) => Box::new(*n != 0),
        (Value::Real(r), &Type::FLOAT4) => Box::new(*r as f32),
        (Value::Real(r), &Type::FLOAT8) => Box::new(*r),
        (Value::Text(t), &Type::TEXT) => Box::new(t.clone()),
        (Value::Blob(b), &Type::BYTEA) => Box::new(b.clone()),
        _ => return Err(mismatch()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempPostgres;
    use engine::accounts::{AccountId, AccountRepository};
    use engine::billing::{Billing, BillingRepository, BillingSettings, Service, Usage};
    use engine::decision::{Label, Suggestion};
    use engine::faces::{FaceAction, FaceCursor, FaceLibrary, FaceRepository, DESCRIPTOR_LEN};
    use engine::history::HistoryRepository;
    use engine::keywords::KeywordRepository;
    use engine::library::{Hash256, LibAction, LibraryCursor, LibraryRepository};
    use engine::policy::{Policy, PolicyRepository};
    use engine::search::{GroupRepository, Picture, SearchGroup};
    use engine::task::TaskRepository;

    fn sealer() -> Sealer {
        Sealer::from_key(&[3; 32])
    }

    /// A deployment with something in every table; its main account.
    fn fill(store: &crate::SqliteStore) -> AccountId {
        let owner = store.create_account("acme", None).unwrap().id;
        store.create_account("ops", Some(owner)).unwrap();
        store.create_key(owner).unwrap();
        store.create_policy(owner, &Policy::named("forum").unwrap()).unwrap();
        let now = engine::stamp::now();
        store.record(&crate::conformance::history::record(owner, "r1", now, Suggestion::Block, Label::Porn)).unwrap();
        let lib = store.create_library(owner, "banned", Label::Ad, LibAction::Block).unwrap();
        let gone = store.add_sample(owner, &lib.lib_id, "gone", &[Hash256::from_bytes(&[1; 32])]).unwrap();
        store.add_sample(owner, &lib.lib_id, "kept", &[Hash256::from_bytes(&[2; 32])]).unwrap();
        store.delete_sample(owner, &gone.image_id).unwrap();
        let words = store.create_keyword_library(owner, "words", Label::Abuse, Suggestion::Review).unwrap();
        store.add_keywords(owner, &words.lib_id, &["alpha".into(), "beta".into()]).unwrap();
        store.enqueue(&crate::conformance::tasks::task("t1", now)).unwrap();
        let billing = Billing::from_settings(&BillingSettings::default()).unwrap();
        store.activate(owner, billing.catalogue_of(&billing.default_catalogue), now).unwrap();
        let usage = Usage { request_id: "r1".into(), account: owner, owner, service: Service::Image, at: now };
        store.meter(&usage, &billing.calendar).unwrap();
        let faces = FaceLibrary::new(owner, "people", Label::Polity, FaceAction::Review, None).unwrap();
        store.create_face_library(&faces).unwrap();
        let descriptor = vec![0.5; DESCRIPTOR_LEN];
        let (_, photos) =
            store.enrol(owner, &faces.lib_id, "someone", "model", &[descriptor.clone(), descriptor]).unwrap();
        store.delete_face_sample(owner, &photos[0].sample_id).unwrap();
        store.enrol(owner, &faces.lib_id, "gone", "model", &[vec![0.1; DESCRIPTOR_LEN]]).unwrap();
        let gone = store.face_samples(owner, &faces.lib_id, None, 0, 10).unwrap().0;
        store.delete_person(owner, &gone.iter().find(|p| p.name == "gone").unwrap().person_id).unwrap();
        store.create_group(&SearchGroup::new(owner, "shop", "shop", "", 10, 0).unwrap()).unwrap();
        for name in ["gone", "kept"] {
            let picture = Picture::new(owner, "shop", "e", name, "", "{}", vec![Hash256::from_bytes(&[5; 32])]);
            store.add_picture(&picture.unwrap()).unwrap();
        }
        store.delete_pictures(owner, "shop", "e", Some("gone")).unwrap();
        owner
    }

    /// Every table of the SQLite schema is copied, or is a version carried over.
    #[test]
    fn every_table_is_copied() {
        let (_dir, store) = crate::sqlite::scratch_store();
        drop(store);
        let conn = rusqlite::Connection::open(_dir.path().join("ims.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'sqlite_sequence' ORDER BY name")
            .unwrap();
        let mut tables: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        tables.sort();
        let mut copied: Vec<String> =
            TABLES.iter().map(|(t, _)| t.to_string()).chain(VERSIONS.iter().map(|t| t.to_string())).collect();
        copied.sort();
        assert_eq!(tables, copied);
    }

    #[test]
    fn a_sqlite_deployment_moves_into_postgres_whole() {
        let Some(server) = TempPostgres::start() else { return };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ims.db");
        let owner = fill(&crate::SqliteStore::open(&file, sealer()).unwrap());

        let wrong = sqlite_to_postgres(&file, &server.create_database("wrong_key"), Sealer::from_key(&[4; 32]));
        assert!(matches!(wrong, Err(CopyError::WrongMasterKey)), "{wrong:?}");

        let url = server.create_database("moved");
        let report = sqlite_to_postgres(&file, &url, sealer()).unwrap();
        let count = |table: &str| report.tables.iter().find(|(t, _)| *t == table).unwrap().1;
        assert_eq!((count("accounts"), count("image_samples"), count("image_sample_removals")), (2, 1, 1));
        assert_eq!((count("keywords"), count("usage_events"), count("tasks")), (2, 1, 1));
        assert_eq!((count("face_people"), count("face_samples"), count("face_removals")), (1, 1, 1));
        assert_eq!((count("search_groups"), count("search_pictures"), count("search_picture_removals")), (1, 1, 1));

        // Everything reads back the same through the repositories, secrets included.
        let moved = PostgresStore::open(&url, sealer()).unwrap();
        let source = crate::SqliteStore::open(&file, sealer()).unwrap();
        assert_eq!(moved.accounts().unwrap(), source.accounts().unwrap());
        let key = &source.keys(Some(owner)).unwrap()[0];
        assert_eq!(
            moved.credential(&key.secret_id).unwrap().unwrap().secret_key,
            source.credential(&key.secret_id).unwrap().unwrap().secret_key
        );
        assert_eq!(moved.policies(owner).unwrap(), source.policies(owner).unwrap());
        assert_eq!(moved.result(owner, "r1").unwrap(), source.result(owner, "r1").unwrap());
        let (moved_changes, source_changes) =
            (moved.changes(LibraryCursor::default()).unwrap(), source.changes(LibraryCursor::default()).unwrap());
        assert_eq!((moved_changes.added, moved_changes.removed), (source_changes.added, source_changes.removed));
        assert_eq!(moved.keywords_version().unwrap(), source.keywords_version().unwrap());
        assert_eq!(moved.all_keywords().unwrap(), source.all_keywords().unwrap());
        assert_eq!(moved.task("t1").unwrap(), source.task("t1").unwrap());
        assert_eq!(moved.billing_account(owner).unwrap(), source.billing_account(owner).unwrap());
        assert_eq!(moved.packages(owner).unwrap(), source.packages(owner).unwrap());
        assert_eq!(moved.totals().unwrap(), source.totals().unwrap());
        let (moved_faces, source_faces) =
            (moved.face_changes(FaceCursor::default()).unwrap(), source.face_changes(FaceCursor::default()).unwrap());
        assert_eq!(moved_faces.people, source_faces.people, "face descriptors, sealed with the same key");
        assert_eq!((moved_faces.removed, moved_faces.cursor), (source_faces.removed, source_faces.cursor));
        assert_eq!(moved.groups(owner, None, 0, 10).unwrap(), source.groups(owner, None, 0, 10).unwrap());
        let (moved_pictures, source_pictures) = (
            moved.picture_changes(LibraryCursor::default()).unwrap(),
            source.picture_changes(LibraryCursor::default()).unwrap(),
        );
        assert_eq!(moved_pictures.added, source_pictures.added);
        assert_eq!((moved_pictures.removed, moved_pictures.cursor), (source_pictures.removed, source_pictures.cursor));
        // New rows continue after the copied ones.
        assert!(moved.create_account("new", None).unwrap().id.0 > 2);

        let again = sqlite_to_postgres(&file, &url, sealer());
        assert!(matches!(again, Err(CopyError::NotEmpty(3))), "{again:?}");
    }
}
