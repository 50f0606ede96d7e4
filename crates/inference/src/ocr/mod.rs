//! Reading text: PP-OCR's detection (DB), direction (0/180) and recognition (CTC) models from
//! the `rapidocr` package, with its pipeline re-implemented: BGR input, the detector's input
//! with its longer side at most 960 (each side a multiple of 32), DB post-processing (threshold
//! 0.3, 2 x 2 dilation, minimum-area boxes scoring 0.5, unclip ratio 1.6), lines sorted top to
//! bottom then left to right, perspective crops (turned upright when tall), 180-degree lines
//! turned by the direction model, recognition in batches of 6 padded to a common width, greedy
//! CTC over the character list stored in the model, lines scoring under 0.5 dropped.
//!
//! A first look spares the full detector on images without text, which are most of them: the
//! tiny PP-OCRv6 detector on the image shrunk to [`FIRST_LOOK_SIDE`] (a tenth of the full pass's
//! cost); when its probability map stays under [`FIRST_LOOK_PEAK`] everywhere, the image has no
//! text. Otherwise the full pass runs as if there had been no first look, so what is read does
//! not change.
//!
//! Long images (longer than the detector's side and over [`TILE_RATIO`] times longer than wide)
//! are read in overlapping tiles along their length, so that their text is not shrunk away by the
//! detector's size limit.

pub mod geometry;

use crate::opencv::resize_linear;
use crate::{InferenceError, Model, ModelOptions, Runtime};
use geometry::{clockwise, distance, mean_inside, min_area_rect, mini_box, regions, warp, Quad};
use image::RgbImage;
use std::path::Path;
use std::time::Instant;

/// The detector's longer side.
const DET_SIDE: u32 = 960;
/// The first look's longer side at most: at 480 it missed text that it saw at 640 (docs/benchmarks.md).
const FIRST_LOOK_SIDE: u32 = 640;
/// Images no longer than this get the full pass directly: it costs little more than a look.
const FIRST_LOOK_FROM: u32 = 320;
/// The first look's probability under which an image is taken to have no text: under the full
/// pass's binarisation threshold (0.3), for margin. On ../shared/data every image with text
/// peaked at 0.8 or more, photos without text at 0.18 at most (docs/benchmarks.md).
const FIRST_LOOK_PEAK: f32 = 0.2;
/// The height (pixels) at the full detector's input of the lowest line the first look saw,
/// below which the detector is not run at less than [`DET_SIDE`]; and the least side it is run at.
const SMALLEST_KERNEL: f64 = 12.0;
const SMALLEST_SIDE: u32 = 480;
const DET_THRESHOLD: f32 = 0.3;
const BOX_THRESHOLD: f32 = 0.5;
const UNCLIP_RATIO: f64 = 1.6;
const MIN_SIDE: f64 = 3.0;
const MAX_CANDIDATES: usize = 1000;
/// Lines whose tops are closer than this (pixels) are on one line, read left to right.
const SAME_LINE: f64 = 10.0;
const CLS_SHAPE: (usize, usize) = (48, 192);
const CLS_THRESHOLD: f32 = 0.9;
const REC_HEIGHT: usize = 48;
const REC_MIN_WIDTH: usize = 320;
const BATCH: usize = 6;
const TEXT_SCORE: f32 = 0.5;
/// Lines this high or lower, or this many times wider than high, are padded (see [`padded`]).
const MIN_HEIGHT: u32 = 30;
const WIDE_RATIO: u32 = 8;
/// Beyond this ratio of long to short side (and longer than the detector's side) an image is
/// read in tiles.
pub const TILE_RATIO: u32 = 3;

/// A line of text, with its corners in the pixels of the image read.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    pub text: String,
    /// The recognition's confidence, 0-1.
    pub score: f32,
    pub quad: Quad,
}

/// The four models and the character list.
pub struct Ocr {
    /// The tiny detector of the first look.
    first_look: Model,
    det: Model,
    cls: Model,
    rec: Model,
    /// Index 0 is CTC's blank; the last is a space.
    characters: Vec<String>,
}

