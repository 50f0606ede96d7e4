//! QR codes and product barcodes in an image (`rxing`, Apache-2.0): what they say and where
//! they are.
//! Ads hide contact details and links in QR codes; the decoded value is reported as evidence.

use image::RgbImage;

/// One code found: its format (`qrcode`, `ean 13`...), its text, and the corner or end points
/// the decoder located, in the image's pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    pub format: String,
    pub value: String,
    pub points: Vec<[f32; 2]>,
}

/// The formats of one-dimensional product barcodes looked for.
const BARCODES: [rxing::BarcodeFormat; 6] = [
    rxing::BarcodeFormat::EAN_13,
    rxing::BarcodeFormat::EAN_8,
    rxing::BarcodeFormat::UPC_A,
    rxing::BarcodeFormat::UPC_E,
    rxing::BarcodeFormat::CODE_128,
    rxing::BarcodeFormat::CODE_39,
];

/// Every code found in `image` (none for an image without one): QR codes searched hard (small,
/// turned, blurred), one-dimensional barcodes only where they are plain, since a hard search
/// finds "barcodes" in lines of printed text.
pub fn find_codes(image: &RgbImage) -> Vec<Code> {
    let (w, h) = image.dimensions();
    // ITU-R BT.601 luma, as image::imageops::grayscale computes it.
    let luma: Vec<u8> = image
        .pixels()
        .map(|p| ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114 + 500) / 1000) as u8)
        .collect();
    let search = |formats: &[rxing::BarcodeFormat], try_harder: bool| -> Vec<Code> {
        let mut hints = rxing::DecodeHints {
            PossibleFormats: Some(formats.iter().copied().collect()),
            TryHarder: Some(try_harder),
            ..Default::default()
        };
        let luma = luma.clone();
        // A decoder panic on a hostile image is contained: no code found.
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            rxing::helpers::detect_multiple_in_luma_with_hints(luma, w, h, &mut hints)
        }));
        let Ok(Ok(results)) = found else { return Vec::new() };
        results
            .iter()
            .map(|r| Code {
                format: r.getBarcodeFormat().to_string(),
                value: r.getText().to_string(),
                points: r.getPoints().iter().map(|p| [p.x, p.y]).collect(),
            })
            .collect()
    };
    let mut codes = search(&[rxing::BarcodeFormat::QR_CODE], true);
    codes.extend(search(&BARCODES, false));
    codes.dedup_by(|a, b| a.value == b.value && a.format == b.format);
    codes
}

impl Code {
    pub fn is_qr(&self) -> bool {
        self.format == "qrcode"
    }
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
