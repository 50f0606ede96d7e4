//! QR codes generated at several sizes and rotations, alone and pasted into a photograph (then
//! JPEG-compressed), are decoded with their value; a photograph without one has none.

#[path = "../../../tests/support/shared.rs"]
mod shared;

use media::codes::find_codes;
use rxing::{BarcodeFormat, MultiFormatWriter, Writer};

const VALUE: &str = "https://example.com/promo?id=42";

/// A QR code of `module` pixels per module, with its quiet zone.
fn qr(module: u32) -> image::RgbImage {
    let matrix = MultiFormatWriter.encode(VALUE, &BarcodeFormat::QR_CODE, 0, 0).unwrap();
    let (w, h) = (matrix.width(), matrix.height());
    image::RgbImage::from_fn(w * module, h * module, |x, y| {
        if matrix.get(x / module, y / module) {
            image::Rgb([0, 0, 0])
        } else {
            image::Rgb([255, 255, 255])
        }
    })
}

/// `image` turned by `degrees` around its centre (bilinear), on white.
fn rotated(image: &image::RgbImage, degrees: f64) -> image::RgbImage {
    let (w, h) = (f64::from(image.width()), f64::from(image.height()));
    let (sin, cos) = degrees.to_radians().sin_cos();
    let side = ((w * cos.abs() + h * sin.abs()).max(w * sin.abs() + h * cos.abs())).ceil() as u32;
    let c = f64::from(side) / 2.0;
    image::RgbImage::from_fn(side, side, |x, y| {
        let (dx, dy) = (f64::from(x) - c, f64::from(y) - c);
        let (sx, sy) = (dx * cos + dy * sin + w / 2.0, -dx * sin + dy * cos + h / 2.0);
        if sx < 0.0 || sy < 0.0 || sx >= w - 1.0 || sy >= h - 1.0 {
            return image::Rgb([255, 255, 255]);
        }
        let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
        let (fx, fy) = (sx - sx.floor(), sy - sy.floor());
        image::Rgb(std::array::from_fn(|k| {
            let p = |x: u32, y: u32| f64::from(image.get_pixel(x, y)[k]);
            let top = p(x0, y0) * (1.0 - fx) + p(x0 + 1, y0) * fx;
            let bottom = p(x0, y0 + 1) * (1.0 - fx) + p(x0 + 1, y0 + 1) * fx;
            (top * (1.0 - fy) + bottom * fy).round() as u8
        }))
    })
}

fn photo() -> image::RgbImage {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/safe/skimage/coffee.png");
    match std::fs::read(&path) {
        Ok(bytes) => image::load_from_memory(&bytes).unwrap().to_rgb8(),
        Err(_) => {
            shared::absent("a generated picture stands in for the photograph");
            image::RgbImage::from_fn(600, 400, |x, y| image::Rgb([(x / 3) as u8, (y / 2) as u8, ((x + y) / 5) as u8]))
        }
    }
}

fn jpeg(image: &image::RgbImage, quality: u8) -> image::RgbImage {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(image).unwrap();
    image::load_from_memory(&out).unwrap().to_rgb8()
}

#[test]
fn codes_of_every_size_and_angle_are_read() {
    for module in [2, 3, 6] {
        for degrees in [0.0, 12.0, 45.0, 90.0, 180.0] {
            let code = rotated(&qr(module), degrees);
            let found = find_codes(&code);
            assert_eq!(found.len(), 1, "module {module}, {degrees} degrees");
            assert_eq!(found[0].value, VALUE);
            assert_eq!(found[0].format, "qrcode");
        }
    }
}

#[test]
fn codes_in_photos_are_read_and_photos_alone_have_none() {
    let photo = photo();
    assert!(find_codes(&photo).is_empty());
    for (module, degrees, quality) in [(3, 0.0, 85), (4, 20.0, 60), (3, 0.0, 30)] {
        let code = rotated(&qr(module), degrees);
        let mut composite = photo.clone();
        image::imageops::replace(&mut composite, &code, 40, 30);
        let found = find_codes(&jpeg(&composite, quality));
        assert_eq!(
            found.iter().map(|c| c.value.as_str()).collect::<Vec<_>>(),
            [VALUE],
            "module {module}, {degrees}°, q{quality}"
        );
        let xs: Vec<f32> = found[0].points.iter().map(|p| p[0]).collect();
        assert!(xs.iter().all(|x| *x >= 35.0), "located inside the pasted area: {:?}", found[0].points);
    }
}

#[test]
fn product_barcodes_are_read_and_text_pages_have_none() {
    let matrix = MultiFormatWriter.encode("4006381333931", &BarcodeFormat::EAN_13, 0, 0).unwrap();
    let (w, module) = (matrix.width(), 3);
    let barcode = image::RgbImage::from_fn(w * module + 40, 120, |x, y| {
        let inside = (20..20 + w * module).contains(&x) && (10..110).contains(&y);
        if inside && matrix.get((x - 20) / module, 0) {
            image::Rgb([0, 0, 0])
        } else {
            image::Rgb([255, 255, 255])
        }
    });
    let found = find_codes(&barcode);
    assert_eq!(found.iter().map(|c| (c.value.as_str(), c.is_qr())).collect::<Vec<_>>(), [("4006381333931", false)]);
    // A page of printed text, where a hard search "finds" an EAN-13.
    let page = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/ocr/tesseract-test/testing/phototest.tif");
    if let Ok(bytes) = std::fs::read(&page) {
        let image = media::decode(&bytes, media::Sampling::default()).unwrap().frames.remove(0).image;
        assert!(find_codes(&image).is_empty());
    }
}
