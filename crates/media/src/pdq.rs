//! PDQ perceptual hashes (Meta's ThreatExchange algorithm, through the `pdqhash` crate, which is
//! bit-exact with the reference) and the variants that make matching survive what PDQ alone
//! does not: uniform borders added around an image, and small crops.
//!
//! - [`query_hashes`]: what an image to moderate is looked up with: its hash, and the hash of the
//!   image without a uniform border when it has one;
//! - [`sample_hashes`]: what a library sample is filed under: the same, plus hashes of its
//!   slightly cropped versions (each side in turn, and all four), so that a crop of the sample
//!   lands near one of them.

use image::RgbImage;

/// PDQ works on at most 512 x 512 (the reference's own downsampling size).
const HASH_SIDE: u32 = 512;
/// Images smaller than this on a side are not hashed (the reference refuses them too).
const MIN_SIDE: u32 = 5;
/// How far two pixels' channels may differ and still be the same border colour.
const BORDER_TOLERANCE: u8 = 24;
/// A border is at most this fraction of a side.
const MAX_BORDER: f32 = 0.4;
/// The crops a sample is also filed under, as fractions removed from (left, top, right, bottom).
/// PDQ moves about 35 bits for a 3% crop of one side (measured on the skimage photos), so the
/// variants are 2.5% apart: a crop of up to 10% from one side, from two adjacent sides, or from
/// all four lands within about 1.25% of one of them.
fn sample_crops() -> Vec<[f32; 4]> {
    let steps = [0.025, 0.05, 0.075, 0.1];
    let mut crops = Vec::new();
    for s in steps {
        crops.extend([[s, 0.0, 0.0, 0.0], [0.0, s, 0.0, 0.0], [0.0, 0.0, s, 0.0], [0.0, 0.0, 0.0, s], [s, s, s, s]]);
    }
    for s in [0.05, 0.1] {
        crops.extend([[s, s, 0.0, 0.0], [0.0, s, s, 0.0], [0.0, 0.0, s, s], [s, 0.0, 0.0, s]]);
    }
    crops
}

/// A PDQ hash (256 bits, big-endian as the reference prints it) and its quality (0-100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pdq {
    pub bits: [u8; 32],
    pub quality: u8,
}

/// The PDQ hash of an image; `None` when it is too small to hash.
pub fn hash(image: &RgbImage) -> Option<Pdq> {
    let (w, h) = image.dimensions();
    if w < MIN_SIDE || h < MIN_SIDE {
        return None;
    }
    let small = if w > HASH_SIDE || h > HASH_SIDE {
        image::imageops::thumbnail(image, w.min(HASH_SIDE), h.min(HASH_SIDE))
    } else {
        image.clone()
    };
    let (sw, sh) = small.dimensions();
    let converted = image023::RgbImage::from_raw(sw, sh, small.into_raw())?;
    let (bits, quality) = pdqhash::generate_pdq_full_size(&image023::DynamicImage::ImageRgb8(converted));
    // The crate gives the reference's quality divided by 100.
    Some(Pdq { bits, quality: (quality * 100.0).round().clamp(0.0, 100.0) as u8 })
}

fn close(a: &image::Rgb<u8>, b: &image::Rgb<u8>) -> bool {
    a.0.iter().zip(b.0).all(|(x, y)| x.abs_diff(y) <= BORDER_TOLERANCE)
}

/// The image without a uniform border (a frame of one colour on any side), or `None` when it has
/// none worth removing.
pub fn trim_border(image: &RgbImage) -> Option<RgbImage> {
    let (w, h) = image.dimensions();
    let (max_x, max_y) = ((w as f32 * MAX_BORDER) as u32, (h as f32 * MAX_BORDER) as u32);
    let row_is = |y: u32, colour: &image::Rgb<u8>| (0..w).all(|x| close(image.get_pixel(x, y), colour));
    let column_is = |x: u32, colour: &image::Rgb<u8>| (0..h).all(|y| close(image.get_pixel(x, y), colour));
    let top_colour = image.get_pixel(w / 2, 0);
    let top = (0..max_y).take_while(|&y| row_is(y, top_colour)).count() as u32;
    let bottom_colour = image.get_pixel(w / 2, h - 1);
    let bottom = (0..max_y).take_while(|&i| row_is(h - 1 - i, bottom_colour)).count() as u32;
    let left_colour = image.get_pixel(0, h / 2);
    let left = (0..max_x).take_while(|&x| column_is(x, left_colour)).count() as u32;
    let right_colour = image.get_pixel(w - 1, h / 2);
    let right = (0..max_x).take_while(|&i| column_is(w - 1 - i, right_colour)).count() as u32;
    // A line or two of one colour is common in photos; a border is a few percent of the side.
    let worth = |n: u32, side: u32| n >= 2 && n * 100 >= side;
    if !(worth(top, h) || worth(bottom, h) || worth(left, w) || worth(right, w)) {
        return None;
    }
    let (cw, ch) = (w - left - right, h - top - bottom);
    (cw >= MIN_SIDE && ch >= MIN_SIDE).then(|| image::imageops::crop_imm(image, left, top, cw, ch).to_image())
}