impl Ocr {
    /// Loads `ppocr-det-tiny.onnx`, `ppocr-det-small.onnx`, `ppocr-cls.onnx` and
    /// `ppocr-rec-small.onnx` from `models`.
    pub fn load(runtime: &Runtime, models: &Path, options: ModelOptions) -> Result<Ocr, InferenceError> {
        let load = |file: &str| Model::load(runtime, &models.join(file), &[], options);
        let rec = load("ppocr-rec-small.onnx")?;
        let list = rec.metadata("character").ok_or_else(|| InferenceError::Model {
            path: models.join("ppocr-rec-small.onnx").display().to_string(),
            reason: "no `character` list in its metadata".into(),
        })?;
        let characters = std::iter::once(String::new())
            .chain(list.lines().map(String::from))
            .chain(std::iter::once(" ".to_string()))
            .collect();
        // The first look runs on one thread, as the classifiers beside it do: with two, the
        // bench was no faster (docs/benchmarks.md).
        let first_look =
            Model::load(runtime, &models.join("ppocr-det-tiny.onnx"), &[], ModelOptions { threads: 1, ..options })?;
        Ok(Ocr { first_look, det: load("ppocr-det-small.onnx")?, cls: load("ppocr-cls.onnx")?, rec, characters })
    }

    /// Every line of text in `image` (RGB), top to bottom.
    pub fn read(&self, image: &RgbImage) -> Result<Vec<TextLine>, InferenceError> {
        self.read_until(image, None)
    }

    /// [`Ocr::read`], its model runs not started by `deadline` dropped
    /// ([`InferenceError::Expired`]).
    pub fn read_until(&self, image: &RgbImage, deadline: Option<Instant>) -> Result<Vec<TextLine>, InferenceError> {
        let (bgr, top) = padded(&to_bgr(image));
        let quads = self.detect_tiled(&bgr, deadline)?;
        if quads.is_empty() {
            return Ok(Vec::new());
        }
        let mut crops: Vec<RgbImage> = quads.iter().map(|q| crop(&bgr, q)).collect();
        self.turn_upside_down_lines(&mut crops, deadline)?;
        let texts = self.recognize(&crops, deadline)?;
        let unpad = |[x, y]: [f64; 2]| [x, (y - f64::from(top)).clamp(0.0, f64::from(image.height()))];
        Ok(quads
            .into_iter()
            .zip(texts)
            .filter(|(_, (_, score))| *score >= TEXT_SCORE)
            .map(|(quad, (text, score))| TextLine { text, score, quad: quad.map(unpad) })
            .collect())
    }

    /// Detection over the whole image, or over tiles of a long one.
    fn detect_tiled(&self, bgr: &RgbImage, deadline: Option<Instant>) -> Result<Vec<Quad>, InferenceError> {
        let (w, h) = bgr.dimensions();
        let (long, short) = (w.max(h), w.min(h));
        if long <= DET_SIDE || long <= short * TILE_RATIO {
            return self.detect(bgr, deadline);
        }
        // Tiles as long as the detector's side (or the short side, if longer) along the length,
        // overlapping by a quarter: a line cut by one tile's edge is whole in the next, and of
        // two boxes covering one line the larger is kept.
        let tile = short.max(DET_SIDE);
        let step = tile * 3 / 4;
        let mut quads: Vec<Quad> = Vec::new();
        let mut start = 0;
        loop {
            let length = tile.min(long - start);
            let piece = if w > h {
                image::imageops::crop_imm(bgr, start, 0, length, h).to_image()
            } else {
                image::imageops::crop_imm(bgr, 0, start, w, length).to_image()
            };
            for quad in self.detect(&piece, deadline)? {
                let shifted =
                    quad.map(|[x, y]| if w > h { [x + f64::from(start), y] } else { [x, y + f64::from(start)] });
                match quads.iter().position(|q| overlap(q, &shifted) > 0.5) {
                    Some(i) if area(&quads[i]) < area(&shifted) => quads[i] = shifted,
                    Some(_) => {}
                    None => quads.push(shifted),
                }
            }
            if start + length >= long {
                break;
            }
            start += step;
        }
        Ok(sorted(quads))
    }

