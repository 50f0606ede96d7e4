//! SVG rendered with resvg. Nothing outside the file is ever read: no files, no network; images
//! embedded as data URLs are drawn, and text uses the machine's fonts.

use crate::MediaError;
use image::RgbaImage;
use resvg::{tiny_skia, usvg};
use std::sync::{Arc, OnceLock};

fn options() -> usvg::Options<'static> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    let fonts = FONTS.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_system_fonts();
        Arc::new(db)
    });
    usvg::Options {
        resources_dir: None,
        fontdb: fonts.clone(),
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: usvg::ImageHrefResolver::default_data_resolver(),
            // The default reads local files named by the SVG; refuse every non-data reference.
            resolve_string: Box::new(|_, _| None),
        },
        ..usvg::Options::default()
    }
}

pub fn parse(bytes: &[u8]) -> Result<usvg::Tree, MediaError> {
    usvg::Tree::from_data(bytes, &options()).map_err(|e| MediaError::Decode(format!("SVG: {e}")))
}

/// The intrinsic size, rounded up to whole pixels.
pub fn size(tree: &usvg::Tree) -> (u64, u64) {
    let size = tree.size();
    (size.width().ceil() as u64, size.height().ceil() as u64)
}

/// Renders at the intrinsic size, scaled down so the longer side is at most `max_side`.
pub fn render(tree: &usvg::Tree, max_side: u32) -> Result<RgbaImage, MediaError> {
    let (width, height) = size(tree);
    let scale = (f64::from(max_side) / width.max(height) as f64).min(1.0);
    let (w, h) = (((width as f64 * scale).round() as u32).max(1), ((height as f64 * scale).round() as u32).max(1));
    let mut pixmap = tiny_skia::Pixmap::new(w, h).ok_or_else(|| MediaError::Decode("SVG: empty canvas".into()))?;
    resvg::render(tree, tiny_skia::Transform::from_scale(scale as f32, scale as f32), &mut pixmap.as_mut());
    // tiny-skia keeps premultiplied alpha; undo it so compositing treats every format alike.
    let pixels = pixmap.pixels().iter().flat_map(|p| {
        let c = p.demultiply();
        [c.red(), c.green(), c.blue(), c.alpha()]
    });
    RgbaImage::from_raw(w, h, pixels.collect()).ok_or_else(|| MediaError::Decode("SVG: inconsistent canvas".into()))
}
