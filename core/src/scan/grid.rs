//! A sampling grid measured from the code's own timing patterns, for codes
//! that no single perspective transform maps onto their modules.
//!
//! Why: rxing's detectors (like zxing's) place the module grid by a
//! perspective transform through the finder patterns (and, from version 7,
//! per region between alignment patterns), with the version guessed from the
//! finder patterns' distance over their module size. A code printed on a
//! bottle, a can or a curled sheet breaks both: the modules near the edges
//! are foreshortened while the middle keeps its size, so the guessed
//! dimension is off by a version or more and a straight grid drifts by
//! modules across the code. Every QR code carries a ruler for exactly this:
//! the two timing patterns (row 6 and column 6, alternating dark and light
//! modules between the finder patterns). Counting their modules gives the
//! dimension; their edges give where every column and row actually lies.
//!
//! The finder patterns come from rxing's zxing-cpp detector on its own
//! binarization (the same candidates its pass tried); only the grid is ours,
//! and rxing's decoder (format, Reed–Solomon) judges the sampled modules, so a
//! wrong grid yields nothing rather than a wrong text.

use rxing::common::BitMatrix;
use rxing::common::cpp_essentials::ConcentricPattern;
use rxing::qrcode::cpp_port::decoder::Decode;
use rxing::qrcode::cpp_port::detector::{
    FindFinderPatterns, FinderPatternSet, GenerateFinderPatternSets, LocateAlignmentPattern,
    SampleQR,
};
use rxing::common::DetectorRXingResult;
use rxing::{Point, PointT};

/// At most this many detected finder-pattern triples are tried per image (as
/// rxing's own reader, which tries them all: its order puts small triangles
/// first, so a large code's true triple can come after dozens of
/// look-alikes; the timing-pattern check rejects a wrong one in a few
/// hundred pixel reads).
const MAX_SETS: usize = 256;

/// A finder-pattern candidate of our own search (centre and module size in
/// the pixels of the image decoded).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seed {
    pub x: f32,
    pub y: f32,
    pub module: f32,
}

/// The codes found from rxing's finder patterns plus `seeds` (ours, found
/// with another threshold and at other scales: they often hold the third
/// pattern rxing's search missed), each triple sampled first by rxing's
/// perspective grid, then by the timing-pattern grid; with the three finder
/// centres each code was located by.
pub(crate) fn decode(bits: &BitMatrix, seeds: &[Seed]) -> Vec<(String, Vec<(f32, f32)>)> {
    let mut patterns = FindFinderPatterns(bits, true, 0);
    for s in seeds {
        let size = (7.0 * s.module).round() as i32;
        if size < 7 || patterns.iter().any(|p| dist(p.p, pt(s.x, s.y)) < p.size.max(size) as f32 / 2.0) {
            continue;
        }
        if let Some(p) = dark_near(bits, pt(s.x, s.y), s.module / 2.0) {
            patterns.push(ConcentricPattern { p, size });
        }
    }
    let sets = GenerateFinderPatternSets(&mut patterns);

    let mut used: Vec<ConcentricPattern> = Vec::new();
    let mut out: Vec<(String, Vec<(f32, f32)>)> = Vec::new();
    let mut sets: Vec<FinderPatternSet> = sets.into_iter().take(MAX_SETS).collect();
    sets.extend(inferred_sets(bits, &patterns));
    for set in &sets {
        if [set.tl, set.tr, set.bl].iter().any(|p| used.contains(p)) {
            continue;
        }
        let perspective = SampleQR(bits, set)
            .ok()
            .and_then(|r| Decode(r.getBits()).ok())
            .filter(|r| r.isValid())
            .map(|r| r.text());
        if let Some(text) = perspective.or_else(|| decode_set(bits, set)) {
            used.extend([set.tl, set.tr, set.bl]);
            let points = [set.bl.p, set.tl.p, set.tr.p]
                .iter()
                .map(|p| (p.x, p.y))
                .collect();
            if !out.iter().any(|(t, _)| *t == text) {
                out.push((text, points));
            }
        }
    }
    out
}

/// rxing measures a finder pattern from its centre outwards and needs the
/// centre dark in its own binarization: the nearest dark pixel within `r`.
fn dark_near(bits: &BitMatrix, p: Point, r: f32) -> Option<Point> {
    let r = r.ceil() as i32;
    (0..=r)
        .flat_map(|d| (-d..=d).flat_map(move |dy| (-d..=d).map(move |dx| (dx, dy))))
        .map(|(dx, dy)| pt(p.x.floor() + dx as f32 + 0.5, p.y.floor() + dy as f32 + 0.5))
        .find(|&q| dark(bits, q))
}

