//! What both backends' moderation-result tables share: the columns, the filter's conditions,
//! and the count of flagged labels.

use crate::name_of;
use engine::accounts::AccountId;
use engine::decision::Label;
use engine::history::Filter;
use std::collections::HashMap;

pub(crate) const COLUMNS: &str = "request_id, owner_id, account_id, created_at, origin, biz_type, data_id, file_md5, \
     file_url, suggestion, label, sub_label, score, flagged, text, hits, response, thumbnail, hashes, \
     corrected_suggestion, corrected_label, correction_note, corrected_by, corrected_at, user_id, device_id, context, \
     observations, service";

/// A result's observations as stored (JSON); `None` for none, or for a form this version
/// cannot read (the result then has nothing to preview a policy on).
pub(crate) fn observations_from(stored: Option<&str>) -> Option<engine::verdict::Observations> {
    serde_json::from_str(stored?).ok()
}

/// A value a filter compares with.
pub(crate) enum Param {
    Integer(i64),
    Text(String),
}

/// The WHERE clause of a filter, with `?` for each value, and the values in order.
pub(crate) fn conditions(owner: AccountId, filter: &Filter) -> (String, Vec<Param>) {
    let mut sql = String::from("owner_id = ?");
    let mut values = vec![Param::Integer(owner.0)];
    let mut add = |clause: &str, given: Vec<Param>| {
        sql.push_str(" AND ");
        sql.push_str(clause);
        values.extend(given);
    };
    let text = |t: &str| vec![Param::Text(t.to_string())];
    if let Some(from) = filter.from {
        add("created_at >= ?", vec![Param::Integer(from)]);
    }
    if let Some(to) = filter.to {
        add("created_at < ?", vec![Param::Integer(to)]);
    }
    if let Some(biz_type) = &filter.biz_type {
        add("biz_type = ?", text(biz_type));
    }
    if let Some(suggestion) = filter.suggestion {
        add("suggestion = ?", text(&name_of(&suggestion)));
    }
    if let Some(label) = filter.label {
        let name = name_of(&label);
        let flagged = format!("% {name} %");
        add("(label = ? OR (' ' || flagged || ' ') LIKE ?)", vec![Param::Text(name), Param::Text(flagged)]);
    }
    if let Some(data_id) = &filter.data_id {
        add("data_id = ?", text(data_id));
    }
    if let Some(user_id) = &filter.user_id {
        add("user_id = ?", text(user_id));
    }
    if let Some(device_id) = &filter.device_id {
        add("device_id = ?", text(device_id));
    }
    match filter.corrected {
        Some(true) => add("corrected_at IS NOT NULL", vec![]),
        Some(false) => add("corrected_at IS NULL", vec![]),
        None => {}
    }
    if !filter.services.is_empty() {
        let marks = vec!["?"; filter.services.len()].join(", ");
        add(&format!("service IN ({marks})"), filter.services.iter().map(|s| Param::Text(s.as_str().into())).collect());
    }
    (sql, values)
}

/// Per label, how many records flagged it (their `flagged` columns: names apart by spaces),
/// most first, ties in the labels' order.
pub(crate) fn labels_flagged(flagged: &[String]) -> Result<Vec<(Label, u64)>, serde_json::Error> {
    let mut per_label: HashMap<Label, u64> = HashMap::new();
    for label in flagged.iter().flat_map(|f| f.split_whitespace()) {
        *per_label.entry(crate::name_from(label)?).or_default() += 1;
    }
    let mut per_label: Vec<(Label, u64)> = per_label.into_iter().collect();
    per_label.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.rank().cmp(&b.0.rank())));
    Ok(per_label)
}
