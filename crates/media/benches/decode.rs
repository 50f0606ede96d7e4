//! Decode + resize time per format and size: `cargo bench -p media --bench decode`.
//!
//! Synthetic photos-like images (smooth gradients with noise) are encoded in each format the
//! `image` crate can write, then ingested with `media::decode` (header checks, decode, alpha,
//! orientation, reduction to the 2048-pixel working size). AVIF and HEIC come from
//! ../shared/data when it is present. Prints the median of several runs per cell.

use image::{ImageFormat, Rgb, RgbImage};
use media::{decode, Sampling};
use std::path::Path;
use std::time::{Duration, Instant};

fn photo(width: u32, height: u32) -> RgbImage {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let noise = (seed % 24) as u32;
        let r = (x * 255 / width + noise).min(255) as u8;
        let g = (y * 255 / height + noise).min(255) as u8;
        let b = (((x + y) * 127 / (width + height)) + noise).min(255) as u8;
        Rgb([r, g, b])
    })
}

fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut out), format).unwrap();
    out
}

fn median(bytes: &[u8], runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let decoded = decode(bytes, Sampling::default()).expect("the benchmark image decodes");
            std::hint::black_box(decoded);
            started.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn row(name: &str, size: &str, bytes: &[u8]) {
    let runs = if bytes.len() > 4 << 20 { 5 } else { 9 };
    let t = median(bytes, runs);
    println!("| {name:<5} | {size:>9} | {:>9} | {:>8.1} |", bytes.len() / 1024, t.as_secs_f64() * 1000.0);
}

fn main() {
    println!("| format | size | file KiB | decode+fit ms (median) |");
    println!("|---|---|---|---|");
    for (w, h) in [(640, 480), (1920, 1080), (4032, 3024)] {
        let image = photo(w, h);
        let size = format!("{w}x{h}");
        for (name, format) in [
            ("jpeg", ImageFormat::Jpeg),
            ("png", ImageFormat::Png),
            ("webp", ImageFormat::WebP),
            ("gif", ImageFormat::Gif),
            ("bmp", ImageFormat::Bmp),
            ("tiff", ImageFormat::Tiff),
        ] {
            row(name, &size, &encode(&image, format));
        }
    }
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/robustness");
    if !shared.exists() {
        println!("(AVIF and HEIC rows skipped: ../shared/data is absent)");
        return;
    }
    for (name, file) in [
        ("heic", "pillow_heif/tests/images/heif_special/xiaomi.heic"),
        ("heic", "pillow_heif/tests/images/heif_other/pug.heic"),
        ("avif", "libavif/tests/data/sofa_grid1x5_420_reversed_dimg_order.avif"),
    ] {
        if let Ok(bytes) = std::fs::read(shared.join(file)) {
            let probe = media::probe(&bytes).unwrap();
            row(name, &format!("{}x{}", probe.width, probe.height), &bytes);
        }
    }
}
