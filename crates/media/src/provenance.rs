//! What a file says about how it was made: the metadata an AI generator or an editing tool
//! leaves, read from the file's metadata blocks (never from its pixels).
//!
//! - C2PA content credentials (a JUMBF store labelled `c2pa`: JPEG APP11, PNG `caBX`, a `C2PA`
//!   chunk in WebP), with the generator the claim names;
//! - the IPTC digital source type (`trainedAlgorithmicMedia` and its composite form) in XMP or
//!   in a C2PA assertion;
//! - the text chunks Stable Diffusion front-ends write into PNGs (`parameters` from
//!   AUTOMATIC1111 / Forge, `prompt` and `workflow` from ComfyUI, `invokeai_metadata`, NovelAI's
//!   `Software` and `Comment`);
//! - EXIF / XMP software or creator fields naming a known generator.
//!
//! This proves nothing when absent: metadata is stripped by most uploads, screenshots and
//! re-encodes, and anyone can remove it (see docs/text.md).

/// One piece of evidence: where it was found, and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// `C2PA`, `IPTC`, `GeneratorText` or `Software`.
    pub source: &'static str,
    /// The field or chunk (`parameters`, `DigitalSourceType`, `claim_generator`...).
    pub key: String,
    /// What it says, shortened to 200 characters.
    pub value: String,
}

/// Generators whose names in a software or creator field mark an image as AI-made.
const GENERATORS: &[&str] = &[
    "midjourney",
    "dall-e",
    "dall·e",
    "openai",
    "chatgpt",
    "stable diffusion",
    "stablediffusion",
    "novelai",
    "adobe firefly",
    "firefly",
    "imagen",
    "bing image creator",
    "comfyui",
    "invokeai",
    "leonardo.ai",
    "ideogram",
    "black forest labs",
];

/// PNG text chunk keywords that only generators write.
const GENERATOR_CHUNKS: &[&str] = &["parameters", "prompt", "workflow", "invokeai_metadata", "sd-metadata", "dream"];

const SOURCE_TYPES: &[&str] = &["compositeWithTrainedAlgorithmicMedia", "trainedAlgorithmicMedia", "algorithmicMedia"];

fn short(text: &str) -> String {
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// The metadata blocks of a file: JPEG APPn segments, PNG ancillary chunks (text ones as
/// `keyword` and text), WebP/RIFF chunks other than the image data.
fn blocks(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let mut i = 2;
        while i + 4 <= bytes.len() && bytes[i] == 0xFF {
            let marker = bytes[i + 1];
            if marker == 0xDA || marker == 0xD9 {
                break; // the image data starts
            }
            let length = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
            let end = (i + 2 + length).min(bytes.len());
            if (0xE0..=0xEF).contains(&marker) || marker == 0xFE {
                out.push((format!("APP{}", marker.wrapping_sub(0xE0)), bytes[(i + 4).min(end)..end].to_vec()));
            }
            i = end;
        }
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let mut i = 8;
        while i + 12 <= bytes.len() {
            let length = u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4 bytes")) as usize;
            let kind = String::from_utf8_lossy(&bytes[i + 4..i + 8]).into_owned();
            let end = (i + 8 + length).min(bytes.len());
            let data = &bytes[i + 8..end];
            match kind.as_str() {
                "IDAT" | "IEND" | "IHDR" | "PLTE" => {}
                "tEXt" | "iTXt" => {
                    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
                    let keyword = String::from_utf8_lossy(&data[..split]).into_owned();
                    // iTXt: compression flag, method, language\0, translated keyword\0, text.
                    let text = if kind == "iTXt" {
                        let rest = data.get(split + 3..).unwrap_or_default();
                        let after_lang = rest.iter().position(|b| *b == 0).map_or(rest.len(), |p| p + 1);
                        let rest = rest.get(after_lang..).unwrap_or_default();
                        let after_translated = rest.iter().position(|b| *b == 0).map_or(rest.len(), |p| p + 1);
                        rest.get(after_translated..).unwrap_or_default()
                    } else {
                        data.get(split + 1..).unwrap_or_default()
                    };
                    out.push((keyword, text.to_vec()));
                }
                _ => out.push((kind, data.to_vec())),
            }
            i = end + 4;
        }
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        let mut i = 12;
        while i + 8 <= bytes.len() {
            let kind = String::from_utf8_lossy(&bytes[i..i + 4]).into_owned();
            let length = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().expect("4 bytes")) as usize;
            let end = (i + 8 + length).min(bytes.len());
            if !matches!(kind.as_str(), "VP8 " | "VP8L" | "ANMF" | "ALPH") {
                out.push((kind, bytes[i + 8..end].to_vec()));
            }
            i = end + (length & 1);
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle))
}

