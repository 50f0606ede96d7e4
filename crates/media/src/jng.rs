//! JNG: a JPEG image in PNG-style chunks, with an optional alpha channel stored either as PNG
//! data (IDAT) or as a greyscale JPEG (JDAA). Both parts are handed to the regular decoders.

use crate::MediaError;
use image::{GrayImage, RgbaImage};

const SIGNATURE: &[u8] = b"\x8bJNG\r\n\x1a\n";

struct Jng<'a> {
    width: u32,
    height: u32,
    alpha_depth: u8,
    alpha_compression: u8,
    jdat: Vec<u8>,
    idat: Vec<&'a [u8]>,
    jdaa: Vec<u8>,
}

fn invalid(what: &str) -> MediaError {
    MediaError::Decode(format!("JNG: {what}"))
}

fn chunks(bytes: &[u8]) -> Result<Jng<'_>, MediaError> {
    let mut rest = bytes.strip_prefix(SIGNATURE).ok_or_else(|| invalid("no signature"))?;
    let mut jng: Option<Jng> = None;
    while rest.len() >= 12 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let kind = &rest[4..8];
        let data = rest.get(8..8 + len).ok_or_else(|| invalid("a chunk runs past the end of the file"))?;
        rest = rest.get(12 + len..).ok_or_else(|| invalid("a chunk has no CRC"))?;
        match (kind, jng.as_mut()) {
            (b"JHDR", None) if len == 16 => {
                jng = Some(Jng {
                    width: u32::from_be_bytes(data[..4].try_into().unwrap()),
                    height: u32::from_be_bytes(data[4..8].try_into().unwrap()),
                    alpha_depth: data[12],
                    alpha_compression: data[13],
                    jdat: Vec::new(),
                    idat: Vec::new(),
                    jdaa: Vec::new(),
                })
            }
            (b"JDAT", Some(j)) => j.jdat.extend_from_slice(data),
            (b"IDAT", Some(j)) => j.idat.push(data),
            (b"JDAA", Some(j)) => j.jdaa.extend_from_slice(data),
            (b"IEND", Some(_)) => break,
            (b"JHDR", _) | (_, None) => return Err(invalid("JHDR must come first, once")),
            _ => {}
        }
    }
    let jng = jng.ok_or_else(|| invalid("no JHDR"))?;
    if jng.jdat.is_empty() {
        return Err(invalid("no JDAT (image data)"));
    }
    Ok(jng)
}

/// Width and height from the JHDR chunk, without decoding.
pub fn dimensions(bytes: &[u8]) -> Result<(u64, u64), MediaError> {
    let header = bytes.get(8..32).ok_or_else(|| invalid("too short"))?;
    if &header[4..8] != b"JHDR" {
        return Err(invalid("JHDR must come first"));
    }
    let width = u32::from_be_bytes(header[8..12].try_into().unwrap());
    let height = u32::from_be_bytes(header[12..16].try_into().unwrap());
    Ok((u64::from(width), u64::from(height)))
}

/// A PNG file around the JNG's IDAT chunks: a greyscale image of the alpha channel.
fn alpha_as_png(jng: &Jng<'_>) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend(jng.width.to_be_bytes());
    ihdr.extend(jng.height.to_be_bytes());
    ihdr.extend([jng.alpha_depth, 0, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    for data in &jng.idat {
        chunk(&mut png, b"IDAT", data);
    }
    chunk(&mut png, b"IEND", &[]);
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

pub fn decode(bytes: &[u8]) -> Result<RgbaImage, MediaError> {
    let jng = chunks(bytes)?;
    let colour = crate::jpeg::decode(&jng.jdat, None)?;
    let alpha: Option<GrayImage> = match (jng.alpha_depth, jng.alpha_compression) {
        (0, _) => None,
        (_, 0) if !jng.idat.is_empty() => Some(
            image::load_from_memory_with_format(&alpha_as_png(&jng), image::ImageFormat::Png)
                .map_err(|e| invalid(&format!("alpha channel: {e}")))?
                .into_luma8(),
        ),
        (_, 8) if !jng.jdaa.is_empty() => {
            Some(image::DynamicImage::ImageRgb8(crate::jpeg::decode(&jng.jdaa, None)?).into_luma8())
        }
        _ => return Err(invalid("the alpha channel is declared but missing")),
    };
    let mut rgba = image::DynamicImage::ImageRgb8(colour).into_rgba8();
    if let Some(alpha) = alpha {
        if alpha.dimensions() != rgba.dimensions() {
            return Err(invalid("the alpha channel's size differs from the image's"));
        }
        for (pixel, a) in rgba.pixels_mut().zip(alpha.pixels()) {
            pixel.0[3] = a.0[0];
        }
    }
    Ok(rgba)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_iend() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn malformed_files_are_errors() {
        assert!(decode(b"\x8bJNG\r\n\x1a\n").is_err());
        assert!(decode(b"\x8bJNG\r\n\x1a\n\0\0\0\x10JDAT").is_err());
        assert!(dimensions(b"\x8bJNG\r\n\x1a\n\0\0\0\x10IDAT\0\0\0\x01\0\0\0\x01").is_err());
    }
}
