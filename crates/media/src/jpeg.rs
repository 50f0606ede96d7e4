//! JPEG through libjpeg-turbo's decoder (as built into the `mozjpeg` crate, arithmetic coding
//! included): the same decoder the models' reference packages use through Pillow, so pixels
//! match theirs. Baseline, progressive, arithmetic, greyscale, CMYK/YCCK; EXIF orientation is
//! applied. 12-bit and lossless JPEG are refused (libjpeg-turbo's 8-bit build cannot read them).

use crate::MediaError;
use image::{DynamicImage, RgbImage};
use mozjpeg::decompress::DecompressBuilder;
use mozjpeg::{ColorSpace, Marker};
use mozjpeg_sys as ffi;
use std::ffi::c_int;

/// libjpeg reports fatal errors through `error_exit`, which must not return: unwind to the
/// `catch_unwind` in [`decode`] with the error code.
extern "C-unwind" fn fatal(cinfo: &mut ffi::jpeg_common_struct) {
    // SAFETY: libjpeg passes its own, initialised error manager.
    let code = unsafe { (*cinfo.err).msg_code };
    std::panic::resume_unwind(Box::new(code));
}

/// Warnings are ignored, except the end of data before the image is complete: a truncated file
/// is refused rather than moderated half grey.
extern "C-unwind" fn warning(cinfo: &mut ffi::jpeg_common_struct, level: c_int) {
    // SAFETY: as above.
    let code = unsafe { (*cinfo.err).msg_code };
    if level < 0 && code == ffi::JWRN_JPEG_EOF as c_int {
        std::panic::resume_unwind(Box::new(code));
    }
}

fn error_manager() -> ffi::jpeg_error_mgr {
    // SAFETY: jpeg_std_error fills every field of a zeroed manager; two handlers are replaced.
    unsafe {
        let mut err: ffi::jpeg_error_mgr = std::mem::zeroed();
        ffi::jpeg_std_error(&mut err);
        err.error_exit = Some(fatal);
        err.emit_message = Some(warning);
        err
    }
}

fn explain(code: c_int) -> String {
    match code as u32 {
        c if c == ffi::JERR_BAD_PRECISION as u32 => "12-bit and 16-bit JPEG are not supported".into(),
        c if c == ffi::JWRN_JPEG_EOF as u32 => "the JPEG data ends before the image is complete".into(),
        c => format!("the JPEG data is invalid (libjpeg message {c})"),
    }
}

/// The scale (in eighths) that keeps the longer side at least `target`: libjpeg reduces in the
/// DCT domain, far cheaper than decoding everything and resizing.
fn eighths_for(width: usize, height: usize, target: Option<u32>) -> u8 {
    let Some(target) = target else { return 8 };
    let long = width.max(height);
    [1u8, 2, 4, 8].into_iter().find(|n| long * usize::from(*n) / 8 >= target as usize).unwrap_or(8)
}

