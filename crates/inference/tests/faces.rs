//! The face detector (full-range BlazeFace converted to ONNX, see `inference::blazeface`):
//! - its outputs equal the published TensorFlow.js model's, run under Node with the
//!   pure-JavaScript backend (tests/reference/tfjs, the model read from the package
//!   scripts/fetch.py downloaded), on the inputs the detector makes of the face photos;
//! - it finds the faces of ../shared/data/faces (boxes in face-boxes.csv, checked by eye once:
//!   every annotated face of labels.csv plus the faces of the knn_examples and the two-person
//!   photos), also with the photos shrunk 2 and 3 times into a canvas of their size;
//! - it finds none in photos and drawings without a face.
//!
//! Skipped, saying so, when ../shared is absent (a failure under CI=true).

mod common;

use common::{data, frame, load, reference_outputs, shared};
use inference::blazeface::{self, Square};
use inference::{dlib, faceres, Model};
use std::path::Path;

fn detector() -> &'static Model {
    static MODEL: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| load("face-detection-full.onnx", &blazeface::INPUT))
}

struct Annotated {
    path: String,
    boxes: Vec<[f32; 4]>,
}

fn annotated() -> Vec<Annotated> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/face-boxes.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let mut fields = line.split(',');
            let path = fields.next().unwrap().to_string();
            let count: usize = fields.next().unwrap().parse().unwrap();
            let boxes: Vec<[f32; 4]> = fields
                .next()
                .unwrap()
                .split(';')
                .map(|b| {
                    let v: Vec<f32> = b.split(' ').map(|n| n.parse().unwrap()).collect();
                    [v[0], v[1], v[2], v[3]]
                })
                .collect();
            assert_eq!(boxes.len(), count, "{path}");
            Annotated { path, boxes }
        })
        .collect()
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let h = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    w * h / (a[2] * a[3] + b[2] * b[3] - w * h)
}

/// The photo shrunk `k` times, pasted on a grey canvas of its own size (off centre), and where
/// its pixels went: (offset x, offset y, factor).
fn shrunk(image: &image::RgbImage, k: u32) -> (image::RgbImage, [f32; 3]) {
    let (w, h) = image.dimensions();
    if k == 1 {
        return (image.clone(), [0.0, 0.0, 1.0]);
    }
    let small = image::imageops::resize(image, w / k, h / k, image::imageops::FilterType::Triangle);
    let mut canvas = image::RgbImage::from_pixel(w, h, image::Rgb([128, 128, 128]));
    let (x, y) = ((w - w / k) / 3, (h - h / k) / 2);
    image::imageops::replace(&mut canvas, &small, i64::from(x), i64::from(y));
    (canvas, [x as f32, y as f32, (w / k) as f32 / w as f32])
}

#[test]
fn faces_are_found_in_portraits_groups_and_shrunk_photos() {
    let Some(data) = data("the face photos") else { return };
    let photos = annotated();
    let total: usize = photos.iter().map(|p| p.boxes.len()).sum();
    let mut found_at = Vec::new();
    for k in 1..=3 {
        let (mut found, mut extra) = (0, 0);
        for photo in &photos {
            let (image, scale) = frame(&data.join(&photo.path));
            let (canvas, [x, y, f]) = shrunk(&image, k);
            let faces = blazeface::detect(detector(), &canvas, None).unwrap();
            let truth: Vec<[f32; 4]> = photo
                .boxes
                .iter()
                .map(|b| [b[0] * scale * f + x, b[1] * scale * f + y, b[2] * scale * f, b[3] * scale * f])
                .collect();
            let (w, h) = canvas.dimensions();
            let hits = truth.iter().filter(|t| faces.iter().any(|d| iou(t, &d.clamped(w, h)) >= 0.4)).count();
            if hits < truth.len() || faces.len() > hits {
                println!("{}x {}: {hits} of {} faces, {} found", k, photo.path, truth.len(), faces.len());
            }
            found += hits;
            extra += faces.len().saturating_sub(hits);
        }
        println!("{k}x: {found} of {total} faces found, {extra} other boxes");
        found_at.push((found, extra));
    }
    // Measured 2026-12-07 (docs/benchmarks.md): 32, 32 and 31 of 32 (at 3x a turned face's box
    // moved off the annotated one).
    assert_eq!(found_at[0], (total, 0), "every face at full size, nothing else");
    assert!(found_at[1].0 >= total - 1 && found_at[1].1 == 0, "shrunk 2 times: {:?}", found_at[1]);
    assert!(found_at[2].0 >= total - 3 && found_at[2].1 <= 1, "shrunk 3 times: {:?}", found_at[2]);
}

