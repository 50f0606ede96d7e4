//! Moderation results in SQLite (table `results`).

use crate::history::{conditions, labels_flagged, observations_from, Param, COLUMNS};
use crate::name_of;
use crate::sqlite::{parse_name, SqliteStore};
use engine::accounts::AccountId;
use engine::history::{
    Correction, Counts, Filter, HistoryError, HistoryRepository, Origin, Record, Stats, BUSIEST_POLICIES,
};
use engine::library::{pack_hashes, unpack_hashes};
use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};

fn storage(e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Storage(e.to_string())
}

fn record_from_row(row: &Row<'_>) -> rusqlite::Result<Record> {
    let flagged: String = row.get(13)?;
    let hits: String = row.get(15)?;
    let hashes: Vec<u8> = row.get(18)?;
    let correction = match row.get::<_, Option<String>>(19)? {
        Some(suggestion) => Some(Correction {
            suggestion: parse_name(&suggestion)?,
            label: parse_name(&row.get::<_, String>(20)?)?,
            note: row.get(21)?,
            by: AccountId(row.get(22)?),
            at: row.get(23)?,
        }),
        None => None,
    };
    Ok(Record {
        request_id: row.get(0)?,
        owner: AccountId(row.get(1)?),
        account: AccountId(row.get(2)?),
        created_at: row.get(3)?,
        origin: Origin::parse(&row.get::<_, String>(4)?).unwrap_or(Origin::Sync),
        service: parse_name(&row.get::<_, String>(28)?)?,
        biz_type: row.get(5)?,
        data_id: row.get(6)?,
        file_md5: row.get(7)?,
        file_url: row.get(8)?,
        user_id: row.get(24)?,
        device_id: row.get(25)?,
        context: row.get(26)?,
        suggestion: parse_name(&row.get::<_, String>(9)?)?,
        label: parse_name(&row.get::<_, String>(10)?)?,
        sub_label: row.get(11)?,
        score: row.get(12)?,
        flagged: flagged.split_whitespace().map(parse_name).collect::<Result<_, _>>()?,
        text: row.get(14)?,
        hits: serde_json::from_str(&hits).unwrap_or_default(),
        response: row.get(16)?,
        thumbnail: row.get(17)?,
        hashes: unpack_hashes(&hashes),
        observations: observations_from(row.get::<_, Option<String>>(27)?.as_deref()),
        correction,
    })
}

/// The filter's WHERE clause and its values in SQLite's terms.
fn sqlite_conditions(owner: AccountId, filter: &Filter) -> (String, Vec<Sql>) {
    let (clause, values) = conditions(owner, filter);
    let values = values
        .into_iter()
        .map(|v| match v {
            Param::Integer(n) => Sql::Integer(n),
            Param::Text(t) => Sql::Text(t),
        })
        .collect();
    (clause, values)
}

fn counts_of(row: &Row<'_>, first: usize) -> rusqlite::Result<Counts> {
    Ok(Counts {
        total: row.get(first)?,
        pass: row.get(first + 1)?,
        review: row.get(first + 2)?,
        block: row.get(first + 3)?,
    })
}

const COUNTS: &str = "COUNT(*), COALESCE(SUM(suggestion = 'Pass'), 0), COALESCE(SUM(suggestion = 'Review'), 0), \
                      COALESCE(SUM(suggestion = 'Block'), 0)";

impl HistoryRepository for SqliteStore {
    fn record(&self, r: &Record) -> Result<(), HistoryError> {
        let flagged: Vec<String> = r.flagged.iter().map(name_of).collect();
        self.connection(HistoryError::Storage)?
            .execute(
                &format!("INSERT INTO results ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, NULL, NULL, NULL, NULL, NULL, ?20, ?21, ?22, ?23, ?24)"),
                params![
                    r.request_id,
                    r.owner.0,
                    r.account.0,
                    r.created_at,
                    r.origin.as_str(),
                    r.biz_type,
                    r.data_id,
                    r.file_md5,
                    r.file_url,
                    name_of(&r.suggestion),
                    name_of(&r.label),
                    r.sub_label,
                    r.score,
                    flagged.join(" "),
                    r.text,
                    serde_json::to_string(&r.hits).map_err(storage)?,
                    r.response,
                    r.thumbnail,
                    pack_hashes(&r.hashes),
                    r.user_id,
                    r.device_id,
                    r.context,
                    r.observations.as_ref().map(serde_json::to_string).transpose().map_err(storage)?,
                    r.service.as_str(),
                ],
            )
            .map_err(storage)?;
        Ok(())
    }

