//! Where in a frame the classifiers look. They see a whole image squeezed to about 224 x 224, so
//! whatever makes the content a small part of the image hides it: a wide uniform border, or a
//! long canvas. So each frame is looked at as:
//!
//! - its content: the frame without a uniform border ([`content`]);
//! - when that content is long (its longer side more than [`LONG_RATIO`] times its shorter),
//!   overlapping square-ish windows along its length instead ([`windows`]), every one examined;
//! - otherwise, beside the content, each part of it set apart by straight edges: the tiles of a
//!   collage, a photo pasted into another (`regions`); those found on weaker evidence only after
//!   a glance ([`View::screened`]).
//!
//! Long frames are also kept at a higher resolution than others ([`working_scale`]), so that a
//! long screenshot's text and windows are not shrunk away.

mod regions;

use image::RgbImage;

/// A rectangle of a frame, in its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Window {
    pub fn whole(image: &RgbImage) -> Window {
        Window { x: 0, y: 0, width: image.width(), height: image.height() }
    }

    pub fn crop(&self, image: &RgbImage) -> RgbImage {
        image::imageops::crop_imm(image, self.x, self.y, self.width, self.height).to_image()
    }
}

/// A window of a frame that the classifiers examine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub window: Window,
    /// A likely part only (three of its sides on straight edges, not four): the cheapest
    /// classifier glances at it first, and the others examine it only when that glance finds it
    /// suggestive. Such shapes are common in ordinary photos, and a glance costs a seventh of a
    /// full examination.
    pub screened: bool,
}

impl View {
    fn full(window: Window) -> View {
        View { window, screened: false }
    }
}

/// An image whose longer side is more than this many times its shorter is long: from here on the
/// classifiers' squeeze to a square loses a photo centred in it (measured: a photo centred in a
/// canvas twice its height went from Block 92 to Review 68).
pub const LONG_RATIO: u32 = 2;
/// A window of a long image is at most this much longer than wide (4:3, like a photo).
const WINDOW_LENGTH: f64 = 4.0 / 3.0;
/// Consecutive windows overlap by at least this share of the shorter side, so that what one
/// window's edge cuts, the next holds whole.
const WINDOW_OVERLAP: f64 = 0.25;
/// At most this many windows (or parts) are examined per image, all frames together: each costs
/// a run of every classifier. Up to about 32:1 the windows are 4:3; beyond, they grow longer.
pub const MAX_WINDOWS: usize = 24;
/// A frame's longer side, when it is not long, is at most this many pixels in the working copy.
pub const WORKING_SIDE: u32 = 2048;
/// How far two pixels' channels may differ and still be the same border colour.
const BORDER_TOLERANCE: u8 = 24;

/// How much a frame of `width` x `height` is reduced for the working copy: its longer side to
/// [`WORKING_SIDE`]; a long frame to the same area (so its shorter side keeps its detail).
pub fn working_scale(width: u32, height: u32) -> f64 {
    let (long, short) = (f64::from(width.max(height)), f64::from(width.min(height).max(1)));
    let side = f64::from(WORKING_SIDE);
    let scale = if long > f64::from(LONG_RATIO) * short { side / (long * short).sqrt() } else { side / long };
    scale.min(1.0)
}

fn close(a: &image::Rgb<u8>, b: &image::Rgb<u8>) -> bool {
    a.0.iter().zip(b.0).all(|(x, y)| x.abs_diff(y) <= BORDER_TOLERANCE)
}

