//! Smart cropping (tiia's `CropImage`): the window of a requested width:height ratio that keeps
//! the most of what matters in the image.
//!
//! The window is the largest of the ratio that fits the image, slid along the free axis to the
//! place holding the most *interest*: detail (the gradient of the grey image), colour (its
//! saturation) and, above all, faces (each face's box counts twice as much as the whole
//! image's detail, so a crop never leaves out a face it can keep). Computed at 256 pixels on the longer side,
//! with a summed-area table, then scaled back to the original's pixels.

use image::RgbImage;

/// A crop, in pixels of the original image, and the cloud's `CropResult`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// 0: normal; 1: the original is more than 1.8 times as tall as wide; 2: more than 1.8
    /// times as wide as tall; 5: the image is one colour (nothing to keep).
    pub result: u8,
}

const WORK_SIDE: u32 = 256;
const LONG: f64 = 1.8;

/// The best `ratio_width`:`ratio_height` crop of `image` (a decoded frame) for an original of
/// `width` x `height`; `faces` are boxes (left, top, width, height) in the original's pixels.
pub fn best_crop(
    image: &RgbImage,
    width: u32,
    height: u32,
    ratio_width: u32,
    ratio_height: u32,
    faces: &[[f32; 4]],
) -> Crop {
    // The largest window of the ratio inside the original.
    let ratio = f64::from(ratio_width) / f64::from(ratio_height.max(1));
    let (crop_w, crop_h) = if f64::from(width) / f64::from(height.max(1)) > ratio {
        (((f64::from(height) * ratio).round() as u32).clamp(1, width), height)
    } else {
        (width, ((f64::from(width) / ratio).round() as u32).clamp(1, height))
    };
    let result = if f64::from(height) > LONG * f64::from(width) {
        1
    } else if f64::from(width) > LONG * f64::from(height) {
        2
    } else {
        0
    };
    // Interest on a small copy.
    let scale = f64::from(WORK_SIDE) / f64::from(width.max(height).max(1));
    let (sw, sh) =
        (((f64::from(width) * scale).round() as u32).max(2), ((f64::from(height) * scale).round() as u32).max(2));
    let small = image::imageops::thumbnail(image, sw, sh);
    let interest = interest(&small, faces, scale);
    let total: f64 = interest.iter().sum();
    if total <= f64::EPSILON {
        // One colour: nothing to keep; the centred window.
        return Crop { x: (width - crop_w) / 2, y: (height - crop_h) / 2, width: crop_w, height: crop_h, result: 5 };
    }
    // Slide the window (in the small copy's pixels) along the free axis.
    let (win_w, win_h) = (
        ((f64::from(crop_w) * scale).round() as usize).clamp(1, sw as usize),
        ((f64::from(crop_h) * scale).round() as usize).clamp(1, sh as usize),
    );
    let (sw, sh) = (sw as usize, sh as usize);
    let columns: Vec<f64> = (0..sw).map(|x| (0..sh).map(|y| interest[y * sw + x]).sum()).collect();
    let rows: Vec<f64> = (0..sh).map(|y| interest[y * sw..(y + 1) * sw].iter().sum()).collect();
    let best_start = |sums: &[f64], window: usize| -> usize {
        let mut prefix = vec![0.0; sums.len() + 1];
        for (i, v) in sums.iter().enumerate() {
            prefix[i + 1] = prefix[i] + v;
        }
        // The best start; among equals, the one nearest the centre.
        let centre = (sums.len() - window) as f64 / 2.0;
        (0..=sums.len() - window)
            .max_by(|&a, &b| {
                let (ia, ib) = (prefix[a + window] - prefix[a], prefix[b + window] - prefix[b]);
                ia.total_cmp(&ib).then_with(|| (b as f64 - centre).abs().total_cmp(&(a as f64 - centre).abs()))
            })
            .unwrap_or(0)
    };
    let back = |v: usize| (v as f64 / scale).round() as u32;
    let x = if win_w < sw { back(best_start(&columns, win_w)).min(width - crop_w) } else { 0 };
    let y = if win_h < sh { back(best_start(&rows, win_h)).min(height - crop_h) } else { 0 };
    Crop { x, y, width: crop_w, height: crop_h, result }
}

