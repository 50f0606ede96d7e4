//! Which format a file is, from its first bytes only: never from a name or a header of the
//! request.

/// The formats ims decodes (see `docs/api.md` for what each supports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    Bmp,
    Ico,
    Jpeg,
    Jng,
    Png,
    Tiff,
    /// Camera RAW: DNG, CR2, NEF (TIFF-based), ORF, RW2, RAF.
    Raw,
    Svg,
    Gif,
    Webp,
    Heif,
    Avif,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Bmp => "bmp",
            Format::Ico => "ico",
            Format::Jpeg => "jpeg",
            Format::Jng => "jng",
            Format::Png => "png",
            Format::Tiff => "tiff",
            Format::Raw => "raw",
            Format::Svg => "svg",
            Format::Gif => "gif",
            Format::Webp => "webp",
            Format::Heif => "heif",
            Format::Avif => "avif",
        }
    }
}

/// Brands of the ISO base media `ftyp` box that mean AVIF, and those that mean HEIF/HEIC.
const AVIF_BRANDS: &[&[u8]] = &[b"avif", b"avis"];
const HEIF_BRANDS: &[&[u8]] =
    &[b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"];

/// The format of a file from its magic bytes, or `None` for anything else.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if starts(b"\x8bJNG\r\n\x1a\n") {
        Some(Format::Jng)
    } else if starts(b"\xff\xd8\xff") {
        Some(Format::Jpeg)
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some(Format::Gif)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(Format::Webp)
    } else if starts(b"BM") {
        Some(Format::Bmp)
    } else if starts(b"\x00\x00\x01\x00") {
        Some(Format::Ico)
    } else if starts(b"IIRO") || starts(b"IIRS") || starts(b"IIU\x00") || starts(b"FUJIFILMCCD-RAW") {
        Some(Format::Raw)
    } else if starts(b"II*\x00") || starts(b"MM\x00*") {
        Some(if is_camera_raw(bytes) { Format::Raw } else { Format::Tiff })
    } else if let Some(format) = iso_bmff(bytes) {
        Some(format)
    } else if is_svg(bytes) {
        Some(Format::Svg)
    } else {
        None
    }
}

/// A TIFF container that holds sensor data: a CR2 marker, a DNGVersion tag or a Nikon `Make`
/// in the first directory.
fn is_camera_raw(bytes: &[u8]) -> bool {
    if bytes.get(8..10) == Some(b"CR") {
        return true;
    }
    let little = bytes.starts_with(b"II");
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
        Some(if little { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    };
    let Some(ifd) = u32_at(4).map(|o| o as usize) else { return false };
    let count = u16_at(ifd).unwrap_or(0) as usize;
    (0..count.min(512)).any(|i| {
        let entry = ifd + 2 + i * 12;
        match u16_at(entry) {
            Some(0xC612) => true, // DNGVersion
            Some(0x010F) => {
                // Make, ASCII: inline up to 4 bytes, else at an offset.
                let len = u32_at(entry + 4).unwrap_or(0) as usize;
                let at = if len <= 4 { entry + 8 } else { u32_at(entry + 8).unwrap_or(0) as usize };
                bytes.get(at..at + len.min(5)).is_some_and(|make| make.eq_ignore_ascii_case(b"NIKON"))
            }
            _ => false,
        }
    })
}

/// AVIF or HEIF from the `ftyp` box: its major brand, then its compatible brands.
fn iso_bmff(bytes: &[u8]) -> Option<Format> {
    if bytes.len() < 16 || &bytes[4..8] != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes(bytes[..4].try_into().ok()?) as usize;
    let end = size.clamp(16, bytes.len().min(4096));
    let brands: Vec<&[u8]> = std::iter::once(&bytes[8..12]).chain(bytes[16..end].chunks_exact(4)).collect();
    if brands.iter().any(|b| AVIF_BRANDS.contains(b)) {
        Some(Format::Avif)
    } else if brands.iter().any(|b| HEIF_BRANDS.contains(b)) {
        Some(Format::Heif)
    } else {
        None
    }
}

/// An XML document whose root element is `<svg`: after an optional BOM, white space, the XML
/// declaration, comments and a doctype.
fn is_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let Ok(text) = std::str::from_utf8(head).or_else(|e| std::str::from_utf8(&head[..e.valid_up_to()])) else {
        return false;
    };
    let mut rest = text.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("<?") {
            rest = after.split_once("?>").map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->").map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("<!DOCTYPE") {
            rest = after.split_once('>').map_or("", |(_, r)| r).trim_start();
        } else {
            return rest.starts_with("<svg") && rest[4..].starts_with(|c: char| c.is_whitespace() || c == '>');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(Format::Png));
        assert_eq!(sniff(b"\x8bJNG\r\n\x1a\n...."), Some(Format::Jng));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), Some(Format::Jpeg));
        assert_eq!(sniff(b"GIF89a...."), Some(Format::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::Webp));
        assert_eq!(sniff(b"BM......"), Some(Format::Bmp));
        assert_eq!(sniff(b"\0\0\x01\0\x01\0"), Some(Format::Ico));
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Some(Format::Tiff));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Some(Format::Tiff));
        assert_eq!(sniff(b"II*\0\x10\0\0\0CR\x02\0"), Some(Format::Raw), "CR2");
        assert_eq!(sniff(b"IIU\0\x18\0\0\0"), Some(Format::Raw), "RW2");
        assert_eq!(sniff(b"\0\0\0\x18ftypavif\0\0\0\0mif1miaf"), Some(Format::Avif));
        assert_eq!(sniff(b"\0\0\0\x18ftypmif1\0\0\0\0mif1avif"), Some(Format::Avif));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"), Some(Format::Heif));
        assert_eq!(sniff(b"\0\0\0\x18ftypisom\0\0\0\0isomiso2"), None, "an MP4 video is not an image");
        assert_eq!(sniff(b"<html><body>hi</body></html>"), None);
        assert_eq!(sniff(b"ID3\x03\0\0\0\0"), None);
    }

    #[test]
    fn svg_roots() {
        assert_eq!(sniff(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), Some(Format::Svg));
        assert_eq!(
            sniff(b"\xef\xbb\xbf<?xml version='1.0'?>\n<!-- c -->\n<!DOCTYPE svg PUBLIC 'x' 'y'>\n<svg width='1'>"),
            Some(Format::Svg)
        );
        assert_eq!(sniff(b"<svgfoo/>"), None);
        assert_eq!(sniff(b"<?xml version='1.0'?><html/>"), None);
    }
}
