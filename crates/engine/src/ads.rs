//! Ads in the text of an image: links, phone numbers and contact handles (WeChat, QQ,
//! Telegram...), each switchable per policy ([`AdSettings`]); QR codes are found by the media
//! crate and judged here too. Every hit is a finding of label `Ad` with the kind as sub-label.

use crate::decision::{Finding, Label, Suggestion};
use crate::keywords::half_width;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// What a policy looks for, and what a hit suggests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AdSettings {
    pub qr_code: bool,
    pub url: bool,
    pub phone: bool,
    pub contact: bool,
    /// Review (the default) or Block.
    pub suggestion: Suggestion,
}

impl Default for AdSettings {
    /// QR codes and contact handles ("加微信 abc123") are ads almost wherever they appear; links
    /// and phone numbers also fill ordinary documents and shop signs (the safe test images have
    /// both), so a policy turns those on.
    fn default() -> Self {
        AdSettings { qr_code: true, url: false, phone: false, contact: true, suggestion: Suggestion::Review }
    }
}

/// The kinds of ad found in text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdKind {
    Url,
    Phone,
    Contact,
    QrCode,
}

impl AdKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AdKind::Url => "Url",
            AdKind::Phone => "Phone",
            AdKind::Contact => "Contact",
            AdKind::QrCode => "QrCode",
        }
    }
}

/// One ad found in a line: its kind, the text matched, character offsets (end exclusive).
#[derive(Debug, Clone, PartialEq)]
pub struct AdHit {
    pub kind: AdKind,
    pub text: String,
    pub start: usize,
    pub end: usize,
}

struct Patterns {
    url: Regex,
    phone: Regex,
    contact: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| Patterns {
        // A scheme, "www.", or a name under a common top-level domain.
        url: Regex::new(
            r"(?i)\b(?:https?://[^\s]+|www\.[a-z0-9-]+(?:\.[a-z0-9-]+)+[^\s]*|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|cn|net|org|info|top|xyz|vip|cc|io|me|tv|club|shop|site|online|app|link|ly)\b(?:/[^\s]*)?)",
        )
        .expect("the URL pattern compiles"),
        // Chinese mobiles (optionally +86, separators allowed), landlines with an area code,
        // and international numbers in + form.
        phone: Regex::new(
            r"(?:\+?86[\s-]?)?\b1[3-9]\d(?:[\s-]?\d{4}){2}\b|\b0\d{2,3}[\s-]\d{7,8}\b|\+\d{1,3}[\s-]?\d[\d\s-]{7,14}\d",
        )
        .expect("the phone pattern compiles"),
        // A contact app's name (or its usual evasions) then an id.
        contact: Regex::new(
            r"(?i)(?:微信|威信|薇信|v信|徽信|vx|wx|weixin|wechat|qq|扣扣|企鹅|电报|telegram|tg|whatsapp|line|飞机)\s*(?:号|id)?\s*[:：]?\s*[a-z0-9][a-z0-9_-]{4,}",
        )
        .expect("the contact pattern compiles"),
    })
}

/// The ads the settings look for in one line of text.
pub fn find_in_text(settings: &AdSettings, line: &str) -> Vec<AdHit> {
    // One character for one, so offsets stay those of the line.
    let text: String = line.chars().map(half_width).collect();
    let p = patterns();
    let mut hits = Vec::new();
    for (enabled, kind, regex) in [
        (settings.contact, AdKind::Contact, &p.contact),
        (settings.url, AdKind::Url, &p.url),
        (settings.phone, AdKind::Phone, &p.phone),
    ] {
        if !enabled {
            continue;
        }
        for m in regex.find_iter(&text) {
            let start = text[..m.start()].chars().count();
            let end = start + m.as_str().chars().count();
            // One stretch of text is one ad: a handle's digits are not also a phone number.
            if hits.iter().any(|h: &AdHit| start < h.end && h.start < end) {
                continue;
            }
            hits.push(AdHit { kind, text: line.chars().skip(start).take(end - start).collect(), start, end });
        }
    }
    hits.sort_by_key(|h| h.start);
    hits
}

/// The finding an ad makes under the settings.
pub fn finding(settings: &AdSettings, kind: AdKind) -> Finding {
    Finding { label: Label::Ad, sub_label: kind.as_str().into(), score: 100, suggestion: settings.suggestion }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> AdSettings {
        AdSettings { url: true, phone: true, ..AdSettings::default() }
    }

    fn kinds(text: &str) -> Vec<(AdKind, String)> {
        find_in_text(&all(), text).into_iter().map(|h| (h.kind, h.text)).collect()
    }

    #[test]
    fn links_phones_and_handles_are_found() {
        assert_eq!(
            kinds("访问 https://example.com/a?b=1 了解"),
            vec![(AdKind::Url, "https://example.com/a?b=1".into())]
        );
        assert_eq!(kinds("官网 www.shop-deal.cn"), vec![(AdKind::Url, "www.shop-deal.cn".into())]);
        assert_eq!(kinds("go to deals.xyz now"), vec![(AdKind::Url, "deals.xyz".into())]);
        assert_eq!(kinds("电话 138 1234 5678"), vec![(AdKind::Phone, "138 1234 5678".into())]);
        assert_eq!(kinds("热线 010-12345678"), vec![(AdKind::Phone, "010-12345678".into())]);
        assert_eq!(kinds("call +44 20 7946 0958"), vec![(AdKind::Phone, "+44 20 7946 0958".into())]);
        assert_eq!(kinds("加微信：abc_12345"), vec![(AdKind::Contact, "微信：abc_12345".into())]);
        assert_eq!(kinds("ＶＸ　ｈｅｌｌｏ８８"), vec![(AdKind::Contact, "ＶＸ　ｈｅｌｌｏ８８".into())], "full-width");
        assert_eq!(kinds("QQ 123456789"), vec![(AdKind::Contact, "QQ 123456789".into())], "not also a phone");
    }

    #[test]
    fn ordinary_text_is_not_an_ad() {
        for text in ["内容审核测试 Content moderation 123", "The year 2024 had 365 days.", "v1.2 release", "e.g. this"]
        {
            assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
        }
    }

    #[test]
    fn each_kind_can_be_switched_off() {
        let off = AdSettings { phone: false, ..all() };
        assert!(find_in_text(&off, "电话 13812345678").is_empty());
        assert_eq!(finding(&off, AdKind::Url).suggestion, Suggestion::Review);
        assert!(find_in_text(&AdSettings::default(), "www.example.com 13812345678").is_empty(), "off by default");
    }
}