#[test]
fn no_face_is_found_where_there_is_none() {
    let Some(data) = data("the face photos") else { return };
    let safe = data.join("safe");
    // Photos, drawings and textures without a person (the safe images with faces are left out,
    // and so is nsfwjs's drawn cat, whose face the detector takes for one at 0.55).
    let without_faces = [
        "skimage/brick.png",
        "skimage/cell.png",
        "skimage/chelsea.png",
        "skimage/coffee.png",
        "skimage/coins.png",
        "skimage/color.png",
        "skimage/grass.png",
        "skimage/gravel.png",
        "skimage/horse.png",
        "skimage/hubble_deep_field.jpg",
        "skimage/ihc.png",
        "skimage/logo.png",
        "skimage/microaneurysms.png",
        "skimage/moon.png",
        "skimage/motorcycle_left.png",
        "skimage/page.png",
        "skimage/phantom.png",
        "skimage/retina.jpg",
        "skimage/rocket.jpg",
        "skimage/text.png",
        "skimage/chessboard_RGB.png",
        "skimage/clock_motion.png",
        "nsfwspy/flower.jpg",
        "nsfwjs_examples/house.webp",
        "matplotlib/logo2.png",
        "matplotlib/Minduka_Present_Blue_Pack.png",
    ];
    for name in without_faces {
        let (image, _) = frame(&safe.join(name));
        let faces = blazeface::detect(detector(), &image, None).unwrap();
        assert!(faces.is_empty(), "{name}: {faces:?}");
    }
    // The 25 x 25 background crops of the LFW subset (read directly: the server refuses images
    // that small); its face crops, cut tight with no head around them, are mostly not found
    // (reported, not a target: faces come with a head).
    let lfw = data.join("faces/skimage_lfw_subset");
    let count = |folder: &str| {
        shared::files_under(&lfw.join(folder))
            .iter()
            .filter(|p| !blazeface::detect(detector(), &image::open(p).unwrap().to_rgb8(), None).unwrap().is_empty())
            .count()
    };
    assert_eq!(count("nonface"), 0, "a face in a background crop");
    println!("LFW 25x25 face crops with a face found: {} of 100", count("face"));
}

#[test]
fn the_converted_detector_matches_the_published_model() {
    let Some(data) = data("the face photos") else { return };
    // The whole photo letterboxed, and a tile of it, as the detector makes its inputs.
    let mut inputs = Vec::new();
    for photo in annotated().iter().take(6) {
        let (image, _) = frame(&data.join(&photo.path));
        let (w, h) = image.dimensions();
        inputs.push(blazeface::preprocess(&image, Square::letterbox(w, h)));
        let side = w.min(h) as f32 * 0.45;
        inputs.push(blazeface::preprocess(&image, Square { x: w as f32 * 0.2, y: h as f32 * 0.1, side }));
    }
    let mut shape = vec![1];
    shape.extend(blazeface::INPUT);
    let expected = reference_outputs("facemesh-detection-full", &["Identity"], &inputs, &shape);
    let (mut worst, mut worst_score, mut largest) = (0f32, 0f32, 0f32);
    for (input, reference) in inputs.into_iter().zip(&expected) {
        let ours = detector().run(input).unwrap();
        assert_eq!(ours.len(), reference.len());
        for (row, theirs) in ours.chunks_exact(17).zip(reference.chunks_exact(17)) {
            let sigmoid = |v: f32| 1.0 / (1.0 + (-v.clamp(-100.0, 100.0)).exp());
            worst_score = worst_score.max((sigmoid(row[0]) - sigmoid(theirs[0])).abs());
            for (a, b) in row.iter().zip(theirs) {
                worst = worst.max((a - b).abs());
                largest = largest.max(b.abs());
            }
        }
    }
    println!(
        "face detector: {} inputs, largest difference {worst:.2e} (values up to {largest:.0}), in a score {worst_score:.2e}",
        expected.len()
    );
    assert!(worst <= 1e-3, "largest difference {worst}");
    assert!(worst_score <= 1e-5, "largest score difference {worst_score}");
}

