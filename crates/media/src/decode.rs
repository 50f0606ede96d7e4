//! From checked bytes to the frames the models see: decode (sampling animated images),
//! composite alpha on white (and on dark too, where white hides light content), apply
//! orientation, bound the size ([`working_scale`]).

use crate::format::Format;
use crate::views::working_scale;
use crate::{jng, jpeg, native, probe, svg, MediaError, Probe, MAX_SIDE};
use fast_image_resize as fr;
use image::codecs::{gif::GifDecoder, png::PngDecoder, webp::WebPDecoder};
use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageFormat, RgbImage, RgbaImage};
use std::io::Cursor;

/// Every decoder's allocations are bounded: a 9999 x 9999 RGBA frame is 400 MB.
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;
/// A frame with at least this share of (mostly) transparent pixels, and this share of light
/// visible ones, is also composited on a dark backdrop: on white its light content vanishes.
const TRANSPARENT_SHARE: f64 = 0.01;
const LIGHT_SHARE: f64 = 0.005;

/// Which frames of an animated image are moderated: frame 0, then every `interval`-th, at most
/// `max_frames` of them. The cloud's defaults are a frame every 5, at most 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampling {
    pub interval: u32,
    pub max_frames: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { interval: 5, max_frames: 5 }
    }
}

impl Sampling {
    /// The request's `Interval` and `MaxFrames`. Absent or 0 means the default (5); `MaxFrames`
    /// is capped at `cap` so that one request cannot ask for thousands of frames.
    pub fn from_request(interval: Option<i64>, max_frames: Option<i64>, cap: u32) -> Sampling {
        let default = Sampling::default();
        let pick = |value: Option<i64>, fallback: u32| match value {
            Some(v) if v > 0 => u32::try_from(v).unwrap_or(u32::MAX),
            _ => fallback,
        };
        Sampling {
            interval: pick(interval, default.interval),
            max_frames: pick(max_frames, default.max_frames).min(cap),
        }
    }

    fn wants(&self, index: u32) -> bool {
        index.is_multiple_of(self.interval.max(1)) && index / self.interval.max(1) < self.max_frames.max(1)
    }

    fn last(&self) -> u32 {
        (self.max_frames.max(1) - 1) * self.interval.max(1)
    }

    /// The sampled indices among `count` frames.
    fn indices(&self, count: u32) -> impl Iterator<Item = u32> + '_ {
        (0..count.min(self.last() + 1)).filter(|i| self.wants(*i))
    }
}

/// One moderated frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Its position in the file, counted from 0.
    pub index: u32,
    pub image: RgbImage,
    /// Its transparent parts filled dark rather than white (a second frame of the same index).
    pub dark_backdrop: bool,
}

#[derive(Debug, Clone)]
pub struct Decoded {
    /// What the header said (format and original dimensions).
    pub probe: Probe,
    pub frames: Vec<Frame>,
}

fn limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE as u32);
    limits.max_image_height = Some(MAX_SIDE as u32);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

fn image_error(e: image::ImageError) -> MediaError {
    MediaError::Decode(e.to_string())
}

/// A still image through the `image` crate, oriented as its metadata says.
fn still(bytes: &[u8], format: ImageFormat) -> Result<DynamicImage, MediaError> {
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits());
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    let orientation = decoder.orientation().map_err(image_error)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(image_error)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// The sampled frames of an animation, decoding no further than the last one wanted.
fn animation<'a>(frames: image::Frames<'a>, sampling: Sampling) -> Result<Vec<(u32, DynamicImage)>, MediaError> {
    let mut out = Vec::new();
    for (index, frame) in (0u32..).zip(frames).take(sampling.last() as usize + 1) {
        let frame = frame.map_err(image_error)?;
        if sampling.wants(index) {
            out.push((index, DynamicImage::ImageRgba8(frame.into_buffer())));
        }
    }
    if out.is_empty() {
        return Err(MediaError::Decode("the animation has no frame".into()));
    }
    Ok(out)
}

