//! Moderation results in SQLite (table `results`).

use crate::sqlite::SqliteStore;
use engine::accounts::AccountId;
use engine::decision::Label;
use engine::history::{Correction, Counts, Filter, HistoryError, HistoryRepository, Origin, Record, Stats};
use engine::library::{pack_hashes, unpack_hashes};
use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};

fn storage(e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Storage(e.to_string())
}

/// Enum names are stored as the API spells them (their serde names).
pub(crate) fn name_of<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => unreachable!("unit enums serialise as strings"),
    }
}

pub(crate) fn parse_name<T: serde::de::DeserializeOwned>(name: &str) -> rusqlite::Result<T> {
    serde_json::from_value(serde_json::Value::String(name.into()))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

const COLUMNS: &str = "request_id, owner_id, account_id, created_at, origin, biz_type, data_id, file_md5, file_url, \
     suggestion, label, sub_label, score, flagged, text, hits, response, thumbnail, hashes, \
     corrected_suggestion, corrected_label, correction_note, corrected_by, corrected_at, user_id, device_id, context";

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
        correction,
    })
}

/// The WHERE clause (after the owner) and its parameters for a filter.
fn conditions(owner: AccountId, filter: &Filter) -> (String, Vec<Sql>) {
    let mut sql = String::from("owner_id = ?");
    let mut values = vec![Sql::Integer(owner.0)];
    let mut add = |clause: &str, given: &[Sql]| {
        sql.push_str(" AND ");
        sql.push_str(clause);
        values.extend_from_slice(given);
    };
    if let Some(from) = filter.from {
        add("created_at >= ?", &[Sql::Integer(from)]);
    }
    if let Some(to) = filter.to {
        add("created_at < ?", &[Sql::Integer(to)]);
    }
    if let Some(biz_type) = &filter.biz_type {
        add("biz_type = ?", &[Sql::Text(biz_type.clone())]);
    }
    if let Some(suggestion) = filter.suggestion {
        add("suggestion = ?", &[Sql::Text(name_of(&suggestion))]);
    }
    if let Some(label) = filter.label {
        let name = name_of(&label);
        add(
            "(label = ? OR (' ' || flagged || ' ') LIKE ?)",
            &[Sql::Text(name.clone()), Sql::Text(format!("% {name} %"))],
        );
    }
    if let Some(data_id) = &filter.data_id {
        add("data_id = ?", &[Sql::Text(data_id.clone())]);
    }
    if let Some(user_id) = &filter.user_id {
        add("user_id = ?", &[Sql::Text(user_id.clone())]);
    }
    if let Some(device_id) = &filter.device_id {
        add("device_id = ?", &[Sql::Text(device_id.clone())]);
    }
    match filter.corrected {
        Some(true) => add("corrected_at IS NOT NULL", &[]),
        Some(false) => add("corrected_at IS NULL", &[]),
        None => {}
    }
    (sql, values)
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
                &format!("INSERT INTO results ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, NULL, NULL, NULL, NULL, NULL, ?20, ?21, ?22)"),
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
        let (clause, values) = conditions(owner, filter);
        let total: u64 = conn
            .query_row(&format!("SELECT COUNT(*) FROM results WHERE {clause}"), params_from_iter(values.iter()), |r| {
                r.get(0)
            })
            .map_err(storage)?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM results WHERE {clause} ORDER BY created_at DESC, rowid DESC LIMIT {limit} OFFSET {offset}"
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
        let (clause, values) = conditions(owner, filter);
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
        let mut per_label: std::collections::HashMap<Label, u64> = std::collections::HashMap::new();
        let rows = stmt.query_map(params_from_iter(values.iter()), |r| r.get::<_, String>(0)).map_err(storage)?;
        for flagged in rows {
            for label in flagged.map_err(storage)?.split_whitespace() {
                *per_label.entry(parse_name(label).map_err(storage)?).or_default() += 1;
            }
        }
        let mut per_label: Vec<(Label, u64)> = per_label.into_iter().collect();
        per_label.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.rank().cmp(&b.0.rank())));
        Ok(Stats { overview, per_day, per_label })
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