fn crop(image: &RgbImage, [left, top, right, bottom]: [f32; 4]) -> RgbImage {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let (x, y) = ((w * left) as u32, (h * top) as u32);
    let (cw, ch) = ((w * (1.0 - left - right)) as u32, (h * (1.0 - top - bottom)) as u32);
    image::imageops::crop_imm(image, x, y, cw.max(1), ch.max(1)).to_image()
}

/// The hashes an image is looked up with (see the module documentation), those of at least
/// `min_quality` only.
pub fn query_hashes(image: &RgbImage, min_quality: u8) -> Vec<Pdq> {
    let trimmed = trim_border(image);
    let mut hashes: Vec<Pdq> = hash(image).into_iter().chain(trimmed.as_ref().and_then(hash)).collect();
    hashes.retain(|h| h.quality >= min_quality);
    dedup(&mut hashes);
    hashes
}

/// The hashes a library sample is filed under (see the module documentation).
pub fn sample_hashes(image: &RgbImage, min_quality: u8) -> Vec<Pdq> {
    let base = trim_border(image).unwrap_or_else(|| image.clone());
    let mut hashes: Vec<Pdq> = std::iter::once(hash(image))
        .chain(std::iter::once(hash(&base)))
        .chain(sample_crops().into_iter().map(|c| hash(&crop(&base, c))))
        .flatten()
        .filter(|h| h.quality >= min_quality)
        .collect();
    dedup(&mut hashes);
    hashes
}

fn dedup(hashes: &mut Vec<Pdq>) {
    let mut seen = std::collections::HashSet::new();
    hashes.retain(|h| seen.insert(h.bits));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            image::Rgb([
                (128.0 + 100.0 * (fx * 9.0).sin() * (fy * 4.0).cos()) as u8,
                (128.0 + 90.0 * (fx * 3.0 + fy * 7.0).sin()) as u8,
                (255.0 * fx * fy) as u8,
            ])
        })
    }

    fn distance(a: &Pdq, b: &Pdq) -> u32 {
        a.bits.iter().zip(b.bits).map(|(x, y)| (x ^ y).count_ones()).sum()
    }

    #[test]
    fn flat_and_tiny_images() {
        assert!(hash(&RgbImage::new(4, 100)).is_none());
        let flat = hash(&RgbImage::from_pixel(64, 64, image::Rgb([9, 9, 9]))).unwrap();
        assert!(flat.quality < 50, "a flat image has a low quality: {}", flat.quality);
    }

    #[test]
    fn borders_are_trimmed_and_photos_left_alone() {
        let inner = photo(300, 200);
        assert!(trim_border(&inner).is_none());
        let mut framed = RgbImage::from_pixel(360, 260, image::Rgb([255, 255, 255]));
        image::imageops::replace(&mut framed, &inner, 30, 30);
        let trimmed = trim_border(&framed).unwrap();
        assert_eq!(trimmed.dimensions(), (300, 200));
        let original = hash(&inner).unwrap();
        assert!(query_hashes(&framed, 0).iter().any(|h| distance(h, &original) == 0));
    }

    #[test]
    fn a_crop_lands_near_a_sample_variant() {
        let sample = photo(400, 300);
        let filed = sample_hashes(&sample, 0);
        let cropped = crop(&sample, [0.06, 0.0, 0.0, 0.0]);
        let query = hash(&cropped).unwrap();
        let best = filed.iter().map(|h| distance(h, &query)).min().unwrap();
        let whole = distance(&hash(&sample).unwrap(), &query);
        assert!(best <= 31, "best variant {best} bits away (whole image: {whole})");
    }
}