fn frames_of(bytes: &[u8], probe: &Probe, sampling: Sampling) -> Result<Vec<(u32, DynamicImage)>, MediaError> {
    let one = |image: DynamicImage| Ok(vec![(0, image)]);
    // The longer side of the working copy: decoders that can reduce as they go stop there.
    let (width, height) = (probe.width as u32, probe.height as u32);
    let working_side = (f64::from(width.max(height)) * working_scale(width, height)).ceil() as u32;
    match probe.format {
        Format::Jpeg => one(DynamicImage::ImageRgb8(jpeg::decode(bytes, Some(working_side))?)),
        Format::Jng => one(DynamicImage::ImageRgba8(jng::decode(bytes)?)),
        Format::Bmp => one(still(bytes, ImageFormat::Bmp)?),
        Format::Ico => one(still(bytes, ImageFormat::Ico)?),
        Format::Tiff => one(still(bytes, ImageFormat::Tiff)?),
        Format::Raw => one(DynamicImage::ImageRgba8(native::raw_decode(bytes)?)),
        Format::Svg => one(DynamicImage::ImageRgba8(svg::render(&svg::parse(bytes)?, working_side)?)),
        Format::Gif => {
            let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(image_error)?;
            decoder.set_limits(limits()).map_err(image_error)?;
            animation(decoder.into_frames(), sampling)
        }
        Format::Png => {
            let mut decoder = PngDecoder::new(Cursor::new(bytes)).map_err(image_error)?;
            if decoder.is_apng().map_err(image_error)? {
                decoder.set_limits(limits()).map_err(image_error)?;
                animation(decoder.apng().map_err(image_error)?.into_frames(), sampling)
            } else {
                one(still(bytes, ImageFormat::Png)?)
            }
        }
        Format::Webp => {
            let mut decoder = WebPDecoder::new(Cursor::new(bytes)).map_err(image_error)?;
            if decoder.has_animation() {
                decoder.set_limits(limits()).map_err(image_error)?;
                animation(decoder.into_frames(), sampling)
            } else {
                one(still(bytes, ImageFormat::WebP)?)
            }
        }
        Format::Avif | Format::Heif => {
            let mut container = if probe.format == Format::Avif {
                native::Container::avif(bytes, (MAX_SIDE * MAX_SIDE) as u32)?
            } else {
                native::Container::heif(bytes, MAX_SIDE as u32)?
            };
            let indices: Vec<u32> = sampling.indices(container.frame_count).collect();
            indices.into_iter().map(|i| Ok((i, DynamicImage::ImageRgba8(container.frame(i)?)))).collect()
        }
    }
}

/// Any depth or colour model to 8-bit RGB, alpha composited on white; and on black too when
/// white would hide light content (white text on a transparent background, as an app in dark
/// mode shows it). The second image says `true`.
fn flatten(image: DynamicImage) -> Vec<(RgbImage, bool)> {
    if !image.color().has_alpha() {
        return vec![(image.into_rgb8(), false)];
    }
    let rgba: RgbaImage = image.into_rgba8();
    let (w, h) = rgba.dimensions();
    let on = |backdrop: u16| {
        let pixels = rgba
            .pixels()
            .flat_map(|p| {
                let a = u16::from(p.0[3]);
                [0, 1, 2].map(|c| ((u16::from(p.0[c]) * a + backdrop * (255 - a) + 127) / 255) as u8)
            })
            .collect();
        RgbImage::from_raw(w, h, pixels).expect("same dimensions")
    };
    let total = f64::from(w) * f64::from(h);
    let transparent = rgba.pixels().filter(|p| p.0[3] < 128).count() as f64;
    let light = rgba.pixels().filter(|p| p.0[3] >= 128 && p.0[..3].iter().all(|&c| c >= 192)).count() as f64;
    let mut flat = vec![(on(255), false)];
    if transparent >= total * TRANSPARENT_SHARE && light >= total * LIGHT_SHARE {
        flat.push((on(0), true));
    }
    flat
}

/// Reduces the image as [`working_scale`] says.
pub fn fit(image: RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    let scale = working_scale(w, h);
    if scale >= 1.0 {
        return image;
    }
    resized(&image, ((f64::from(w) * scale).round() as u32).max(1), ((f64::from(h) * scale).round() as u32).max(1))
}

/// The image at `width` x `height` (bilinear convolution, which averages every source pixel
/// rather than skipping rows when reducing).
pub(crate) fn resized(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    let source = fr::images::ImageRef::new(w, h, image.as_raw(), fr::PixelType::U8x3).expect("RGB buffer");
    let mut target = fr::images::Image::new(width, height, fr::PixelType::U8x3);
    let options = fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear));
    fr::Resizer::new().resize(&source, &mut target, &options).expect("same pixel type");
    RgbImage::from_raw(width, height, target.into_vec()).expect("RGB buffer")
}

