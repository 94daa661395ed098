//! Finder-pattern candidates: a cheap look for the three 1:1:3:1:1 squares
//! every QR code has in its corners, before any decoder runs.
//!
//! Why: most camera frames hold no code (the phone is still being aimed), and
//! a frame without a code used to run every decoder pass, many times slower
//! than zxing-cpp (docs/scanning.md). Every decoder we run needs finder
//! patterns to locate a code, so a frame in which no two candidates could
//! belong to one code — in either polarity, at any of the scales the passes
//! use — ends here (two, not three: see [`in_code_pairs`]). The same candidates also tell the scanner when every code in the
//! frame has been read (each candidate lies inside a decoded code), so it
//! stops after the first pass that reads them all instead of running the rest
//! for a code that is not there.
//!
//! The detector follows ZXing's: a block-local threshold (8×8 blocks, each
//! compared with the mean of the 5×5 blocks around it, flat blocks taken as
//! background), a scan of every row for five runs in the ratio 1:1:3:1:1 within
//! half a module (+½ px, zxing-cpp's tolerance), and the same check down the
//! column through the centre. Both polarities count, so light-on-dark codes are
//! seen too. It is deliberately more permissive than the decoders — a false
//! candidate costs only time, a missed one would cost a read.

use image::{ImageBuffer, Luma};

/// Pixels per side of a threshold block.
const BLOCK: usize = 8;
/// Blocks whose max−min is at most this are flat. Half of zxing's
/// MIN_DYNAMIC_RANGE (24): over- and under-exposed codes have less contrast
/// than that and our local-mean pass still reads them; the dead zone below,
/// not this, is what keeps sensor noise out.
const MIN_DYNAMIC_RANGE: i32 = 12;
/// Dead zone around the threshold, in grey levels: a sixth of the local
/// range, at least about two standard deviations of phone sensor noise, at
/// most a tenth of a printed code's contrast.
const MIN_DEAD_ZONE: i32 = 8;
const MAX_DEAD_ZONE: i32 = 12;
/// A finder pattern is crossed by several rows; a candidate seen on fewer is
/// noise.
const MIN_ROWS: u32 = 2;
/// At most this many candidates are kept, those seen on the most rows (a
/// real finder pattern is crossed by about three modules' worth of rows; a
/// page of text makes hundreds of one-row look-alikes).
pub(crate) const MAX_CANDIDATES: usize = 64;

/// One finder-pattern candidate, in the coordinates of the image searched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    pub x: f32,
    pub y: f32,
    /// Estimated module size in pixels.
    pub module: f32,
    /// On some row the ratio also held along both diagonals, as it does
    /// through the centre of three concentric squares at any angle.
    pub square: bool,
}

/// The candidates in `img` seen on at least [`MIN_ROWS`] rows, at most
/// [`MAX_CANDIDATES`] of them (those seen on the most rows); the flag says
/// whether more were left out (a busy scene).
///
/// Every row is scanned, top to bottom. (Every second or third row, with
/// the rows around a hit scanned too, was measured: a third faster on real
/// scenes, but it lost a blurred photo's read whose gate pass rested on two
/// look-alikes seen on one row each — docs/scanning.md.)
///
/// `img` may borrow its pixels (the caller's frame, searched in place).
pub(crate) fn candidates<C: std::ops::Deref<Target = [u8]>>(img: &ImageBuffer<Luma<u8>, C>) -> (Vec<Candidate>, bool) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out: Vec<Candidate> = Vec::new();
    let mut rows: Vec<u32> = Vec::new();
    if w < 7 || h < 7 {
        return (out, false);
    }
    let mut bin = Binarized::new(img);
    let mut row_hits: Vec<(f32, f32)> = Vec::new();
    let mut hits: Vec<Candidate> = Vec::new();
    'rows: for y in 0..h {
        hits.clear();
        scan_row(&mut bin, y, &mut row_hits, &mut hits);
        for c in hits.drain(..) {
            match out.iter().position(|o| near(o, &c)) {
                Some(i) => {
                    rows[i] += 1;
                    out[i].square |= c.square;
                }
                None => {
                    out.push(c);
                    rows.push(1);
                    // Far more than any frame of codes has: a busy scene;
                    // the strongest so far are kept below.
                    if out.len() > 16 * MAX_CANDIDATES {
                        break 'rows;
                    }
                }
            }
        }
    }
    let mut kept: Vec<(Candidate, u32)> = out
        .into_iter()
        .zip(rows)
        .filter(|(_, n)| *n >= MIN_ROWS)
        .collect();
    let busy = kept.len() > MAX_CANDIDATES;
    if busy {
        kept.sort_by_key(|k| std::cmp::Reverse(k.1));
        kept.truncate(MAX_CANDIDATES);
    }
    (kept.into_iter().map(|(c, _)| c).collect(), busy)
}

/// Scans row `y` for 1:1:3:1:1 runs, checks each down its column (and along
/// the diagonals) and appends the candidates to `hits`, left to right.
/// `row_hits` is scratch space.
fn scan_row(bin: &mut Binarized, y: usize, row_hits: &mut Vec<(f32, f32)>, hits: &mut Vec<Candidate>) {
    row_hits.clear();
    {
        let w = bin.w;
        let row = bin.row(y);
        // Run-length scan; `runs` holds the last five complete runs (moved
        // along in registers; they lie side by side, so the centre run
        // starts where the last three together start).
        let mut runs = [0usize; 5];
        let mut n = 0usize;
        let mut color = (row[0] & 1) as u8;
        let mut start = 0usize;
        let mut x = 0usize;
        while x < w {
            x = run_end(row, w, x + 1, color);
            // run [start, x) of `color` complete
            runs = [runs[1], runs[2], runs[3], runs[4], x - start];
            n += 1;
            if n >= 5 && is_finder_ratio(&runs) {
                let cx = (x - runs[4] - runs[3] - runs[2]) as f32 + runs[2] as f32 / 2.0;
                let module_h = runs.iter().sum::<usize>() as f32 / 7.0;
                row_hits.push((cx, module_h));
            }
            if x < w {
                // (two colours: the run after is the other one)
                color = 1 - color;
                start = x;
            }
        }
    }
    for &(cx, module_h) in row_hits.iter() {
        let xi = cx as usize;
        if let Some(module_v) = bin.vertical_check(xi, y, module_h) {
            hits.push(Candidate {
                x: cx,
                y: bin.vertical_centre(xi, y),
                module: (module_h + module_v) / 2.0,
                square: bin.diagonal_check(xi, y, module_h),
            });
        }
    }
}

