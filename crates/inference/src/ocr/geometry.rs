//! The geometry of PP-OCR's DB post-processing and crops, in place of OpenCV's: connected regions
//! of a binary map (`findContours`), their minimum-area rectangles (`minAreaRect`), the mean of a
//! map inside a quadrilateral (`fillPoly` + `mean`), and perspective crops (`warpPerspective`,
//! bicubic, replicated border).

use image::RgbImage;

pub type Point = [f64; 2];
/// Four corners: top-left, top-right, bottom-right, bottom-left.
pub type Quad = [Point; 4];

/// The border pixels of each 8-connected region of `mask` (row-major, `width` wide): the points
/// whose hull is the region's hull, as the contour OpenCV would trace.
pub fn regions(mask: &[bool], width: usize, height: usize) -> Vec<Vec<Point>> {
    let mut label = vec![false; mask.len()];
    let mut regions = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || label[start] {
            continue;
        }
        label[start] = true;
        stack.push(start);
        let mut border = Vec::new();
        while let Some(i) = stack.pop() {
            let (x, y) = ((i % width) as i64, (i / width) as i64);
            let mut inner = true;
            for dy in -1..=1i64 {
                for dx in -1..=1i64 {
                    if dx == 0 && dy == 0 {
                        continue;
                    }
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                        inner = false;
                        continue;
                    }
                    let j = ny as usize * width + nx as usize;
                    if !mask[j] {
                        inner = false;
                    } else if !label[j] {
                        label[j] = true;
                        stack.push(j);
                    }
                }
            }
            if !inner {
                border.push([x as f64, y as f64]);
            }
        }
        regions.push(border);
    }
    regions
}

