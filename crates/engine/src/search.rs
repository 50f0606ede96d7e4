//! Image search (tiia's `CreateGroup`, `CreateImage`, `SearchImage`...): an account's groups of
//! pictures, each filed under its PDQ hashes and their variants as the image libraries' samples
//! are, and searched for the same picture: re-encoded, resized, cropped a little, mirrored,
//! recoloured or watermarked. PDQ tells the same picture, not similar ones, so only the cloud's
//! group type 4 (its "same original image" search) is served.
//!
//! A group is named by the account (`GroupId`); its pictures by an entity (`EntityId`, up to
//! [`MAX_PICTURES_PER_ENTITY`] pictures each) and a name (`PicName`, unique in the group), with
//! free text and tags (a JSON object) answered back and filtered on ([`TagFilter`]).
//! [`GroupIndex`] keeps every picture's hashes in memory, in step with the repository as the
//! libraries' matcher is; what a search answers (names, tags) is read back from the store, so
//! a tag changed on any node is seen at once.

use crate::accounts::AccountId;
use crate::library::{Filed, Hash256, LibraryCursor, MATCH_DISTANCE};
use serde_json::{Map, Value};
use std::sync::RwLock;

/// Most groups an account may have (the cloud's limit).
pub const MAX_GROUPS: u64 = 30;
/// Largest `MaxCapacity` of a group. Every picture's hashes (up to 30) live in each node's
/// memory, about 7 KB a picture (docs/benchmarks.md, the index's bench): a full group is 700 MB.
pub const MAX_CAPACITY: u64 = 100_000;
/// Most pictures an entity may have (the cloud's limit).
pub const MAX_PICTURES_PER_ENTITY: u64 = 10;
/// A group's `MaxQps` when none is given (the cloud's default).
pub const DEFAULT_MAX_QPS: u64 = 10;
/// Largest `MaxQps` a group may be given: the default synchronous rate of an account.
pub const MAX_QPS: u64 = 1000;
/// The group type served: the cloud's "general image search 1.0", which finds the same picture
/// cropped, mirrored, recoloured or watermarked.
pub const SERVED_GROUP_TYPE: u64 = 4;
/// Longest `GroupId`, `GroupName`, `EntityId` and `PicName`, in characters.
pub const MAX_NAME: usize = 64;
/// Longest `Brief`, in characters.
pub const MAX_BRIEF: usize = 256;
/// Longest `CustomContent`, in characters (the cloud's limit).
pub const MAX_CUSTOM_CONTENT: usize = 4096;
/// Most tags a picture may have (the cloud's limit).
pub const MAX_TAGS: usize = 10;
/// Longest tag key and tag value, in characters.
pub const MAX_TAG_TEXT: usize = 128;
/// Longest `Filter`, in characters (the cloud's limit).
pub const MAX_FILTER: usize = 64;
/// The `MatchThreshold` used when the request gives 0 (the cloud's for its type 4).
pub const DEFAULT_MATCH_THRESHOLD: u8 = 50;

/// A search score from the distance of two PDQ hashes: 100 for the same hash, down to 51 at
/// the libraries' [`MATCH_DISTANCE`] (31 bits) and 50 just past it, so that the default
/// threshold (a score above 50) keeps exactly the pictures the image libraries would match.
pub fn score(distance: u32) -> u8 {
    100 - (distance.min(64) * 50).div_ceil(32) as u8
}

