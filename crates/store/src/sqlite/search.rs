//! Image search's groups and pictures in SQLite (tables `search_groups`, `search_pictures`, and
//! the removal log `search_picture_removals` that in-memory indexes follow). Every change is
//! one immediate transaction: SQLite has one writer at a time, so the limits it checks hold.

use crate::sqlite::SqliteStore;
use engine::accounts::AccountId;
use engine::library::{pack_hashes, unpack_hashes, LibraryCursor};
use engine::search::{
    GroupRepository, Picture, PictureChanges, SearchError, SearchGroup, MAX_GROUPS, MAX_PICTURES_PER_ENTITY,
};
use rusqlite::{params, OptionalExtension, Row, Transaction, TransactionBehavior};

fn storage(e: impl std::fmt::Display) -> SearchError {
    SearchError::Storage(e.to_string())
}

const GROUP_COLUMNS: &str =
    "owner_id, group_id, name, brief, max_capacity, max_qps, group_type, created_at, updated_at";
/// A picture's columns for answers; its hashes are read by the changes only.
const PICTURE_COLUMNS: &str = "seq, owner_id, group_id, entity_id, pic_name, custom_content, tags, created_at";

fn group_from_row(row: &Row<'_>) -> rusqlite::Result<(SearchGroup, u64)> {
    Ok((
        SearchGroup {
            owner: AccountId(row.get(0)?),
            group_id: row.get(1)?,
            group_name: row.get(2)?,
            brief: row.get(3)?,
            max_capacity: row.get(4)?,
            max_qps: row.get(5)?,
            group_type: row.get(6)?,
            created_at: row.get(7)?,
            updated_at: row.get(8)?,
        },
        row.get(9)?,
    ))
}

fn picture_from_row(row: &Row<'_>) -> rusqlite::Result<Picture> {
    Ok(Picture {
        seq: row.get(0)?,
        owner: AccountId(row.get(1)?),
        group_id: row.get(2)?,
        entity_id: row.get(3)?,
        pic_name: row.get(4)?,
        custom_content: row.get(5)?,
        tags: row.get(6)?,
        hashes: Vec::new(),
        created_at: row.get(7)?,
    })
}

/// The group's capacity; a missing group is `GroupNotFound`.
fn group_capacity(tx: &Transaction<'_>, owner: AccountId, group_id: &str) -> Result<u64, SearchError> {
    tx.query_row(
        "SELECT max_capacity FROM search_groups WHERE owner_id = ?1 AND group_id = ?2",
        params![owner.0, group_id],
        |r| r.get(0),
    )
    .optional()
    .map_err(storage)?
    .ok_or_else(|| SearchError::GroupNotFound(group_id.into()))
}

fn touch(tx: &Transaction<'_>, owner: AccountId, group_id: &str) -> Result<(), SearchError> {
    tx.execute(
        "UPDATE search_groups SET updated_at = ?3 WHERE owner_id = ?1 AND group_id = ?2",
        params![owner.0, group_id, engine::stamp::now()],
    )
    .map_err(storage)?;
    Ok(())
}

