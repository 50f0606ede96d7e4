//! Image quality from the pixels (tiia's `AssessQuality`): the shape flags by the cloud's own
//! definitions, grey and flat images, and a sharpness score.
//!
//! `ClarityScore` is the variance of the Laplacian of the grey image at 512 pixels on its
//! longer side (what blur, defocus and heavy compression take away), on a log scale: 100 ln(1 +
//! v) / ln(1 + 1000), capped at 100. The tests check that detailed images score over 50 and the
//! same blurred at least 20 lower. It is a measure of detail, not the cloud's learnt model: a photo of fog scores low
//! however well it is taken. No aesthetic score is computed: no model for one can be had here.

use image::RgbImage;

/// What the pixels say of an image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// The longer side at least 3 times the shorter.
    pub long_image: bool,
    /// Every pixel grey (its three channels within 8 of each other).
    pub black_and_white: bool,
    /// The longer side under 179 pixels.
    pub small_image: bool,
    /// The shorter side over 1000 pixels.
    pub big_image: bool,
    /// One colour, or text on one colour: 85% of the pixels share the main colour (in steps of
    /// 16 per channel), or the grey levels barely vary.
    pub pure_image: bool,
    /// 0-100, see the module documentation.
    pub clarity: u8,
}

/// The cloud's bounds (tiia's documentation of `AssessQuality`).
const LONG_RATIO: f64 = 3.0;
const SMALL_SIDE: u64 = 179;
const BIG_SIDE: u64 = 1000;
const GREY_SPREAD: u8 = 8;
const CLARITY_SIDE: u32 = 512;

/// Assesses `image` (a decoded frame, possibly reduced) of an original `width` x `height`.
pub fn assess(image: &RgbImage, width: u64, height: u64) -> Quality {
    let (long, short) = (width.max(height), width.min(height).max(1));
    let small_image = long < SMALL_SIDE;
    let pixels = image.as_raw().chunks_exact(3);
    let count = (pixels.len() as u64).max(1);
    let grey =
        pixels.clone().filter(|p| p.iter().max().unwrap_or(&0) - p.iter().min().unwrap_or(&0) <= GREY_SPREAD).count();
    let mut colours = std::collections::HashMap::<[u8; 3], u64>::new();
    for p in pixels {
        *colours.entry([p[0] >> 4, p[1] >> 4, p[2] >> 4]).or_default() += 1;
    }
    let main = colours.values().copied().max().unwrap_or(0);
    let (clarity, flat) = clarity(image);
    let quality = Quality {
        long_image: long as f64 >= LONG_RATIO * short as f64,
        black_and_white: grey as u64 == count,
        small_image,
        big_image: short > BIG_SIDE,
        pure_image: main * 100 >= count * 85 || flat,
        clarity,
    };
    // The cloud answers the other fields 0 or false for a small image.
    if small_image {
        return Quality {
            small_image: true,
            long_image: false,
            black_and_white: false,
            big_image: false,
            pure_image: false,
            clarity: 0,
        };
    }
    quality
}

/// The clarity score, and whether the grey image is flat (its levels' deviation under 2).
fn clarity(image: &RgbImage) -> (u8, bool) {
    let (w, h) = image.dimensions();
    let scale = f64::from(CLARITY_SIDE) / f64::from(w.max(h).max(1));
    let grey = image::DynamicImage::ImageRgb8(image.clone()).to_luma8();
    let grey = if scale < 1.0 {
        let (nw, nh) = (((f64::from(w) * scale).round() as u32).max(3), ((f64::from(h) * scale).round() as u32).max(3));
        image::imageops::thumbnail(&grey, nw, nh)
    } else {
        grey
    };
    let (w, h) = grey.dimensions();
    if w < 3 || h < 3 {
        return (0, true);
    }
    let at = |x: u32, y: u32| f64::from(grey.get_pixel(x, y).0[0]);
    let (mut sum, mut squares, mut n) = (0.0, 0.0, 0.0);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let l = at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4.0 * at(x, y);
            sum += l;
            squares += l * l;
            n += 1.0;
        }
    }
    let variance = squares / n - (sum / n) * (sum / n);
    let levels: Vec<f64> = grey.pixels().map(|p| f64::from(p.0[0])).collect();
    let mean = levels.iter().sum::<f64>() / levels.len() as f64;
    let deviation = (levels.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / levels.len() as f64).sqrt();
    let score = (100.0 * (1.0 + variance).ln() / 1001f64.ln()).clamp(0.0, 100.0);
    (score.round() as u8, deviation < 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(width: u32, height: u32) -> RgbImage {
        let mut state = 12345u32;
        RgbImage::from_fn(width, height, |_, _| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let v = (state >> 16) as u8;
            image::Rgb([v, v.wrapping_mul(3), v.wrapping_add(90)])
        })
    }

    #[test]
    fn shape_flags_follow_the_clouds_bounds() {
        let q = |w: u64, h: u64| assess(&noise(200, 200), w, h);
        assert!(!q(179, 100).small_image && q(178, 100).small_image, "small: the longer side under 179");
        assert!(q(180, 60).long_image && q(60, 180).long_image, "3:1 is long");
        assert!(!q(180, 61).long_image);
        assert!(!q(178, 50).long_image, "a small image answers nothing else");
        assert!(q(1001, 1001).big_image && !q(1000, 2000).big_image);
    }

    #[test]
    fn grey_flat_and_sharp_images_are_told_apart() {
        let grey = RgbImage::from_fn(300, 200, |x, y| {
            let v = ((x * 7 + y * 3) % 256) as u8;
            image::Rgb([v, v.saturating_add(3), v])
        });
        assert!(assess(&grey, 300, 200).black_and_white);
        let colour = noise(300, 200);
        let q = assess(&colour, 300, 200);
        assert!(!q.black_and_white && !q.pure_image && q.clarity > 90, "{q:?}");
        let flat = RgbImage::from_pixel(300, 200, image::Rgb([30, 120, 200]));
        let q = assess(&flat, 300, 200);
        assert!(q.pure_image && q.clarity == 0, "{q:?}");
        let blurred = image::imageops::blur(&colour, 4.0);
        assert!(assess(&blurred, 300, 200).clarity + 30 < assess(&colour, 300, 200).clarity);
    }
}