fn embedder() -> &'static Model {
    static MODEL: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| load("face-descriptor-dlib.onnx", &dlib::INPUT))
}

/// The labelled faces of ../shared/data/faces: (person, photo, which face: the largest, or the
/// leftmost / rightmost of a two-person photo).
const PEOPLE: &[(&str, &str, &str)] = &[
    ("alex_lacamoire", "examples/knn_examples/train/alex_lacamoire/img1.jpg", "largest"),
    ("alex_lacamoire", "examples/knn_examples/test/alex_lacamoire1.jpg", "largest"),
    ("alex_lacamoire", "examples/alex-lacamoire.png", "largest"),
    ("biden", "examples/knn_examples/train/biden/biden.jpg", "largest"),
    ("biden", "examples/knn_examples/train/biden/biden2.jpg", "largest"),
    ("kit_harington", "examples/knn_examples/train/kit_harington/john1.jpeg", "largest"),
    ("kit_harington", "examples/knn_examples/train/kit_harington/john2.jpeg", "largest"),
    ("kit_harington", "examples/knn_examples/test/johnsnow_test1.jpg", "largest"),
    ("kit_harington", "examples/knn_examples/test/kit_with_rose.jpg", "right"),
    ("rose_leslie", "examples/knn_examples/train/rose_leslie/img1.jpg", "largest"),
    ("rose_leslie", "examples/knn_examples/train/rose_leslie/img2.jpg", "largest"),
    ("rose_leslie", "examples/knn_examples/test/kit_with_rose.jpg", "left"),
    ("obama", "examples/knn_examples/train/obama/obama.jpg", "largest"),
    ("obama", "examples/knn_examples/train/obama/obama2.jpg", "largest"),
    ("obama", "examples/knn_examples/test/obama1.jpg", "largest"),
    ("obama", "tests/test_images/obama3.jpg", "largest"),
    ("obama", "examples/obama-720p.jpg", "largest"),
    ("obama", "examples/obama_small.jpg", "largest"),
    ("lin_manuel_miranda", "examples/lin-manuel-miranda.png", "largest"),
];

/// The chip the embedder is given for each labelled face, with its person.
fn labelled_chips(data: &Path) -> Vec<(&'static str, Vec<f32>)> {
    PEOPLE
        .iter()
        .map(|(person, path, which)| {
            let (image, _) = frame(&data.join("faces/face_recognition").join(path));
            let faces = blazeface::detect(detector(), &image, None).unwrap();
            let face = match *which {
                "left" => faces.iter().take(2).min_by(|a, b| a.bbox[0].total_cmp(&b.bbox[0])),
                "right" => faces.iter().take(2).max_by(|a, b| a.bbox[0].total_cmp(&b.bbox[0])),
                _ => faces.first(),
            };
            (*person, dlib::preprocess(&image, face.unwrap_or_else(|| panic!("no face in {path}"))))
        })
        .collect()
}

#[test]
fn the_converted_embedder_matches_face_api() {
    let Some(data) = data("the face photos") else { return };
    let chips: Vec<Vec<f32>> = labelled_chips(&data).into_iter().take(6).map(|(_, chip)| chip).collect();
    let mut shape = vec![1];
    shape.extend(dlib::INPUT);
    let expected = reference_outputs("faceapi:faceRecognitionNet", &[""], &chips, &shape);
    let mut worst = 0f32;
    for (chip, reference) in chips.into_iter().zip(&expected) {
        let ours = embedder().run(chip).unwrap();
        assert_eq!(ours.len(), dlib::LEN);
        worst = worst.max(ours.iter().zip(reference).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max));
    }
    println!("face embedder: {} faces, largest difference {worst:.2e} (descriptor values about +-0.4)", expected.len());
    assert!(worst <= 1e-4, "largest difference {worst}");
}

