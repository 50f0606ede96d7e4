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

/// The image without a uniform border (a frame of one colour on any side), or `None` when it has
/// none worth removing.
pub fn trim_border(image: &RgbImage) -> Option<RgbImage> {
    crate::views::content(image, MAX_BORDER, MIN_SIDE).map(|w| w.crop(image))
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