/// At most this many triples with an inferred third pattern are tried.
const MAX_INFERRED: usize = 96;

/// Triples completed from two finder patterns: where glare, blur or a
/// curve hid the third from every search, QR geometry says where it is — a
/// side of the code away from one of the two, square to the line between
/// them (or the other corner of the square they are the diagonal of). Pairs
/// of like size, a code's distance apart; the inferred centre must be dark.
/// Pairs already in a detected triple count too: a look-alike in the data
/// often makes a wrong triple with two true patterns.
fn inferred_sets(bits: &BitMatrix, patterns: &[ConcentricPattern]) -> Vec<FinderPatternSet> {
    let mut out = Vec::new();
    for (i, a) in patterns.iter().enumerate() {
        for b in &patterns[i + 1..] {
            let (lo, hi) = (a.size.min(b.size), a.size.max(b.size));
            if lo < 7 || 2 * hi > 3 * lo {
                continue;
            }
            let module = (a.size + b.size) as f32 / 14.0;
            let d = dist(a.p, b.p) / module;
            let (vx, vy) = (b.p.x - a.p.x, b.p.y - a.p.y);
            let size = (a.size + b.size) / 2;
            // The third at `new`, as bl (`other` is tr) or as tr (`other` is bl).
            let mut push = |corner: &ConcentricPattern, other: &ConcentricPattern, new: Point, new_is_bl: bool| {
                let Some(p) = dark_near(bits, new, module) else { return };
                let made = ConcentricPattern { p, size };
                let (tr, bl) = if new_is_bl { (*other, made) } else { (made, *other) };
                out.push(FinderPatternSet { bl, tl: *corner, tr });
            };
            if (14.0..=170.0).contains(&d) {
                // a and b on one side: the third square to it at either end.
                for (corner, other, sx, sy) in [(a, b, vx, vy), (b, a, -vx, -vy)] {
                    // Clockwise and counter-clockwise quarter turns of the side.
                    let cw = pt(corner.p.x - sy, corner.p.y + sx);
                    let ccw = pt(corner.p.x + sy, corner.p.y - sx);
                    // With y down, (tr - tl) × (bl - tl) > 0 for an unmirrored
                    // code: other as tr and cw as bl, or ccw as tr and other as bl.
                    push(corner, other, cw, true);
                    push(corner, other, ccw, false);
                }
            }
            if (20.0..=240.0).contains(&d) {
                // a and b across the diagonal: the corner is off the midpoint.
                let (mx, my) = ((a.p.x + b.p.x) / 2.0, (a.p.y + b.p.y) / 2.0);
                for (hx, hy) in [(-vy / 2.0, vx / 2.0), (vy / 2.0, -vx / 2.0)] {
                    let c = pt(mx + hx, my + hy);
                    let Some(p) = dark_near(bits, c, module) else { continue };
                    let corner = ConcentricPattern { p, size };
                    // Orient: tr × bl > 0 around the corner.
                    let cross = (a.p.x - p.x) * (b.p.y - p.y) - (a.p.y - p.y) * (b.p.x - p.x);
                    let (tr, bl) = if cross > 0.0 { (*a, *b) } else { (*b, *a) };
                    out.push(FinderPatternSet { bl, tl: corner, tr });
                }
            }
            if out.len() >= MAX_INFERRED {
                return out;
            }
        }
    }
    out
}

fn pt(x: f32, y: f32) -> Point {
    PointT { x, y }
}

fn lerp(a: Point, b: Point, t: f32) -> Point {
    pt(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t)
}