/// The candidates of which two could be finder patterns of one code, by QR
/// geometry alone (nothing here is fitted to images): module sizes within
/// 2.5× (a strong perspective), centres 7 to 250 modules apart (a version-1
/// code's are 14 apart, a version-40 code's 170 along a side, 240 across).
/// Empty when no code can be in the image.
///
/// At least one of the two must have shown the ratio along both diagonals
/// too (text makes many row-and-column look-alikes, few that also hold
/// diagonally; requiring it of both lost moiré frames and a photo).
///
/// Two, not three: requiring the third pattern lost codes the decoders read
/// (one blurred, one glare, one perspective photo, one moiré frame:
/// docs/scanning.md) — glare, blur or a finger hides one corner from this
/// search while the decoders, with their own thresholds, still find it.
pub(crate) fn in_code_pairs(cands: &[Candidate]) -> Vec<Candidate> {
    let n = cands.len();
    let mut used = vec![false; n];
    for a in 0..n {
        for b in a + 1..n {
            let (p, q) = (&cands[a], &cands[b]);
            if !p.square && !q.square {
                continue;
            }
            let (lo, hi) = (p.module.min(q.module), p.module.max(q.module));
            if lo <= 0.0 || hi > 2.5 * lo {
                continue;
            }
            let m = (p.module + q.module) / 2.0;
            let d = ((p.x - q.x).powi(2) + (p.y - q.y).powi(2)).sqrt();
            if (7.0 * m..=250.0 * m).contains(&d) {
                used[a] = true;
                used[b] = true;
            }
        }
    }
    cands
        .iter()
        .zip(used)
        .filter(|(_, u)| *u)
        .map(|(c, _)| *c)
        .collect()
}

/// The first pixel from `from` on where `row` (one bit a pixel, bit `x % 64`
/// of word `x / 64`, `w` pixels) is not `color`, or `w`; 64 pixels a step,
/// since most of a frame is long runs.
fn run_end(row: &[u64], w: usize, from: usize, color: u8) -> usize {
    if from >= w {
        return w;
    }
    let fill = 0u64.wrapping_sub(u64::from(color));
    let mut i = from / 64;
    let mut diff = (row[i] ^ fill) & (!0u64 << (from % 64));
    loop {
        if diff != 0 {
            return (i * 64 + diff.trailing_zeros() as usize).min(w);
        }
        i += 1;
        if i >= row.len() {
            return w;
        }
        diff = row[i] ^ fill;
    }
}

/// Eight bytes of 0 or 1 (first pixel in the low byte) as eight bits (first
/// pixel in the low bit): every product term lands on its own bit, so no
/// carries.
fn pack_bytes(bytes: u64) -> u8 {
    (bytes.wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8
}

/// A threshold block whose pixels are all alike (stored as its `u8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Uniform {
    /// Every pixel above the dead zone.
    Light,
    /// Every pixel at or below it.
    Dark,
    /// Every pixel inside it: the colour on the block's left throughout.
    DeadZone,
    /// Not alike: each pixel decided on its own.
    Mixed,
}

/// Eight pixels in one word, split into four 16-bit lanes each (even and
/// odd pixels), so that one addition compares all eight with a constant.
struct Lanes {
    even: u64,
    odd: u64,
}

impl Lanes {
    const LOW: u64 = 0x0001_0001_0001_0001;

    fn new(pixels: &[u8; 8]) -> Lanes {
        let word = u64::from_le_bytes(*pixels);
        Lanes {
            even: word & (0xFF * Self::LOW),
            odd: (word >> 8) & (0xFF * Self::LOW),
        }
    }

    /// Bits (first pixel in the low bit) of the pixels above `c`:
    /// v > c ⇔ v + (255 − c) ≥ 256, bit 8 of a lane (at most 510, so no
    /// carry into the next lane); 255 − c clamped to 0..=256 covers c ≥ 255
    /// (none) and c < 0 (all).
    #[cfg(test)]
    fn greater_than(&self, c: i16) -> u8 {
        self.above(Self::addend(c))
    }

    /// The lane-wise addend of [`Lanes::greater_than`] for `c`, worked out
    /// once for all rows of a block.
    fn addend(c: i16) -> u64 {
        (255 - i64::from(c)).clamp(0, 256) as u64 * Self::LOW
    }

    /// [`Lanes::greater_than`] with its addend `k`.
    #[inline]
    fn above(&self, k: u64) -> u8 {
        let bit8 = 0x100 * Self::LOW;
        pack_bytes((((self.even + k) & bit8) >> 8) | ((self.odd + k) & bit8))
    }
}

/// Eight pixels' bits (first pixel in the low bit; `dark` and `dead`, in the
/// dead zone, disjoint) with each dead-zone pixel given the colour of the
/// nearest decided pixel on its left; the leading dead pixels, which have
/// none, are left light and returned as the second mask (they take the
/// colour before the eight). Adding a dark pixel's bit, moved one to the
/// left, to the dead mask carries through exactly the dead run that follows
/// it, clearing it: those bits are the dark-filled ones.
fn dead_zone_bits(dark: u8, dead: u8) -> (u8, u8) {
    let (dark, dead) = (u32::from(dark), u32::from(dead));
    let filled = dead & !(dead + (dark << 1));
    let lead = dead & !(dead + 1);
    ((dark | filled) as u8, lead as u8)
}

/// Two candidates closer than about three modules are the same finder pattern
/// seen on different rows.
fn near(a: &Candidate, b: &Candidate) -> bool {
    let r = 3.5 * a.module.max(b.module);
    (a.x - b.x).abs() <= r && (a.y - b.y).abs() <= r
}

/// 1:1:3:1:1 within half a module plus half a pixel per run:
/// |r − p·T/7| ≤ T/14 + ½ for each run r of expected width p modules (T the
/// five runs' total), in integers as |14r − 2pT| ≤ T + 7. The rule was first
/// written in `f32` ([`is_finder_ratio_f32`]); away from equality the two
/// sides differ by at least 1/14 px, far beyond `f32` rounding at these
/// sizes, so only an exact tie (or a pattern wider than 65,536 px) is left to
/// the float rule and the answers stay identical.
#[inline]
fn is_finder_ratio(runs: &[usize; 5]) -> bool {
    let total: usize = runs.iter().sum();
    if total < 7 {
        return false;
    }
    if total > 1 << 16 {
        return is_finder_ratio_f32(runs);
    }
    let t = total as i64;
    let mut tie = false;
    // The centre first: most runs of text or texture are of like widths,
    // which the centre's three modules tell apart at once.
    for (&r, p) in [runs[2], runs[0], runs[1], runs[3], runs[4]].iter().zip([3i64, 1, 1, 1, 1]) {
        let d = (14 * r as i64 - 2 * p * t).abs();
        if d > t + 7 {
            return false;
        }
        tie |= d == t + 7;
    }
    !tie || is_finder_ratio_f32(runs)
}

/// [`is_finder_ratio`] as first written, in `f32`: decides its ties.
fn is_finder_ratio_f32(runs: &[usize; 5]) -> bool {
    let total: usize = runs.iter().sum();
    if total < 7 {
        return false;
    }
    let m = total as f32 / 7.0;
    let tol = 0.5 * m + 0.5;
    const P: [f32; 5] = [1.0, 1.0, 3.0, 1.0, 1.0];
    runs.iter()
        .zip(P)
        .all(|(&r, p)| (r as f32 - p * m).abs() <= tol)
}