    /// The text lines' corners in `bgr`, sorted in reading order.
    fn detect(&self, bgr: &RgbImage, deadline: Option<Instant>) -> Result<Vec<Quad>, InferenceError> {
        let (w, h) = bgr.dimensions();
        let mut side = DET_SIDE;
        if w.max(h) > FIRST_LOOK_FROM {
            let look = probabilities(&self.first_look, bgr, FIRST_LOOK_SIDE, deadline)?;
            let peak = look.data.iter().copied().fold(0f32, f32::max);
            if peak < FIRST_LOOK_PEAK {
                tracing::debug!(peak, "OCR first look: no text");
                return Ok(Vec::new());
            }
            side = detector_side(&look, w.max(h));
            tracing::debug!(peak, side, "OCR first look: text");
        }
        let output = probabilities(&self.det, bgr, side, deadline)?;
        let (map_h, map_w) = (output.shape[2], output.shape[3]);
        Ok(sorted(db_boxes(&output.data, map_w, map_h, w, h)))
    }

    /// Lines the direction model reads as upside down are turned.
    fn turn_upside_down_lines(&self, crops: &mut [RgbImage], deadline: Option<Instant>) -> Result<(), InferenceError> {
        let (ch, cw) = CLS_SHAPE;
        for batch in by_width(crops) {
            let mut input = Vec::with_capacity(batch.len() * 3 * ch * cw);
            for &i in &batch {
                input.extend(padded_line(&crops[i], ch, cw));
            }
            let out = self.cls.run_tensor(input, &[batch.len(), 3, ch, cw], deadline)?;
            for (row, &i) in out.data.chunks_exact(2).zip(&batch) {
                if row[1] > row[0] && row[1] > CLS_THRESHOLD {
                    image::imageops::rotate180_in_place(&mut crops[i]);
                }
            }
        }
        Ok(())
    }

    /// Each crop's text and confidence.
    fn recognize(&self, crops: &[RgbImage], deadline: Option<Instant>) -> Result<Vec<(String, f32)>, InferenceError> {
        let mut results = vec![(String::new(), 0.0); crops.len()];
        for batch in by_width(crops) {
            let widest = batch
                .iter()
                .map(|&i| crops[i].width() as f64 / f64::from(crops[i].height().max(1)))
                .fold(REC_MIN_WIDTH as f64 / REC_HEIGHT as f64, f64::max);
            let width = (REC_HEIGHT as f64 * widest) as usize;
            let mut input = Vec::with_capacity(batch.len() * 3 * REC_HEIGHT * width);
            for &i in &batch {
                input.extend(padded_line(&crops[i], REC_HEIGHT, width));
            }
            let out = self.rec.run_tensor(input, &[batch.len(), 3, REC_HEIGHT, width], deadline)?;
            let (steps, classes) = (out.shape[1], out.shape[2]);
            for (row, &i) in out.data.chunks_exact(steps * classes).zip(&batch) {
                results[i] = self.ctc(row, classes);
            }
        }
        Ok(results)
    }

    /// Greedy CTC: the best class per step, repeats and blanks dropped; the score is the mean
    /// probability of the characters kept.
    fn ctc(&self, probabilities: &[f32], classes: usize) -> (String, f32) {
        let mut text = String::new();
        let (mut sum, mut count) = (0f32, 0u32);
        let mut previous = usize::MAX;
        for step in probabilities.chunks_exact(classes) {
            let (best, p) = step.iter().enumerate().fold((0, f32::MIN), |b, (i, &p)| if p > b.1 { (i, p) } else { b });
            if best != previous && best != 0 {
                if let Some(c) = self.characters.get(best) {
                    text.push_str(c);
                    sum += p;
                    count += 1;
                }
            }
            previous = best;
        }
        (text, if count == 0 { 0.0 } else { sum / count as f32 })
    }
}