/// Why a search request cannot be done; each has its own code in the cloud's table.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SearchError {
    #[error("GroupId must be letters, digits and underscores")]
    GroupIdIllegal,
    #[error("GroupId has at most {MAX_NAME} characters")]
    GroupIdTooLong,
    #[error("a group `{0}` already exists")]
    GroupExists(String),
    #[error("no group `{0}`")]
    GroupNotFound(String),
    #[error("an account has at most {MAX_GROUPS} groups")]
    TooManyGroups,
    #[error("GroupName is empty")]
    GroupNameEmpty,
    #[error("GroupName has at most {MAX_NAME} characters")]
    GroupNameTooLong,
    #[error("EntityId is empty")]
    EntityIdEmpty,
    #[error("EntityId has at most {MAX_NAME} characters")]
    EntityIdTooLong,
    #[error("PicName is empty")]
    PicNameEmpty,
    #[error("PicName has at most {MAX_NAME} characters")]
    PicNameTooLong,
    #[error("a picture named `{0}` is already in the group")]
    PictureExists(String),
    #[error("the entity `{0}` has {MAX_PICTURES_PER_ENTITY} pictures already")]
    EntityFull(String),
    #[error("the group holds its MaxCapacity of {0} pictures")]
    GroupFull(u64),
    #[error("no picture of entity `{0}` matches")]
    PictureNotFound(String),
    #[error("Tags has at most {MAX_TAGS} tags, not {0}")]
    TooManyTags(usize),
    #[error("Tags: {0}")]
    TagsIllegal(String),
    #[error("Tags: `{0}` or its value is over {MAX_TAG_TEXT} characters")]
    TagTooLong(String),
    #[error("Filter `{0}`: {1}")]
    FilterInvalid(String, &'static str),
    #[error("Filter has at most {MAX_FILTER} characters")]
    FilterTooLong,
    #[error("{0}")]
    Invalid(String),
    #[error("storage: {0}")]
    Storage(String),
}

/// An `EntityId` checked: 1 to [`MAX_NAME`] characters.
pub fn check_entity_id(entity_id: &str) -> Result<(), SearchError> {
    name(entity_id, SearchError::EntityIdEmpty, SearchError::EntityIdTooLong)
}

/// A `PicName` checked: 1 to [`MAX_NAME`] characters.
pub fn check_pic_name(pic_name: &str) -> Result<(), SearchError> {
    name(pic_name, SearchError::PicNameEmpty, SearchError::PicNameTooLong)
}

/// `text` is 1 to [`MAX_NAME`] characters, or the error for empty or too long.
fn name(text: &str, empty: SearchError, too_long: SearchError) -> Result<(), SearchError> {
    match text.chars().count() {
        0 => Err(empty),
        n if n > MAX_NAME => Err(too_long),
        _ => Ok(()),
    }
}

/// One group of pictures.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchGroup {
    pub owner: AccountId,
    pub group_id: String,
    pub group_name: String,
    pub brief: String,
    pub max_capacity: u64,
    pub max_qps: u64,
    pub group_type: u64,
    pub created_at: i64,
    /// When a picture was last added, changed or removed (or the group made).
    pub updated_at: i64,
}

impl SearchGroup {
    /// A new group, checked, made now. `max_qps` 0 is the default; a type other than 4 is
    /// refused by the caller, which knows how to say so.
    pub fn new(
        owner: AccountId,
        group_id: &str,
        group_name: &str,
        brief: &str,
        max_capacity: u64,
        max_qps: u64,
    ) -> Result<SearchGroup, SearchError> {
        name(group_id, SearchError::GroupIdIllegal, SearchError::GroupIdTooLong)?;
        if !group_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(SearchError::GroupIdIllegal);
        }
        name(group_name, SearchError::GroupNameEmpty, SearchError::GroupNameTooLong)?;
        if brief.chars().count() > MAX_BRIEF {
            return Err(SearchError::Invalid(format!("Brief has at most {MAX_BRIEF} characters")));
        }
        if !(1..=MAX_CAPACITY).contains(&max_capacity) {
            return Err(SearchError::Invalid(format!("MaxCapacity must be 1 to {MAX_CAPACITY}")));
        }
        if max_qps > MAX_QPS {
            return Err(SearchError::Invalid(format!("MaxQps must be 1 to {MAX_QPS}")));
        }
        let now = crate::stamp::now();
        Ok(SearchGroup {
            owner,
            group_id: group_id.into(),
            group_name: group_name.into(),
            brief: brief.into(),
            max_capacity,
            max_qps: if max_qps == 0 { DEFAULT_MAX_QPS } else { max_qps },
            group_type: SERVED_GROUP_TYPE,
            created_at: now,
            updated_at: now,
        })
    }
}

