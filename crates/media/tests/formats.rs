//! Formats the shared corpus has no sample of, built here byte by byte: camera RAW (DNG), JNG
//! with and without alpha, SVG (and its refusal to read files), JPEG EXIF orientation.

use image::{ImageFormat, Rgb, RgbImage};
use media::{decode, probe, Format, Sampling};

fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut out), format).unwrap();
    out
}

/// A little-endian TIFF directory entry: tag, type, count, value (inline or offset).
fn entry(out: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32) {
    out.extend(tag.to_le_bytes());
    out.extend(kind.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend(value.to_le_bytes());
}

/// A minimal DNG: 128x128 RGGB sensor data, 16-bit, uncompressed, with a neutral colour matrix.
fn dng() -> Vec<u8> {
    const W: u32 = 128;
    const H: u32 = 128;
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    const BYTE: u16 = 1;
    const ASCII: u16 = 2;
    const SRATIONAL: u16 = 10;
    let entries = 17u32;
    let ifd_end = 8 + 2 + entries * 12 + 4;
    let model_at = ifd_end;
    let model = b"ims test camera\0";
    let matrix_at = model_at + model.len() as u32;
    let pixels_at = matrix_at + 9 * 8;
    let mut out = b"II*\0".to_vec();
    out.extend(8u32.to_le_bytes());
    out.extend((entries as u16).to_le_bytes());
    entry(&mut out, 254, LONG, 1, 0);
    entry(&mut out, 256, LONG, 1, W);
    entry(&mut out, 257, LONG, 1, H);
    entry(&mut out, 258, SHORT, 1, 16);
    entry(&mut out, 259, SHORT, 1, 1);
    entry(&mut out, 262, SHORT, 1, 32803); // CFA
    entry(&mut out, 273, LONG, 1, pixels_at);
    entry(&mut out, 274, SHORT, 1, 1);
    entry(&mut out, 277, SHORT, 1, 1);
    entry(&mut out, 278, LONG, 1, H);
    entry(&mut out, 279, LONG, 1, W * H * 2);
    entry(&mut out, 284, SHORT, 1, 1);
    entry(&mut out, 33421, SHORT, 2, 2 | (2 << 16)); // CFARepeatPatternDim 2x2
    entry(&mut out, 33422, BYTE, 4, u32::from_le_bytes([0, 1, 1, 2])); // RGGB
    entry(&mut out, 50706, BYTE, 4, u32::from_le_bytes([1, 4, 0, 0])); // DNGVersion
    entry(&mut out, 50708, ASCII, model.len() as u32, model_at); // UniqueCameraModel
    entry(&mut out, 50721, SRATIONAL, 9, matrix_at); // ColorMatrix1
    out.extend(0u32.to_le_bytes());
    out.extend_from_slice(model);
    for i in 0..9 {
        let v: i32 = if i % 4 == 0 { 1 } else { 0 };
        out.extend(v.to_le_bytes());
        out.extend(1i32.to_le_bytes());
    }
    for y in 0..H {
        for x in 0..W {
            let v: u16 = 8000 + ((x + y) * 100) as u16;
            out.extend(v.to_le_bytes());
        }
    }
    out
}

#[test]
fn dng_is_developed() {
    let bytes = dng();
    let p = probe(&bytes).unwrap();
    assert_eq!((p.format, p.width, p.height), (Format::Raw, 128, 128));
    let decoded = decode(&bytes, Sampling::default()).unwrap();
    let frame = &decoded.frames[0].image;
    assert_eq!(frame.dimensions(), (64, 64), "developed at half size");
    assert!(frame.pixels().any(|p| p.0 != [0, 0, 0]), "the developed image is not empty");
}

/// A JNG around a JPEG, with the alpha channel given as the IDAT of a greyscale PNG.
fn jng(colour: &RgbImage, alpha: Option<&image::GrayImage>) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend([0, 0, 0, 0]); // CRCs are not checked by readers of JNG here
    }
    let (w, h) = colour.dimensions();
    let mut out = b"\x8bJNG\r\n\x1a\n".to_vec();
    let mut jhdr = Vec::new();
    jhdr.extend(w.to_be_bytes());
    jhdr.extend(h.to_be_bytes());
    jhdr.extend([if alpha.is_some() { 14 } else { 10 }, 8, 8, 0, if alpha.is_some() { 8 } else { 0 }, 0, 0, 0]);
    chunk(&mut out, b"JHDR", &jhdr);
    if let Some(alpha) = alpha {
        let mut png = Vec::new();
        alpha.write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png).unwrap();
        // Copy the PNG's IDAT chunks.
        let mut rest = &png[8..];
        while rest.len() >= 12 {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            if &rest[4..8] == b"IDAT" {
                chunk(&mut out, b"IDAT", &rest[8..8 + len]);
            }
            rest = &rest[12 + len..];
        }
    }
    chunk(&mut out, b"JDAT", &encode(colour, ImageFormat::Jpeg));
    chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn jng_with_and_without_alpha() {
    let colour = RgbImage::from_pixel(64, 64, Rgb([200, 30, 30]));
    let plain = decode(&jng(&colour, None), Sampling::default()).unwrap();
    assert_eq!(plain.probe.format, Format::Jng);
    let p = plain.frames[0].image.get_pixel(10, 10).0;
    assert!(p[0] > 180 && p[1] < 60, "{p:?}");
    // Left half transparent: composited on white.
    let alpha = image::GrayImage::from_fn(64, 64, |x, _| image::Luma([if x < 32 { 0 } else { 255 }]));
    let with_alpha = decode(&jng(&colour, Some(&alpha)), Sampling::default()).unwrap();
    assert_eq!(with_alpha.frames[0].image.get_pixel(5, 5).0, [255, 255, 255]);
    let q = with_alpha.frames[0].image.get_pixel(50, 5).0;
    assert!(q[0] > 180 && q[1] < 60, "{q:?}");
}

