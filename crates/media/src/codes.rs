//! QR codes in an image (`rxing`, Apache-2.0): what they say and where they are.
//! Ads hide contact details and links in QR codes; the decoded value is reported as evidence.

use image::RgbImage;

/// One code found: its format (`qrcode`), its text, and the corner or end points
/// the decoder located, in the image's pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    pub format: String,
    pub value: String,
    pub points: Vec<[f32; 2]>,
}

/// Every code rxing finds in `image` (none for an image without one).
pub fn find_codes(image: &RgbImage) -> Vec<Code> {
    let (w, h) = image.dimensions();
    // ITU-R BT.601 luma, as image::imageops::grayscale computes it.
    let luma: Vec<u8> = image
        .pixels()
        .map(|p| ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114 + 500) / 1000) as u8)
        .collect();
    // QR codes only: the one-dimensional readers find "barcodes" in lines of printed text.
    let mut hints = rxing::DecodeHints {
        PossibleFormats: Some(std::collections::HashSet::from([rxing::BarcodeFormat::QR_CODE])),
        ..Default::default()
    };
    // A decoder panic on a hostile image is contained: no code found.
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        rxing::helpers::detect_multiple_in_luma_with_hints(luma, w, h, &mut hints)
    }));
    let Ok(Ok(results)) = found else { return Vec::new() };
    let mut codes: Vec<Code> = results
        .iter()
        .map(|r| Code {
            format: r.getBarcodeFormat().to_string(),
            value: r.getText().to_string(),
            points: r.getPoints().iter().map(|p| [p.x, p.y]).collect(),
        })
        .collect();
    codes.dedup_by(|a, b| a.value == b.value && a.format == b.format);
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_image_has_no_code() {
        let image = RgbImage::from_fn(200, 100, |x, y| image::Rgb([x as u8, y as u8, 90]));
        assert!(find_codes(&image).is_empty());
    }
}
