//! NudeNet 320n (the ONNX file of `nudenet` 3.4.2, a YOLOv8n body-part detector; AGPL-3.0, so
//! the server loads it only when configured to).
//!
//! Pre-processing reproduces the package's `_read_image`: the image padded with black at the
//! bottom and right to a square, OpenCV's `blobFromImage` (a bilinear `resize` to 320 x 320 in
//! OpenCV's 11-bit fixed point, /255), NCHW, channels in BGR order: the package converts its BGR
//! image with `COLOR_RGBA2BGR` (which swaps R and B) and `blobFromImage` swaps them again, so the
//! model has always been fed BGR, and its scores are those of BGR input. Post-processing is its `_postprocess`: rows whose
//! best class scores at least 0.2, boxes scaled back to the image, then OpenCV's `NMSBoxes`
//! (score 0.25, IoU 0.45, across classes).

use crate::{InferenceError, Model};
use image::RgbImage;

pub const SIZE: usize = 320;
/// One image's input shape (NCHW without the batch).
pub const INPUT: [usize; 3] = [3, SIZE, SIZE];
/// The classes in the model's output order.
pub const CLASSES: [&str; 18] = [
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
];
const CANDIDATE_SCORE: f32 = 0.2;
const NMS_SCORE: f32 = 0.25;
const NMS_IOU: f64 = 0.45;

/// One detected body part, in pixels of the image given to [`detect`].
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub class: &'static str,
    pub score: f32,
    /// Left, top, width, height, truncated to integers as the package does.
    pub bbox: [u32; 4],
}

/// The model's input for one image: 3 x 320 x 320 floats.
pub fn preprocess(image: &RgbImage) -> Vec<f32> {
    let side = image.width().max(image.height());
    let mut square = RgbImage::new(side, side);
    image::imageops::replace(&mut square, image, 0, 0);
    let resized = crate::opencv::resize_linear(&square, SIZE as u32, SIZE as u32);
    let plane = SIZE * SIZE;
    let mut tensor = vec![0f32; 3 * plane];
    for (i, rgb) in resized.as_raw().chunks_exact(3).enumerate() {
        for (c, &value) in rgb.iter().rev().enumerate() {
            tensor[c * plane + i] = (f64::from(value) * (1.0 / 255.0)) as f32;
        }
    }
    tensor
}

/// Detects body parts in one image.
pub fn detect(model: &Model, image: &RgbImage) -> Result<Vec<Detection>, InferenceError> {
    let output = model.run(preprocess(image))?;
    postprocess(&output, image.width(), image.height())
}

/// Reads one output row into detections in pixels of an image of `width` x `height`.
pub fn postprocess(output: &[f32], width: u32, height: u32) -> Result<Vec<Detection>, InferenceError> {
    let rows = output.len() / (4 + CLASSES.len());
    if rows == 0 || output.len() != rows * (4 + CLASSES.len()) {
        return Err(InferenceError::Run(format!("NudeNet gave {} values", output.len())));
    }
    // The output is [22, rows]: feature-major.
    let at = |feature: usize, row: usize| output[feature * rows + row];
    let side = f64::from(width.max(height));
    let (w_max, h_max) = (f64::from(width), f64::from(height));
    let mut candidates = Vec::new();
    for row in 0..rows {
        let (class, score) =
            (0..CLASSES.len())
                .map(|c| (c, at(4 + c, row)))
                .fold((0, f32::MIN), |best, (c, s)| if s > best.1 { (c, s) } else { best });
        if score < CANDIDATE_SCORE {
            continue;
        }
        let scale = side / SIZE as f64;
        let (cx, cy, w, h) =
            (f64::from(at(0, row)), f64::from(at(1, row)), f64::from(at(2, row)), f64::from(at(3, row)));
        let x = ((cx - w / 2.0) * scale).clamp(0.0, w_max);
        let y = ((cy - h / 2.0) * scale).clamp(0.0, h_max);
        let w = (w * scale).min(w_max - x);
        let h = (h * scale).min(h_max - y);
        candidates.push((class, score, [x, y, w, h]));
    }
    // NMSBoxes: highest score first (stable for ties), drop boxes overlapping a kept one.
    candidates.retain(|c| c.1 > NMS_SCORE);
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut kept: Vec<(usize, f32, [f64; 4])> = Vec::new();
    for candidate in candidates {
        if kept.iter().all(|k| iou(&k.2, &candidate.2) <= NMS_IOU) {
            kept.push(candidate);
        }
    }
    Ok(kept
        .into_iter()
        .map(|(class, score, [x, y, w, h])| Detection {
            class: CLASSES[class],
            score,
            bbox: [x as u32, y as u32, w.max(0.0) as u32, h.max(0.0) as u32],
        })
        .collect())
}

fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let w = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let h = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let intersection = w * h;
    intersection / (a[2] * a[3] + b[2] * b[3] - intersection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_boxes_keep_the_best() {
        let rows = 3;
        let mut output = vec![0f32; (4 + CLASSES.len()) * rows];
        let mut set = |feature: usize, row: usize, v: f32| output[feature * rows + row] = v;
        // Two boxes on the same spot (classes 2 and 3), one elsewhere; 320-pixel image.
        for (row, (cx, class, score)) in [(100.0, 2, 0.9), (102.0, 3, 0.6), (250.0, 4, 0.55)].into_iter().enumerate() {
            set(0, row, cx);
            set(1, row, 100.0);
            set(2, row, 40.0);
            set(3, row, 40.0);
            set(4 + class, row, score);
        }
        let found = postprocess(&output, 320, 320).unwrap();
        assert_eq!(found.iter().map(|d| d.class).collect::<Vec<_>>(), ["BUTTOCKS_EXPOSED", "FEMALE_GENITALIA_EXPOSED"]);
        assert_eq!(found[0].bbox, [80, 80, 40, 40]);
    }
}