fn dist(a: Point, b: Point) -> f32 {
    ((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt()
}

/// Whether the binarized image is dark at `p` (outside counts as light).
fn dark(bits: &BitMatrix, p: Point) -> bool {
    let (x, y) = (p.x.floor(), p.y.floor());
    x >= 0.0
        && y >= 0.0
        && (x as u32) < bits.width()
        && (y as u32) < bits.height()
        && bits.get(x as u32, y as u32)
}

/// Module positions along one timing pattern: `at(i)` is the path parameter
/// (0 at the first finder centre, 1 at the other) of module coordinate `i`
/// (3.5 = the first finder's centre, `dim - 3.5` = the other's).
struct Ruler {
    dim: u32,
    /// (module coordinate, path parameter), increasing in both.
    knots: Vec<(f32, f32)>,
}

impl Ruler {
    fn at(&self, m: f32) -> f32 {
        let k = &self.knots;
        let i = k.partition_point(|&(km, _)| km < m).clamp(1, k.len() - 1);
        let ((m0, t0), (m1, t1)) = (k[i - 1], k[i]);
        t0 + (m - m0) * (t1 - t0) / (m1 - m0)
    }
}

/// Reads the timing pattern along `path` (0 → 1, from the middle of one
/// finder pattern's inner edge row to the other's): the finder's dark ring,
/// then light, dark, light … light, then the other finder's ring. Returns
/// the dimension it implies and where each module edge lies, or `None` when
/// the runs do not look like a timing pattern.
fn measure(bits: &BitMatrix, path: impl Fn(f32) -> Point, module_px: f32) -> Option<Ruler> {
    let a = path(0.0);
    let b = path(1.0);
    let len = dist(a, b);
    if !(module_px >= 1.0 && len >= 14.0 * module_px * 0.5) {
        return None;
    }
    // Half-pixel steps: every module of at least one pixel is sampled twice.
    let steps = ((len * 2.0).ceil() as usize).max(2);
    let samples: Vec<bool> = (0..=steps)
        .map(|i| dark(bits, path(i as f32 / steps as f32)))
        .collect();
    // Runs as (colour, first sample, length).
    let mut runs: Vec<(bool, usize, usize)> = Vec::new();
    for (i, &d) in samples.iter().enumerate() {
        match runs.last_mut() {
            Some(r) if r.0 == d => r.2 += 1,
            _ => runs.push((d, i, 1)),
        }
    }
    // Specks shorter than a third of a module are noise: merge them into
    // their neighbours (repeat until none is left).
    let min_len = ((module_px * 2.0) / 3.0).max(1.0) as usize;
    while let Some(i) = (1..runs.len().saturating_sub(1)).find(|&i| runs[i].2 < min_len) {
        let (_, _, l) = runs.remove(i);
        let (_, _, next) = runs.remove(i);
        runs[i - 1].2 += l + next;
    }
    // Both ends must be the finder rings (dark), with at least light, dark,
    // light between them.
    if runs.len() < 5 || !runs[0].0 || !runs[runs.len() - 1].0 {
        return None;
    }
    let inner = &runs[1..runs.len() - 1];
    let dark_modules = inner.iter().filter(|r| r.0).count() as u32;
    let dim = 15 + 2 * dark_modules;
    if !(21..=177).contains(&dim) || !(dim - 17).is_multiple_of(4) {
        return None;
    }
    // A timing pattern's modules are all one module wide; along a curved
    // code their width changes slowly. Neighbours differing by more than 2×
    // are not a timing pattern (text, data modules, a missed edge).
    let lens: Vec<f32> = inner.iter().map(|r| r.2 as f32).collect();
    if lens.windows(2).any(|w| w[0] > 2.2 * w[1] || w[1] > 2.2 * w[0]) {
        return None;
    }
    let per_sample = 1.0 / steps as f32;
    let mut knots = vec![(3.5, 0.0)];
    for (k, r) in inner.iter().enumerate() {
        // The edge before run k is module edge 7 + k.
        knots.push(((7 + k) as f32, (r.1 as f32 - 0.5) * per_sample));
    }
    let last = inner.last().expect("at least three inner runs");
    knots.push(((dim - 7) as f32, ((last.1 + last.2) as f32 - 0.5) * per_sample));
    knots.push((dim as f32 - 3.5, 1.0));
    if knots.windows(2).any(|w| w[1].1 <= w[0].1) {
        return None;
    }
    Some(Ruler { dim, knots })
}

/// Module size in pixels of a finder pattern (its width is 7 modules).
fn module_px(p: &ConcentricPattern) -> f32 {
    p.size as f32 / 7.0
}

/// Sags tried for a timing pattern, in modules at its middle: 0 first
/// (straight), then bent either way. Seen from above or below its axis, a
/// cylinder's columns shift by r·(1 − cos φ)·sin α: the rows bow into arcs
/// that the three finder centres cannot show (docs/scanning.md).
const SAGS: [f32; 5] = [0.0, 0.8, -0.8, 1.6, -1.6];

/// A located code's three finder centres, their module sizes (each
/// corner's own, foreshortened) and the unit vectors along its top edge
/// (`right`) and left edge (`down`).
struct Frame {
    tl: Point,
    tr: Point,
    bl: Point,
    m_tl: f32,
    m_tr: f32,
    m_bl: f32,
    down: Point,
    right: Point,
}

impl Frame {
    fn of(fp: &FinderPatternSet) -> Frame {
        let (tl, tr, bl) = (fp.tl.p, fp.tr.p, fp.bl.p);
        let unit = |a: Point, b: Point| {
            let d = dist(a, b).max(1e-3);
            pt((b.x - a.x) / d, (b.y - a.y) / d)
        };
        Frame { tl, tr, bl, m_tl: module_px(&fp.tl), m_tr: module_px(&fp.tr), m_bl: module_px(&fp.bl), down: unit(tl, bl), right: unit(tl, tr) }
    }
}

/// The path of a timing pattern, as a function of 0..=1 from the finder
/// centre `from` (module size `m_from`) to the one at `to` (`m_to`): three
/// modules off the line between them along the unit vector `across` (row 6
/// lies 3 modules below the top finder centres, column 6 three to the right
/// of the left ones), the module size each end's own (foreshortened) one,
/// interpolated. A sag bows the path by that many modules at its middle
/// (parabola through both ends).
fn timing_path(from: Point, to: Point, m_from: f32, m_to: f32, across: Point, sag: f32) -> impl Fn(f32) -> Point {
    move |t: f32| {
        let m = m_from + (m_to - m_from) * t;
        let base = lerp(from, to, t);
        let off = (3.0 + sag * 4.0 * t * (1.0 - t)) * m;
        pt(base.x + across.x * off, base.y + across.y * off)
    }
}

fn decode_set(bits: &BitMatrix, fp: &FinderPatternSet) -> Option<String> {
    let Frame { tl, tr, bl, m_tl, m_tr, m_bl, down, right } = Frame::of(fp);
    // Row 6 runs 3 modules below the finder centres (row 3.5), column 6 three
    // to their right: see [`timing_path`].
    let row_path = |sag: f32| timing_path(tl, tr, m_tl, m_tr, down, sag);
    let col_path = |sag: f32| timing_path(tl, bl, m_tl, m_bl, right, sag);
    let cols: Vec<(f32, Ruler)> = SAGS
        .iter()
        .filter_map(|&b| measure(bits, row_path(b), (m_tl + m_tr) / 2.0).map(|r| (b, r)))
        .collect();
    let rows: Vec<(f32, Ruler)> = SAGS
        .iter()
        .filter_map(|&b| measure(bits, col_path(b), (m_tl + m_bl) / 2.0).map(|r| (b, r)))
        .collect();
    for (col_sag, cols) in &cols {
        for (row_sag, rows) in &rows {
            if cols.dim != rows.dim {
                continue;
            }
            if let Some(text) = sample(bits, fp, cols, rows, *col_sag, *row_sag) {
                return Some(text);
            }
        }
    }
    None
}

/// Samples the code located by `fp` on the grid `cols` × `rows` (each
/// column bowed by `col_sag` modules at the middle, each row by `row_sag`)
/// and decodes it.
fn sample(
    bits: &BitMatrix,
    fp: &FinderPatternSet,
    cols: &Ruler,
    rows: &Ruler,
    col_sag: f32,
    row_sag: f32,
) -> Option<String> {
    let Frame { tl, tr, bl, m_tl, m_tr, m_bl, down, right } = Frame::of(fp);
    let dim = cols.dim;
    // Module (c, r) → pixel: the affine frame of the three finder centres,
    // with each axis re-spaced by what its timing pattern measured, each
    // column moved along `down` by the sag its row-6 timing pattern took
    // (and each row along `right` by its column's), and (from version 2)
    // bent towards the alignment pattern near the fourth corner, which a
    // perspective view or a curve moves off the parallelogram.
    let affine = |c: f32, r: f32| {
        let (t, s) = (cols.at(c), rows.at(r));
        let bow_c = col_sag * 4.0 * t * (1.0 - t) * (m_tl + (m_tr - m_tl) * t);
        let bow_r = row_sag * 4.0 * s * (1.0 - s) * (m_tl + (m_bl - m_tl) * s);
        pt(
            tl.x + (tr.x - tl.x) * t + (bl.x - tl.x) * s + down.x * bow_c + right.x * bow_r,
            tl.y + (tr.y - tl.y) * t + (bl.y - tl.y) * s + down.y * bow_c + right.y * bow_r,
        )
    };
    let mut grids: Vec<Box<dyn Fn(f32, f32) -> Point + '_>> = Vec::new();
    if dim > 21 {
        let m = dim as f32 - 6.5;
        let guess = affine(m, m);
        let module = ((m_tl + m_tr + m_bl) / 3.0 + 1.0) as i32;
        if let Some(found) = LocateAlignmentPattern(bits, module, guess) {
            // Spread the alignment pattern's offset from the parallelogram
            // bilinearly (zero at the three finder centres).
            let (dx, dy) = (found.x - guess.x, found.y - guess.y);
            let (tm, sm) = (cols.at(m), rows.at(m));
            let corr = move |c: f32, r: f32| {
                let w = (cols.at(c) * rows.at(r)) / (tm * sm);
                (dx * w, dy * w)
            };
            grids.push(Box::new(move |c, r| {
                let p = affine(c, r);
                let (ex, ey) = corr(c, r);
                pt(p.x + ex, p.y + ey)
            }));
        }
    }
    grids.push(Box::new(affine));
    for grid in &grids {
        let mut sampled = BitMatrix::new(dim, dim).ok()?;
        for r in 0..dim {
            for c in 0..dim {
                if dark(bits, grid(c as f32 + 0.5, r as f32 + 0.5)) {
                    sampled.set(c, r);
                }
            }
        }
        if let Ok(result) = Decode(&sampled)
            && result.isValid()
        {
            return Some(result.text());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-5 code (37 modules) whose column `c` spans
    /// [`edge(c)`, `edge(c + 1)`) pixels, rows 4 px each, no quiet zone.
    fn code_matrix(edge: impl Fn(f32) -> f32) -> BitMatrix {
        let code = qrcode::QrCode::with_version(
            b"timing ruler".as_slice(),
            qrcode::Version::Normal(5),
            qrcode::EcLevel::M,
        )
        .unwrap();
        let n = code.width();
        let w = edge(n as f32).ceil() as u32 + 1;
        let mut bits = BitMatrix::new(w, 4 * n as u32).unwrap();
        for y in 0..4 * n as u32 {
            for x in 0..w {
                let c = (0..n).find(|&c| (x as f32) < edge((c + 1) as f32)).unwrap_or(n - 1);
                if code[(c, y as usize / 4)] == qrcode::Color::Dark {
                    bits.set(x, y);
                }
            }
        }
        bits
    }

    #[test]
    fn the_timing_pattern_gives_the_dimension_and_every_column_edge() {
        // Columns 6 px wide in the middle, 3 px at the edges (a code on a
        // cylinder): the edges of row 6's timing modules are where the
        // ruler puts them.
        let edge = |c: f32| {
            let u = c / 37.0 * 2.0 - 1.0; // -1..1 across the code
            37.0 * 4.5 * (1.0 + (u * 1.2).sin() / 1.2f32.sin()) / 2.0
        };
        let bits = code_matrix(edge);
        // Row 6 is pixels 24..28; the path runs from the middle of column 3
        // (module 3.5, a finder centre) to the middle of column 33.
        let (x0, x1) = ((edge(3.0) + edge(4.0)) / 2.0, (edge(33.0) + edge(34.0)) / 2.0);
        let path = |t: f32| pt(x0 + (x1 - x0) * t, 26.0);
        let ruler = measure(&bits, path, 4.0).expect("a timing pattern");
        assert_eq!(ruler.dim, 37);
        for c in 7..=30 {
            // Pixel x belongs to column c from the first x at or past edge(c).
            let drawn = edge(c as f32).ceil();
            let x = x0 + (x1 - x0) * ruler.at(c as f32);
            assert!((x - drawn).abs() <= 1.0, "edge {c}: {x} vs {drawn}");
        }
    }

    #[test]
    fn a_row_of_data_is_not_a_timing_pattern() {
        // Row 10 of the same code, evenly spaced: runs of data modules, not
        // single alternating modules between two finder rings.
        let bits = code_matrix(|c| 4.0 * c);
        let path = |t: f32| pt(14.0 + (134.0 - 14.0) * t, 42.0);
        assert!(measure(&bits, path, 4.0).is_none());
    }
}