    fn result(&self, owner: AccountId, request_id: &str) -> Result<Record, HistoryError> {
        self.connection(HistoryError::Storage)?
            .query_row(
                &format!("SELECT {COLUMNS} FROM results WHERE owner_id = ?1 AND request_id = ?2"),
                params![owner.0, request_id],
                record_from_row,
            )
            .optional()
            .map_err(storage)?
            .ok_or_else(|| HistoryError::NotFound(request_id.into()))
    }

    fn results(
        &self,
        owner: AccountId,
        filter: &Filter,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Record>, u64), HistoryError> {
        let conn = self.connection(HistoryError::Storage)?;
        let (clause, values) = sqlite_conditions(owner, filter);
        let total: u64 = conn
            .query_row(&format!("SELECT COUNT(*) FROM results WHERE {clause}"), params_from_iter(values.iter()), |r| {
                r.get(0)
            })
            .map_err(storage)?;
        let mut stmt = conn
            .prepare(&format!(
                // The page's rowids from the listing index first, then only their rows: skipped
                // rows are never read.
                "SELECT {COLUMNS} FROM results WHERE rowid IN (SELECT rowid FROM results WHERE {clause}
                 ORDER BY created_at DESC, rowid DESC LIMIT {limit} OFFSET {offset}) ORDER BY created_at DESC, rowid DESC"
            ))
            .map_err(storage)?;
        let records = stmt
            .query_map(params_from_iter(values.iter()), record_from_row)
            .map_err(storage)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(storage)?;
        Ok((records, total))
    }

    fn stats(&self, owner: AccountId, filter: &Filter) -> Result<Stats, HistoryError> {
        let conn = self.connection(HistoryError::Storage)?;
        let (clause, values) = sqlite_conditions(owner, filter);
        let overview = conn
            .query_row(&format!("SELECT {COUNTS} FROM results WHERE {clause}"), params_from_iter(values.iter()), |r| {
                counts_of(r, 0)
            })
            .map_err(storage)?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT date(created_at, 'unixepoch') AS day, {COUNTS} FROM results WHERE {clause} GROUP BY day ORDER BY day"
            ))
            .map_err(storage)?;
        let per_day = stmt
            .query_map(params_from_iter(values.iter()), |r| Ok((r.get::<_, String>(0)?, counts_of(r, 1)?)))
            .map_err(storage)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(storage)?;
        let mut stmt =
            conn.prepare(&format!("SELECT flagged FROM results WHERE {clause} AND flagged != ''")).map_err(storage)?;
        let flagged = stmt
            .query_map(params_from_iter(values.iter()), |r| r.get::<_, String>(0))
            .map_err(storage)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(storage)?;
        let per_label = labels_flagged(&flagged).map_err(storage)?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT biz_type, COUNT(*) AS n FROM results WHERE {clause} GROUP BY biz_type
                 ORDER BY n DESC, biz_type LIMIT {BUSIEST_POLICIES}"
            ))
            .map_err(storage)?;
        let per_policy = stmt
            .query_map(params_from_iter(values.iter()), |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))
            .map_err(storage)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(storage)?;
        Ok(Stats { overview, per_day, per_label, per_policy })
    }

    fn correct(&self, owner: AccountId, request_id: &str, c: &Correction) -> Result<(), HistoryError> {
        let changed = self
            .connection(HistoryError::Storage)?
            .execute(
                "UPDATE results SET corrected_suggestion = ?3, corrected_label = ?4, correction_note = ?5,
                 corrected_by = ?6, corrected_at = ?7 WHERE owner_id = ?1 AND request_id = ?2",
                params![owner.0, request_id, name_of(&c.suggestion), name_of(&c.label), c.note, c.by.0, c.at],
            )
            .map_err(storage)?;
        if changed == 0 {
            return Err(HistoryError::NotFound(request_id.into()));
        }
        Ok(())
    }

    fn purge(&self, before: i64) -> Result<u64, HistoryError> {
        let removed = self
            .connection(HistoryError::Storage)?
            .execute("DELETE FROM results WHERE created_at < ?1", [before])
            .map_err(storage)?;
        Ok(removed as u64)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_pages_stats_corrections_and_retention() {
        crate::conformance::history::filters_pages_stats_corrections_and_retention(&crate::sqlite::scratch_store().1);
    }
}
