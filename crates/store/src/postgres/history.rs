//! Moderation results in PostgreSQL (table `results`).

use super::{parse_name, Fault, OrFault, PostgresStore};
use crate::history::{conditions, labels_flagged, observations_from, Param, COLUMNS};
use crate::name_of;
use engine::accounts::AccountId;
use engine::history::{
    Correction, Counts, Filter, HistoryError, HistoryRepository, Origin, Record, Stats, BUSIEST_POLICIES,
};
use engine::library::{pack_hashes, unpack_hashes};
use postgres::types::ToSql;
use postgres::Row;

fn record_from_row(row: &Row) -> Result<Record, Fault> {
    let correction = match row.try_get::<_, Option<&str>>(19)? {
        Some(suggestion) => Some(Correction {
            suggestion: parse_name(suggestion)?,
            label: parse_name(row.try_get(20)?)?,
            note: row.try_get(21)?,
            by: AccountId(row.try_get(22)?),
            at: row.try_get(23)?,
        }),
        None => None,
    };
    Ok(Record {
        request_id: row.try_get(0)?,
        owner: AccountId(row.try_get(1)?),
        account: AccountId(row.try_get(2)?),
        created_at: row.try_get(3)?,
        origin: Origin::parse(row.try_get(4)?).unwrap_or(Origin::Sync),
        service: parse_name(row.try_get(28)?)?,
        biz_type: row.try_get(5)?,
        data_id: row.try_get(6)?,
        file_md5: row.try_get(7)?,
        file_url: row.try_get(8)?,
        user_id: row.try_get(24)?,
        device_id: row.try_get(25)?,
        context: row.try_get(26)?,
        suggestion: parse_name(row.try_get(9)?)?,
        label: parse_name(row.try_get(10)?)?,
        sub_label: row.try_get(11)?,
        score: row.try_get::<_, i32>(12)? as u8,
        flagged: row.try_get::<_, &str>(13)?.split_whitespace().map(parse_name).collect::<Result<_, _>>()?,
        text: row.try_get(14)?,
        hits: serde_json::from_str(row.try_get(15)?).unwrap_or_default(),
        response: row.try_get(16)?,
        thumbnail: row.try_get(17)?,
        hashes: unpack_hashes(row.try_get(18)?),
        observations: observations_from(row.try_get(27)?),
        correction,
    })
}

/// The filter's WHERE clause with PostgreSQL's numbered parameters, and its values.
fn postgres_conditions(owner: AccountId, filter: &Filter) -> (String, Vec<Box<dyn ToSql + Sync>>) {
    let (clause, values) = conditions(owner, filter);
    let mut numbered = String::with_capacity(clause.len() + 8);
    for (i, part) in clause.split('?').enumerate() {
        if i > 0 {
            numbered.push_str(&format!("${i}"));
        }
        numbered.push_str(part);
    }
    let values = values
        .into_iter()
        .map(|v| -> Box<dyn ToSql + Sync> {
            match v {
                Param::Integer(n) => Box::new(n),
                Param::Text(t) => Box::new(t),
            }
        })
        .collect();
    (numbered, values)
}

fn refs(values: &[Box<dyn ToSql + Sync>]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v.as_ref()).collect()
}

fn counts_of(row: &Row, first: usize) -> Counts {
    let n = |i: usize| row.get::<_, i64>(first + i) as u64;
    Counts { total: n(0), pass: n(1), review: n(2), block: n(3) }
}

const COUNTS: &str = "COUNT(*), COUNT(*) FILTER (WHERE suggestion = 'Pass'), \
                      COUNT(*) FILTER (WHERE suggestion = 'Review'), COUNT(*) FILTER (WHERE suggestion = 'Block')";

impl HistoryRepository for PostgresStore {
    fn record(&self, r: &Record) -> Result<(), HistoryError> {
        let flagged: Vec<String> = r.flagged.iter().map(name_of).collect();
        let hits = serde_json::to_string(&r.hits).db::<HistoryError>()?;
        let observations = r.observations.as_ref().map(serde_json::to_string).transpose().db::<HistoryError>()?;
        self.conn::<HistoryError>()?
            .execute(
                &format!(
                    "INSERT INTO results ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                     $14, $15, $16, $17, $18, $19, NULL, NULL, NULL, NULL, NULL, $20, $21, $22, $23, $24)"
                ),
                &[
                    &r.request_id,
                    &r.owner.0,
                    &r.account.0,
                    &r.created_at,
                    &r.origin.as_str(),
                    &r.biz_type,
                    &r.data_id,
                    &r.file_md5,
                    &r.file_url,
                    &name_of(&r.suggestion),
                    &name_of(&r.label),
                    &r.sub_label,
                    &i32::from(r.score),
                    &flagged.join(" "),
                    &r.text,
                    &hits,
                    &r.response,
                    &r.thumbnail,
                    &pack_hashes(&r.hashes),
                    &r.user_id,
                    &r.device_id,
                    &r.context,
                    &observations,
                    &r.service.as_str(),
                ],
            )
            .db::<HistoryError>()?;
        Ok(())
    }