/// One picture of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    /// The store's row number: increases with every picture added; 0 until stored.
    pub seq: i64,
    pub owner: AccountId,
    pub group_id: String,
    pub entity_id: String,
    pub pic_name: String,
    pub custom_content: String,
    /// A JSON object of at most [`MAX_TAGS`] tags (`{}` for none), as sent.
    pub tags: String,
    /// Empty when read for an answer (the hashes stay in the store and the index).
    pub hashes: Vec<Hash256>,
    pub created_at: i64,
}

impl Picture {
    /// A new picture, checked, made now; `tags` empty is no tag.
    pub fn new(
        owner: AccountId,
        group_id: &str,
        entity_id: &str,
        pic_name: &str,
        custom_content: &str,
        tags: &str,
        hashes: Vec<Hash256>,
    ) -> Result<Picture, SearchError> {
        check_entity_id(entity_id)?;
        check_pic_name(pic_name)?;
        if custom_content.chars().count() > MAX_CUSTOM_CONTENT {
            return Err(SearchError::Invalid(format!("CustomContent has at most {MAX_CUSTOM_CONTENT} characters")));
        }
        Ok(Picture {
            seq: 0,
            owner,
            group_id: group_id.into(),
            entity_id: entity_id.into(),
            pic_name: pic_name.into(),
            custom_content: custom_content.into(),
            tags: checked_tags(tags)?,
            hashes,
            created_at: crate::stamp::now(),
        })
    }
}

/// `tags` checked: a JSON object of at most [`MAX_TAGS`] keys of 1 to [`MAX_TAG_TEXT`]
/// characters, each a string (of at most [`MAX_TAG_TEXT`]) or a number; empty means `{}`.
pub fn checked_tags(tags: &str) -> Result<String, SearchError> {
    if tags.trim().is_empty() {
        return Ok("{}".into());
    }
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(tags) else {
        return Err(SearchError::TagsIllegal(
            "must be a JSON object such as {\"colour\": \"red\", \"size\": 3}".into(),
        ));
    };
    if map.len() > MAX_TAGS {
        return Err(SearchError::TooManyTags(map.len()));
    }
    for (key, value) in &map {
        let long = |text: &str| text.chars().count() > MAX_TAG_TEXT;
        match value {
            _ if key.is_empty() => return Err(SearchError::TagsIllegal("a key is empty".into())),
            Value::String(text) if long(key) || long(text) => return Err(SearchError::TagTooLong(key.clone())),
            Value::Number(_) if long(key) => return Err(SearchError::TagTooLong(key.clone())),
            Value::String(_) | Value::Number(_) => {}
            _ => return Err(SearchError::TagsIllegal(format!("the value of `{key}` must be a string or a number"))),
        }
    }
    Ok(tags.into())
}

/// What changed in the pictures since a cursor: the hashes of those added and the rows removed.
#[derive(Debug, Default)]
pub struct PictureChanges {
    pub added: Vec<Picture>,
    pub removed: Vec<i64>,
    pub cursor: LibraryCursor,
}