/// Every pair of labelled faces: photos of one person within dlib's 0.6, of two people beyond.
#[test]
fn descriptors_tell_people_apart() {
    let Some(data) = data("the face photos") else { return };
    let described: Vec<(&str, Vec<f32>)> =
        labelled_chips(&data).into_iter().map(|(person, chip)| (person, embedder().run(chip).unwrap())).collect();
    let (mut same, mut different) = (Vec::new(), Vec::new());
    for (i, (a, da)) in described.iter().enumerate() {
        for (b, db) in &described[i + 1..] {
            let distance = dlib::distance(da, db);
            if a == b {
                same.push(distance)
            } else {
                different.push(distance)
            }
        }
    }
    let stats = |v: &mut Vec<f32>| {
        v.sort_by(f32::total_cmp);
        (v[0], v[v.len() / 2], v[v.len() - 1], v.len())
    };
    let (s, d) = (stats(&mut same), stats(&mut different));
    println!("same person: {} pairs, min {:.3} median {:.3} max {:.3}", s.3, s.0, s.1, s.2);
    println!("different people: {} pairs, min {:.3} median {:.3} max {:.3}", d.3, d.0, d.1, d.2);
    assert!(s.2 < 0.6 && d.0 > 0.6, "same up to {:.3}, different from {:.3}", s.2, d.0);
}

/// Faces of known age: the photo, the face (by its left edge, in the photo's pixels), the age
/// and why it is known (birth dates and the photos' public dates).
const AGES: &[(&str, f32, f32, &str)] = &[
    ("examples/knn_examples/test/obama_and_biden.jpg", 725.0, 65.0, "Joe Biden (born November 1942), August 2008"),
    ("examples/knn_examples/test/obama_and_biden.jpg", 1139.0, 47.0, "Barack Obama (born August 1961), August 2008"),
    (
        "examples/knn_examples/test/obama_and_biden.jpg",
        1604.0,
        8.5,
        "one of his daughters (born 1998 and 2001): 7 to 10",
    ),
    ("examples/obama.jpg", 358.0, 51.0, "Obama's official portrait, December 2012"),
    ("examples/biden.jpg", 417.0, 70.0, "Biden's official portrait, January 2013"),
];

fn ager() -> &'static Model {
    static MODEL: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| load("faceres-age.onnx", &faceres::INPUT))
}

/// The opt-in age model (fetched by scripts/test.sh): the same outputs as the published
/// TensorFlow.js model; no labelled adult estimated under 18 (the estimates run years young).
/// The one labelled child (her face turned down, in shadow) is estimated an adult: printed, and
/// said in docs/faces.md, because it is what the model does.
#[test]
fn ages_are_estimated_young_and_no_adult_under_eighteen() {
    let Some(data) = data("the face photos") else { return };
    let mut inputs = Vec::new();
    for (path, left, _, _) in AGES {
        let (image, _) = frame(&data.join("faces/face_recognition").join(path));
        let faces = blazeface::detect(detector(), &image, None).unwrap();
        let face = faces.iter().find(|f| (f.bbox[0] - left).abs() < 40.0).unwrap_or_else(|| panic!("{path} at {left}"));
        inputs.push(faceres::preprocess(&image, face));
    }
    let mut shape = vec![1];
    shape.extend(faceres::INPUT);
    let expected = reference_outputs("faceres", &["age_pred/Softmax"], &inputs, &shape);
    let (mut worst, mut errors) = (0f32, Vec::new());
    for ((input, reference), (path, _, age, who)) in inputs.into_iter().zip(&expected).zip(AGES) {
        let ours = ager().run(input).unwrap();
        worst = worst.max(ours.iter().zip(reference).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max));
        let estimate = faceres::age(&ours).unwrap();
        println!("{path}: {who}: {age} years, estimated {estimate:.1}");
        if *age >= 18.0 {
            assert!(estimate >= 18.0, "{who}: {estimate}");
            errors.push(estimate - age);
        }
    }
    let mean = errors.iter().sum::<f32>() / errors.len() as f32;
    let absolute = errors.iter().map(|e| e.abs()).sum::<f32>() / errors.len() as f32;
    println!("age model: largest difference {worst:.2e} from the published model; adults: mean error {absolute:.1} years, bias {mean:+.1}");
    assert!(worst <= 1e-4, "largest difference {worst}");
}