/// A detector's probability map of `bgr` shrunk to at most `longest` on its longer side, each
/// side rounded to a multiple of 32.
fn probabilities(
    detector: &Model,
    bgr: &RgbImage,
    longest: u32,
    deadline: Option<Instant>,
) -> Result<crate::Tensor, InferenceError> {
    let (w, h) = bgr.dimensions();
    let ratio = if w.max(h) > longest { f64::from(longest) / f64::from(w.max(h)) } else { 1.0 };
    let side = |n: u32| ((((f64::from(n) * ratio) as u32) as f64 / 32.0).round() as u32 * 32).max(32);
    let (dw, dh) = (side(w), side(h));
    let resized = resize_linear(bgr, dw, dh);
    detector.run_tensor(normalized_chw(&resized), &[1, 3, dh as usize, dw as usize], deadline)
}

/// The full detector's longer side for an image of longer side `long` whose first look is
/// `look`: [`DET_SIDE`], or less when every line the look saw is so high that it stays at least
/// [`SMALLEST_KERNEL`] pixels high at the smaller side (at least [`SMALLEST_SIDE`], and at most
/// three quarters of the whole side). Large text, like a caption, costs a fraction of the full
/// detector; small or faint text keeps it whole.
fn detector_side(look: &crate::Tensor, long: u32) -> u32 {
    let (map_h, map_w) = (look.shape[2], look.shape[3]);
    let binary: Vec<bool> = look.data.iter().map(|&p| p > DET_THRESHOLD).collect();
    // The look's map is of the image shrunk to its size: its pixels are this many of the image's.
    let scale = f64::from(long) / map_w.max(map_h) as f64;
    let lowest = regions(&binary, map_w, map_h)
        .iter()
        .map(|region| min_area_rect(region).short_side() * scale)
        .fold(f64::INFINITY, f64::min);
    if !lowest.is_finite() {
        return DET_SIDE;
    }
    let needed = (SMALLEST_KERNEL * f64::from(long) / lowest).min(f64::from(DET_SIDE)).ceil() as u32;
    let side = needed.div_ceil(32).max(SMALLEST_SIDE / 32) * 32;
    // A side that saves little (a page at 608 instead of 640) is not worth what a coarser map
    // may change in the lines' boxes.
    if side * 4 <= long.min(DET_SIDE) * 3 {
        side
    } else {
        DET_SIDE
    }
}

/// A single line of text (at most 30 pixels high, or more than 8 times wider than high) gets
/// black bands above and below, as PP-OCR pads it, so the detector sees it at a useful scale.
/// Returns the image and the band's height.
fn padded(bgr: &RgbImage) -> (RgbImage, u32) {
    let (w, h) = bgr.dimensions();
    if h > MIN_HEIGHT && w <= h * WIDE_RATIO {
        return (bgr.clone(), 0);
    }
    let target = (w / WIDE_RATIO).max(MIN_HEIGHT) * 2;
    let band = target.abs_diff(h) / 2;
    let mut out = RgbImage::new(w, h + 2 * band);
    image::imageops::replace(&mut out, bgr, 0, i64::from(band));
    (out, band)
}

/// Swaps red and blue: PP-OCR's models were trained on OpenCV's BGR images.
fn to_bgr(image: &RgbImage) -> RgbImage {
    let mut out = image.clone();
    for p in out.pixels_mut() {
        p.0.swap(0, 2);
    }
    out
}

/// (x / 255 - 0.5) / 0.5, channels first.
fn normalized_chw(image: &RgbImage) -> Vec<f32> {
    let plane = image.as_raw().len() / 3;
    let mut out = vec![0f32; plane * 3];
    for (i, px) in image.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = f32::from(px[c]) / 127.5 - 1.0;
        }
    }
    out
}