/// Where groups and their pictures are kept, per account.
///
/// Concurrency contract: each method is one atomic change or read. Of creations racing, no
/// more succeed than the limits allow: groups per account, pictures per entity and per group,
/// picture names per group. Every change is visible to the next refresh of a [`GroupIndex`]
/// reading from any store.
pub trait GroupRepository: Send + Sync {
    /// Keeps a new group, unless the account has [`MAX_GROUPS`] or one of its id.
    fn create_group(&self, group: &SearchGroup) -> Result<(), SearchError>;
    /// A page of the account's groups, oldest first, each with its picture count; one group
    /// only when `group_id` is given.
    fn groups(
        &self,
        owner: AccountId,
        group_id: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<(SearchGroup, u64)>, SearchError>;
    /// One group, without counting its pictures (what a search or a filing reads).
    fn group(&self, owner: AccountId, group_id: &str) -> Result<SearchGroup, SearchError>;
    /// Keeps a new picture (its `seq` is then the row's), within the group's capacity and the
    /// entity's [`MAX_PICTURES_PER_ENTITY`], its name unused in the group.
    fn add_picture(&self, picture: &Picture) -> Result<i64, SearchError>;
    /// An entity's pictures (one when `pic_name` is given), oldest first, without hashes.
    fn pictures(
        &self,
        owner: AccountId,
        group_id: &str,
        entity_id: &str,
        pic_name: Option<&str>,
    ) -> Result<Vec<Picture>, SearchError>;
    /// The pictures of these rows that are still there, without hashes.
    fn pictures_by_seq(&self, owner: AccountId, seqs: &[i64]) -> Result<Vec<Picture>, SearchError>;
    /// Removes an entity's pictures (one when `pic_name` is given); how many were removed
    /// (none: [`SearchError::PictureNotFound`]).
    fn delete_pictures(
        &self,
        owner: AccountId,
        group_id: &str,
        entity_id: &str,
        pic_name: Option<&str>,
    ) -> Result<u64, SearchError>;
    /// Replaces the tags of an entity's pictures (one when `pic_name` is given); how many
    /// changed (none: [`SearchError::PictureNotFound`]).
    fn update_tags(
        &self,
        owner: AccountId,
        group_id: &str,
        entity_id: &str,
        pic_name: Option<&str>,
        tags: &str,
    ) -> Result<u64, SearchError>;
    /// Every picture added (with its hashes) or removed after `cursor`.
    fn picture_changes(&self, cursor: LibraryCursor) -> Result<PictureChanges, SearchError>;
}

/// Which account's group a filed picture belongs to.
struct Filing {
    owner: AccountId,
    group_id: String,
}

#[derive(Default)]
struct IndexState {
    pictures: Filed<Filing>,
    cursor: LibraryCursor,
}

/// Every group's pictures' hashes in memory, refreshed from the repository.
#[derive(Default)]
pub struct GroupIndex {
    state: RwLock<IndexState>,
}

impl GroupIndex {
    pub fn new() -> GroupIndex {
        GroupIndex::default()
    }

    /// How many hashes are filed (each picture has up to about 30, see `media::pdq`).
    pub fn len(&self) -> usize {
        self.state.read().expect("index lock").pictures.hashes()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies what changed since the last refresh (two range reads when nothing did).
    pub fn refresh(&self, repository: &dyn GroupRepository) -> Result<(), SearchError> {
        let cursor = self.state.read().expect("index lock").cursor;
        let changes = repository.picture_changes(cursor)?;
        if changes.cursor == cursor && changes.added.is_empty() && changes.removed.is_empty() {
            return Ok(());
        }
        let mut state = self.state.write().expect("index lock");
        for seq in changes.removed {
            state.pictures.remove(seq);
        }
        for picture in changes.added {
            let filing = Filing { owner: picture.owner, group_id: picture.group_id };
            state.pictures.insert(picture.seq, &picture.hashes, filing);
        }
        state.cursor = changes.cursor;
        Ok(())
    }

    /// The group's pictures within [`MATCH_DISTANCE`] of any of `hashes`, as (row, score), the
    /// highest score first (the oldest first among equals).
    pub fn search(&self, owner: AccountId, group_id: &str, hashes: &[Hash256]) -> Vec<(i64, u8)> {
        let state = self.state.read().expect("index lock");
        let mut found: Vec<(i64, u8)> = state
            .pictures
            .nearest(hashes, MATCH_DISTANCE)
            .into_iter()
            .filter(|(seq, _)| state.pictures.get(*seq).is_some_and(|f| f.owner == owner && f.group_id == group_id))
            .map(|(seq, distance)| (seq, score(distance)))
            .collect();
        found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        found
    }
}

/// A comparison of `Filter`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Comparison {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    Equal,
    NotEqual,
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    key: String,
    comparison: Comparison,
    value: String,
}

/// `SearchImage`'s `Filter` on the pictures' tags: conditions `key op value` (op one of `>`,
/// `>=`, `<`, `<=`, `=`, `!=`; value a number, a word or a quoted string) joined by `AND` and
/// `OR`, `AND` binding first, as in SQL. Two numbers compare as numbers, anything else as
/// text; a picture without the key does not meet the condition.
#[derive(Debug, Clone, PartialEq)]
pub struct TagFilter {
    /// Alternatives (`OR`), each all of its conditions (`AND`).
    any_of: Vec<Vec<Condition>>,
}

impl TagFilter {
    pub fn parse(filter: &str) -> Result<TagFilter, SearchError> {
        if filter.chars().count() > MAX_FILTER {
            return Err(SearchError::FilterTooLong);
        }
        let invalid = |why: &'static str| SearchError::FilterInvalid(filter.into(), why);
        let tokens = tokenize(filter).map_err(invalid)?;
        let mut any_of = vec![Vec::new()];
        let mut rest = tokens.as_slice();
        loop {
            let [Token::Word(key), Token::Op(comparison), Token::Word(value) | Token::Quoted(value), tail @ ..] = rest
            else {
                return Err(invalid("expected `key op value`"));
            };
            any_of.last_mut().expect("one alternative at least").push(Condition {
                key: key.clone(),
                comparison: *comparison,
                value: value.clone(),
            });
            rest = match tail {
                [] => return Ok(TagFilter { any_of }),
                [Token::Word(joint), tail @ ..] if joint.eq_ignore_ascii_case("AND") => tail,
                [Token::Word(joint), tail @ ..] if joint.eq_ignore_ascii_case("OR") => {
                    any_of.push(Vec::new());
                    tail
                }
                _ => return Err(invalid("conditions are joined by AND or OR")),
            };
        }
    }