/// The printable text around `at` in a block, for a readable value.
fn text_around(data: &[u8], at: usize, len: usize) -> String {
    let printable = |b: &u8| b.is_ascii_graphic() || *b == b' ';
    let start = data[..at].iter().rposition(|b| !printable(b)).map_or(0, |p| p + 1).max(at.saturating_sub(80));
    let end = data[at..].iter().position(|b| !printable(b)).map_or(data.len(), |p| at + p).min(at + len + 80);
    String::from_utf8_lossy(&data[start..end]).trim().to_string()
}

/// Every piece of AI-generation evidence in the file's metadata, most decisive first.
pub fn provenance(bytes: &[u8]) -> Vec<Provenance> {
    let mut found = Vec::new();
    for (key, data) in blocks(bytes) {
        let text = String::from_utf8_lossy(&data);
        let lower = text.to_lowercase();
        let is_c2pa =
            find(&data, b"c2pa").is_some() && (find(&data, b"jumb").is_some() || key == "caBX" || key == "C2PA");
        if is_c2pa {
            let generator = find(&data, b"claim_generator")
                .map(|at| text_around(&data, at + "claim_generator".len(), 60))
                .unwrap_or_default();
            found.push(Provenance { source: "C2PA", key: "claim_generator".into(), value: short(&generator) });
        }
        if let Some(source_type) = SOURCE_TYPES.iter().find(|t| find(&data, t.as_bytes()).is_some()) {
            found.push(Provenance { source: "IPTC", key: "DigitalSourceType".into(), value: (*source_type).into() });
        }
        if GENERATOR_CHUNKS.contains(&key.as_str()) && !text.trim().is_empty() {
            found.push(Provenance { source: "GeneratorText", key: key.clone(), value: short(text.trim()) });
        }
        if let Some(name) = GENERATORS.iter().find(|g| lower.contains(*g)) {
            if !is_c2pa {
                let at = lower.find(name).unwrap_or(0);
                let value = text_around(&data, text[..at.min(text.len())].len(), name.len());
                found.push(Provenance { source: "Software", key: key.clone(), value: short(&value) });
            }
        }
    }
    found.sort_by_key(|p| ["C2PA", "IPTC", "GeneratorText", "Software"].iter().position(|s| *s == p.source));
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal PNG with one tEXt chunk (CRCs are not checked by the reader).
    fn png_with_text(keyword: &str, text: &str) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut chunk = |kind: &[u8], data: &[u8]| {
            out.extend((data.len() as u32).to_be_bytes());
            out.extend(kind);
            out.extend(data);
            out.extend([0; 4]);
        };
        chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
        chunk(b"tEXt", &[keyword.as_bytes(), b"\0", text.as_bytes()].concat());
        chunk(b"IEND", &[]);
        out
    }

    /// A minimal JPEG header with one APPn segment.
    fn jpeg_with_segment(marker: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8, 0xFF, marker];
        out.extend(((data.len() + 2) as u16).to_be_bytes());
        out.extend(data);
        out.extend([0xFF, 0xDA, 0, 2]);
        out
    }

    #[test]
    fn stable_diffusion_parameters_are_found() {
        let png = png_with_text("parameters", "a cat, masterpiece\nSteps: 20, Sampler: Euler a, Seed: 42");
        let found = provenance(&png);
        assert_eq!(found[0].source, "GeneratorText");
        assert_eq!(found[0].key, "parameters");
        assert!(found[0].value.starts_with("a cat"));
    }

    #[test]
    fn iptc_source_type_and_c2pa_are_found() {
        let xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><Iptc4xmpExt:DigitalSourceType>http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia</Iptc4xmpExt:DigitalSourceType></x:xmpmeta>";
        let found = provenance(&jpeg_with_segment(0xE1, xmp));
        assert_eq!(
            found,
            vec![Provenance {
                source: "IPTC",
                key: "DigitalSourceType".into(),
                value: "trainedAlgorithmicMedia".into()
            }]
        );
        let jumbf = b"JP\0\x01\0\0\0\x10jumb\0\0\0\x0fjumdc2pa\0 claim_generator: Adobe_Firefly/1.0";
        let found = provenance(&jpeg_with_segment(0xEB, jumbf));
        assert_eq!(found[0].source, "C2PA");
        assert!(found[0].value.contains("Adobe_Firefly"), "{found:?}");
    }

    #[test]
    fn exif_software_of_a_generator_is_found_and_a_camera_is_not() {
        let exif = |software: &str| [&b"Exif\0\0MM\0*"[..], software.as_bytes()].concat();
        assert_eq!(provenance(&jpeg_with_segment(0xE1, &exif("Midjourney v6")))[0].source, "Software");
        assert!(provenance(&jpeg_with_segment(0xE1, &exif("Canon EOS R5 Firmware 1.8"))).is_empty());
        assert!(provenance(&png_with_text("Comment", "holiday photo")).is_empty());
        assert!(provenance(b"not an image").is_empty());
    }
}