#[test]
fn svg_is_rendered_and_never_reads_files() {
    let svg = br##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="60">
        <rect width="100" height="60" fill="#ff0000"/>
        <image x="0" y="0" width="100" height="60" xlink:href="file:///etc/hostname"/>
        <image x="0" y="0" width="100" height="60" xlink:href="/etc/hostname"/>
    </svg>"##;
    let decoded = decode(svg, Sampling::default()).unwrap();
    assert_eq!((decoded.probe.format, decoded.probe.width, decoded.probe.height), (Format::Svg, 100, 60));
    assert!(decoded.frames[0].image.pixels().all(|p| p.0 == [255, 0, 0]), "only the rectangle is drawn");
    assert!(
        decode(b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>", Sampling::default()).is_err(),
        "a 10x10 SVG is below the size limit"
    );
    assert!(decode(b"<svg xmlns='http://www.w3.org/2000/svg' width='100' height='100'><broken", Sampling::default())
        .is_err());
}

/// APP1 EXIF with only an orientation tag.
fn exif_orientation(value: u16) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes());
    tiff.extend(1u16.to_le_bytes());
    entry(&mut tiff, 0x0112, 3, 1, u32::from(value));
    tiff.extend(0u32.to_le_bytes());
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend(((tiff.len() + 8) as u16).to_be_bytes());
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend(tiff);
    app1
}

#[test]
fn jpeg_exif_orientation_is_applied() {
    // 80 wide, 60 high, left half black: orientation 6 (rotate 90 degrees clockwise) makes it
    // 60 wide and 80 high with the black half on top.
    let image = RgbImage::from_fn(80, 60, |x, _| if x < 40 { Rgb([0, 0, 0]) } else { Rgb([255, 255, 255]) });
    let jpeg = encode(&image, ImageFormat::Jpeg);
    let mut rotated = jpeg[..2].to_vec();
    rotated.extend(exif_orientation(6));
    rotated.extend_from_slice(&jpeg[2..]);
    let decoded = decode(&rotated, Sampling::default()).unwrap();
    let frame = &decoded.frames[0].image;
    assert_eq!(frame.dimensions(), (60, 80));
    assert!(frame.get_pixel(30, 10).0[0] < 40 && frame.get_pixel(30, 70).0[0] > 215);
    let plain = decode(&jpeg, Sampling::default()).unwrap();
    assert_eq!(plain.frames[0].image.dimensions(), (80, 60));
}

#[test]
fn a_truncated_jpeg_is_refused() {
    let jpeg = encode(&RgbImage::from_pixel(200, 200, Rgb([90, 120, 150])), ImageFormat::Jpeg);
    assert!(decode(&jpeg, Sampling::default()).is_ok());
    assert!(decode(&jpeg[..jpeg.len() / 2], Sampling::default()).is_err());
}

/// Inputs the fuzzer found harmful, kept so they stay refused (see docs/benchmarks.md).
#[test]
fn fuzz_regressions_are_refused() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(decode(&bytes, Sampling::default()).is_err(), "{}", path.display());
        seen += 1;
    }
    assert!(seen > 0);
}
