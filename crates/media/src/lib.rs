//! Image ingestion: everything between the bytes of a request and the pixels a model sees.
//!
//! - [`format`]: the format, sniffed from the bytes;
//! - [`probe`]: dimensions from the header and every limit, before any pixel is decoded;
//! - [`decode()`]: the sampled frames, alpha composited on white (and on dark where that hides
//!   content), oriented, bounded in size;
//! - [`views`]: where in a frame the classifiers look (borders trimmed, long images in windows).
//!
//! Limits are the cloud's, enforced exactly at their boundaries (see `docs/api.md`):
//! a file of at least [`MIN_FILE_BYTES`]; base64 content shorter than [`MAX_BASE64_BYTES`];
//! width and height above [`MIN_SIDE`] and below [`MAX_SIDE`]; aspect ratio below
//! [`MAX_ASPECT_RATIO`]:1. Dimensions come from the file header, before any pixel is decoded.

pub mod codes;
pub mod colour;
pub mod crop;
pub mod fetch;
pub mod format;

mod decode;
mod gif;
mod jng;
pub mod jpeg;
mod native;
pub mod pdq;
pub mod provenance;
pub mod quality;
mod svg;
pub mod views;
mod webp;

pub use decode::{decode, Decoded, Frame, Sampling};
pub use format::Format;

use base64::Engine;
use md5::{Digest, Md5};

/// The smallest file accepted, in bytes.
pub const MIN_FILE_BYTES: usize = 16;
/// `FileContent` must be shorter than this many base64 characters (10 MB).
pub const MAX_BASE64_BYTES: usize = 10 * 1024 * 1024;
/// Width and height must be greater than this.
pub const MIN_SIDE: u64 = 50;
/// Width and height must be less than this.
pub const MAX_SIDE: u64 = 10_000;
/// The longer side divided by the shorter must be less than this.
pub const MAX_ASPECT_RATIO: u64 = 90;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("the image is empty")]
    Empty,
    #[error("FileContent is not valid base64")]
    InvalidBase64,
    #[error("FileContent is {size} bytes of base64; it must be under {MAX_BASE64_BYTES}")]
    Base64TooLarge { size: usize },
    #[error("the file is {size} bytes; it must be at least {MIN_FILE_BYTES}")]
    FileTooSmall { size: usize },
    #[error("the content is not an image of a supported format")]
    NotAnImage,
    #[error("the image could not be decoded: {0}")]
    Decode(String),
    #[error("the image is {width}x{height}; width and height must be above {MIN_SIDE}")]
    TooFewPixels { width: u64, height: u64 },
    #[error("the image is {width}x{height}; width and height must be below {MAX_SIDE}")]
    TooManyPixels { width: u64, height: u64 },
    #[error("the image is {width}x{height}; its aspect ratio must be below {MAX_ASPECT_RATIO}:1")]
    AspectRatioTooLarge { width: u64, height: u64 },
}

/// What the header of an image says, before any decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub format: Format,
    pub width: u64,
    pub height: u64,
}