/// A line resized to `height` (at most `width` wide, keeping its ratio), normalised, and padded
/// with zeros to `width`, channels first.
fn padded_line(line: &RgbImage, height: usize, width: usize) -> Vec<f32> {
    let ratio = f64::from(line.width()) / f64::from(line.height().max(1));
    let resized_w = ((height as f64 * ratio).ceil() as usize).clamp(1, width);
    let resized = resize_linear(line, resized_w as u32, height as u32);
    let mut out = vec![0f32; 3 * height * width];
    for (i, px) in resized.as_raw().chunks_exact(3).enumerate() {
        let (y, x) = (i / resized_w, i % resized_w);
        for c in 0..3 {
            out[c * height * width + y * width + x] = f32::from(px[c]) / 127.5 - 1.0;
        }
    }
    out
}

/// Crops in batches of [`BATCH`], narrowest first (as PP-OCR batches them).
fn by_width(crops: &[RgbImage]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..crops.len()).collect();
    let ratio = |i: usize| f64::from(crops[i].width()) / f64::from(crops[i].height().max(1));
    order.sort_by(|&a, &b| ratio(a).total_cmp(&ratio(b)));
    order.chunks(BATCH).map(<[usize]>::to_vec).collect()
}

/// The detector's probability map (`map_w` x `map_h`) as text-line corners in an image of
/// `width` x `height`.
fn db_boxes(map: &[f32], map_w: usize, map_h: usize, width: u32, height: u32) -> Vec<Quad> {
    let binary: Vec<bool> = map.iter().map(|&p| p > DET_THRESHOLD).collect();
    // A 2 x 2 dilation: a pixel is set when it or its left, upper or upper-left neighbour is.
    let dilated: Vec<bool> = (0..binary.len())
        .map(|i| {
            let (x, y) = (i % map_w, i / map_w);
            binary[i]
                || (x > 0 && binary[i - 1])
                || (y > 0 && binary[i - map_w])
                || (x > 0 && y > 0 && binary[i - map_w - 1])
        })
        .collect();
    let (sx, sy) = (f64::from(width) / map_w as f64, f64::from(height) / map_h as f64);
    let mut quads = Vec::new();
    for region in regions(&dilated, map_w, map_h).into_iter().take(MAX_CANDIDATES) {
        let rect = min_area_rect(&region);
        if rect.short_side() < MIN_SIDE {
            continue;
        }
        let corners = mini_box(rect.corners());
        if mean_inside(map, map_w, map_h, &corners) < BOX_THRESHOLD {
            continue;
        }
        let [w, h] = rect.size;
        let grown = rect.grown(w * h * UNCLIP_RATIO / (2.0 * (w + h)));
        if grown.short_side() < MIN_SIDE + 2.0 {
            continue;
        }
        let scaled = mini_box(grown.corners()).map(|[x, y]| {
            [(x * sx).round().clamp(0.0, f64::from(width)), (y * sy).round().clamp(0.0, f64::from(height))]
        });
        let quad = clockwise(scaled)
            .map(|[x, y]| [x.clamp(0.0, f64::from(width - 1)).trunc(), y.clamp(0.0, f64::from(height - 1)).trunc()]);
        if distance(quad[0], quad[1]) as i64 <= 3 || distance(quad[0], quad[3]) as i64 <= 3 {
            continue;
        }
        quads.push(quad);
    }
    quads
}

/// Reading order: by the top-left corner's y, lines within [`SAME_LINE`] pixels left to right.
fn sorted(mut quads: Vec<Quad>) -> Vec<Quad> {
    quads.sort_by(|a, b| a[0][1].total_cmp(&b[0][1]));
    let mut line = 0;
    let mut keyed: Vec<(usize, Quad)> = Vec::with_capacity(quads.len());
    for (i, q) in quads.iter().enumerate() {
        if i > 0 && q[0][1] - quads[i - 1][0][1] >= SAME_LINE {
            line += 1;
        }
        keyed.push((line, *q));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1[0][0].total_cmp(&b.1[0][0])));
    keyed.into_iter().map(|(_, q)| q).collect()
}