/// Checks the header, decodes the sampled frames, and returns them flattened and bounded.
/// A decoder that panics on a hostile file is contained here and reported as undecodable.
pub fn decode(bytes: &[u8], sampling: Sampling) -> Result<Decoded, MediaError> {
    let probe = probe(bytes)?;
    let frames = std::panic::catch_unwind(|| frames_of(bytes, &probe, sampling))
        .map_err(|_| MediaError::Decode(format!("the {} decoder failed on this file", probe.format.name())))??
        .into_iter()
        .flat_map(|(index, image)| {
            flatten(image).into_iter().map(move |(image, dark_backdrop)| Frame {
                index,
                image: fit(image),
                dark_backdrop,
            })
        })
        .collect();
    Ok(Decoded { probe, frames })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sampling_takes_every_fifth_frame_up_to_five() {
        let s = Sampling::default();
        assert_eq!(s.indices(100).collect::<Vec<_>>(), [0, 5, 10, 15, 20]);
        assert_eq!(s.indices(12).collect::<Vec<_>>(), [0, 5, 10]);
        assert_eq!(s.indices(1).collect::<Vec<_>>(), [0]);
        let every = Sampling { interval: 1, max_frames: 3 };
        assert_eq!(every.indices(10).collect::<Vec<_>>(), [0, 1, 2]);
        let first = Sampling { interval: 3, max_frames: 1 };
        assert_eq!(first.indices(10).collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn request_values() {
        assert_eq!(Sampling::from_request(None, None, 50), Sampling::default());
        assert_eq!(Sampling::from_request(Some(0), Some(0), 50), Sampling::default());
        assert_eq!(Sampling::from_request(Some(3), Some(400), 50), Sampling { interval: 3, max_frames: 50 });
        assert_eq!(Sampling::from_request(Some(1), Some(1), 50), Sampling { interval: 1, max_frames: 1 });
    }

    #[test]
    fn alpha_is_composited_on_white() {
        let mut rgba = RgbaImage::new(2, 1);
        rgba.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        rgba.put_pixel(1, 0, image::Rgba([0, 0, 0, 128]));
        let flat = flatten(DynamicImage::ImageRgba8(rgba));
        assert_eq!(flat.len(), 1, "dark content shows on white: no second backdrop");
        assert_eq!(flat[0].0.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(flat[0].0.get_pixel(1, 0).0, [127, 127, 127]);
    }

    #[test]
    fn light_content_on_transparency_is_also_seen_on_dark() {
        // White text (a tenth of the pixels) on a transparent background.
        let rgba = RgbaImage::from_fn(100, 100, |x, _| {
            if x < 10 {
                image::Rgba([250, 250, 250, 255])
            } else {
                image::Rgba([0, 0, 0, 0])
            }
        });
        let flat = flatten(DynamicImage::ImageRgba8(rgba.clone()));
        assert_eq!(flat.iter().map(|f| f.1).collect::<Vec<_>>(), [false, true]);
        assert_eq!((flat[0].0.get_pixel(5, 5).0, flat[0].0.get_pixel(50, 5).0), ([250; 3], [255; 3]));
        assert_eq!((flat[1].0.get_pixel(5, 5).0, flat[1].0.get_pixel(50, 5).0), ([250; 3], [0; 3]));
        // Under the shares: an opaque image with a few transparent pixels.
        let mostly_opaque =
            RgbaImage::from_fn(100, 100, |x, y| image::Rgba([255, 255, 255, if x + y == 0 { 0 } else { 255 }]));
        assert_eq!(flatten(DynamicImage::ImageRgba8(mostly_opaque)).len(), 1);
    }

    #[test]
    fn fit_bounds_the_working_copy() {
        assert_eq!(fit(RgbImage::new(4096, 2048)).dimensions(), (2048, 1024));
        assert_eq!(fit(RgbImage::new(100, 80)).dimensions(), (100, 80));
        // Long: the area of 2048 x 2048, not the longer side.
        assert_eq!(fit(RgbImage::new(8192, 1024)).dimensions(), (5793, 724));
    }
}