/// A block-thresholded copy of the image, made row by row as rows are
/// looked at (the column checks look below the row scanned; a busy scene
/// stops early), one bit a pixel (64 pixels a word: the run scan steps
/// through long runs a word at a time): bit `x % 64` of
/// `dark[y * words + x / 64]` is 1 for a dark pixel of a row made.
struct Binarized<'a> {
    w: usize,
    h: usize,
    raw: &'a [u8],
    /// Blocks per row of blocks.
    bw: usize,
    /// Per block: a pixel at most `thr_lo` is dark, above `thr_hi` light,
    /// between them it keeps the colour of its left neighbour (the dead
    /// zone).
    thr_lo: Vec<i16>,
    thr_hi: Vec<i16>,
    /// Per block: what its pixels are, when they are all alike (a
    /// [`Uniform`] as `u8`).
    kind: Vec<u8>,
    /// Words per row of `dark`.
    words: usize,
    dark: Vec<u64>,
    /// Per row of blocks: its rows are made.
    made: Vec<bool>,
}

impl<'a> Binarized<'a> {
    fn new<C: std::ops::Deref<Target = [u8]>>(img: &'a ImageBuffer<Luma<u8>, C>) -> Binarized<'a> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let raw: &'a [u8] = img.as_raw();
        let (bw, bh) = (w.div_ceil(BLOCK), h.div_ceil(BLOCK));
        let n = bw * bh;
        // Each pass below is a plain loop over whole arrays (one array per
        // quantity, no bounds to check inside), which the compiler
        // vectorizes; the thresholds are those of the block rule as first
        // written (tests: `reference_dark`, `reference_blocks`).
        let (mut sum, mut lo, mut hi) = (vec![0u16; n], vec![0u8; n], vec![0u8; n]);
        block_stats(raw, w, h, &mut sum, &mut lo, &mut hi);
        let (mut avg, mut range) = (vec![0u8; n], vec![0u8; n]);
        block_averages(w, h, &sum, &lo, &hi, &mut avg, &mut range);
        let (mut thr_lo, mut thr_hi) = (vec![0i16; n], vec![0i16; n]);
        block_thresholds(bw, bh, &avg, &range, &mut thr_lo, &mut thr_hi);
        // Blocks whose every pixel falls on one side of the threshold or
        // inside the dead zone need no look at their pixels (most of a
        // camera frame: walls, sky, paper, skin). The three cases exclude
        // each other (the dead zone is at least 16 levels wide), so the
        // kind is a sum, without a branch.
        let mut kind = vec![0u8; n];
        for ((k, (&min, &max)), (&t_lo, &t_hi)) in kind
            .iter_mut()
            .zip(lo.iter().zip(&hi))
            .zip(thr_lo.iter().zip(&thr_hi))
        {
            let (min, max) = (i16::from(min), i16::from(max));
            *k = Uniform::Mixed as u8
                - (Uniform::Mixed as u8 - Uniform::Light as u8) * u8::from(min > t_hi)
                - (Uniform::Mixed as u8 - Uniform::Dark as u8) * u8::from(max <= t_lo)
                - (Uniform::Mixed as u8 - Uniform::DeadZone as u8) * (u8::from(min > t_lo) & u8::from(max <= t_hi));
        }
        Binarized {
            w,
            h,
            raw,
            bw,
            thr_lo,
            thr_hi,
            kind,
            words: w.div_ceil(64),
            dark: vec![0u64; w.div_ceil(64) * h],
            made: vec![false; bh],
        }
    }

    /// Row `y`, thresholded (made on first use), one bit a pixel.
    fn row(&mut self, y: usize) -> &[u64] {
        if !self.made[y / BLOCK] {
            self.make_rows(y / BLOCK);
        }
        &self.dark[y * self.words..(y + 1) * self.words]
    }

    /// Thresholds the (up to) eight pixel rows of row of blocks `by`
    /// together: a block's eight pixels make one byte of a word. Each block's
    /// kind is looked at once for all eight rows: a uniform block's byte is
    /// the same in every row (kept in one word for all of them), and a
    /// mixed block's two thresholds are turned into lane addends once; only
    /// mixed blocks, and dead-zone blocks that take their colour from one,
    /// are decided row by row (each row carries its own colour on the
    /// left, for the dead zone).
    #[inline(never)]
    fn make_rows(&mut self, by: usize) {
        self.made[by] = true;
        const LIGHT: u8 = Uniform::Light as u8;
        const DARK: u8 = Uniform::Dark as u8;
        const DEAD_ZONE: u8 = Uniform::DeadZone as u8;
        let (w, words, bw) = (self.w, self.words, self.bw);
        let (y0, y1) = (by * BLOCK, ((by + 1) * BLOCK).min(self.h));
        let rows = y1 - y0;
        let raw = &self.raw[y0 * w..y1 * w];
        let dark = &mut self.dark[y0 * words..y1 * words];
        let kinds = &self.kind[by * bw..(by + 1) * bw];
        let (thr_lo, thr_hi) = (&self.thr_lo[by * bw..(by + 1) * bw], &self.thr_hi[by * bw..(by + 1) * bw]);
        // The colour on the left when a uniform block decides it (the same
        // in every row); `None` after a mixed block, whose rows differ…
        let mut left: Option<u8> = Some(0);
        // … and then, per row, the colour of the last pixel decided.
        let mut prev = [0u8; BLOCK];
        // The word being filled: its bits shared by all rows, and per row.
        let mut common = 0u64;
        let mut own = [0u64; BLOCK];
        for (b, &kind) in kinds.iter().enumerate() {
            let shift = 8 * (b % 8);
            match (kind, left) {
                (LIGHT, _) => left = Some(0),
                (DARK, _) => {
                    left = Some(1);
                    common |= 0xFF << shift;
                }
                (DEAD_ZONE, Some(c)) => common |= u64::from(0u8.wrapping_sub(c)) << shift,
                (DEAD_ZONE, None) => {
                    for (o, &p) in own.iter_mut().zip(&prev) {
                        *o |= u64::from(0u8.wrapping_sub(p)) << shift;
                    }
                }
                _ => {
                    if let Some(c) = left.take() {
                        prev = [c; BLOCK];
                    }
                    let (lo, hi) = (thr_lo[b], thr_hi[b]);
                    let x0 = b * BLOCK;
                    if x0 + BLOCK <= w {
                        let (k_lo, k_hi) = (Lanes::addend(lo), Lanes::addend(hi));
                        if rows == BLOCK {
                            // (a whole block: eight rows, unrolled)
                            for r in 0..BLOCK {
                                mixed_row(raw, r * w + x0, k_lo, k_hi, &mut prev[r], &mut own[r], shift);
                            }
                        } else {
                            for r in 0..rows {
                                mixed_row(raw, r * w + x0, k_lo, k_hi, &mut prev[r], &mut own[r], shift);
                            }
                        }
                    } else {
                        // The image's last, narrower block.
                        for r in 0..rows {
                            let mut bits = 0u8;
                            for (i, &v) in raw[r * w + x0..(r + 1) * w].iter().enumerate() {
                                let v = i16::from(v);
                                if v <= lo {
                                    prev[r] = 1;
                                } else if v > hi {
                                    prev[r] = 0;
                                }
                                bits |= prev[r] << i;
                            }
                            own[r] |= u64::from(bits) << shift;
                        }
                    }
                }
            }
            if b % 8 == 7 || b + 1 == bw {
                let word = b / 8;
                for (r, o) in own.iter_mut().enumerate().take(rows) {
                    dark[r * words + word] = common | *o;
                    *o = 0;
                }
                common = 0;
            }
        }
    }