/// The line straightened, turned upright when it stands (height at least 1.5 times its width).
fn crop(bgr: &RgbImage, quad: &Quad) -> RgbImage {
    let width = distance(quad[0], quad[1]).max(distance(quad[2], quad[3])) as u32;
    let height = distance(quad[0], quad[3]).max(distance(quad[1], quad[2])) as u32;
    let straight = warp(bgr, quad, width.max(1), height.max(1));
    if f64::from(straight.height()) / f64::from(straight.width()) >= 1.5 {
        image::imageops::rotate270(&straight)
    } else {
        straight
    }
}

fn area(q: &Quad) -> f64 {
    distance(q[0], q[1]) * distance(q[0], q[3])
}

/// The share of the smaller box's bounding rectangle covered by the other's.
fn overlap(a: &Quad, b: &Quad) -> f64 {
    let bounds = |q: &Quad| {
        let xs = q.iter().map(|p| p[0]);
        let ys = q.iter().map(|p| p[1]);
        (
            xs.clone().fold(f64::MAX, f64::min),
            ys.clone().fold(f64::MAX, f64::min),
            xs.fold(f64::MIN, f64::max),
            ys.fold(f64::MIN, f64::max),
        )
    };
    let (a, b) = (bounds(a), bounds(b));
    let iw = (a.2.min(b.2) - a.0.max(b.0)).max(0.0);
    let ih = (a.3.min(b.3) - a.1.max(b.1)).max(0.0);
    let area = |r: (f64, f64, f64, f64)| ((r.2 - r.0) * (r.3 - r.1)).max(1e-9);
    iw * ih / area(a).min(area(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_order_is_lines_then_left_to_right() {
        let q = |x: f64, y: f64| [[x, y], [x + 10.0, y], [x + 10.0, y + 5.0], [x, y + 5.0]];
        let order = sorted(vec![q(50.0, 2.0), q(0.0, 40.0), q(0.0, 0.0), q(20.0, 8.0)]);
        assert_eq!(order, vec![q(0.0, 0.0), q(20.0, 8.0), q(50.0, 2.0), q(0.0, 40.0)]);
    }

    /// A first look's map (640 x 480, of a 1024 x 768 image) with one line `high` pixels high.
    fn look_with_line(high: usize) -> crate::Tensor {
        let (w, h) = (640, 480);
        let mut data = vec![0.05f32; w * h];
        for y in 200..200 + high {
            data[y * w + 100..y * w + 500].fill(0.9);
        }
        crate::Tensor { data, shape: vec![1, 1, h, w] }
    }

    #[test]
    fn the_detector_runs_smaller_only_when_every_line_is_large() {
        // 20 map pixels are 32 image pixels: 12 at the detector's input needs 384, so the least side.
        assert_eq!(detector_side(&look_with_line(20), 1024), SMALLEST_SIDE);
        // 10 map pixels are 16 image pixels: 12 needs 768, more than three quarters of 960.
        assert_eq!(detector_side(&look_with_line(10), 1024), DET_SIDE);
        // A large line beside a small one: the small one decides.
        let mut both = look_with_line(20);
        both.data[400 * 640 + 100..400 * 640 + 300].fill(0.9);
        assert_eq!(detector_side(&both, 1024), DET_SIDE);
        // Only faint text (over the look's peak, under the detector's threshold): the whole side.
        let faint = crate::Tensor { data: vec![0.25; 640 * 480], shape: vec![1, 1, 480, 640] };
        assert_eq!(detector_side(&faint, 1024), DET_SIDE);
        // A small image already read at its own size gains nothing worth a coarser map.
        assert_eq!(detector_side(&look_with_line(20), 600), DET_SIDE);
    }

    #[test]
    fn overlapping_tiles_boxes_are_one() {
        let a: Quad = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];
        let b: Quad = [[1.0, 1.0], [9.0, 1.0], [9.0, 9.0], [1.0, 9.0]];
        let c: Quad = [[20.0, 0.0], [30.0, 0.0], [30.0, 10.0], [20.0, 10.0]];
        assert!(overlap(&a, &b) > 0.99);
        assert_eq!(overlap(&a, &c), 0.0);
    }
}
