//! Image search's groups and pictures in PostgreSQL (tables `search_groups`, `search_pictures`,
//! and the removal log `search_picture_removals` that in-memory indexes follow).
//!
//! Every writer holds [`lock::SEARCH`] until it commits, for two reasons: readers follow the
//! pictures by sequence number, so numbers must commit in the order they are drawn (as the
//! libraries' samples, see `libraries.rs`); and the limits checked before an insert (groups per
//! account, pictures per entity and per group) hold only if no other writer inserts between.
//! Pictures are added one a call, after their image is decoded and hashed: the queue is short.

use super::{lock, lock_for_transaction, Fault, OrFault, PostgresStore};
use engine::accounts::AccountId;
use engine::library::{pack_hashes, unpack_hashes, LibraryCursor};
use engine::search::{
    GroupRepository, Picture, PictureChanges, SearchError, SearchGroup, MAX_GROUPS, MAX_PICTURES_PER_ENTITY,
};
use postgres::{GenericClient, IsolationLevel, Row, Transaction};

const GROUP_COLUMNS: &str =
    "owner_id, group_id, name, brief, max_capacity, max_qps, group_type, created_at, updated_at";
/// A picture's columns for answers; its hashes are read by the changes only.
const PICTURE_COLUMNS: &str = "seq, owner_id, group_id, entity_id, pic_name, custom_content, tags, created_at";

fn group_from_row(row: &Row) -> Result<(SearchGroup, u64), Fault> {
    let number = |i: usize| row.try_get::<_, i64>(i).map(|n| n as u64);
    Ok((
        SearchGroup {
            owner: AccountId(row.try_get(0)?),
            group_id: row.try_get(1)?,
            group_name: row.try_get(2)?,
            brief: row.try_get(3)?,
            max_capacity: number(4)?,
            max_qps: number(5)?,
            group_type: number(6)?,
            created_at: row.try_get(7)?,
            updated_at: row.try_get(8)?,
        },
        number(9)?,
    ))
}

fn picture_from_row(row: &Row) -> Result<Picture, Fault> {
    Ok(Picture {
        seq: row.try_get(0)?,
        owner: AccountId(row.try_get(1)?),
        group_id: row.try_get(2)?,
        entity_id: row.try_get(3)?,
        pic_name: row.try_get(4)?,
        custom_content: row.try_get(5)?,
        tags: row.try_get(6)?,
        hashes: Vec::new(),
        created_at: row.try_get(7)?,
    })
}