    #[inline]
    fn at(&mut self, x: usize, y: usize) -> u8 {
        if !self.made[y / BLOCK] {
            self.make_rows(y / BLOCK);
        }
        ((self.dark[y * self.words + x / 64] >> (x % 64)) & 1) as u8
    }

    /// The 1:1:3:1:1 check down the column through (`x`, `y`); returns the
    /// vertical module size when it holds and roughly agrees with `module_h`
    /// (a square seen at up to about 3:1 foreshortening).
    fn vertical_check(&mut self, x: usize, y: usize, module_h: f32) -> Option<f32> {
        let runs = self.vertical_runs(x, y, module_h)?;
        if !is_finder_ratio(&runs) {
            return None;
        }
        let module_v = runs.iter().sum::<usize>() as f32 / 7.0;
        let ratio = module_v / module_h;
        (1.0 / 3.0..=3.0).contains(&ratio).then_some(module_v)
    }

    /// Run lengths up and down from (`x`, `y`): outer-up, inner-up, centre,
    /// inner-down, outer-down. No run may be longer than the whole pattern
    /// seen horizontally could allow.
    fn vertical_runs(&mut self, x: usize, y: usize, module_h: f32) -> Option<[usize; 5]> {
        self.runs_along(x, y, 0, 1, module_h)
    }

    /// The 1:1:3:1:1 check along both diagonals through (`x`, `y`).
    fn diagonal_check(&mut self, x: usize, y: usize, module_h: f32) -> bool {
        [(1isize, 1isize), (1, -1)].into_iter().all(|(dx, dy)| {
            self.runs_along(x, y, dx, dy, module_h)
                .is_some_and(|runs| is_finder_ratio(&runs))
        })
    }

    /// Run lengths through (`x`, `y`) along (`dx`, `dy`) and back:
    /// outer-back, inner-back, centre, inner-forward, outer-forward. No run
    /// may be longer than the whole pattern seen horizontally could allow.
    fn runs_along(
        &mut self,
        x: usize,
        y: usize,
        dx: isize,
        dy: isize,
        module_h: f32,
    ) -> Option<[usize; 5]> {
        let max_run = (module_h * 3.0 * 3.0 + 2.0) as usize;
        let c = self.at(x, y);
        let (w, h) = (self.w as isize, self.h as isize);
        let mut half = |sx: isize, sy: isize, start: isize| -> Option<[usize; 3]> {
            let (mut px, mut py) = (x as isize + sx * start, y as isize + sy * start);
            let mut out = [0usize; 3];
            for (i, want) in [c, 1 - c, c].into_iter().enumerate() {
                let mut len = 0;
                while px >= 0
                    && py >= 0
                    && px < w
                    && py < h
                    && self.at(px as usize, py as usize) == want
                {
                    len += 1;
                    px += sx;
                    py += sy;
                    if len > max_run {
                        return None;
                    }
                }
                out[i] = len;
            }
            Some(out)
        };
        let back = half(-dx, -dy, 0)?;
        let fwd = half(dx, dy, 1)?;
        let runs = [back[2], back[1], back[0] + fwd[0], fwd[1], fwd[2]];
        runs.iter().all(|&r| r > 0).then_some(runs)
    }

    /// The centre of the middle run on the column through (`x`, `y`).
    fn vertical_centre(&mut self, x: usize, y: usize) -> f32 {
        let c = self.at(x, y);
        let mut top = y;
        while top > 0 && self.at(x, top - 1) == c {
            top -= 1;
        }
        let mut bottom = y;
        while bottom + 1 < self.h && self.at(x, bottom + 1) == c {
            bottom += 1;
        }
        (top + bottom) as f32 / 2.0 + 0.5
    }
}

/// One pixel row of a mixed block, its eight pixels from `raw[at..]`:
/// each pixel's class alone (dark, or in the dead zone), eight at a time in
/// one word, as bits; the dead zone then takes the colour on its left: all
/// but the block's leading dead pixels without `prev`, the colour of the
/// row's last pixel decided (updated). The byte goes into `word` at `shift`.
#[inline(always)]
fn mixed_row(raw: &[u8], at: usize, k_lo: u64, k_hi: u64, prev: &mut u8, word: &mut u64, shift: usize) {
    let pixels: &[u8; 8] = raw[at..at + BLOCK].try_into().expect("a block's pixels");
    let lanes = Lanes::new(pixels);
    let (above_lo, above_hi) = (lanes.above(k_lo), lanes.above(k_hi));
    let (bits, lead) = dead_zone_bits(!above_lo, above_lo & !above_hi);
    let bits = bits | (lead & 0u8.wrapping_sub(*prev));
    *prev = bits >> 7;
    *word |= u64::from(bits) << shift;
}

/// Per 8×8 block of the `w`×`h` image `raw` (the last column and row of
/// blocks may be narrower): the sum, minimum and maximum of its pixels.
/// Four blocks at a time from 32 columns of the block's eight rows, held in
/// fixed-size arrays that the compiler keeps in vector registers (one
/// minimum, maximum and widening add per row); the narrower blocks one by
/// one.
fn block_stats(raw: &[u8], w: usize, h: usize, sum: &mut [u16], lo: &mut [u8], hi: &mut [u8]) {
    const COLS: usize = 4 * BLOCK;
    let (bw, bh) = (w.div_ceil(BLOCK), h.div_ceil(BLOCK));
    for by in 0..bh {
        let (y0, y1) = (by * BLOCK, ((by + 1) * BLOCK).min(h));
        let i0 = by * bw;
        let mut bx0 = 0;
        if y1 - y0 == BLOCK {
            let rows: [&[u8]; BLOCK] = std::array::from_fn(|r| &raw[(y0 + r) * w..(y0 + r + 1) * w]);
            let chunks = w / COLS;
            for c in 0..chunks {
                let x = c * COLS;
                let first: &[u8; COLS] = rows[0][x..x + COLS].try_into().expect("COLS pixels");
                let (mut l, mut m) = (*first, *first);
                let mut s: [u16; COLS] = std::array::from_fn(|i| u16::from(first[i]));
                for row in &rows[1..] {
                    let p: &[u8; COLS] = row[x..x + COLS].try_into().expect("COLS pixels");
                    for i in 0..COLS {
                        l[i] = l[i].min(p[i]);
                        m[i] = m[i].max(p[i]);
                        s[i] += u16::from(p[i]);
                    }
                }
                for k in 0..COLS / BLOCK {
                    let (b, cols) = (i0 + c * (COLS / BLOCK) + k, k * BLOCK..(k + 1) * BLOCK);
                    lo[b] = l[cols.clone()].iter().copied().fold(u8::MAX, u8::min);
                    hi[b] = m[cols.clone()].iter().copied().fold(0, u8::max);
                    sum[b] = s[cols].iter().sum();
                }
            }
            bx0 = chunks * (COLS / BLOCK);
        }
        for bx in bx0..bw {
            let (x0, x1) = (bx * BLOCK, ((bx + 1) * BLOCK).min(w));
            let (mut s, mut l, mut m) = (0u16, u8::MAX, 0u8);
            for y in y0..y1 {
                for &v in &raw[y * w + x0..y * w + x1] {
                    s += u16::from(v);
                    l = l.min(v);
                    m = m.max(v);
                }
            }
            (sum[i0 + bx], lo[i0 + bx], hi[i0 + bx]) = (s, l, m);
        }
    }
}