/// Each small pixel's interest: gradient magnitude plus saturation, and the faces on top.
fn interest(small: &RgbImage, faces: &[[f32; 4]], scale: f64) -> Vec<f64> {
    let (w, h) = (small.width() as usize, small.height() as usize);
    let grey: Vec<f64> =
        small.pixels().map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])).collect();
    let mut interest = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            let at = |x: usize, y: usize| grey[y.min(h - 1) * w + x.min(w - 1)];
            let gx = at(x + 1, y) - at(x.saturating_sub(1), y);
            let gy = at(x, y + 1) - at(x, y.saturating_sub(1));
            let p = small.get_pixel(x as u32, y as u32);
            let (max, min) = (p.0.iter().max().copied().unwrap_or(0), p.0.iter().min().copied().unwrap_or(0));
            let saturation = f64::from(max - min) / 255.0;
            interest[y * w + x] = (gx * gx + gy * gy).sqrt() / 255.0 + 0.2 * saturation;
        }
    }
    let detail: f64 = interest.iter().sum();
    for face in faces {
        let [fx, fy, fw, fh] = face.map(|v| f64::from(v) * scale);
        let (x0, y0) = (fx.max(0.0) as usize, fy.max(0.0) as usize);
        let (x1, y1) = (((fx + fw).ceil().max(0.0) as usize).min(w), ((fy + fh).ceil().max(0.0) as usize).min(h));
        let area = ((x1.saturating_sub(x0)) * (y1.saturating_sub(y0))).max(1) as f64;
        for y in y0..y1 {
            for x in x0..x1 {
                interest[y * w + x] += 2.0 * detail.max(1.0) / area;
            }
        }
    }
    interest
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey canvas with one detailed patch at (px, py), 40 x 40.
    fn patch(width: u32, height: u32, px: u32, py: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            if (px..px + 40).contains(&x) && (py..py + 40).contains(&y) {
                let v = ((x * 53) ^ (y * 29)) as u8;
                image::Rgb([v, 255 - v, v / 2])
            } else {
                image::Rgb([128, 128, 128])
            }
        })
    }

    #[test]
    fn the_crop_has_the_ratio_and_keeps_the_detail() {
        let image = patch(340, 200, 280, 80);
        let crop = best_crop(&image, 340, 200, 1, 1, &[]);
        assert_eq!((crop.width, crop.height, crop.y, crop.result), (200, 200, 0, 0));
        assert!(crop.x <= 280 && crop.x + 200 >= 320, "{crop:?}");
        assert_eq!(best_crop(&image, 400, 200, 1, 1, &[]).result, 2, "more than 1.8 times as wide");
        let tall = best_crop(&patch(200, 400, 80, 20), 200, 400, 2, 1, &[]);
        assert_eq!((tall.width, tall.height, tall.x, tall.result), (200, 100, 0, 1));
        assert!(tall.y <= 20 && tall.y + 100 >= 60, "{tall:?}");
    }

    #[test]
    fn a_face_outweighs_detail_and_a_flat_image_is_centred() {
        // Detail on the right, a face (flat, but a face) on the left.
        let image = patch(400, 200, 330, 80);
        let crop = best_crop(&image, 400, 200, 1, 1, &[[20.0, 60.0, 60.0, 60.0]]);
        assert!(crop.x <= 20, "{crop:?}");
        let flat = RgbImage::from_pixel(400, 200, image::Rgb([9, 9, 9]));
        assert_eq!(best_crop(&flat, 300, 200, 1, 1, &[]), Crop { x: 50, y: 0, width: 200, height: 200, result: 5 });
    }
}