/// Decodes base64 `FileContent` (standard alphabet, padding optional).
pub fn decode_base64(content: &str) -> Result<Vec<u8>, MediaError> {
    if content.is_empty() {
        return Err(MediaError::Empty);
    }
    if content.len() >= MAX_BASE64_BYTES {
        return Err(MediaError::Base64TooLarge { size: content.len() });
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(content).map_err(|_| MediaError::InvalidBase64)
}

/// Hex MD5 of the original bytes, reported as `FileMD5`.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// Sniffs the format from the bytes and checks size and dimensions against the limits.
pub fn probe(bytes: &[u8]) -> Result<Probe, MediaError> {
    if bytes.is_empty() {
        return Err(MediaError::Empty);
    }
    if bytes.len() < MIN_FILE_BYTES {
        return Err(MediaError::FileTooSmall { size: bytes.len() });
    }
    let format = format::sniff(bytes).ok_or(MediaError::NotAnImage)?;
    let (width, height) = dimensions(bytes, format)?;
    if width <= MIN_SIDE || height <= MIN_SIDE {
        return Err(MediaError::TooFewPixels { width, height });
    }
    if width >= MAX_SIDE || height >= MAX_SIDE {
        return Err(MediaError::TooManyPixels { width, height });
    }
    let (long, short) = (width.max(height), width.min(height));
    if long >= MAX_ASPECT_RATIO * short {
        return Err(MediaError::AspectRatioTooLarge { width, height });
    }
    Ok(Probe { format, width, height })
}

/// Width and height as the file declares them.
fn dimensions(bytes: &[u8], format: Format) -> Result<(u64, u64), MediaError> {
    match format {
        Format::Jng => jng::dimensions(bytes),
        Format::Gif => gif::extent(bytes),
        Format::Raw => native::raw_dimensions(bytes),
        Format::Webp => {
            webp::check(bytes)?;
            imagesize_dimensions(bytes, format)
        }
        // An SVG's size is its intrinsic size; parsing builds no pixels.
        Format::Svg => Ok(svg::size(&svg::parse(bytes)?)),
        _ => imagesize_dimensions(bytes, format),
    }
}

fn imagesize_dimensions(bytes: &[u8], format: Format) -> Result<(u64, u64), MediaError> {
    let size = imagesize::blob_size(bytes)
        .map_err(|e| MediaError::Decode(format!("the {} header cannot be read: {e}", format.name())))?;
    Ok((size.width as u64, size.height as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BMP header declaring the given size (the pixels are never read).
    fn bmp(width: u32, height: u32) -> Vec<u8> {
        let mut b = b"BM".to_vec();
        b.extend([0u8; 12]);
        b.extend(40u32.to_le_bytes());
        b.extend(width.to_le_bytes());
        b.extend(height.to_le_bytes());
        b.extend([1, 0, 24, 0]);
        b.extend([0u8; 24]);
        b
    }

    #[test]
    fn size_limits_on_both_sides() {
        assert!(probe(&bmp(51, 51)).is_ok());
        assert_eq!(probe(&bmp(50, 51)), Err(MediaError::TooFewPixels { width: 50, height: 51 }));
        assert_eq!(probe(&bmp(51, 50)), Err(MediaError::TooFewPixels { width: 51, height: 50 }));
        assert!(probe(&bmp(9999, 9999)).is_ok());
        assert_eq!(probe(&bmp(10000, 200)), Err(MediaError::TooManyPixels { width: 10000, height: 200 }));
        assert_eq!(probe(&bmp(200, 10000)), Err(MediaError::TooManyPixels { width: 200, height: 10000 }));
    }

    #[test]
    fn aspect_ratio_on_both_sides() {
        assert!(probe(&bmp(89 * 60 + 59, 60)).is_ok());
        assert_eq!(probe(&bmp(90 * 60, 60)), Err(MediaError::AspectRatioTooLarge { width: 5400, height: 60 }));
        assert!(probe(&bmp(60, 89 * 60 + 59)).is_ok());
        assert!(probe(&bmp(60, 90 * 60)).is_err());
    }

    #[test]
    fn file_size_limits() {
        assert_eq!(probe(&[]), Err(MediaError::Empty));
        assert_eq!(probe(&[0u8; 15]), Err(MediaError::FileTooSmall { size: 15 }));
        assert_eq!(probe(&[0u8; 16]), Err(MediaError::NotAnImage));
        assert_eq!(probe(b"<html><body>hello</body></html>"), Err(MediaError::NotAnImage));
    }

    #[test]
    fn base64_rules() {
        assert_eq!(decode_base64("aGVsbG8="), Ok(b"hello".to_vec()));
        assert_eq!(decode_base64("aGVsbG8"), Ok(b"hello".to_vec()));
        assert_eq!(decode_base64(""), Err(MediaError::Empty));
        assert_eq!(decode_base64("not base64!"), Err(MediaError::InvalidBase64));
        let just_under = "A".repeat(MAX_BASE64_BYTES - 4);
        assert!(decode_base64(&just_under).is_ok());
        let at_limit = "A".repeat(MAX_BASE64_BYTES);
        assert_eq!(decode_base64(&at_limit), Err(MediaError::Base64TooLarge { size: MAX_BASE64_BYTES }));
    }

    #[test]
    fn md5_of_original_bytes() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