/// Per block: its average (zxing's HybridBinarizer rules for flat blocks)
/// and its dynamic range, from [`block_stats`]. Every value fits a byte.
fn block_averages(w: usize, h: usize, sum: &[u16], lo: &[u8], hi: &[u8], avg: &mut [u8], range: &mut [u8]) {
    let (bw, bh) = (w.div_ceil(BLOCK), h.div_ceil(BLOCK));
    // A whole block's 64 pixels first, for every block (a shift: one pass
    // without a branch)…
    for ((a, r), ((&l, &m), &s)) in avg
        .iter_mut()
        .zip(range.iter_mut())
        .zip(lo.iter().zip(hi).zip(sum))
    {
        *r = m - l;
        *a = (s >> 6) as u8;
    }
    // … then the narrower blocks of the last column and row…
    let mut narrow = |by: usize, bx: usize| {
        let rows = ((by + 1) * BLOCK).min(h) - by * BLOCK;
        let cols = ((bx + 1) * BLOCK).min(w) - bx * BLOCK;
        let i = by * bw + bx;
        avg[i] = (u32::from(sum[i]) / (rows * cols) as u32) as u8;
    };
    if !w.is_multiple_of(BLOCK) {
        (0..bh).for_each(|by| narrow(by, bw - 1));
    }
    if !h.is_multiple_of(BLOCK) {
        (0..bw).for_each(|bx| narrow(bh - 1, bx));
    }
    // … and the flat blocks, in order: background, unless the neighbours
    // (above, left, above-left: already final) say the block is the inside
    // of something darker.
    for by in 0..bh {
        for bx in 0..bw {
            let i = by * bw + bx;
            if i32::from(range[i]) > MIN_DYNAMIC_RANGE {
                continue;
            }
            let l = lo[i];
            let mut a = l / 2;
            if by > 0 && bx > 0 {
                let neighbours = (u16::from(avg[i - bw]) + 2 * u16::from(avg[i - 1]) + u16::from(avg[i - bw - 1])) / 4;
                if u16::from(l) < neighbours {
                    a = neighbours as u8;
                }
            }
            avg[i] = a;
        }
    }
}