impl GroupRepository for SqliteStore {
    fn create_group(&self, group: &SearchGroup) -> Result<(), SearchError> {
        let mut conn = self.connection(SearchError::Storage)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(storage)?;
        let (count, taken): (u64, bool) = tx
            .query_row(
                "SELECT COUNT(*), COALESCE(MAX(group_id = ?2), 0) FROM search_groups WHERE owner_id = ?1",
                params![group.owner.0, group.group_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(storage)?;
        if taken {
            return Err(SearchError::GroupExists(group.group_id.clone()));
        }
        if count >= MAX_GROUPS {
            return Err(SearchError::TooManyGroups);
        }
        tx.execute(
            &format!("INSERT INTO search_groups ({GROUP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
            params![
                group.owner.0,
                group.group_id,
                group.group_name,
                group.brief,
                group.max_capacity,
                group.max_qps,
                group.group_type,
                group.created_at,
                group.updated_at
            ],
        )
        .map_err(storage)?;
        tx.commit().map_err(storage)
    }

    fn groups(
        &self,
        owner: AccountId,
        group_id: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<(SearchGroup, u64)>, SearchError> {
        let conn = self.connection(SearchError::Storage)?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {GROUP_COLUMNS}, (SELECT COUNT(*) FROM search_pictures p WHERE p.owner_id = g.owner_id
                     AND p.group_id = g.group_id)
                 FROM search_groups g WHERE owner_id = ?1 AND (?2 IS NULL OR group_id = ?2)
                 ORDER BY created_at, group_id LIMIT {limit} OFFSET {offset}"
            ))
            .map_err(storage)?;
        let rows = stmt.query_map(params![owner.0, group_id], group_from_row).map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn group(&self, owner: AccountId, group_id: &str) -> Result<SearchGroup, SearchError> {
        self.connection(SearchError::Storage)?
            .query_row(
                &format!("SELECT {GROUP_COLUMNS}, 0 FROM search_groups WHERE owner_id = ?1 AND group_id = ?2"),
                params![owner.0, group_id],
                group_from_row,
            )
            .optional()
            .map_err(storage)?
            .map(|(group, _)| group)
            .ok_or_else(|| SearchError::GroupNotFound(group_id.into()))
    }

    fn add_picture(&self, picture: &Picture) -> Result<i64, SearchError> {
        let mut conn = self.connection(SearchError::Storage)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(storage)?;
        let capacity = group_capacity(&tx, picture.owner, &picture.group_id)?;
        let (count, of_entity, name_taken): (u64, u64, bool) = tx
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(entity_id = ?3), 0), COALESCE(MAX(pic_name = ?4), 0)
                 FROM search_pictures WHERE owner_id = ?1 AND group_id = ?2",
                params![picture.owner.0, picture.group_id, picture.entity_id, picture.pic_name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(storage)?;
        if name_taken {
            return Err(SearchError::PictureExists(picture.pic_name.clone()));
        }
        if of_entity >= MAX_PICTURES_PER_ENTITY {
            return Err(SearchError::EntityFull(picture.entity_id.clone()));
        }
        if count >= capacity {
            return Err(SearchError::GroupFull(capacity));
        }
        tx.execute(
            "INSERT INTO search_pictures (owner_id, group_id, entity_id, pic_name, custom_content, tags, hashes,
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                picture.owner.0,
                picture.group_id,
                picture.entity_id,
                picture.pic_name,
                picture.custom_content,
                picture.tags,
                pack_hashes(&picture.hashes),
                picture.created_at
            ],
        )
        .map_err(storage)?;
        let seq = tx.last_insert_rowid();
        touch(&tx, picture.owner, &picture.group_id)?;
        tx.commit().map_err(storage)?;
        Ok(seq)
    }

    fn pictures(
        &self,
        owner: AccountId,
        group_id: &str,
        entity_id: &str,
        pic_name: Option<&str>,
    ) -> Result<Vec<Picture>, SearchError> {
        let mut conn = self.connection(SearchError::Storage)?;
        let tx = conn.transaction().map_err(storage)?;
        group_capacity(&tx, owner, group_id)?;
        let mut stmt = tx
            .prepare(&format!(
                "SELECT {PICTURE_COLUMNS} FROM search_pictures WHERE owner_id = ?1 AND group_id = ?2
                 AND entity_id = ?3 AND (?4 IS NULL OR pic_name = ?4) ORDER BY seq"
            ))
            .map_err(storage)?;
        let rows =
            stmt.query_map(params![owner.0, group_id, entity_id, pic_name], picture_from_row).map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn pictures_by_seq(&self, owner: AccountId, seqs: &[i64]) -> Result<Vec<Picture>, SearchError> {
        let conn = self.connection(SearchError::Storage)?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {PICTURE_COLUMNS} FROM search_pictures WHERE owner_id = ?1
                 AND seq IN (SELECT value FROM json_each(?2))"
            ))
            .map_err(storage)?;
        let seqs = serde_json::to_string(seqs).map_err(storage)?;
        let rows = stmt.query_map(params![owner.0, seqs], picture_from_row).map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn delete_pictures(
        &self,
        owner: AccountId,
        group_id: &str,
        entity_id: &str,
        pic_name: Option<&str>,
    ) -> Result<u64, SearchError> {
        let mut conn = self.connection(SearchError::Storage)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(storage)?;
        group_capacity(&tx, owner, group_id)?;
        let deleted = tx
            .execute(
                "DELETE FROM search_pictures WHERE owner_id = ?1 AND group_id = ?2 AND entity_id = ?3
                 AND (?4 IS NULL OR pic_name = ?4)",
                params![owner.0, group_id, entity_id, pic_name],
            )
            .map_err(storage)?;
        if deleted == 0 {
            return Err(SearchError::PictureNotFound(entity_id.into()));
        }
        touch(&tx, owner, group_id)?;
        tx.commit().map_err(storage)?;
        Ok(deleted as u64)
    }

    fn update_tags(
        &self,
        owner: AccountId,
        group_id: &str,
        entity_id: &str,
        pic_name: Option<&str>,
        tags: &str,
    ) -> Result<u64, SearchError> {
        let mut conn = self.connection(SearchError::Storage)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(storage)?;
        group_capacity(&tx, owner, group_id)?;
        let changed = tx
            .execute(
                "UPDATE search_pictures SET tags = ?5 WHERE owner_id = ?1 AND group_id = ?2 AND entity_id = ?3
                 AND (?4 IS NULL OR pic_name = ?4)",
                params![owner.0, group_id, entity_id, pic_name, tags],
            )
            .map_err(storage)?;
        if changed == 0 {
            return Err(SearchError::PictureNotFound(entity_id.into()));
        }
        touch(&tx, owner, group_id)?;
        tx.commit().map_err(storage)?;
        Ok(changed as u64)
    }

    fn picture_changes(&self, cursor: LibraryCursor) -> Result<PictureChanges, SearchError> {
        let mut conn = self.connection(SearchError::Storage)?;
        // One read transaction: the cursor returned matches exactly what was read.
        let tx = conn.transaction().map_err(storage)?;
        let added = {
            let mut stmt = tx
                .prepare(&format!("SELECT {PICTURE_COLUMNS}, hashes FROM search_pictures WHERE seq > ?1 ORDER BY seq"))
                .map_err(storage)?;
            let rows = stmt
                .query_map([cursor.sample_seq], |r| {
                    Ok(Picture { hashes: unpack_hashes(&r.get::<_, Vec<u8>>(8)?), ..picture_from_row(r)? })
                })
                .map_err(storage)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(storage)?
        };
        let removals = {
            let mut stmt = tx
                .prepare("SELECT seq, picture_seq FROM search_picture_removals WHERE seq > ?1 ORDER BY seq")
                .map_err(storage)?;
            let rows = stmt
                .query_map([cursor.removal_seq], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                .map_err(storage)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(storage)?
        };
        let picture_seq: i64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'search_pictures'", [], |r| {
                r.get(0)
            })
            .map_err(storage)?;
        let next = LibraryCursor {
            sample_seq: picture_seq.max(cursor.sample_seq),
            removal_seq: removals.last().map_or(cursor.removal_seq, |(seq, _)| *seq),
        };
        Ok(PictureChanges { added, removed: removals.into_iter().map(|(_, picture)| picture).collect(), cursor: next })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_pictures_limits_and_an_index_that_follows_them() {
        crate::conformance::search::groups_pictures_limits_and_an_index_that_follows_them(
            &crate::sqlite::scratch_store().1,
        );
    }

    #[test]
    fn racing_pictures_stop_at_the_entity_limit() {
        crate::conformance::search::racing_pictures_stop_at_the_entity_limit(&crate::sqlite::scratch_store().1);
    }
}