/// The frame without a uniform border (rows or columns of one colour from an edge, each at most
/// `max_border` of the side and at least 1% of it), or `None` when it has none worth removing.
/// At least `min_side` pixels are left each way (a uniform frame keeps its last `min_side`).
pub fn content(image: &RgbImage, max_border: f32, min_side: u32) -> Option<Window> {
    let (w, h) = image.dimensions();
    if w == 0 || h == 0 {
        return None;
    }
    if w < min_side || h < min_side {
        return None;
    }
    let (max_x, max_y) = ((w as f32 * max_border) as u32, (h as f32 * max_border) as u32);
    let row_is = |y: u32, colour: &image::Rgb<u8>| (0..w).all(|x| close(image.get_pixel(x, y), colour));
    let column_is = |x: u32, colour: &image::Rgb<u8>| (0..h).all(|y| close(image.get_pixel(x, y), colour));
    // Each side stops where the opposite side's border and `min_side` begin.
    let top_colour = image.get_pixel(w / 2, 0);
    let top = (0..max_y.min(h - min_side)).take_while(|&y| row_is(y, top_colour)).count() as u32;
    let bottom_colour = image.get_pixel(w / 2, h - 1);
    let bottom = (0..max_y.min(h - top - min_side)).take_while(|&i| row_is(h - 1 - i, bottom_colour)).count() as u32;
    let left_colour = image.get_pixel(0, h / 2);
    let left = (0..max_x.min(w - min_side)).take_while(|&x| column_is(x, left_colour)).count() as u32;
    let right_colour = image.get_pixel(w - 1, h / 2);
    let right = (0..max_x.min(w - left - min_side)).take_while(|&i| column_is(w - 1 - i, right_colour)).count() as u32;
    // A line or two of one colour is common in photos; a border is a few percent of the side.
    let worth = |n: u32, side: u32| n >= 2 && n * 100 >= side;
    if !(worth(top, h) || worth(bottom, h) || worth(left, w) || worth(right, w)) {
        return None;
    }
    Some(Window { x: left, y: top, width: w - left - right, height: h - top - bottom })
}

/// Overlapping windows along a long `area` (see [`LONG_RATIO`]), each about 4:3, at most
/// `max_windows` (longer windows then); `[area]` when it is not long.
pub fn windows(area: Window, max_windows: usize) -> Vec<Window> {
    let (long, short) = (area.width.max(area.height), area.width.min(area.height).max(1));
    if long <= LONG_RATIO * short {
        return vec![area];
    }
    let (long, short) = (f64::from(long), f64::from(short));
    let overlap = short * WINDOW_OVERLAP;
    let mut length = short * WINDOW_LENGTH;
    let mut count = ((long - overlap) / (length - overlap)).ceil().max(2.0) as usize;
    if count > max_windows.max(2) {
        count = max_windows.max(2);
        length = (long + (count - 1) as f64 * overlap) / count as f64;
    }
    // Spread evenly: the first at the start, the last at the end.
    let step = (long - length) / (count - 1) as f64;
    let length_px = length.round() as u32;
    (0..count)
        .map(|i| {
            let start = (i as f64 * step).round() as u32;
            if area.width > area.height {
                Window { x: area.x + start, y: area.y, width: length_px, height: area.height }
            } else {
                Window { x: area.x, y: area.y + start, width: area.width, height: length_px }
            }
        })
        .collect()
}

