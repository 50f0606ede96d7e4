//! The true extent of a GIF: the logical screen, or beyond it where a frame is placed outside
//! (a frame at 65535,65535 on a 100x100 screen is a decompression bomb for some decoders).
//! Walks the block structure without decompressing anything.

use crate::MediaError;

fn invalid(what: &str) -> MediaError {
    MediaError::Decode(format!("GIF: {what}"))
}

/// Skips a chain of data sub-blocks starting at `pos`; returns the position after the terminator.
fn skip_sub_blocks(bytes: &[u8], mut pos: usize) -> Result<usize, MediaError> {
    loop {
        let len = *bytes.get(pos).ok_or_else(|| invalid("data ends inside a block"))? as usize;
        pos += 1 + len;
        if len == 0 {
            return Ok(pos);
        }
    }
}

fn colour_table_len(flags: u8) -> usize {
    if flags & 0x80 != 0 {
        3 * (2usize << (flags & 7))
    } else {
        0
    }
}

/// The width and height that contain the screen and every frame.
pub fn extent(bytes: &[u8]) -> Result<(u64, u64), MediaError> {
    let header = bytes.get(..13).ok_or_else(|| invalid("no logical screen descriptor"))?;
    let le = |b: &[u8]| u64::from(u16::from_le_bytes([b[0], b[1]]));
    let (mut width, mut height) = (le(&header[6..8]), le(&header[8..10]));
    let mut pos = 13 + colour_table_len(header[10]);
    while let Some(&block) = bytes.get(pos) {
        match block {
            0x21 => pos = skip_sub_blocks(bytes, pos + 2)?,
            0x2c => {
                let d = bytes.get(pos + 1..pos + 10).ok_or_else(|| invalid("data ends inside a frame descriptor"))?;
                width = width.max(le(&d[0..2]) + le(&d[4..6]));
                height = height.max(le(&d[2..4]) + le(&d[6..8]));
                pos = skip_sub_blocks(bytes, pos + 10 + colour_table_len(d[8]) + 1)?;
            }
            // The trailer, or bytes that are not a block: decoders stop there too.
            _ => break,
        }
    }
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_outside_the_screen_widens_the_extent() {
        let mut gif = b"GIF89a\x64\x00\x64\x00\x00\x00\x00".to_vec();
        for (x, y) in [(0u16, 0u16), (65535, 65535)] {
            gif.push(0x2c);
            for v in [x, y, 100, 100] {
                gif.extend(v.to_le_bytes());
            }
            gif.extend([0x00, 0x02, 0x01, 0x00, 0x00]);
        }
        gif.push(0x3b);
        assert_eq!(extent(&gif).unwrap(), (65635, 65635));
        assert_eq!(extent(&gif[..25]).unwrap_err(), invalid("data ends inside a block"));
        assert_eq!(extent(&gif[..30]).unwrap_err(), invalid("data ends inside a frame descriptor"));
    }
}
