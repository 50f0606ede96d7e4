//! Face descriptors: dlib's ResNet-34 face embedder (dlib's model is public domain by its
//! author) as ported to TensorFlow.js by face-api (`@vladmandic/face-api`, MIT), converted to
//! ONNX by scripts/convert/faceapi_resnet_to_onnx.py. The model takes a 150 x 150 RGB face
//! (0-255; it subtracts the mean and scales itself) and gives 128 values; two faces of one
//! person are within about 0.6 of each other (Euclidean), dlib's own threshold.
//!
//! The face is cut from the detector's box: a square of the box's side around its centre,
//! turned so that the eyes (the detector's first two keypoints) are level, sampled bilinearly.
//! It separated people better than a plain square or crops placed by the eyes alone (whose
//! points, BlazeFace's, are coarse); tests/faces.rs measures the distances it gives on the
//! labelled faces of ../shared/data/faces (docs/benchmarks.md).

use crate::blazeface::Face;
use image::RgbImage;

/// The model's input side.
pub const SIZE: usize = 150;
/// One face's input shape (NHWC without the batch).
pub const INPUT: [usize; 3] = [SIZE, SIZE, 3];
/// The length of a descriptor.
pub const LEN: usize = 128;
/// What made the descriptors: kept with each one stored, so that descriptors of another model
/// are never compared with these (a change of model needs the people enrolled again).
pub const MODEL_ID: &str = "dlib-resnet34@face-api-1.7.15";

/// The model's input for one face of `image`: 150 x 150 x 3 floats, 0-255.
pub fn preprocess(image: &RgbImage, face: &Face) -> Vec<f32> {
    let [x, y, w, h] = face.bbox;
    let side = w.max(h);
    let (cx, cy) = (x + w / 2.0, y + h / 2.0);
    let [[lx, ly], [rx, ry]] = [face.keypoints[0], face.keypoints[1]];
    let angle = (ry - ly).atan2(rx - lx);
    let (cos, sin) = (angle.cos(), angle.sin());
    let step = side / SIZE as f32;
    let (width, height) = (image.width() as i64, image.height() as i64);
    let raw = image.as_raw();
    let pixel = |px: i64, py: i64, c: usize| -> f32 {
        if px < 0 || py < 0 || px >= width || py >= height {
            0.0
        } else {
            f32::from(raw[((py * width + px) * 3) as usize + c])
        }
    };
    let mut input = Vec::with_capacity(SIZE * SIZE * 3);
    for v in 0..SIZE {
        for u in 0..SIZE {
            // The chip's pixel centre, relative to the chip's centre, turned and scaled into the image.
            let (du, dv) = ((u as f32 + 0.5 - SIZE as f32 / 2.0) * step, (v as f32 + 0.5 - SIZE as f32 / 2.0) * step);
            let sx = cx + du * cos - dv * sin - 0.5;
            let sy = cy + du * sin + dv * cos - 0.5;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            for c in 0..3 {
                let top = pixel(x0, y0, c) * (1.0 - fx) + pixel(x0 + 1, y0, c) * fx;
                let bottom = pixel(x0, y0 + 1, c) * (1.0 - fx) + pixel(x0 + 1, y0 + 1, c) * fx;
                input.push(top * (1.0 - fy) + bottom * fy);
            }
        }
    }
    input
}

/// Euclidean distance between two descriptors.
pub fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(bbox: [f32; 4], left_eye: [f32; 2], right_eye: [f32; 2]) -> Face {
        let mut keypoints = [[0.0; 2]; 6];
        keypoints[0] = left_eye;
        keypoints[1] = right_eye;
        Face { score: 0.9, bbox, keypoints }
    }

    #[test]
    fn the_chip_is_the_box_turned_level_with_black_outside() {
        // Left half red, right half blue; a level face covering the image's middle.
        let image =
            RgbImage::from_fn(300, 300, |x, _| if x < 150 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) });
        let chip = preprocess(&image, &face([75.0, 75.0, 150.0, 150.0], [110.0, 120.0], [190.0, 120.0]));
        let at = |u: usize, v: usize, c: usize| chip[(v * SIZE + u) * 3 + c];
        assert_eq!((at(10, 75, 0), at(10, 75, 2)), (255.0, 0.0), "left: red");
        assert_eq!((at(140, 75, 0), at(140, 75, 2)), (0.0, 255.0), "right: blue");
        // The eyes on a vertical line (the head turned 90 degrees): the image is turned with it.
        let turned = preprocess(&image, &face([75.0, 75.0, 150.0, 150.0], [150.0, 110.0], [150.0, 190.0]));
        let at = |u: usize, v: usize, c: usize| turned[(v * SIZE + u) * 3 + c];
        assert_eq!(at(75, 10, 2), 255.0, "the chip's top is the image's right: blue");
        assert_eq!(at(75, 140, 0), 255.0, "its bottom is the image's left: red");
        // A face at the image's corner: outside is black.
        let corner = preprocess(&image, &face([-50.0, -50.0, 100.0, 100.0], [-20.0, -10.0], [20.0, -10.0]));
        assert_eq!(corner[0..3], [0.0, 0.0, 0.0]);
    }

    #[test]
    fn distance_is_euclidean() {
        assert_eq!(distance(&[0.0, 3.0], &[4.0, 0.0]), 5.0);
    }
}