/// Decodes to RGB, oriented as the EXIF orientation says, with the longer side reduced towards
/// `target` (never below it) when given.
pub fn decode(bytes: &[u8], target: Option<u32>) -> Result<RgbImage, MediaError> {
    let result = std::panic::catch_unwind(|| -> Result<RgbImage, MediaError> {
        let io = |e: std::io::Error| MediaError::Decode(e.to_string());
        let mut d = DecompressBuilder::new()
            .with_err(error_manager())
            .with_markers(&[Marker::APP(1)])
            .from_mem(bytes)
            .map_err(io)?;
        let orientation = d
            .markers()
            .find_map(|m| m.data.strip_prefix(b"Exif\0\0").and_then(image::metadata::Orientation::from_exif_chunk));
        let (width, height) = d.size();
        d.scale(eighths_for(width, height, target));
        let image = match d.color_space() {
            ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => {
                let mut started = d.to_colorspace(ColorSpace::JCS_CMYK).map_err(io)?;
                let (w, h) = (started.width() as u32, started.height() as u32);
                let cmyk: Vec<u8> = started.read_scanlines::<u8>().map_err(io)?;
                started.finish().map_err(io)?;
                // Adobe writes CMYK inverted (as virtually every CMYK JPEG does): the stored
                // values are already 255 - ink, so each channel is value * K / 255.
                let rgb = cmyk
                    .chunks_exact(4)
                    .flat_map(|p| {
                        let k = u16::from(p[3]);
                        [p[0], p[1], p[2]].map(|c| ((u16::from(c) * k + 127) / 255) as u8)
                    })
                    .collect();
                RgbImage::from_raw(w, h, rgb)
            }
            _ => {
                let mut started = d.rgb().map_err(io)?;
                let (w, h) = (started.width() as u32, started.height() as u32);
                let rgb: Vec<u8> = started.read_scanlines::<u8>().map_err(io)?;
                started.finish().map_err(io)?;
                RgbImage::from_raw(w, h, rgb)
            }
        }
        .ok_or_else(|| MediaError::Decode("the JPEG decoder returned an inconsistent image".into()))?;
        let mut image = DynamicImage::ImageRgb8(image);
        if let Some(orientation) = orientation {
            image.apply_orientation(orientation);
        }
        Ok(image.into_rgb8())
    });
    match result {
        Ok(decoded) => decoded,
        Err(payload) => Err(MediaError::Decode(match payload.downcast_ref::<c_int>() {
            Some(code) => explain(*code),
            None => "the JPEG data is invalid".into(),
        })),
    }
}

/// Encodes `image` as a baseline JPEG at `quality` with libjpeg-turbo's defaults (standard
/// tables, 4:2:0, no trellis: the "fastest" profile of this mozjpeg build, which is what Pillow's
/// `save(format="JPEG", quality=q)` produces).
pub fn encode(image: &RgbImage, quality: u8) -> Result<Vec<u8>, MediaError> {
    let result = std::panic::catch_unwind(|| -> Result<Vec<u8>, MediaError> {
        let mut c = mozjpeg::Compress::new_err(Box::new(error_manager()), ColorSpace::JCS_RGB);
        c.set_fastest_defaults();
        c.set_size(image.width() as usize, image.height() as usize);
        c.set_quality(f32::from(quality));
        let io = |e: std::io::Error| MediaError::Decode(e.to_string());
        let mut started = c.start_compress(Vec::new()).map_err(io)?;
        started.write_scanlines(image.as_raw()).map_err(io)?;
        started.finish().map_err(io)
    });
    result.unwrap_or_else(|_| Err(MediaError::Decode("the JPEG encoder failed".into())))
}

/// A JPEG of `image` fitted within `side` x `side` pixels (never enlarged).
pub fn thumbnail(image: &RgbImage, side: u32) -> Result<Vec<u8>, MediaError> {
    let (w, h) = image.dimensions();
    let scale = (f64::from(side) / f64::from(w.max(h).max(1))).min(1.0);
    let fit = |n: u32| ((f64::from(n) * scale).round() as u32).max(1);
    encode(&image::imageops::thumbnail(image, fit(w), fit(h)), 70)
}

/// [`encode`] then decode again. open_nsfw's reference pre-processing does this round trip, and
/// its scores depend on the artefacts.
pub fn roundtrip(image: &RgbImage, quality: u8) -> Result<RgbImage, MediaError> {
    decode(&encode(image, quality)?, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dct_scaling_never_goes_below_the_target() {
        assert_eq!(eighths_for(8000, 6000, Some(2048)), 4);
        assert_eq!(eighths_for(4096, 100, Some(2048)), 4);
        assert_eq!(eighths_for(4095, 100, Some(2048)), 8);
        assert_eq!(eighths_for(20000, 100, Some(2048)), 1);
        assert_eq!(eighths_for(800, 600, Some(2048)), 8);
        assert_eq!(eighths_for(8000, 6000, None), 8);
    }

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        for bytes in [&b"\xff\xd8\xff"[..], b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", &[0xff; 64]] {
            assert!(decode(bytes, None).is_err());
        }
    }
}