/// What the classifiers examine of a frame (see the module documentation): its content's
/// windows, or its content and the parts of it; at most `max_windows` windows or parts examined
/// in full, and the likely parts besides.
pub fn views(image: &RgbImage, max_windows: usize) -> Vec<View> {
    // Borders of any width, as long as content of at least 16 pixels either way is left (less
    // is nothing a model can read): a photo in a corner of a canvas ten times its size is found.
    let area = content(image, 1.0, 16).unwrap_or_else(|| Window::whole(image));
    let mut views: Vec<View> = windows(area, max_windows).into_iter().map(View::full).collect();
    if views.len() == 1 {
        let parts =
            if area == Window::whole(image) { regions::regions(image) } else { regions::regions(&area.crop(image)) };
        let in_frame = |p: Window| Window { x: area.x + p.x, y: area.y + p.y, ..p };
        // Parts count against the same bound as windows: each costs a run of every model.
        let (likely, sure): (Vec<_>, Vec<_>) = parts.into_iter().partition(|p| p.1);
        views.extend(sure.into_iter().take(max_windows).map(|(p, _)| View::full(in_frame(p))));
        views.extend(likely.into_iter().map(|(p, _)| View { window: in_frame(p), screened: true }));
    }
    views
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(w: u32, h: u32) -> RgbImage {
        regions::tests::photo(w, h, 1)
    }

    #[test]
    fn a_photo_is_looked_at_whole() {
        assert_eq!(views(&photo(400, 300), 24), [View::full(Window { x: 0, y: 0, width: 400, height: 300 })]);
        // Twice as long as wide is not yet long.
        assert_eq!(views(&photo(200, 400), 24).len(), 1);
    }

    #[test]
    fn a_border_is_trimmed_and_a_centred_photo_found_in_a_tall_canvas() {
        let mut canvas = RgbImage::from_pixel(300, 2000, image::Rgb([255, 255, 255]));
        image::imageops::replace(&mut canvas, &photo(200, 150), 50, 925);
        assert_eq!(views(&canvas, 24), [View::full(Window { x: 50, y: 925, width: 200, height: 150 })]);
        // PDQ's variant trims at most 40% a side.
        assert!(content(&canvas, 0.4, 16).is_some_and(|w| w.height > 150));
        // In a corner, with borders of 90% on two sides.
        let mut corner = RgbImage::from_pixel(1000, 1000, image::Rgb([128, 128, 128]));
        image::imageops::replace(&mut corner, &photo(100, 80), 900, 0);
        assert_eq!(views(&corner, 24), [View::full(Window { x: 900, y: 0, width: 100, height: 80 })]);
        // A frame of one colour: nothing to trim to.
        let flat = RgbImage::from_pixel(300, 200, image::Rgb([9, 9, 9]));
        assert_eq!(views(&flat, 24).len(), 1);
        assert!(content(&flat, 1.0, 16).is_some_and(|w| w.width >= 16 && w.height >= 16));
    }

    #[test]
    fn a_long_image_is_covered_by_overlapping_windows() {
        let area = Window { x: 0, y: 0, width: 100, height: 1200 };
        let windows = windows(area, 24);
        // 4:3 windows (133 long) overlapping by at least 25: (1200 - 25) / (133 - 25) -> 11.
        assert_eq!(windows.len(), 11);
        assert_eq!(windows[0].y, 0);
        assert_eq!(windows.last().map(|w| w.y + w.height), Some(1200));
        for pair in windows.windows(2) {
            assert!(pair[0].y + pair[0].height >= pair[1].y + 25, "{pair:?} overlap by a quarter");
            assert_eq!((pair[1].width, pair[1].height), (100, 133));
        }
        // A wide one the same way, across.
        let wide = super::windows(Window { x: 10, y: 5, width: 1200, height: 100 }, 24);
        assert_eq!((wide.len(), wide[0].x, wide[0].y, wide[0].height), (11, 10, 5, 100));
    }

    #[test]
    fn windows_are_bounded_by_growing_longer() {
        // 89:1: 4:3 windows would be 82; at most 24, each then about 4 times longer than wide.
        let windows = windows(Window { x: 0, y: 0, width: 8900, height: 100 }, 24);
        assert_eq!(windows.len(), 24);
        assert_eq!(windows.last().map(|w| w.x + w.width), Some(8900));
        assert!(windows.windows(2).all(|p| p[0].x + p[0].width >= p[1].x + 25));
    }

    #[test]
    fn the_working_copy_keeps_a_long_frames_short_side() {
        assert_eq!(working_scale(1000, 800), 1.0);
        assert!((working_scale(4096, 3072) - 0.5).abs() < 1e-9);
        // 9999 x 120 is 1.2 megapixels: kept whole (its long side was cut to 2048 before).
        assert_eq!(working_scale(9999, 120), 1.0);
        // 9999 x 3000: the area of 2048 x 2048.
        let s = working_scale(9999, 3000);
        assert!(((9999.0 * s) * (3000.0 * s) - 2048.0 * 2048.0).abs() < 1.0);
    }
}