    fn result(&self, owner: AccountId, request_id: &str) -> Result<Record, HistoryError> {
        let row = self
            .conn::<HistoryError>()?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM results WHERE owner_id = $1 AND request_id = $2"),
                &[&owner.0, &request_id],
            )
            .db::<HistoryError>()?
            .ok_or_else(|| HistoryError::NotFound(request_id.into()))?;
        Ok(record_from_row(&row)?)
    }

    fn results(
        &self,
        owner: AccountId,
        filter: &Filter,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Record>, u64), HistoryError> {
        let mut conn = self.conn::<HistoryError>()?;
        let (clause, values) = postgres_conditions(owner, filter);
        let total: i64 = conn
            .query_one(&format!("SELECT COUNT(*) FROM results WHERE {clause}"), &refs(&values))
            .db::<HistoryError>()?
            .get(0);
        let rows = conn
            .query(
                &format!(
                    // The page's ids from the listing index first, then only their rows: skipped
                    // rows are never read.
                    "SELECT {COLUMNS} FROM results WHERE request_id IN (SELECT request_id FROM results
                     WHERE {clause} ORDER BY created_at DESC, seq DESC LIMIT {limit} OFFSET {offset})
                     ORDER BY created_at DESC, seq DESC"
                ),
                &refs(&values),
            )
            .db::<HistoryError>()?;
        Ok((rows.iter().map(record_from_row).collect::<Result<_, _>>()?, total as u64))
    }

    fn stats(&self, owner: AccountId, filter: &Filter) -> Result<Stats, HistoryError> {
        let mut conn = self.conn::<HistoryError>()?;
        let (clause, values) = postgres_conditions(owner, filter);
        let overview = counts_of(
            &conn
                .query_one(&format!("SELECT {COUNTS} FROM results WHERE {clause}"), &refs(&values))
                .db::<HistoryError>()?,
            0,
        );
        let days = conn
            .query(
                &format!(
                    "SELECT to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, {COUNTS}
                     FROM results WHERE {clause} GROUP BY day ORDER BY day"
                ),
                &refs(&values),
            )
            .db::<HistoryError>()?;
        let per_day = days.iter().map(|r| (r.get::<_, String>(0), counts_of(r, 1))).collect();
        let flagged = conn
            .query(&format!("SELECT flagged FROM results WHERE {clause} AND flagged <> ''"), &refs(&values))
            .db::<HistoryError>()?;
        let flagged: Vec<String> = flagged.iter().map(|r| r.get(0)).collect();
        let per_label = labels_flagged(&flagged).db::<HistoryError>()?;
        let policies = conn
            .query(
                &format!(
                    "SELECT biz_type, COUNT(*) AS n FROM results WHERE {clause} GROUP BY biz_type
                     ORDER BY n DESC, biz_type LIMIT {BUSIEST_POLICIES}"
                ),
                &refs(&values),
            )
            .db::<HistoryError>()?;
        let per_policy = policies.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64)).collect();
        Ok(Stats { overview, per_day, per_label, per_policy })
    }

    fn correct(&self, owner: AccountId, request_id: &str, c: &Correction) -> Result<(), HistoryError> {
        let changed = self
            .conn::<HistoryError>()?
            .execute(
                "UPDATE results SET corrected_suggestion = $3, corrected_label = $4, correction_note = $5,
                 corrected_by = $6, corrected_at = $7 WHERE owner_id = $1 AND request_id = $2",
                &[&owner.0, &request_id, &name_of(&c.suggestion), &name_of(&c.label), &c.note, &c.by.0, &c.at],
            )
            .db::<HistoryError>()?;
        if changed == 0 {
            return Err(HistoryError::NotFound(request_id.into()));
        }
        Ok(())
    }

    fn purge(&self, before: i64) -> Result<u64, HistoryError> {
        self.conn::<HistoryError>()?.execute("DELETE FROM results WHERE created_at < $1", &[&before]).db()
    }
}