/// The group's capacity; a missing group is `GroupNotFound`.
fn group_capacity(tx: &mut impl GenericClient, owner: AccountId, group_id: &str) -> Result<u64, SearchError> {
    let row = tx
        .query_opt(
            "SELECT max_capacity FROM search_groups WHERE owner_id = $1 AND group_id = $2",
            &[&owner.0, &group_id],
        )
        .db::<SearchError>()?
        .ok_or_else(|| SearchError::GroupNotFound(group_id.into()))?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// A writer's transaction, holding [`lock::SEARCH`], on a group that exists: its capacity.
fn write_on(tx: &mut Transaction<'_>, owner: AccountId, group_id: &str) -> Result<u64, SearchError> {
    lock_for_transaction(tx, lock::SEARCH)?;
    group_capacity(tx, owner, group_id)
}

fn touch(tx: &mut Transaction<'_>, owner: AccountId, group_id: &str) -> Result<(), SearchError> {
    tx.execute(
        "UPDATE search_groups SET updated_at = $3 WHERE owner_id = $1 AND group_id = $2",
        &[&owner.0, &group_id, &engine::stamp::now()],
    )
    .db::<SearchError>()?;
    Ok(())
}

impl GroupRepository for PostgresStore {
    fn create_group(&self, group: &SearchGroup) -> Result<(), SearchError> {
        let mut conn = self.conn::<SearchError>()?;
        let mut tx = conn.transaction().db::<SearchError>()?;
        lock_for_transaction(&mut tx, lock::SEARCH)?;
        let row = tx
            .query_one(
                "SELECT COUNT(*), COALESCE(BOOL_OR(group_id = $2), FALSE) FROM search_groups WHERE owner_id = $1",
                &[&group.owner.0, &group.group_id],
            )
            .db::<SearchError>()?;
        if row.get::<_, bool>(1) {
            return Err(SearchError::GroupExists(group.group_id.clone()));
        }
        if row.get::<_, i64>(0) as u64 >= MAX_GROUPS {
            return Err(SearchError::TooManyGroups);
        }
        tx.execute(
            &format!("INSERT INTO search_groups ({GROUP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
            &[
                &group.owner.0,
                &group.group_id,
                &group.group_name,
                &group.brief,
                &(group.max_capacity as i64),
                &(group.max_qps as i64),
                &(group.group_type as i64),
                &group.created_at,
                &group.updated_at,
            ],
        )
        .db::<SearchError>()?;
        tx.commit().db()
    }

    fn groups(
        &self,
        owner: AccountId,
        group_id: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<(SearchGroup, u64)>, SearchError> {
        let rows = self
            .conn::<SearchError>()?
            .query(
                &format!(
                    "SELECT {GROUP_COLUMNS}, (SELECT COUNT(*) FROM search_pictures p WHERE p.owner_id = g.owner_id
                         AND p.group_id = g.group_id)
                     FROM search_groups g WHERE owner_id = $1 AND ($2::TEXT IS NULL OR group_id = $2)
                     ORDER BY created_at, group_id LIMIT $3 OFFSET $4"
                ),
                &[&owner.0, &group_id, &(limit as i64), &(offset as i64)],
            )
            .db::<SearchError>()?;
        Ok(rows.iter().map(group_from_row).collect::<Result<_, _>>()?)
    }

    fn group(&self, owner: AccountId, group_id: &str) -> Result<SearchGroup, SearchError> {
        let row = self
            .conn::<SearchError>()?
            .query_opt(
                &format!("SELECT {GROUP_COLUMNS}, 0::BIGINT FROM search_groups WHERE owner_id = $1 AND group_id = $2"),
                &[&owner.0, &group_id],
            )
            .db::<SearchError>()?
            .ok_or_else(|| SearchError::GroupNotFound(group_id.into()))?;
        Ok(group_from_row(&row)?.0)
    }

    fn add_picture(&self, picture: &Picture) -> Result<i64, SearchError> {
        let mut conn = self.conn::<SearchError>()?;
        let mut tx = conn.transaction().db::<SearchError>()?;
        let capacity = write_on(&mut tx, picture.owner, &picture.group_id)?;
        let row = tx
            .query_one(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE entity_id = $3), COALESCE(BOOL_OR(pic_name = $4), FALSE)
                 FROM search_pictures WHERE owner_id = $1 AND group_id = $2",
                &[&picture.owner.0, &picture.group_id, &picture.entity_id, &picture.pic_name],
            )
            .db::<SearchError>()?;
        let count = row.get::<_, i64>(0) as u64;
        if row.get::<_, bool>(2) {
            return Err(SearchError::PictureExists(picture.pic_name.clone()));
        }
        if row.get::<_, i64>(1) as u64 >= MAX_PICTURES_PER_ENTITY {
            return Err(SearchError::EntityFull(picture.entity_id.clone()));
        }
        if count >= capacity {
            return Err(SearchError::GroupFull(capacity));
        }
        let seq: i64 = tx
            .query_one(
                "INSERT INTO search_pictures (owner_id, group_id, entity_id, pic_name, custom_content, tags, hashes,
                     created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq",
                &[
                    &picture.owner.0,
                    &picture.group_id,
                    &picture.entity_id,
                    &picture.pic_name,
                    &picture.custom_content,
                    &picture.tags,
                    &pack_hashes(&picture.hashes),
                    &picture.created_at,
                ],
            )
            .db::<SearchError>()?
            .get(0);
        touch(&mut tx, picture.owner, &picture.group_id)?;
        tx.commit().db::<SearchError>()?;
        Ok(seq)
    }

    fn pictures(
        &self,
        owner: AccountId,
        group_id: &str,
        entity_id: &str,
        pic_name: Option<&str>,
    ) -> Result<Vec<Picture>, SearchError> {
        let mut conn = self.conn::<SearchError>()?;
        let mut tx = conn.build_transaction().read_only(true).start().db::<SearchError>()?;
        group_capacity(&mut tx, owner, group_id)?;
        let rows = tx
            .query(
                &format!(
                    "SELECT {PICTURE_COLUMNS} FROM search_pictures WHERE owner_id = $1 AND group_id = $2
                     AND entity_id = $3 AND ($4::TEXT IS NULL OR pic_name = $4) ORDER BY seq"
                ),
                &[&owner.0, &group_id, &entity_id, &pic_name],
            )
            .db::<SearchError>()?;
        Ok(rows.iter().map(picture_from_row).collect::<Result<_, _>>()?)
    }

    fn pictures_by_seq(&self, owner: AccountId, seqs: &[i64]) -> Result<Vec<Picture>, SearchError> {
        let rows = self
            .conn::<SearchError>()?
            .query(
                &format!("SELECT {PICTURE_COLUMNS} FROM search_pictures WHERE owner_id = $1 AND seq = ANY($2)"),
                &[&owner.0, &seqs],
            )
            .db::<SearchError>()?;
        Ok(rows.iter().map(picture_from_row).collect::<Result<_, _>>()?)
    }

    fn delete_pictures(
        &self,
        owner: AccountId,
        group_id: &str,
        entity_id: &str,
        pic_name: Option<&str>,
    ) -> Result<u64, SearchError> {
        let mut conn = self.conn::<SearchError>()?;
        let mut tx = conn.transaction().db::<SearchError>()?;
        write_on(&mut tx, owner, group_id)?;
        let deleted = tx
            .execute(
                "DELETE FROM search_pictures WHERE owner_id = $1 AND group_id = $2 AND entity_id = $3
                 AND ($4::TEXT IS NULL OR pic_name = $4)",
                &[&owner.0, &group_id, &entity_id, &pic_name],
            )
            .db::<SearchError>()?;
        if deleted == 0 {
            return Err(SearchError::PictureNotFound(entity_id.into()));
        }
        touch(&mut tx, owner, group_id)?;
        tx.commit().db::<SearchError>()?;
        Ok(deleted)
    }

    fn update_tags(
        &self,
        owner: AccountId,
        group_id: &str,
        entity_id: &str,
        pic_name: Option<&str>,
        tags: &str,
    ) -> Result<u64, SearchError> {
        let mut conn = self.conn::<SearchError>()?;
        let mut tx = conn.transaction().db::<SearchError>()?;
        write_on(&mut tx, owner, group_id)?;
        let changed = tx
            .execute(
                "UPDATE search_pictures SET tags = $5 WHERE owner_id = $1 AND group_id = $2 AND entity_id = $3
                 AND ($4::TEXT IS NULL OR pic_name = $4)",
                &[&owner.0, &group_id, &entity_id, &pic_name, &tags],
            )
            .db::<SearchError>()?;
        if changed == 0 {
            return Err(SearchError::PictureNotFound(entity_id.into()));
        }
        touch(&mut tx, owner, group_id)?;
        tx.commit().db::<SearchError>()?;
        Ok(changed)
    }

    fn picture_changes(&self, cursor: LibraryCursor) -> Result<PictureChanges, SearchError> {
        let mut conn = self.conn::<SearchError>()?;
        // One snapshot: the cursor returned matches exactly what was read.
        let mut tx = conn
            .build_transaction()
            .read_only(true)
            .isolation_level(IsolationLevel::RepeatableRead)
            .start()
            .db::<SearchError>()?;
        let added = tx
            .query(
                &format!("SELECT {PICTURE_COLUMNS}, hashes FROM search_pictures WHERE seq > $1 ORDER BY seq"),
                &[&cursor.sample_seq],
            )
            .db::<SearchError>()?;
        let added = added
            .iter()
            .map(|r| Ok(Picture { hashes: unpack_hashes(r.try_get(8)?), ..picture_from_row(r)? }))
            .collect::<Result<Vec<_>, Fault>>()?;
        let removals = tx
            .query(
                "SELECT seq, picture_seq FROM search_picture_removals WHERE seq > $1 ORDER BY seq",
                &[&cursor.removal_seq],
            )
            .db::<SearchError>()?;
        let removals: Vec<(i64, i64)> = removals.iter().map(|r| (r.get(0), r.get(1))).collect();
        // A picture added and removed again since the cursor shows only in the removals: the
        // cursor still moves past it.
        let last_removed = removals.iter().map(|(_, picture)| *picture).max().unwrap_or(0);
        let next = LibraryCursor {
            sample_seq: added.last().map_or(cursor.sample_seq, |p| p.seq).max(last_removed).max(cursor.sample_seq),
            removal_seq: removals.last().map_or(cursor.removal_seq, |(seq, _)| *seq),
        };
        Ok(PictureChanges { added, removed: removals.into_iter().map(|(_, picture)| picture).collect(), cursor: next })
    }
}