/// Per block: the threshold, the mean of the averages of the 5×5 blocks
/// around (the window's centre clamped so that it stays inside the image;
/// in an image under five blocks wide or high the only centre is 2, its
/// window cut at the border), with a dead zone of a sixth of the largest
/// range among them (8 to 12 levels) in which a pixel keeps the colour of
/// its left neighbour: sensor noise on a plain wall then stays one colour
/// instead of flickering into runs that happen to look like 1:1:3:1:1.
/// A pixel at most `thr_lo` is dark, above `thr_hi` light. Sums and maxima
/// over five blocks across, then five down; each row of centres is worked
/// out once and widened to the row of blocks.
fn block_thresholds(bw: usize, bh: usize, avg: &[u8], range: &[u8], thr_lo: &mut [i16], thr_hi: &mut [i16]) {
    let window = |c: usize, n: usize| c.saturating_sub(2)..(c + 3).min(n);
    let centre = |b: usize, n: usize| b.clamp(2, n.saturating_sub(3).max(2));
    let ncx = centre(bw - 1, bw) - 1;
    // Across: per row of blocks and centre, the sum of the averages and the
    // largest range in the window.
    let mut across_sum = vec![0u16; bh * ncx];
    let mut across_max = vec![0u8; bh * ncx];
    for yy in 0..bh {
        let (a, r) = (&avg[yy * bw..(yy + 1) * bw], &range[yy * bw..(yy + 1) * bw]);
        let (os, om) = (&mut across_sum[yy * ncx..(yy + 1) * ncx], &mut across_max[yy * ncx..(yy + 1) * ncx]);
        if bw >= 5 {
            // every window whole: five neighbours of each centre
            let (a, r) = (&a[..ncx + 4], &r[..ncx + 4]);
            for (i, (s, m)) in os.iter_mut().zip(om.iter_mut()).enumerate() {
                *s = a[i..i + 5].iter().map(|&v| u16::from(v)).sum();
                *m = r[i..i + 5].iter().copied().fold(0, u8::max);
            }
        } else {
            os[0] = a[window(2, bw)].iter().map(|&v| u16::from(v)).sum();
            om[0] = r[window(2, bw)].iter().copied().fold(0, u8::max);
        }
    }
    let cols = window(2, bw).len() as u16;
    let (mut down_sum, mut down_max) = (vec![0u16; ncx], vec![0u8; ncx]);
    let (mut row_lo, mut row_hi) = (vec![0i16; bw], vec![0i16; bw]);
    let mut last = None;
    for by in 0..bh {
        let cy = centre(by, bh);
        if last != Some(cy) {
            last = Some(cy);
            down_sum.iter_mut().for_each(|v| *v = 0);
            down_max.iter_mut().for_each(|v| *v = 0);
            let rows = window(cy, bh);
            let n = rows.len() as u16 * cols;
            for yy in rows {
                let (s, m) = (&across_sum[yy * ncx..(yy + 1) * ncx], &across_max[yy * ncx..(yy + 1) * ncx]);
                for ((ds, dm), (&s, &m)) in down_sum.iter_mut().zip(down_max.iter_mut()).zip(s.iter().zip(m)) {
                    *ds += s;
                    *dm = (*dm).max(m);
                }
            }
            // Centre i + 2 decides blocks i + 2; the two blocks at each end
            // take the nearest centre's.
            let off = 2.min(bw - 1);
            let (ol, oh) = (&mut row_lo[off..off + ncx], &mut row_hi[off..off + ncx]);
            let mut put = |divide: &dyn Fn(u16) -> u16| {
                for ((l, hi), (&s, &m)) in ol.iter_mut().zip(oh.iter_mut()).zip(down_sum.iter().zip(&down_max)) {
                    let t = divide(s) as i16;
                    let dz = (m / 6).clamp(MIN_DEAD_ZONE as u8, MAX_DEAD_ZONE as u8) as i16;
                    (*l, *hi) = (t - dz, t + dz);
                }
            };
            if n == 25 {
                // 25 blocks away from the borders: a constant divisor, which
                // the compiler turns into a multiplication
                put(&|s| s / 25);
            } else {
                put(&|s| s / n);
            }
            let (first, last) = (off, off + ncx - 1);
            for bx in (0..first).chain(last + 1..bw) {
                let from = if bx < first { first } else { last };
                row_lo[bx] = row_lo[from];
                row_hi[bx] = row_hi[from];
            }
        }
        thr_lo[by * bw..(by + 1) * bw].copy_from_slice(&row_lo);
        thr_hi[by * bw..(by + 1) * bw].copy_from_slice(&row_hi);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::GrayImage;

    /// A 7×7-module finder pattern with `m` px modules at (`x0`, `y0`),
    /// dark-on-light, or inverted.
    fn draw_finder(img: &mut GrayImage, x0: u32, y0: u32, m: u32, inverted: bool) {
        for my in 0..7 {
            for mx in 0..7 {
                let ring = mx == 0 || my == 0 || mx == 6 || my == 6;
                let core = (2..=4).contains(&mx) && (2..=4).contains(&my);
                let dark = (ring || core) != inverted;
                let v = if dark { 20 } else { 235 };
                for y in 0..m {
                    for x in 0..m {
                        img.put_pixel(x0 + mx * m + x, y0 + my * m + y, image::Luma([v]));
                    }
                }
            }
        }
    }

    #[test]
    fn a_finder_pattern_is_a_candidate_at_its_centre() {
        let mut img = GrayImage::from_pixel(200, 160, image::Luma([235]));
        draw_finder(&mut img, 50, 40, 5, false);
        let (c, _) = candidates(&img);
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(
            (c[0].x - 67.5).abs() <= 1.5 && (c[0].y - 57.5).abs() <= 1.5,
            "{c:?}"
        );
        assert!((c[0].module - 5.0).abs() <= 1.0, "{c:?}");
    }

    #[test]
    fn a_light_on_dark_finder_pattern_is_a_candidate() {
        let mut img = GrayImage::from_pixel(200, 160, image::Luma([20]));
        draw_finder(&mut img, 60, 30, 4, true);
        assert_eq!(candidates(&img).0.len(), 1);
    }

    #[test]
    fn flat_and_striped_frames_have_no_candidates() {
        assert!(
            candidates(&GrayImage::from_pixel(320, 240, image::Luma([128])))
                .0
                .is_empty()
        );
        // vertical stripes pass the row check but never the column check
        let stripes = GrayImage::from_fn(320, 240, |x, _| {
            image::Luma([if (x / 5) % 2 == 0 { 30 } else { 220 }])
        });
        assert!(candidates(&stripes).0.is_empty());
    }

    #[test]
    fn a_noisy_office_scene_without_a_code_has_no_candidates() {
        // Soft gradients, large edges and sensor noise (σ≈5), like the
        // benchmark's empty camera frames.
        let mut seed = 0x5eed_u64;
        let mut gauss = move || {
            let mut u = || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 11) as f64 + 1.0) / (1u64 << 53) as f64
            };
            let (a, b) = (u(), u());
            (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
        };
        let img = GrayImage::from_fn(1280, 720, |x, y| {
            let v = 90.0
                + 60.0 * ((x as f64 / 97.0).sin() * (y as f64 / 131.0).cos())
                + if (x / 300 + y / 200) % 2 == 0 {
                    30.0
                } else {
                    0.0
                }
                + 5.0 * gauss();
            image::Luma([v.clamp(0.0, 255.0) as u8])
        });
        let (c, _) = candidates(&img);
        assert!(c.is_empty(), "{} candidates, e.g. {:?}", c.len(), c.first());
    }

    fn at(x: f32, y: f32) -> Candidate {
        Candidate {
            x,
            y,
            module: 4.0,
            square: true,
        }
    }

    #[test]
    fn three_patterns_in_an_l_could_be_a_code() {
        // version 2: centres 18 modules apart
        let l = [at(100.0, 100.0), at(172.0, 100.0), at(100.0, 172.0)];
        assert_eq!(in_code_pairs(&l).len(), 3);
        // the same with a stray candidate more than 250 modules from all: not kept
        let mut more = l.to_vec();
        more.push(at(1300.0, 1000.0));
        assert_eq!(in_code_pairs(&more), l.to_vec());
    }

    #[test]
    fn two_patterns_at_a_code_distance_could_be_a_code() {
        // the third hidden (glare, blur, a finger): still worth the decoders
        let two = [at(100.0, 100.0), at(172.0, 100.0)];
        assert_eq!(in_code_pairs(&two).len(), 2);
    }

    #[test]
    fn two_look_alikes_neither_square_on_its_diagonals_cannot_be_a_code() {
        let flat = |x, y| Candidate {
            square: false,
            ..at(x, y)
        };
        assert!(in_code_pairs(&[flat(100.0, 100.0), flat(172.0, 100.0)]).is_empty());
        // one square pattern is enough (the other blurred or foreshortened)
        assert_eq!(
            in_code_pairs(&[at(100.0, 100.0), flat(172.0, 100.0)]).len(),
            2
        );
    }

    #[test]
    fn a_drawn_finder_pattern_is_square_on_its_diagonals() {
        let mut img = GrayImage::from_pixel(200, 160, image::Luma([235]));
        draw_finder(&mut img, 50, 40, 5, false);
        let (c, _) = candidates(&img);
        assert!(c[0].square, "{c:?}");
        // a plus-shaped look-alike: 1:1:3:1:1 across its row and column
        // through the centre, but not along the diagonals
        let mut plus = GrayImage::from_pixel(200, 160, image::Luma([235]));
        for i in 0..35u32 {
            for j in 0..35u32 {
                let (dx, dy) = (i / 5, j / 5); // module coordinates 0..7
                let on_axis = dx == 3 || dy == 3;
                let ring = dx == 0 || dx == 6 || dy == 0 || dy == 6;
                let core = (2..=4).contains(&dx) && (2..=4).contains(&dy);
                if on_axis && (ring || core) {
                    plus.put_pixel(50 + i, 40 + j, image::Luma([20]));
                }
            }
        }
        let (c, _) = candidates(&plus);
        assert!(!c.is_empty(), "the plus passes the row and column checks");
        assert!(c.iter().all(|c| !c.square), "{c:?}");
    }

    #[test]
    fn one_pattern_or_patterns_of_very_different_sizes_or_too_close_cannot_be_a_code() {
        assert!(in_code_pairs(&[at(100.0, 100.0)]).is_empty());
        let sizes = [
            at(100.0, 100.0),
            Candidate {
                module: 12.0,
                ..at(172.0, 100.0)
            },
        ];
        assert!(in_code_pairs(&sizes).is_empty());
        // 5 modules apart: closer than any code's finder patterns (the same
        // pattern seen at two scales lands here too)
        let close = [at(100.0, 100.0), at(120.0, 100.0)];
        assert!(in_code_pairs(&close).is_empty());
    }

    /// Per block: the (dark, light) thresholds and the kind, as first
    /// written (every block's pixels and 5×5 window summed on its own):
    /// the reference the faster passes must equal.
    fn reference_blocks(img: &GrayImage) -> (Vec<(i16, i16)>, Vec<u8>) {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let raw = img.as_raw();
        let (bw, bh) = (w.div_ceil(BLOCK), h.div_ceil(BLOCK));
        let mut avg = vec![0i32; bw * bh];
        let mut range = vec![0i32; bw * bh];
        let mut minmax = vec![(0i32, 0i32); bw * bh];
        for by in 0..bh {
            let (y0, y1) = (by * BLOCK, ((by + 1) * BLOCK).min(h));
            for bx in 0..bw {
                let (x0, x1) = (bx * BLOCK, ((bx + 1) * BLOCK).min(w));
                let (mut sum, mut lo, mut hi) = (0i32, 255i32, 0i32);
                for y in y0..y1 {
                    for &v in &raw[y * w + x0..y * w + x1] {
                        let v = i32::from(v);
                        sum += v;
                        lo = lo.min(v);
                        hi = hi.max(v);
                    }
                }
                let n = ((y1 - y0) * (x1 - x0)) as i32;
                range[by * bw + bx] = hi - lo;
                minmax[by * bw + bx] = (lo, hi);
                let mut a = sum / n;
                if hi - lo <= MIN_DYNAMIC_RANGE {
                    a = lo / 2;
                    if by > 0 && bx > 0 {
                        let neighbours = (avg[(by - 1) * bw + bx]
                            + 2 * avg[by * bw + bx - 1]
                            + avg[(by - 1) * bw + bx - 1])
                            / 4;
                        if lo < neighbours {
                            a = neighbours;
                        }
                    }
                }
                avg[by * bw + bx] = a;
            }
        }
        let mut thr = Vec::new();
        let mut kind = Vec::new();
        for by in 0..bh {
            let cy = by.clamp(2, bh.saturating_sub(3).max(2));
            for bx in 0..bw {
                let cx = bx.clamp(2, bw.saturating_sub(3).max(2));
                let (mut s, mut n, mut r) = (0i32, 0i32, 0i32);
                for yy in cy.saturating_sub(2)..(cy + 3).min(bh) {
                    for xx in cx.saturating_sub(2)..(cx + 3).min(bw) {
                        s += avg[yy * bw + xx];
                        r = r.max(range[yy * bw + xx]);
                        n += 1;
                    }
                }
                let t = s / n.max(1);
                let dz = (r / 6).clamp(MIN_DEAD_ZONE, MAX_DEAD_ZONE);
                let (t_lo, t_hi) = (t - dz, t + dz);
                thr.push((t_lo as i16, t_hi as i16));
                let (min, max) = minmax[by * bw + bx];
                kind.push(if min > t_hi {
                    Uniform::Light
                } else if max <= t_lo {
                    Uniform::Dark
                } else if min > t_lo && max <= t_hi {
                    Uniform::DeadZone
                } else {
                    Uniform::Mixed
                } as u8);
            }
        }
        (thr, kind)
    }

    /// The threshold as first written (every pixel decided in turn): the
    /// reference the faster one must equal.
    fn reference_dark(img: &GrayImage) -> Vec<u8> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let raw = img.as_raw();
        let bw = w.div_ceil(BLOCK);
        let (thr, _) = reference_blocks(img);
        let mut dark = vec![0u8; w * h];
        for y in 0..h {
            let mut prev = 0u8;
            for x in 0..w {
                let (t_lo, t_hi) = thr[(y / BLOCK) * bw + x / BLOCK];
                let v = i16::from(raw[y * w + x]);
                prev = if v <= t_lo {
                    1
                } else if v > t_hi {
                    0
                } else {
                    prev
                };
                dark[y * w + x] = prev;
            }
        }
        dark
    }

    #[test]
    fn the_threshold_equals_the_pixel_by_pixel_rule_at_any_size() {
        // Noise, gradients and flat patches, at sizes from under one block
        // to many, most not a multiple of the block.
        let mut seed = 0x9e37_79b9_u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        // mixed blocks after a light, a dark and a mixed block; dead-zone
        // blocks after a mixed one and after a uniform one
        let mut seen = [0usize; 5];
        for (w, h) in [(7, 7), (9, 23), (15, 40), (33, 17), (41, 41), (100, 61), (203, 97), (300, 200), (256, 64), (321, 99), (1000, 77)] {
            let img = GrayImage::from_fn(w, h, |x, y| {
                let base = if (x / 13 + y / 11) % 3 == 0 { 128 } else { 40 + (x * 3 + y * 2) % 180 };
                // flat patches (a range of at most 12) beside noisy ones
                let noise = if (x / 17 + y / 19) % 2 == 0 { 24 } else { 6 };
                image::Luma([(base + next() % noise).min(255) as u8])
            });
            // Rows made top to bottom, and bottom to top (the column
            // checks make rows below the one scanned).
            for upwards in [false, true] {
                let mut bin = Binarized::new(&img);
                let mut rows = vec![Vec::new(); h as usize];
                for i in 0..h as usize {
                    let y = if upwards { h as usize - 1 - i } else { i };
                    rows[y] = bin.row(y).to_vec();
                }
                let made: Vec<u8> = rows
                    .iter()
                    .flat_map(|words| (0..w as usize).map(move |x| ((words[x / 64] >> (x % 64)) & 1) as u8))
                    .collect();
                assert_eq!(made, reference_dark(&img), "{w}x{h}");
                for kinds in bin.kind.chunks(bin.bw) {
                    for pair in kinds.windows(2) {
                        const L: u8 = Uniform::Light as u8;
                        const D: u8 = Uniform::Dark as u8;
                        const M: u8 = Uniform::Mixed as u8;
                        const DZ: u8 = Uniform::DeadZone as u8;
                        match (pair[0], pair[1]) {
                            (L, M) => seen[0] += 1,
                            (D, M) => seen[1] += 1,
                            (M, M) => seen[2] += 1,
                            (M, DZ) => seen[3] += 1,
                            (L | D, DZ) => seen[4] += 1,
                            _ => {}
                        }
                    }
                }
            }
        }
        assert!(seen.iter().all(|&n| n > 0), "every order of kinds exercised: {seen:?}");
    }

    /// Noise, gradients, flat patches (a range of at most 12) and flat dark
    /// squares inside lighter ones (the flat-block rule's neighbours), `w`×`h`.
    fn test_scene(w: u32, h: u32, seed: u64) -> GrayImage {
        let mut seed = seed;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        GrayImage::from_fn(w, h, |x, y| {
            let base = match (x / 40 + y / 24) % 4 {
                0 => 128,
                1 => 40 + (x * 3 + y * 2) % 180,
                2 => if (x % 40 > 12 && x % 40 < 28) && (y % 24 > 6 && y % 24 < 18) { 30 } else { 200 },
                _ => 250,
            };
            let noise = if (x / 17 + y / 19) % 2 == 0 { 24 } else { 6 };
            image::Luma([(base + next() % noise).min(255) as u8])
        })
    }

    #[test]
    fn block_thresholds_and_kinds_equal_the_reference() {
        // Whole groups of four blocks and not, whole rows of blocks and not,
        // under five blocks (cut windows) and over, and every kind of block.
        let mut kinds = [0usize; 4];
        let sizes = [(7, 7), (8, 8), (31, 9), (32, 8), (39, 33), (40, 40), (64, 64), (100, 61), (256, 64), (288, 72), (203, 97), (1000, 9), (9, 1000), (640, 360), (961, 127)];
        for (k, &(w, h)) in sizes.iter().enumerate() {
            let img = test_scene(w, h, k as u64);
            let bin = Binarized::new(&img);
            let (thr, kind) = reference_blocks(&img);
            let got: Vec<(i16, i16)> = bin.thr_lo.iter().copied().zip(bin.thr_hi.iter().copied()).collect();
            assert_eq!(got, thr, "{w}x{h}");
            assert_eq!(bin.kind, kind, "{w}x{h}");
            kind.iter().for_each(|&k| kinds[usize::from(k)] += 1);
        }
        assert!(kinds.iter().all(|&n| n > 0), "every kind of block: {kinds:?}");
    }

    /// The dead zone filled byte-wise, as written before the bit-wise
    /// [`dead_zone_bits`]: the reference it must equal. Eight pixel classes (one per byte, first pixel in the low byte: 0 light,
    /// 1 dark, 2 in the dead zone) with each dead-zone pixel given the colour of
    /// the nearest decided pixel on its left, `prev` before the first: three
    /// doubling steps (1, 2, 4 bytes) of "take the colour that far left while
    /// undecided", then `prev`, without a branch per pixel.
    fn fill_dead_zone(bits: u64, prev: u8) -> u64 {
        const LOW: u64 = 0x0101_0101_0101_0101;
        let before = u64::from(prev) * LOW;
        let mut x = bits;
        // 0xFF in every byte still undecided.
        let mut dead = ((bits >> 1) & LOW) * 0xFF;
        for shift in [8u32, 16, 32] {
            let left = (x << shift) | (before >> (64 - shift));
            x = (x & !dead) | (left & dead);
            dead &= dead << shift;
        }
        // Undecided back to the word's first pixel: the colour before it.
        (x & !dead) | (before & dead)
    }

    #[test]
    fn the_dead_zone_takes_the_colour_on_its_left() {
        // against the pixel-by-pixel rule, on every pattern of 8 classes
        // drawn from {0, 1, 2} with both colours before the word
        for n in 0..3u32.pow(8) {
            let classes: Vec<u8> = (0..8).map(|i| ((n / 3u32.pow(i)) % 3) as u8).collect();
            let bits = u64::from_le_bytes(classes.clone().try_into().unwrap());
            for prev in [0u8, 1] {
                let mut want = Vec::new();
                let mut p = prev;
                for &c in &classes {
                    if c != 2 {
                        p = c;
                    }
                    want.push(p);
                }
                let got = fill_dead_zone(bits, prev).to_le_bytes();
                assert_eq!(got.to_vec(), want, "{classes:?} after {prev}");
                // and the bit-wise fill used by the threshold
                let mask = |class: u8| classes.iter().enumerate().fold(0u8, |m, (i, &c)| m | (u8::from(c == class) << i));
                let (filled, lead) = dead_zone_bits(mask(1), mask(2));
                let got = filled | (lead & 0u8.wrapping_sub(prev));
                assert_eq!(got, pack_bytes(u64::from_le_bytes(want.clone().try_into().unwrap())), "{classes:?} after {prev}");
            }
        }
    }

    /// The run end as first written, on one byte a pixel: the reference.
    fn reference_run_end(row: &[u8], from: usize, color: u8) -> usize {
        let mut x = from;
        while x < row.len() && row[x] == color {
            x += 1;
        }
        x
    }

    fn to_bits(row: &[u8]) -> Vec<u64> {
        let mut words = vec![0u64; row.len().div_ceil(64)];
        for (x, &v) in row.iter().enumerate() {
            words[x / 64] |= u64::from(v) << (x % 64);
        }
        words
    }

    #[test]
    fn run_end_finds_the_first_other_colour() {
        let mut row = vec![0u8; 140];
        assert_eq!(run_end(&to_bits(&row), 140, 0, 0), 140);
        assert_eq!(run_end(&to_bits(&row), 140, 3, 1), 3);
        for at in [1, 7, 8, 9, 15, 16, 31, 33, 63, 64, 65, 127, 128, 139] {
            row.iter_mut().for_each(|v| *v = 0);
            row[at] = 1;
            let bits = to_bits(&row);
            assert_eq!(run_end(&bits, 140, 0, 0), at, "dark pixel at {at}");
            assert_eq!(run_end(&bits, 140, at, 1), at + 1, "one dark pixel at {at}");
        }
        // against the byte-per-pixel scan on random rows of every length
        // around the word size, from every start, both colours, with the
        // padding bits after the row set (they must never count)
        let mut seed = 0x2545_f491_u64;
        for w in [1usize, 2, 63, 64, 65, 100, 128, 130, 200] {
            for density in [2u64, 9, 60] {
                let row: Vec<u8> = (0..w)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        u8::from((seed >> 33).is_multiple_of(density))
                    })
                    .collect();
                let mut bits = to_bits(&row);
                if w % 64 != 0 {
                    *bits.last_mut().unwrap() |= !0u64 << (w % 64);
                }
                for from in 0..=w {
                    for color in [0u8, 1] {
                        assert_eq!(
                            run_end(&bits, w, from, color),
                            reference_run_end(&row, from, color),
                            "w {w} from {from} colour {color}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn eight_pixels_compare_with_a_constant_in_one_word() {
        // against the pixel-by-pixel comparison, every threshold the block
        // rule can make (and beyond both ends), on random and extreme pixels
        let mut seed = 0xdead_beef_u64;
        let mut words: Vec<[u8; 8]> = vec![[0; 8], [255; 8], [0, 255, 1, 254, 127, 128, 129, 126]];
        for _ in 0..300 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            words.push(seed.to_le_bytes());
        }
        for px in &words {
            let lanes = Lanes::new(px);
            for c in -300i16..=300 {
                let want = px.iter().enumerate().fold(0u8, |m, (i, &v)| m | (u8::from(i16::from(v) > c) << i));
                assert_eq!(lanes.greater_than(c), want, "{px:?} > {c}");
            }
        }
    }

    #[test]
    fn pack_bytes_puts_pixel_i_in_bit_i() {
        for n in 0..=255u8 {
            let bytes: [u8; 8] = std::array::from_fn(|i| (n >> i) & 1);
            assert_eq!(pack_bytes(u64::from_le_bytes(bytes)), n);
        }
    }

    #[test]
    fn the_integer_finder_ratio_equals_the_float_rule() {
        // every five runs of 0..=24 px (totals up to 120), and larger
        // patterns drawn at random around the ratio, including the ties
        let mut n = 0usize;
        for a in 0..=24 {
            for b in 0..=24 {
                for c in 0..=24 {
                    for d in 0..=24 {
                        for e in 0..=24 {
                            let runs = [a, b, c, d, e];
                            assert_eq!(is_finder_ratio(&runs), is_finder_ratio_f32(&runs), "{runs:?}");
                            n += usize::from(is_finder_ratio(&runs));
                        }
                    }
                }
            }
        }
        assert!(n > 1000, "{n} patterns pass");
        let mut seed = 0x1234_5678_u64;
        let mut next = move |k: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) % k as u64) as usize
        };
        for _ in 0..200_000 {
            let m = 8 + next(3000);
            let j = m / 2 + 2;
            // each run its nominal width ± up to about half a module
            let mut run = |p: usize| (p * m + next(j)).saturating_sub(next(j)).max(1);
            let runs = [run(1), run(1), run(3), run(1), run(1)];
            assert_eq!(is_finder_ratio(&runs), is_finder_ratio_f32(&runs), "{runs:?}");
        }
    }

    #[test]
    fn tiny_images_have_no_candidates() {
        assert!(
            candidates(&GrayImage::from_pixel(1, 1, image::Luma([0])))
                .0
                .is_empty()
        );
        assert!(
            candidates(&GrayImage::from_pixel(6, 300, image::Luma([0])))
                .0
                .is_empty()
        );
    }
}
