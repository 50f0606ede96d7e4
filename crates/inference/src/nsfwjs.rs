//! nsfwjs MobileNetV2 (converted to ONNX by `scripts/convert/nsfwjs_to_onnx.py`).
//!
//! Pre-processing reproduces nsfwjs 4.4.0 exactly: pixel values divided by 255, then
//! TensorFlow.js's `resizeBilinear` to 224x224 with `alignCorners = true` (corner pixels map to
//! corner pixels), NHWC. TensorFlow.js computes the interpolation in double precision and stores
//! float32, and so does this.

use crate::{InferenceError, Model};
use image::RgbImage;

pub const SIZE: usize = 224;
/// One image's input shape (NHWC without the batch).
pub const INPUT: [usize; 3] = [SIZE, SIZE, 3];
/// The classes in the model's output order.
pub const CLASSES: [&str; 5] = ["Drawing", "Hentai", "Neutral", "Porn", "Sexy"];

/// Probabilities in [`CLASSES`] order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores(pub [f32; 5]);

impl Scores {
    pub fn get(&self, class: &str) -> f32 {
        CLASSES.iter().position(|c| *c == class).map_or(0.0, |i| self.0[i])
    }
}

/// The model's input for one image: 224 x 224 x 3 floats.
pub fn preprocess(image: &RgbImage) -> Vec<f32> {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let normalised: Vec<f32> = image.as_raw().iter().map(|&v| (f64::from(v) / 255.0) as f32).collect();
    if width == SIZE && height == SIZE {
        return normalised;
    }
    // alignCorners: the scale maps the first and last output pixels onto the first and last
    // input pixels.
    let scale = |from: usize| if SIZE > 1 { (from - 1) as f64 / (SIZE - 1) as f64 } else { from as f64 / SIZE as f64 };
    let (row_scale, col_scale) = (scale(height), scale(width));
    let at = |y: usize, x: usize, c: usize| f64::from(normalised[(y * width + x) * 3 + c]);
    let mut out = Vec::with_capacity(SIZE * SIZE * 3);
    for r in 0..SIZE {
        let source_row = row_scale * r as f64;
        let top = source_row.floor() as usize;
        let bottom = (source_row.ceil() as usize).min(height - 1);
        let row_frac = source_row - top as f64;
        for c in 0..SIZE {
            let source_col = col_scale * c as f64;
            let left = source_col.floor() as usize;
            let right = (source_col.ceil() as usize).min(width - 1);
            let col_frac = source_col - left as f64;
            for channel in 0..3 {
                let top_value = at(top, left, channel) + (at(top, right, channel) - at(top, left, channel)) * col_frac;
                let bottom_value =
                    at(bottom, left, channel) + (at(bottom, right, channel) - at(bottom, left, channel)) * col_frac;
                out.push((top_value + (bottom_value - top_value) * row_frac) as f32);
            }
        }
    }
    out
}

/// Classifies one image.
pub fn classify(model: &Model, image: &RgbImage) -> Result<Scores, InferenceError> {
    scores(&model.run(preprocess(image))?)
}

/// Reads one output row.
pub fn scores(output: &[f32]) -> Result<Scores, InferenceError> {
    let scores: [f32; 5] = output
        .get(..5)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| InferenceError::Run("nsfwjs gave fewer than 5 scores".into()))?;
    Ok(Scores(scores))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corners_map_to_corners() {
        let image = RgbImage::from_fn(500, 300, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 7]));
        let input = preprocess(&image);
        assert_eq!(input.len(), SIZE * SIZE * 3);
        let px = |x: usize, y: usize| &input[(y * SIZE + x) * 3..(y * SIZE + x) * 3 + 3];
        assert_eq!(px(0, 0), [0.0, 0.0, 7.0 / 255.0]);
        let last = px(SIZE - 1, SIZE - 1);
        assert!(
            (last[0] - (499 % 256) as f32 / 255.0).abs() < 1e-6 && (last[1] - (299 % 256) as f32 / 255.0).abs() < 1e-6
        );
    }

    #[test]
    fn an_image_of_the_model_size_is_only_normalised() {
        let image = RgbImage::from_pixel(224, 224, image::Rgb([255, 0, 51]));
        assert_eq!(&preprocess(&image)[..3], [1.0, 0.0, 0.2]);
    }
}
