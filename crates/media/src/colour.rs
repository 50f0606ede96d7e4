//! A vehicle's colour from its pixels (tiia's `RecognizeCar`): the middle of its box (half its
//! width and height, mostly body, less road, sky and background), each pixel named by its hue,
//! saturation and value. Tyres, windows, chrome and shadows are black, grey or white whatever
//! the paint, so when chromatic pixels cover at least a quarter of the middle, the commonest
//! chromatic colour wins (a red motorcycle's middle: 23% red, 19% brown where the paint is in
//! shade, the rest its black and chrome engine); otherwise the commonest of black, grey and white. A rule of thumb, not a learnt model: silver and grey,
//! or a dark blue and black, are not told apart reliably.

use image::RgbImage;

/// The colours told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    Black,
    White,
    Grey,
    Red,
    Orange,
    Yellow,
    Green,
    Cyan,
    Blue,
    Purple,
    Brown,
}

impl Colour {
    pub const ALL: [Colour; 11] = [
        Colour::Black,
        Colour::White,
        Colour::Grey,
        Colour::Red,
        Colour::Orange,
        Colour::Yellow,
        Colour::Green,
        Colour::Cyan,
        Colour::Blue,
        Colour::Purple,
        Colour::Brown,
    ];

    /// The name the cloud answers (`"Color": "白"`).
    pub fn zh(self) -> &'static str {
        match self {
            Colour::Black => "黑",
            Colour::White => "白",
            Colour::Grey => "灰",
            Colour::Red => "红",
            Colour::Orange => "橙",
            Colour::Yellow => "黄",
            Colour::Green => "绿",
            Colour::Cyan => "青",
            Colour::Blue => "蓝",
            Colour::Purple => "紫",
            Colour::Brown => "棕",
        }
    }

    fn achromatic(self) -> bool {
        matches!(self, Colour::Black | Colour::White | Colour::Grey)
    }
}

/// The colour of the middle of a box and the share of the middle's pixels that have it (0-1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found {
    pub colour: Colour,
    pub share: f32,
}

/// Chromatic pixels need this share of the middle for one of their colours to win over black,
/// grey and white.
const CHROMATIC_SHARE: f32 = 0.25;

/// The colour of the box (left, top, width, height, in `image`'s pixels); `None` for a box with
/// no pixel inside the image.
pub fn of_box(image: &RgbImage, bbox: [u32; 4]) -> Option<Found> {
    let [x, y, w, h] = bbox;
    let (x0, y0) = (x + w / 4, y + h / 4);
    let (x1, y1) = ((x0 + w.div_ceil(2)).min(image.width()), (y0 + h.div_ceil(2)).min(image.height()));
    let mut counts = [0u32; Colour::ALL.len()];
    for py in y0..y1 {
        for px in x0..x1 {
            counts[name(image.get_pixel(px, py).0) as usize] += 1;
        }
    }
    let total: u32 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let share = |c: Colour| counts[c as usize] as f32 / total as f32;
    let chromatic: f32 = Colour::ALL.into_iter().filter(|c| !c.achromatic()).map(share).sum();
    let chromatic_wins = chromatic >= CHROMATIC_SHARE;
    let colour = Colour::ALL
        .into_iter()
        .filter(|c| c.achromatic() != chromatic_wins)
        .max_by_key(|&c| counts[c as usize])
        .expect("colours");
    Some(Found { colour, share: share(colour) })
}

/// One pixel's colour name, from its hue (degrees), saturation and value (0-1).
fn name([r, g, b]: [u8; 3]) -> Colour {
    let (r, g, b) = (f32::from(r) / 255.0, f32::from(g) / 255.0, f32::from(b) / 255.0);
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let (value, chroma) = (max, max - min);
    let saturation = if max > 0.0 { chroma / max } else { 0.0 };
    if value < 0.2 {
        return Colour::Black;
    }
    if saturation < 0.2 {
        return match value {
            v if v > 0.8 => Colour::White,
            v if v < 0.3 => Colour::Black,
            _ => Colour::Grey,
        };
    }
    let hue = if max == r {
        60.0 * ((g - b) / chroma).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / chroma + 2.0)
    } else {
        60.0 * ((r - g) / chroma + 4.0)
    };
    match hue {
        h if !(15.0..330.0).contains(&h) => Colour::Red,
        h if h < 45.0 && value < 0.6 => Colour::Brown,
        h if h < 45.0 => Colour::Orange,
        h if h < 70.0 => Colour::Yellow,
        h if h < 165.0 => Colour::Green,
        h if h < 195.0 => Colour::Cyan,
        h if h < 260.0 => Colour::Blue,
        _ => Colour::Purple,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn pixels_are_named_by_hue_saturation_and_value() {
        let cases = [
            ([10, 10, 10], Colour::Black),
            ([250, 250, 250], Colour::White),
            ([128, 128, 130], Colour::Grey),
            ([200, 20, 30], Colour::Red),
            ([240, 140, 20], Colour::Orange),
            ([120, 70, 30], Colour::Brown),
            ([230, 220, 40], Colour::Yellow),
            ([30, 160, 40], Colour::Green),
            ([30, 180, 190], Colour::Cyan),
            ([20, 40, 200], Colour::Blue),
            ([140, 30, 180], Colour::Purple),
        ];
        for (rgb, colour) in cases {
            assert_eq!(name(rgb), colour, "{rgb:?}");
        }
    }

    /// A "car": a body of `paint` with black windows and tyres, on a grey road.
    fn car(paint: [u8; 3], paint_rows: u32) -> RgbImage {
        RgbImage::from_fn(200, 100, |_, y| match y {
            y if y < 50 - paint_rows / 2 => Rgb([20, 20, 20]),
            y if y < 50 + paint_rows / 2 => Rgb(paint),
            _ => Rgb([120, 120, 120]),
        })
    }

    #[test]
    fn the_paint_wins_over_windows_and_tyres_from_a_quarter_of_the_middle() {
        let found = of_box(&car([200, 20, 30], 20), [0, 0, 200, 100]).unwrap();
        assert_eq!(found.colour, Colour::Red);
        assert!((found.share - 0.4).abs() < 0.05, "{found:?}");
        // Paint on a tenth of the middle: the black and grey around it decide.
        let found = of_box(&car([200, 20, 30], 4), [0, 0, 200, 100]).unwrap();
        assert!(found.colour.achromatic(), "{found:?}");
        assert_eq!(of_box(&car([250, 250, 250], 30), [0, 0, 200, 100]).unwrap().colour, Colour::White);
    }

    #[test]
    fn a_box_outside_the_image_has_no_colour() {
        assert_eq!(of_box(&car([0, 0, 200], 20), [300, 0, 10, 10]), None);
        assert_eq!(of_box(&car([0, 0, 200], 20), [0, 0, 0, 0]), None);
    }
}