    /// Whether `tags` (a picture's JSON object) meet the filter.
    pub fn accepts(&self, tags: &str) -> bool {
        let tags: Map<String, Value> = serde_json::from_str(tags).unwrap_or_default();
        self.any_of.iter().any(|all| all.iter().all(|c| c.holds(&tags)))
    }
}

impl Condition {
    fn holds(&self, tags: &Map<String, Value>) -> bool {
        let Some(tag) = tags.get(&self.key) else {
            return false;
        };
        let text = match tag {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let order = match (text.parse::<f64>(), self.value.parse::<f64>()) {
            (Ok(a), Ok(b)) => a.partial_cmp(&b),
            _ => Some(text.as_str().cmp(self.value.as_str())),
        };
        let Some(order) = order else {
            return false;
        };
        match self.comparison {
            Comparison::Greater => order.is_gt(),
            Comparison::GreaterOrEqual => order.is_ge(),
            Comparison::Less => order.is_lt(),
            Comparison::LessOrEqual => order.is_le(),
            Comparison::Equal => order.is_eq(),
            Comparison::NotEqual => order.is_ne(),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(Comparison),
}

fn tokenize(filter: &str) -> Result<Vec<Token>, &'static str> {
    let mut tokens = Vec::new();
    let mut chars = filter.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '>' | '<' | '=' | '!' => {
                chars.next();
                let equals = chars.next_if_eq(&'=').is_some();
                tokens.push(Token::Op(match (c, equals) {
                    ('>', false) => Comparison::Greater,
                    ('>', true) => Comparison::GreaterOrEqual,
                    ('<', false) => Comparison::Less,
                    ('<', true) => Comparison::LessOrEqual,
                    ('=', _) => Comparison::Equal,
                    ('!', true) => Comparison::NotEqual,
                    _ => return Err("`!` must be followed by `=`"),
                }));
            }
            '"' | '\'' => {
                chars.next();
                let text: String = chars.by_ref().take_while(|&q| q != c).collect();
                tokens.push(Token::Quoted(text));
            }
            _ => {
                let mut word = String::new();
                while let Some(w) = chars.next_if(|w| !w.is_whitespace() && !"<>=!\"'".contains(*w)) {
                    word.push(w);
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_keep_what_the_libraries_match() {
        assert_eq!(score(0), 100);
        assert_eq!(score(1), 98);
        assert_eq!(score(MATCH_DISTANCE), 51);
        assert_eq!(score(MATCH_DISTANCE + 1), 50);
        assert_eq!(score(256), 0);
    }

    #[test]
    fn groups_are_checked_at_their_bounds() {
        let new = |id: &str, name: &str, capacity, qps| SearchGroup::new(AccountId(1), id, name, "", capacity, qps);
        assert!(new(&"g".repeat(64), &"n".repeat(64), MAX_CAPACITY, MAX_QPS).is_ok());
        assert_eq!(new(&"g".repeat(65), "n", 1, 0), Err(SearchError::GroupIdTooLong));
        assert_eq!(new("a-b", "n", 1, 0), Err(SearchError::GroupIdIllegal));
        assert_eq!(new("", "n", 1, 0), Err(SearchError::GroupIdIllegal));
        assert_eq!(new("g", &"n".repeat(65), 1, 0), Err(SearchError::GroupNameTooLong));
        assert_eq!(new("g", "", 1, 0), Err(SearchError::GroupNameEmpty));
        assert!(matches!(new("g", "n", 0, 0), Err(SearchError::Invalid(_))));
        assert!(matches!(new("g", "n", MAX_CAPACITY + 1, 0), Err(SearchError::Invalid(_))));
        assert!(matches!(new("g", "n", 1, MAX_QPS + 1), Err(SearchError::Invalid(_))));
        assert_eq!(new("g_1", "n", 1, 0).unwrap().max_qps, DEFAULT_MAX_QPS);
    }

    #[test]
    fn pictures_and_tags_are_checked_at_their_bounds() {
        let new = |entity: &str, name: &str, content: &str, tags: &str| {
            Picture::new(AccountId(1), "g", entity, name, content, tags, Vec::new())
        };
        let long = "x".repeat(64);
        assert!(new(&long, &long, &"c".repeat(MAX_CUSTOM_CONTENT), "").is_ok());
        assert_eq!(new(&"x".repeat(65), "p", "", ""), Err(SearchError::EntityIdTooLong));
        assert_eq!(new("e", &"x".repeat(65), "", ""), Err(SearchError::PicNameTooLong));
        assert_eq!(new("", "p", "", ""), Err(SearchError::EntityIdEmpty));
        assert_eq!(new("e", "", "", ""), Err(SearchError::PicNameEmpty));
        assert!(new("e", "p", &"c".repeat(MAX_CUSTOM_CONTENT + 1), "").is_err());
        assert_eq!(new("e", "p", "", "").unwrap().tags, "{}");
        let tags = |n: usize| {
            let map: Map<String, Value> = (0..n).map(|i| (format!("k{i}"), Value::from(i))).collect();
            Value::Object(map).to_string()
        };
        assert!(checked_tags(&tags(MAX_TAGS)).is_ok());
        assert_eq!(checked_tags(&tags(MAX_TAGS + 1)), Err(SearchError::TooManyTags(MAX_TAGS + 1)));
        assert!(checked_tags(r#"["a"]"#).is_err() && checked_tags(r#"{"a": [1]}"#).is_err());
        assert!(checked_tags(&format!(r#"{{"a": "{}"}}"#, "v".repeat(MAX_TAG_TEXT))).is_ok());
        assert_eq!(
            checked_tags(&format!(r#"{{"a": "{}"}}"#, "v".repeat(MAX_TAG_TEXT + 1))),
            Err(SearchError::TagTooLong("a".into()))
        );
    }

    #[test]
    fn filters_compare_numbers_as_numbers_and_and_binds_first() {
        let tags = r#"{"price": 20, "colour": "red", "size": "9"}"#;
        let holds = |f: &str| TagFilter::parse(f).unwrap().accepts(tags);
        assert!(holds("price > 10") && holds("price>=20") && holds("price<=20") && !holds("price < 20"));
        // "9" < "10" as numbers, though not as text.
        assert!(holds("size < 10"));
        assert!(holds("colour = red") && holds("colour='red'") && holds("colour != \"blue\""));
        assert!(!holds("colour = blue") && !holds("missing != 1"));
        assert!(holds("colour = blue OR price = 20 AND size = 9"));
        assert!(!holds("colour = blue OR price = 20 AND size = 8"));
        assert!(holds("colour = red and price > 1"));
        for bad in ["price", "price >", "> 1", "price ! 1", "a = 1 b = 2", "a = 1 AND", "a = 1 XOR b = 2"] {
            assert!(matches!(TagFilter::parse(bad), Err(SearchError::FilterInvalid(..))), "{bad}");
        }
        let longest = format!("a = {}", "1".repeat(MAX_FILTER - 4));
        assert!(TagFilter::parse(&longest).is_ok());
        assert_eq!(TagFilter::parse(&format!("{longest}1")), Err(SearchError::FilterTooLong));
    }
}