fn cross(o: Point, a: Point, b: Point) -> f64 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// The convex hull, counter-clockwise (Andrew's monotone chain).
pub fn convex_hull(points: &[Point]) -> Vec<Point> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    sorted.dedup();
    if sorted.len() < 3 {
        return sorted;
    }
    let mut hull: Vec<Point> = Vec::with_capacity(sorted.len() * 2);
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &Point>> =
            if pass == 0 { Box::new(sorted.iter()) } else { Box::new(sorted.iter().rev()) };
        for &p in iter {
            while hull.len() >= start + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0 {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

/// A rotated rectangle: centre, side lengths along its two axes, and the first axis' direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub center: Point,
    pub size: [f64; 2],
    pub axis: Point,
}

impl Rect {
    pub fn short_side(&self) -> f64 {
        self.size[0].min(self.size[1])
    }

    /// The same rectangle grown by `d` on every side.
    pub fn grown(&self, d: f64) -> Rect {
        Rect { size: [self.size[0] + 2.0 * d, self.size[1] + 2.0 * d], ..*self }
    }

    pub fn corners(&self) -> [Point; 4] {
        let [ux, uy] = self.axis;
        let (vx, vy) = (-uy, ux);
        let (hw, hh) = (self.size[0] / 2.0, self.size[1] / 2.0);
        let [cx, cy] = self.center;
        [
            [cx - ux * hw - vx * hh, cy - uy * hw - vy * hh],
            [cx + ux * hw - vx * hh, cy + uy * hw - vy * hh],
            [cx + ux * hw + vx * hh, cy + uy * hw + vy * hh],
            [cx - ux * hw + vx * hh, cy - uy * hw + vy * hh],
        ]
    }
}

/// The smallest-area rectangle around `points` (rotating calipers over the hull's edges).
pub fn min_area_rect(points: &[Point]) -> Rect {
    let hull = convex_hull(points);
    match hull.len() {
        0 => return Rect { center: [0.0, 0.0], size: [0.0, 0.0], axis: [1.0, 0.0] },
        1 => return Rect { center: hull[0], size: [0.0, 0.0], axis: [1.0, 0.0] },
        _ => {}
    }
    let mut best: Option<(f64, Rect)> = None;
    for i in 0..hull.len() {
        let (a, b) = (hull[i], hull[(i + 1) % hull.len()]);
        let length = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
        if length == 0.0 {
            continue;
        }
        let u = [(b[0] - a[0]) / length, (b[1] - a[1]) / length];
        let v = [-u[1], u[0]];
        let (mut min_u, mut max_u, mut min_v, mut max_v) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in &hull {
            let (pu, pv) = (p[0] * u[0] + p[1] * u[1], p[0] * v[0] + p[1] * v[1]);
            min_u = min_u.min(pu);
            max_u = max_u.max(pu);
            min_v = min_v.min(pv);
            max_v = max_v.max(pv);
        }
        let area = (max_u - min_u) * (max_v - min_v);
        if best.as_ref().is_none_or(|(a, _)| area < *a) {
            let (cu, cv) = ((min_u + max_u) / 2.0, (min_v + max_v) / 2.0);
            let center = [cu * u[0] + cv * v[0], cu * u[1] + cv * v[1]];
            best = Some((area, Rect { center, size: [max_u - min_u, max_v - min_v], axis: u }));
        }
    }
    best.map(|(_, r)| r).expect("a hull of two or more points has an edge")
}

/// The corners ordered as PP-OCR's `get_mini_boxes` orders them: of the two leftmost, the upper
/// first; then the upper and lower of the two rightmost; then the lower left.
pub fn mini_box(corners: [Point; 4]) -> Quad {
    let mut points = corners;
    points.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (first, fourth) = if points[1][1] > points[0][1] { (0, 1) } else { (1, 0) };
    let (second, third) = if points[3][1] > points[2][1] { (2, 3) } else { (3, 2) };
    [points[first], points[second], points[third], points[fourth]]
}

/// Whether the integer point is inside the convex quadrilateral or on its edge.
fn inside(quad: &Quad, x: f64, y: f64) -> bool {
    let mut sign = 0.0;
    for i in 0..4 {
        let c = cross(quad[i], quad[(i + 1) % 4], [x, y]);
        if c != 0.0 {
            if sign != 0.0 && (c > 0.0) != (sign > 0.0) {
                return false;
            }
            sign = c;
        }
    }
    true
}

/// The mean of `map` over the pixels inside `quad` (its corners truncated to integers, as
/// `fillPoly` takes them), PP-OCR's "fast" box score.
pub fn mean_inside(map: &[f32], width: usize, height: usize, quad: &Quad) -> f32 {
    let xs = quad.iter().map(|p| p[0]);
    let ys = quad.iter().map(|p| p[1]);
    let clamp_x = |v: f64| (v as i64).clamp(0, width as i64 - 1);
    let clamp_y = |v: f64| (v as i64).clamp(0, height as i64 - 1);
    let (x0, x1) = (clamp_x(xs.clone().fold(f64::MAX, f64::min).floor()), clamp_x(xs.fold(f64::MIN, f64::max).ceil()));
    let (y0, y1) = (clamp_y(ys.clone().fold(f64::MAX, f64::min).floor()), clamp_y(ys.fold(f64::MIN, f64::max).ceil()));
    let truncated: Quad = quad.map(|p| [p[0].trunc(), p[1].trunc()]);
    let (mut sum, mut count) = (0f64, 0u64);
    for y in y0..=y1 {
        for x in x0..=x1 {
            if inside(&truncated, x as f64, y as f64) {
                sum += f64::from(map[y as usize * width + x as usize]);
                count += 1;
            }
        }
    }
    if count == 0 {
        0.0
    } else {
        (sum / count as f64) as f32
    }
}

/// Orders four points top-left, top-right, bottom-right, bottom-left (by x, then by y on each
/// side), as PP-OCR's `order_points_clockwise`.
pub fn clockwise(quad: Quad) -> Quad {
    let mut by_x = quad;
    by_x.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (mut left, mut right) = ([by_x[0], by_x[1]], [by_x[2], by_x[3]]);
    left.sort_by(|a, b| a[1].total_cmp(&b[1]));
    right.sort_by(|a, b| a[1].total_cmp(&b[1]));
    [left[0], right[0], right[1], left[1]]
}

pub fn distance(a: Point, b: Point) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// The 3 x 3 homography taking `from[i]` to `to[i]`.
fn homography(from: &Quad, to: &Quad) -> [f64; 9] {
    // Eight equations in h0..h7 (h8 = 1), solved by Gaussian elimination with pivoting.
    let mut m = [[0f64; 9]; 8];
    for i in 0..4 {
        let ([x, y], [u, v]) = (from[i], to[i]);
        m[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        m[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    for col in 0..8 {
        let pivot = (col..8).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs())).expect("rows remain");
        m.swap(col, pivot);
        let p = m[col][col];
        if p.abs() < 1e-12 {
            continue;
        }
        let pivot_row = m[col];
        for (row, values) in m.iter_mut().enumerate() {
            if row != col {
                let f = values[col] / p;
                for (value, pivot) in values.iter_mut().zip(pivot_row).skip(col) {
                    *value -= f * pivot;
                }
            }
        }
    }
    let mut h = [0f64; 9];
    for i in 0..8 {
        h[i] = if m[i][i].abs() < 1e-12 { 0.0 } else { m[i][8] / m[i][i] };
    }
    h[8] = 1.0;
    h
}

/// OpenCV's bicubic weights (A = -0.75) for a fractional offset.
fn cubic_weights(t: f64) -> [f64; 4] {
    const A: f64 = -0.75;
    let w0 = ((A * (t + 1.0) - 5.0 * A) * (t + 1.0) + 8.0 * A) * (t + 1.0) - 4.0 * A;
    let w1 = ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0;
    let w2 = ((A + 2.0) * (1.0 - t) - (A + 3.0)) * (1.0 - t) * (1.0 - t) + 1.0;
    [w0, w1, w2, 1.0 - w0 - w1 - w2]
}

/// The quadrilateral `quad` of `image` straightened to a `width` x `height` rectangle.
pub fn warp(image: &RgbImage, quad: &Quad, width: u32, height: u32) -> RgbImage {
    let (w, h) = (f64::from(width), f64::from(height));
    let target: Quad = [[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]];
    // Each output pixel is looked up in the source: the map from the rectangle back to the quad.
    let back = homography(&target, quad);
    let (iw, ih) = (image.width() as i64, image.height() as i64);
    let pixel = |x: i64, y: i64| image.get_pixel(x.clamp(0, iw - 1) as u32, y.clamp(0, ih - 1) as u32);
    RgbImage::from_fn(width, height, |x, y| {
        let (xf, yf) = (f64::from(x), f64::from(y));
        let d = back[6] * xf + back[7] * yf + back[8];
        let sx = (back[0] * xf + back[1] * yf + back[2]) / d;
        let sy = (back[3] * xf + back[4] * yf + back[5]) / d;
        let (x0, y0) = (sx.floor(), sy.floor());
        let (wx, wy) = (cubic_weights(sx - x0), cubic_weights(sy - y0));
        let (x0, y0) = (x0 as i64, y0 as i64);
        image::Rgb(std::array::from_fn(|c| {
            let mut sum = 0.0;
            for (j, wyj) in wy.iter().enumerate() {
                for (i, wxi) in wx.iter().enumerate() {
                    sum += wyj * wxi * f64::from(pixel(x0 - 1 + i as i64, y0 - 1 + j as i64)[c]);
                }
            }
            sum.round().clamp(0.0, 255.0) as u8
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_rectangle_is_found_again() {
        // A 40 x 10 bar turned by 30 degrees, as pixels.
        let (w, h) = (100usize, 100usize);
        let (angle, cx, cy) = (30f64.to_radians(), 50.0, 50.0);
        let mask: Vec<bool> = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f64 - cx, (i / w) as f64 - cy);
                let (u, v) = (x * angle.cos() + y * angle.sin(), -x * angle.sin() + y * angle.cos());
                u.abs() <= 20.0 && v.abs() <= 5.0
            })
            .collect();
        let found = regions(&mask, w, h);
        assert_eq!(found.len(), 1);
        let rect = min_area_rect(&found[0]);
        let (long, short) = (rect.size[0].max(rect.size[1]), rect.short_side());
        assert!((long - 40.0).abs() < 2.5 && (short - 10.0).abs() < 2.5, "{rect:?}");
        assert!((rect.center[0] - cx).abs() < 1.0 && (rect.center[1] - cy).abs() < 1.0);
    }

    #[test]
    fn two_blobs_are_two_regions_and_scores_are_means() {
        let (w, h) = (20usize, 10usize);
        let mask: Vec<bool> = (0..w * h).map(|i| (i % w < 5 || i % w > 14) && i / w > 2).collect();
        assert_eq!(regions(&mask, w, h).len(), 2);
        let map: Vec<f32> = (0..w * h).map(|i| if i % w < 10 { 1.0 } else { 0.0 }).collect();
        let quad: Quad = [[0.0, 0.0], [9.0, 0.0], [9.0, 9.0], [0.0, 9.0]];
        assert_eq!(mean_inside(&map, w, h, &quad), 1.0);
        let half: Quad = [[5.0, 0.0], [14.0, 0.0], [14.0, 9.0], [5.0, 9.0]];
        assert_eq!(mean_inside(&map, w, h, &half), 0.5);
    }

    #[test]
    fn an_upright_warp_is_a_copy() {
        let image = RgbImage::from_fn(30, 20, |x, y| image::Rgb([x as u8 * 8, y as u8 * 12, 7]));
        let quad: Quad = [[5.0, 4.0], [25.0, 4.0], [25.0, 14.0], [5.0, 14.0]];
        let crop = warp(&image, &quad, 20, 10);
        for (x, y, p) in crop.enumerate_pixels() {
            assert_eq!(p, image.get_pixel(x + 5, y + 4));
        }
    }

    #[test]
    fn corners_are_ordered() {
        let quad: Quad = [[10.0, 10.0], [0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
        assert_eq!(clockwise(quad), [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]);
    }
}
