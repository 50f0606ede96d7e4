//! Keyword libraries and how text is matched against them.
//!
//! A library belongs to a main account, carries a label and a suggestion (Block or Review) for
//! its hits. Matching survives the usual evasions: both the text and the keywords are
//! [normalised](normalize) (full-width forms to ASCII, case folded, traditional Chinese to
//! simplified, and every character that is not a letter or a digit dropped, so spaces and
//! symbols inserted between characters do not hide a word), then one Aho-Corasick automaton
//! over every keyword finds all hits in time proportional to the text, whatever the number of
//! keywords. A keyword of Latin letters and digits only hits whole words of the original text
//! ("ass" does not hit "class").

use crate::accounts::AccountId;
use crate::decision::{Label, Suggestion};
use aho_corasick::{AhoCorasick, MatchKind};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Longest keyword, in characters.
pub const MAX_KEYWORD_CHARS: usize = 64;
/// The owner of the built-in libraries (made by the setup from registry word lists): they apply
/// to any account whose policy names them (`KeywordLibs`), never by default: public profanity
/// lists flag ordinary text (a news scan's "raping", the word "NSFW" in a logo).
pub const BUILT_IN: AccountId = AccountId(0);

/// The words of a public list fit for a built-in library: those that still say something after
/// normalisation and are not too short to be anything but noise in OCR text (one Chinese
/// character, Latin words under three letters, numbers).
pub fn built_in_words(words: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut kept: Vec<String> = words
        .into_iter()
        .map(|w| w.trim().to_string())
        .filter(|w| {
            let (chars, _) = normalize(w);
            let latin = latin_word(&chars);
            !chars.is_empty()
                && !chars.iter().all(|c| c.is_ascii_digit())
                && chars.len() <= MAX_KEYWORD_CHARS
                && (if latin { chars.len() >= 3 } else { chars.len() >= 2 })
        })
        .collect();
    kept.sort();
    kept.dedup();
    kept
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeywordLibrary {
    pub lib_id: String,
    #[serde(skip)]
    pub owner: AccountId,
    pub lib_name: String,
    pub label: Label,
    /// What a hit suggests: Block or Review.
    pub suggestion: Suggestion,
    pub created_at: i64,
}

impl KeywordLibrary {
    /// A new library, checked (name of 1-64 characters, suggestion Block or Review), with a
    /// fresh id, made now: what a store then keeps.
    pub fn new(owner: AccountId, name: &str, label: Label, suggestion: Suggestion) -> Result<Self, KeywordError> {
        if name.trim().is_empty() || name.chars().count() > 64 {
            return Err(KeywordError::Invalid("LibName must be 1 to 64 characters".into()));
        }
        if suggestion == Suggestion::Pass {
            return Err(KeywordError::Invalid("a keyword library's Suggestion is Block or Review".into()));
        }
        Ok(KeywordLibrary {
            lib_id: crate::stamp::new_id(),
            owner,
            lib_name: name.into(),
            label,
            suggestion,
            created_at: crate::stamp::now(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Keyword {
    pub sample_id: String,
    pub lib_id: String,
    pub content: String,
    pub created_at: i64,
}

impl Keyword {
    /// A keyword (already checked by [`validate_keyword`]) for a library, with a fresh id.
    pub fn new(lib_id: &str, content: &str, created_at: i64) -> Keyword {
        Keyword { sample_id: crate::stamp::new_id(), lib_id: lib_id.into(), content: content.into(), created_at }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeywordError {
    #[error("invalid keyword library request: {0}")]
    Invalid(String),
    #[error("a keyword library named `{0}` already exists")]
    Exists(String),
    #[error("no keyword library `{0}`")]
    NotFound(String),
    #[error("no keyword `{0}`")]
    SampleNotFound(String),
    #[error("storage: {0}")]
    Storage(String),
}

/// Where keyword libraries and their words are kept, per owner.
///
/// Concurrency contract: each method is one atomic change or read; of two creations of one
/// library name racing, one succeeds; every change moves the version a matcher compares, so a
/// matcher refreshing from any store sees it.
pub trait KeywordRepository: Send + Sync {
    fn create_keyword_library(
        &self,
        owner: AccountId,
        name: &str,
        label: Label,
        suggestion: Suggestion,
    ) -> Result<KeywordLibrary, KeywordError>;
    fn keyword_libraries(&self, owner: AccountId) -> Result<Vec<KeywordLibrary>, KeywordError>;
    fn delete_keyword_library(&self, owner: AccountId, lib_id: &str) -> Result<(), KeywordError>;
    /// Adds keywords (already checked); those the library has are skipped. Returns the added.
    fn add_keywords(&self, owner: AccountId, lib_id: &str, words: &[String]) -> Result<Vec<Keyword>, KeywordError>;
    /// A page of a library's keywords that contain `containing` (all of them for ""), in the
    /// order they were added, and how many there are.
    fn keywords(
        &self,
        owner: AccountId,
        lib_id: &str,
        containing: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Keyword>, u64), KeywordError>;
    fn delete_keywords(&self, owner: AccountId, sample_ids: &[String]) -> Result<u64, KeywordError>;
    /// A number that changes whenever any library or keyword changes.
    fn keywords_version(&self) -> Result<i64, KeywordError>;
    /// Every library with its keywords, for building the matcher.
    fn all_keywords(&self) -> Result<Vec<(KeywordLibrary, Vec<String>)>, KeywordError>;
}

/// Checks one keyword as given: 1 to [`MAX_KEYWORD_CHARS`] characters with at least one letter
/// or digit (what is left after normalisation).
pub fn validate_keyword(word: &str) -> Result<(), KeywordError> {
    let chars = word.chars().count();
    if chars == 0 || chars > MAX_KEYWORD_CHARS {
        return Err(KeywordError::Invalid(format!("a keyword has 1 to {MAX_KEYWORD_CHARS} characters, not {chars}")));
    }
    if normalize(word).0.is_empty() {
        return Err(KeywordError::Invalid(format!("the keyword `{word}` has no letter or digit")));
    }
    Ok(())
}

/// Full-width ASCII forms and the ideographic space to their ASCII counterparts.
pub fn half_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// The text as matching sees it, and for each of its characters the index of the character of
/// `text` it came from.
pub fn normalize(text: &str) -> (Vec<char>, Vec<usize>) {
    let simplified = fast2s::convert(text);
    let mut chars = Vec::with_capacity(text.len());
    let mut origin = Vec::with_capacity(text.len());
    for (i, c) in simplified.chars().enumerate() {
        let c = half_width(c);
        if !c.is_alphanumeric() {
            continue;
        }
        for lower in c.to_lowercase() {
            chars.push(lower);
            origin.push(i);
        }
    }
    (chars, origin)
}

fn latin_word(word: &[char]) -> bool {
    word.iter().all(|c| c.is_ascii_alphanumeric())
}

/// One keyword found in a text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub library: KeywordLibrary,
    /// The keyword as stored.
    pub keyword: String,
    /// Character offsets in the text matched: start inclusive, end exclusive.
    pub start: usize,
    pub end: usize,
}

struct Automaton {
    version: i64,
    searcher: Option<AhoCorasick>,
    /// Per pattern: (library index, keyword as stored, whether it must be a whole word).
    patterns: Vec<(usize, String, bool)>,
    libraries: Vec<KeywordLibrary>,
}

/// Every library's keywords in one automaton, rebuilt when the repository's version changes.
pub struct KeywordMatcher {
    automaton: RwLock<Arc<Automaton>>,
    /// The built-in libraries, added to the repository's at every build.
    built_in: Vec<(KeywordLibrary, Vec<String>)>,
}

impl Default for KeywordMatcher {
    fn default() -> Self {
        KeywordMatcher {
            automaton: RwLock::new(Arc::new(Automaton {
                version: i64::MIN,
                searcher: None,
                patterns: Vec::new(),
                libraries: Vec::new(),
            })),
            built_in: Vec::new(),
        }
    }
}

impl KeywordMatcher {
    pub fn new() -> KeywordMatcher {
        KeywordMatcher::default()
    }

    /// A matcher that also applies these built-in libraries (owned by [`BUILT_IN`]).
    pub fn with_built_in(built_in: Vec<(KeywordLibrary, Vec<String>)>) -> KeywordMatcher {
        KeywordMatcher { built_in, ..KeywordMatcher::default() }
    }

    /// The built-in libraries and their sizes.
    pub fn built_in(&self) -> Vec<(&KeywordLibrary, usize)> {
        self.built_in.iter().map(|(l, w)| (l, w.len())).collect()
    }

    /// Rebuilds the automaton if the keywords changed since the last build.
    pub fn refresh(&self, repository: &dyn KeywordRepository) -> Result<(), KeywordError> {
        let version = repository.keywords_version()?;
        if self.automaton.read().expect("keyword lock").version == version {
            return Ok(());
        }
        let mut all = repository.all_keywords()?;
        all.extend(self.built_in.iter().cloned());
        self.build(all, version)
    }

    /// Replaces the automaton with one over these libraries' keywords.
    pub fn build(&self, all: Vec<(KeywordLibrary, Vec<String>)>, version: i64) -> Result<(), KeywordError> {
        let mut libraries = Vec::new();
        let mut normalized: Vec<String> = Vec::new();
        let mut patterns = Vec::new();
        for (library, words) in all {
            let index = libraries.len();
            libraries.push(library);
            for word in words {
                let (chars, _) = normalize(&word);
                if chars.is_empty() {
                    continue;
                }
                patterns.push((index, word, latin_word(&chars)));
                normalized.push(chars.into_iter().collect());
            }
        }
        let searcher = if normalized.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&normalized)
                    .map_err(|e| KeywordError::Storage(e.to_string()))?,
            )
        };
        *self.automaton.write().expect("keyword lock") = Arc::new(Automaton { version, searcher, patterns, libraries });
        Ok(())
    }

    /// The hits in `text` of the owner's libraries (of those `only` names, when given).
    pub fn find(&self, owner: AccountId, only: Option<&[String]>, text: &str) -> Vec<Hit> {
        let automaton = self.automaton.read().expect("keyword lock").clone();
        let Some(searcher) = &automaton.searcher else { return Vec::new() };
        let (chars, origin) = normalize(text);
        let normalized: String = chars.iter().collect();
        // Byte offsets of the normalised string back to its character indices.
        let mut char_at = HashMap::with_capacity(chars.len() + 1);
        for (i, (byte, _)) in normalized.char_indices().enumerate() {
            char_at.insert(byte, i);
        }
        char_at.insert(normalized.len(), chars.len());
        let original: Vec<char> = text.chars().collect();
        // A Latin keyword must not touch other Latin letters or digits (Chinese around it is fine).
        let is_word_char = |i: usize| original.get(i).is_some_and(|c| half_width(*c).is_ascii_alphanumeric());
        let mut hits = Vec::new();
        for m in searcher.find_overlapping_iter(normalized.as_str()) {
            let (library_index, keyword, whole_word) = &automaton.patterns[m.pattern().as_usize()];
            let library = &automaton.libraries[*library_index];
            // Built-in libraries apply only where a policy names them; an account's own apply
            // unless its policy names others.
            let named = only.is_some_and(|ids| ids.contains(&library.lib_id));
            let applies =
                if library.owner == BUILT_IN { named } else { library.owner == owner && (only.is_none() || named) };
            if !applies {
                continue;
            }
            let (first, last) = (char_at[&m.start()], char_at[&m.end()] - 1);
            let (start, end) = (origin[first], origin[last] + 1);
            if *whole_word && ((start > 0 && is_word_char(start - 1)) || is_word_char(end)) {
                continue;
            }
            hits.push(Hit { library: library.clone(), keyword: keyword.clone(), start, end });
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library(owner: i64, label: Label) -> KeywordLibrary {
        KeywordLibrary {
            lib_id: format!("lib-{owner}-{}", label.as_str()),
            owner: AccountId(owner),
            lib_name: "words".into(),
            label,
            suggestion: Suggestion::Block,
            created_at: 0,
        }
    }

    fn matcher(words: &[&str]) -> KeywordMatcher {
        let m = KeywordMatcher::new();
        let lib = library(1, Label::Abuse);
        m.build(vec![(lib, words.iter().map(|w| w.to_string()).collect())], 1).unwrap();
        m
    }

    fn found(m: &KeywordMatcher, text: &str) -> Vec<(String, usize, usize)> {
        m.find(AccountId(1), None, text).into_iter().map(|h| (h.keyword, h.start, h.end)).collect()
    }

    #[test]
    fn evasions_are_seen_through() {
        let m = matcher(&["赌博", "fuck", "代开发票", "vx"]);
        assert_eq!(found(&m, "网上赌博"), vec![("赌博".into(), 2, 4)]);
        assert_eq!(found(&m, "網上賭博"), vec![("赌博".into(), 2, 4)], "traditional characters");
        assert_eq!(found(&m, "赌 * 博"), vec![("赌博".into(), 0, 5)], "symbols and spaces between");
        assert_eq!(found(&m, "代.开.发.票"), vec![("代开发票".into(), 0, 7)]);
        assert_eq!(found(&m, "what the F.U.C.K"), vec![("fuck".into(), 9, 16)], "case and dots");
        assert_eq!(found(&m, "ｆｕｃｋ"), vec![("fuck".into(), 0, 4)], "full-width letters");
        assert_eq!(found(&m, "加ＶＸ：abc"), vec![("vx".into(), 1, 3)]);
    }

    #[test]
    fn latin_keywords_hit_whole_words_only() {
        let m = matcher(&["ass"]);
        assert!(found(&m, "a class of glass").is_empty());
        assert_eq!(found(&m, "kiss my ass!"), vec![("ass".into(), 8, 11)]);
        assert_eq!(found(&m, "a.s.s"), vec![("ass".into(), 0, 5)]);
    }

    #[test]
    fn other_owners_and_unlinked_libraries_do_not_hit() {
        let m = matcher(&["赌博"]);
        assert!(m.find(AccountId(2), None, "赌博").is_empty());
        assert!(m.find(AccountId(1), Some(&["other".into()]), "赌博").is_empty());
        assert_eq!(m.find(AccountId(1), Some(&["lib-1-Abuse".into()]), "赌博").len(), 1);
    }

    #[test]
    fn built_in_libraries_apply_to_everyone_and_keep_only_meaningful_words() {
        let words = built_in_words(["乳", "13.", "ok", "ass", "三级片", " anal ", "三级片"].map(String::from));
        assert_eq!(words, ["anal", "ass", "三级片"]);
        let built_in = KeywordLibrary { owner: BUILT_IN, ..library(0, Label::Abuse) };
        let m = KeywordMatcher::with_built_in(vec![(built_in, words)]);
        m.build(m.built_in.clone(), 1).unwrap();
        assert!(m.find(AccountId(7), None, "看三级片").is_empty(), "not applied unless named");
        assert_eq!(m.find(AccountId(7), Some(&["lib-0-Abuse".into()]), "看三级片").len(), 1);
    }

    #[test]
    fn keywords_are_checked() {
        assert!(validate_keyword("ok").is_ok());
        assert!(validate_keyword("").is_err());
        assert!(validate_keyword("!!!").is_err());
        assert!(validate_keyword(&"a".repeat(64)).is_ok());
        assert!(validate_keyword(&"a".repeat(65)).is_err());
    }

    #[test]
    fn new_libraries_are_checked_and_get_distinct_ids() {
        let new = |name: &str, s| KeywordLibrary::new(AccountId(1), name, Label::Abuse, s);
        let (a, b) = (new("a", Suggestion::Block).unwrap(), new(&"b".repeat(64), Suggestion::Review).unwrap());
        assert_ne!(a.lib_id, b.lib_id);
        assert!(a.created_at > 1_700_000_000);
        for refused in
            [new(" ", Suggestion::Block), new(&"b".repeat(65), Suggestion::Block), new("a", Suggestion::Pass)]
        {
            assert!(matches!(refused, Err(KeywordError::Invalid(_))), "{refused:?}");
        }
    }
}
