//! OpenCV's `resize(..., INTER_LINEAR)` for 8-bit RGB images, bit for bit: pixel-centre mapping,
//! 11-bit fixed-point weights, the vertical pass rounded as OpenCV's vector code does; an exact
//! 2:1 reduction in both directions is a 2 x 2 average (OpenCV switches to INTER_AREA). NudeNet's
//! `blobFromImage` and PP-OCR's `cv2.resize` calls are reproduced with it.

use image::RgbImage;

const COEF_BITS: u32 = 11;
const COEF_SCALE: i32 = 1 << COEF_BITS;

/// For each output index: the two source indices and their fixed-point weights.
fn taps(in_size: u32, out_size: u32) -> Vec<(usize, usize, i32, i32)> {
    // OpenCV stores the inverse scale and inverts it back.
    let scale = 1.0 / (f64::from(out_size) / f64::from(in_size));
    (0..out_size)
        .map(|d| {
            let f = ((f64::from(d) + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f32;
            if s < 0 {
                s = 0;
                frac = 0.0;
            }
            if s >= i64::from(in_size) - 1 {
                s = i64::from(in_size) - 1;
                frac = 0.0;
            }
            let w0 = ((1.0 - frac) * COEF_SCALE as f32).round_ties_even() as i32;
            let s = s as usize;
            (s, (s + 1).min(in_size as usize - 1), w0, COEF_SCALE - w0)
        })
        .collect()
}

pub fn resize_linear(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (in_w, in_h) = image.dimensions();
    let source = image.as_raw();
    if in_w == 2 * width && in_h == 2 * height {
        return RgbImage::from_fn(width, height, |x, y| {
            let at =
                |dx: u32, dy: u32, c: usize| u32::from(source[(((2 * y + dy) * in_w + 2 * x + dx) * 3) as usize + c]);
            image::Rgb(std::array::from_fn(|c| {
                ((at(0, 0, c) + at(1, 0, c) + at(0, 1, c) + at(1, 1, c) + 2) >> 2) as u8
            }))
        });
    }
    let columns = taps(in_w, width);
    let rows = taps(in_h, height);
    let horizontal = |y: usize| -> Vec<i32> {
        let row = &source[y * in_w as usize * 3..(y + 1) * in_w as usize * 3];
        columns
            .iter()
            .flat_map(|&(s0, s1, w0, w1)| {
                (0..3).map(move |c| i32::from(row[s0 * 3 + c]) * w0 + i32::from(row[s1 * 3 + c]) * w1)
            })
            .collect()
    };
    let mut out = Vec::with_capacity((width * height * 3) as usize);
    for &(r0, r1, b0, b1) in &rows {
        let (top, bottom) = (horizontal(r0), horizontal(r1));
        out.extend(
            top.iter()
                .zip(&bottom)
                .map(|(&t, &b)| (((((t >> 4) * b0) >> 16) + (((b >> 4) * b1) >> 16) + 2) >> 2).clamp(0, 255) as u8),
        );
    }
    RgbImage::from_raw(width, height, out).expect("width x height x 3 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_image_stays_flat() {
        for (from_w, from_h, to_w, to_h) in [(100, 100, 320, 320), (640, 640, 320, 320), (1000, 700, 320, 48)] {
            let image = RgbImage::from_pixel(from_w, from_h, image::Rgb([0, 77, 255]));
            assert!(resize_linear(&image, to_w, to_h).pixels().all(|p| p.0 == [0, 77, 255]), "{from_w}x{from_h}");
        }
    }
}
