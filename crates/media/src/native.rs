//! AVIF, HEIF/HEIC and camera RAW through libavif, libheif and LibRaw, by way of the C layer
//! in `csrc/codecs.c`. AVIF and HEIF containers are opened once; frames are then decoded by
//! index.

use crate::MediaError;
use image::RgbaImage;
use std::ffi::{c_char, c_void, CStr};

#[repr(C)]
#[derive(Default)]
struct Info {
    width: u32,
    height: u32,
    frame_count: u32,
}

type Open = unsafe extern "C" fn(*const u8, usize, u32, *mut Info, *mut c_char, usize) -> *mut c_void;
type DecodeFrame = unsafe extern "C" fn(*mut c_void, u32, *mut Info, *mut c_char, usize) -> *mut u8;
type Close = unsafe extern "C" fn(*mut c_void);

extern "C" {
    fn ims_free(p: *mut c_void);
    fn ims_avif_open(data: *const u8, len: usize, max: u32, info: *mut Info, err: *mut c_char, n: usize)
        -> *mut c_void;
    fn ims_avif_frame(h: *mut c_void, index: u32, info: *mut Info, err: *mut c_char, n: usize) -> *mut u8;
    fn ims_avif_close(h: *mut c_void);
    fn ims_heif_open(data: *const u8, len: usize, max: u32, info: *mut Info, err: *mut c_char, n: usize)
        -> *mut c_void;
    fn ims_heif_frame(h: *mut c_void, index: u32, info: *mut Info, err: *mut c_char, n: usize) -> *mut u8;
    fn ims_heif_close(h: *mut c_void);
    fn ims_raw_probe(data: *const u8, len: usize, info: *mut Info, err: *mut c_char, n: usize) -> i32;
    fn ims_raw_decode(data: *const u8, len: usize, info: *mut Info, err: *mut c_char, n: usize) -> *mut u8;
}

/// Copies a frame the C layer malloc'd, then frees it.
///
/// # Safety
/// `pixels` is null or points to `info.width * info.height * 4` bytes from malloc.
unsafe fn take_frame(pixels: *mut u8, info: &Info, err: &[c_char]) -> Result<RgbaImage, MediaError> {
    if pixels.is_null() {
        return Err(MediaError::Decode(message(err)));
    }
    let len = info.width as usize * info.height as usize * 4;
    let data = std::slice::from_raw_parts(pixels, len).to_vec();
    ims_free(pixels.cast());
    RgbaImage::from_raw(info.width, info.height, data)
        .ok_or_else(|| MediaError::Decode("the decoder returned an inconsistent frame".into()))
}

/// Width and height of a camera RAW once developed (orientation applied), from its metadata.
pub fn raw_dimensions(bytes: &[u8]) -> Result<(u64, u64), MediaError> {
    let mut info = Info::default();
    let mut err = [0 as c_char; 256];
    // SAFETY: LibRaw reads `bytes` during the call only.
    let status = unsafe { ims_raw_probe(bytes.as_ptr(), bytes.len(), &mut info, err.as_mut_ptr(), err.len()) };
    if status != 0 {
        return Err(MediaError::Decode(message(&err)));
    }
    Ok((u64::from(info.width), u64::from(info.height)))
}

/// Develops a camera RAW at half size (see `csrc/codecs.c`).
pub fn raw_decode(bytes: &[u8]) -> Result<RgbaImage, MediaError> {
    let mut info = Info::default();
    let mut err = [0 as c_char; 256];
    // SAFETY: as for raw_dimensions; the buffer returned is handed to take_frame.
    unsafe {
        let pixels = ims_raw_decode(bytes.as_ptr(), bytes.len(), &mut info, err.as_mut_ptr(), err.len());
        take_frame(pixels, &info, &err)
    }
}

/// An open AVIF or HEIF container; borrows the file's bytes for its whole life.
pub struct Container<'a> {
    handle: *mut c_void,
    decode: DecodeFrame,
    close: Close,
    pub frame_count: u32,
    _bytes: std::marker::PhantomData<&'a [u8]>,
}

fn message(buffer: &[c_char]) -> String {
    // SAFETY: the C layer always writes a NUL-terminated string into the buffer (snprintf).
    unsafe { CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy().into_owned()
}

impl<'a> Container<'a> {
    /// `limit` bounds the image: total pixels for AVIF, the side for HEIF.
    fn open(bytes: &'a [u8], open: Open, decode: DecodeFrame, close: Close, limit: u32) -> Result<Self, MediaError> {
        let mut info = Info::default();
        let mut err = [0 as c_char; 256];
        // SAFETY: `bytes` outlives the container (lifetime 'a); the C layer does not keep `info`
        // or `err` past the call.
        let handle = unsafe { open(bytes.as_ptr(), bytes.len(), limit, &mut info, err.as_mut_ptr(), err.len()) };
        if handle.is_null() {
            return Err(MediaError::Decode(message(&err)));
        }
        Ok(Container { handle, decode, close, frame_count: info.frame_count.max(1), _bytes: std::marker::PhantomData })
    }

    pub fn avif(bytes: &'a [u8], max_pixels: u32) -> Result<Self, MediaError> {
        Container::open(bytes, ims_avif_open, ims_avif_frame, ims_avif_close, max_pixels)
    }

    pub fn heif(bytes: &'a [u8], max_side: u32) -> Result<Self, MediaError> {
        Container::open(bytes, ims_heif_open, ims_heif_frame, ims_heif_close, max_side)
    }

    /// Decodes frame `index` (0 is the primary image) to RGBA.
    pub fn frame(&mut self, index: u32) -> Result<RgbaImage, MediaError> {
        let mut info = Info::default();
        let mut err = [0 as c_char; 256];
        // SAFETY: the handle is open; the buffer returned is handed to take_frame.
        unsafe {
            let pixels = (self.decode)(self.handle, index, &mut info, err.as_mut_ptr(), err.len());
            take_frame(pixels, &info, &err)
        }
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle came from the matching open function and is closed once.
        unsafe { (self.close)(self.handle) }
    }
}
