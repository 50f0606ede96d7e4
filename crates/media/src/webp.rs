//! A structural check of WebP files before the decoder sees them: every RIFF chunk, and every
//! chunk nested in an animation frame, must lie inside the file. The decoder trusts declared
//! chunk sizes when it reads metadata (a 4 GB EXIF chunk in a 4 KB file made it allocate 4 GB,
//! found by fuzzing), so such files are refused here.

use crate::MediaError;

fn invalid(what: &str) -> MediaError {
    MediaError::Decode(format!("WebP: {what}"))
}

/// Walks the chunks of `data` (a sequence of fourcc, little-endian size, padded payload).
fn walk(data: &[u8], nested: bool) -> Result<(), MediaError> {
    let mut pos = 0usize;
    while pos < data.len() {
        let header = data.get(pos..pos + 8).ok_or_else(|| invalid("a chunk header runs past the end"))?;
        let size = u32::from_le_bytes(header[4..8].try_into().unwrap()) as usize;
        let start = pos + 8;
        let end = start
            .checked_add(size)
            .filter(|e| *e <= data.len())
            .ok_or_else(|| invalid("a chunk runs past the end of the file"))?;
        if !nested && &header[..4] == b"ANMF" {
            // An animation frame: 16 bytes of placement, then the frame's own chunks.
            walk(data.get(start + 16..end).ok_or_else(|| invalid("an animation frame is too short"))?, true)?;
        }
        pos = end + (size & 1);
    }
    Ok(())
}

pub fn check(bytes: &[u8]) -> Result<(), MediaError> {
    let declared = u32::from_le_bytes(bytes.get(4..8).ok_or_else(|| invalid("no RIFF header"))?.try_into().unwrap());
    let body = bytes.get(12..).ok_or_else(|| invalid("no RIFF header"))?;
    // The RIFF size counts from byte 8; trailing bytes after it are ignored, as decoders do.
    let riff_end = (declared as usize).saturating_add(8).min(bytes.len());
    walk(&body[..riff_end.saturating_sub(12).min(body.len())], false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn riff(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut body = b"WEBP".to_vec();
        for (fourcc, data) in chunks {
            body.extend_from_slice(*fourcc);
            body.extend((data.len() as u32).to_le_bytes());
            body.extend(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut out = b"RIFF".to_vec();
        out.extend((body.len() as u32).to_le_bytes());
        out.extend(body);
        out
    }

    #[test]
    fn chunks_must_fit_in_the_file() {
        let good = riff(&[(b"VP8X", vec![0; 10]), (b"EXIF", vec![1, 2, 3])]);
        assert!(check(&good).is_ok());
        let mut lying = good.clone();
        let exif = lying.windows(4).position(|w| w == b"EXIF").unwrap();
        lying[exif + 4..exif + 8].copy_from_slice(&0xFF00_0000u32.to_le_bytes());
        assert!(check(&lying).is_err());
        let frame =
            riff(&[(b"ANMF", [vec![0; 16], b"VP8L".to_vec(), 0x00FF_FFFF_u32.to_le_bytes().to_vec()].concat())]);
        assert!(check(&frame).is_err(), "a nested chunk that does not fit");
        assert!(check(b"RIFF").is_err());
    }
}
