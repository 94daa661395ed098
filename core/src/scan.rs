//! Camera frames to Shomei payloads.
//!
//! The phone app hands every preview frame's 8-bit luma plane to [`scan_frame`]
//! exactly as the camera delivered it (Android `ImageProxy` Y plane, iOS
//! `CVPixelBuffer` luma plane: `row_stride >= width`, padding included) and gets
//! back the Shomei payload in it, the texts of other QR codes, or nothing.
//! Scanning lives in the core rather than in each app so that Android and iOS
//! read exactly the same codes and the benchmark below speaks for both.
//!
//! # Why two decoders and a pass list
//!
//! Neither pure-Rust decoder is good enough alone. `rqrr` (named by the
//! product) is fast and reads photos of monitors well — the practitioner's
//! case — but loses codes on blur and on most real photos; `rxing` (a port of
//! ZXing) reads far more real photos. The scanner therefore runs a short,
//! ordered list of [`Pass`]es (decoder × preprocessing) and stops at the first
//! pass that yields a Shomei payload. Cheap passes come first; a per-frame time
//! budget is checked between passes so that a hard frame costs at most about
//! one pass past the budget and the camera loop keeps its frame rate.
//!
//! Before the passes, frames larger than [`ScanConfig::working_side`] are
//! reduced by area averaging (a 1920×1080 frame becomes 1280×720): decoders
//! are roughly linear in pixel count and a code the user aims at is large.
//! The last pass looks at the centre of the frame at full resolution for codes
//! held far away. The pass order in [`ScanConfig::default`] is by measured
//! gain: rxing's zxing-cpp port first (reads the most, fastest), then rqrr,
//! then inversion (dark mode), our local-mean binarization, ZXing-Java's
//! detector, half size, the full-resolution centre, smaller scales, and last
//! the hybrid passes ([`Decoder::Hybrid`]): rxing's detector fed with our
//! finder candidates and inferred third patterns, a sampling grid measured
//! from the timing patterns (curved codes), and small modules enlarged
//! ([`Prep::Zoom`]).
//!
//! Decoder panics (rqrr has panicked on crafted input) are caught per pass with
//! `catch_unwind` and count as "nothing found in this pass". This needs the
//! default `panic = "unwind"`; an app built with `panic = "abort"` loses that
//! protection.
//!
//! # Classification
//!
//! Every decoded text goes through [`Payload::parse_ignoring_expiry`]: if it
//! parses, it is ours and the scan ends with [`ScanOutcome::Shomei`] (expiry is
//! the caller's job, against its own clock). Texts that do not parse —
//! including malformed look-alikes of our URL — are foreign; other codes in the
//! same frame never hide ours, because the scan keeps going after a foreign hit.
//!
//! # Finder candidates: early stop and gate
//!
//! Before any decoder, [`finder`] looks for finder-pattern candidates at the
//! working, half and quarter size (and the full-resolution centre of a
//! reduced frame). A frame in which no two candidates could be finder
//! patterns of one code ends as [`ScanOutcome::NothingFound`] before any
//! decoder runs ([`ScanConfig::finder_gate`], on): most camera frames hold
//! no code, and this is what makes them cheap. Once every candidate lies
//! inside a code already read, no later pass can find another code and the
//! scan stops ([`ScanConfig::early_stop`], on).
//!
//! # Measured
//!
//! `cargo bench -p shomei-core --bench scan` measures decode rates and time
//! per frame against zxing-cpp in the same run; the figures live in
//! docs/scanning.md only.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use image::{GrayImage, ImageBuffer, Luma};
use rxing::common::HybridBinarizer;
use rxing::multi::MultipleBarcodeReader;
use rxing::multi::qrcode::QRCodeMultiReader;
use rxing::qrcode::QRCodeReader;
use rxing::qrcode::cpp_port::QrReader;
use rxing::{BarcodeFormat, BinaryBitmap, DecodeHints, Luma8LuminanceSource, Reader};

use crate::payload::Payload;

mod finder;
mod grid;

/// Largest frame accepted, in pixels (a 64-megapixel sensor); anything bigger
/// is not a camera preview frame and would only burn memory.
pub const MAX_FRAME_PIXELS: u64 = 64 * 1024 * 1024;

/// What one frame contained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanOutcome {
    /// A Shomei code, parsed with [`Payload::parse_ignoring_expiry`]: the caller
    /// checks expiry against its own clock.
    Shomei(Payload),
    /// Only QR codes that are not Shomei's; their texts, each once.
    ForeignOnly(Vec<String>),
    /// No readable QR code.
    NothingFound,
}

/// A frame the scanner cannot read as described.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// Width, height or row stride are zero, overflow, or do not fit the buffer.
    #[error("bad camera frame: {0}")]
    BadFrame(String),
}

/// Which decoder a [`Pass`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    /// rqrr: its own row-average threshold, finds every code in the image.
    Rqrr,
    /// rxing's port of zxing-cpp's QR reader (all codes in the image), hybrid
    /// (local block) binarizer, `TryHarder` on.
    RxingCpp,
    /// rxing's port of ZXing-Java's multi-code QR reader, hybrid binarizer,
    /// `TryHarder` on.
    RxingJavaMulti,
    /// rxing's port of ZXing-Java's single-code QR reader, hybrid binarizer,
    /// `TryHarder` on; its detector differs from the cpp port's and reads some
    /// codes the other misses (rxing's own `MultiFormatReader` runs both).
    RxingJava,
    /// rxing's zxing-cpp detector (hybrid binarizer) with our own
    /// finder-pattern candidates added to its own (a third pattern its
    /// search missed), each triple sampled by its perspective grid and, when
    /// that does not decode, by a grid measured from the code's timing
    /// patterns (codes on curved surfaces, whose dimension the finder
    /// patterns misjudge): see `grid.rs`.
    Hybrid,
}

/// The image a [`Pass`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prep {
    /// The working image (the frame, reduced to the working size if larger).
    Working,
    /// The working image inverted, for light-on-dark ("dark mode") codes.
    Inverted,
    /// The working image binarized by a local-mean threshold (integral image),
    /// which survives uneven lighting and soft edges better than rqrr's
    /// row-running average.
    LocalMean,
    /// The working image reduced to half size: blur shrinks with it.
    Half,
    /// The working image reduced to a third (zxing-cpp's downscale step):
    /// between half and quarter size.
    Third,
    /// The working image reduced to a quarter size: large, soft codes and
    /// photographed screens (the pixel grid averages out).
    Quarter,
    /// The central half (each axis) of the frame at full resolution, for codes
    /// held far from the camera in a large frame.
    CenterFull,
    /// The region around the finder-pattern candidates whose modules are
    /// under three pixels, enlarged (bilinear) to about six pixels per
    /// module: the decoders' block thresholds and their grid sampling, both
    /// whole-pixel, lose modules that small; interpolation samples between
    /// the pixels. Nothing when no such candidate exists (see
    /// [`ScanConfig::finder_gate`]: the candidates come from its search).
    Zoom,
}

/// One decoding attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// The decoder to run.
    pub decoder: Decoder,
    /// What it looks at.
    pub prep: Prep,
}

const fn pass(decoder: Decoder, prep: Prep) -> Pass {
    Pass { decoder, prep }
}

/// How hard a scan tries. [`ScanConfig::default`] is the measured winner; the
/// other constructors exist so the benchmark can compare against the plain
/// decoders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanConfig {
    /// Passes, in order. The scan stops at the first Shomei payload.
    pub passes: Vec<Pass>,
    /// Frames whose longer side exceeds this are reduced to it first; `None`
    /// decodes at full resolution.
    pub working_side: Option<u32>,
    /// No new pass starts after this much time has been spent on the frame.
    pub budget: Duration,
    /// End a frame in which no two finder-pattern candidates could belong to
    /// one code before the first decoder runs (see the module docs). On by
    /// default: measured without a lost read on the photo and synthetic sets,
    /// and frames without a code end in a few milliseconds (docs/scanning.md).
    pub finder_gate: bool,
    /// Look for finder-pattern candidates first and stop once every one lies
    /// inside a code already read (no later pass could find another code).
    /// Measured without a lost read; on by default.
    pub early_stop: bool,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            passes: vec![
                pass(Decoder::RxingCpp, Prep::Working),
                pass(Decoder::Rqrr, Prep::Working),
                pass(Decoder::RxingCpp, Prep::Inverted),
                pass(Decoder::Rqrr, Prep::LocalMean),
                pass(Decoder::RxingCpp, Prep::LocalMean),
                pass(Decoder::RxingJava, Prep::Working),
                pass(Decoder::RxingCpp, Prep::Half),
                pass(Decoder::RxingCpp, Prep::CenterFull),
                // Smaller scales: photographed monitors (the pixel grid
                // averages out) and soft codes; measured +3 monitor photos,
                // +1 blurred, +1 ZXing photo, no loss (docs/scanning.md).
                pass(Decoder::RxingCpp, Prep::Quarter),
                pass(Decoder::Rqrr, Prep::Half),
                pass(Decoder::Rqrr, Prep::Quarter),
                // Our finder candidates and a completed third pattern added
                // to rxing's, a grid measured from the timing patterns
                // (curved codes), and small modules enlarged: measured +2
                // curved, +2 nominal, no loss (docs/scanning.md).
                pass(Decoder::Hybrid, Prep::Working),
                pass(Decoder::Hybrid, Prep::Half),
                pass(Decoder::Hybrid, Prep::Zoom),
            ],
            working_side: Some(1280),
            budget: Duration::from_millis(250),
            finder_gate: true,
            early_stop: true,
        }
    }
}

impl ScanConfig {
    /// rqrr alone on the full frame (baseline).
    pub fn rqrr_only() -> Self {
        ScanConfig {
            passes: vec![pass(Decoder::Rqrr, Prep::Working)],
            working_side: None,
            budget: Duration::from_secs(3600),
            finder_gate: false,
            early_stop: false,
        }
    }

    /// rxing alone on the full frame (baseline).
    pub fn rxing_only() -> Self {
        ScanConfig {
            passes: vec![
                pass(Decoder::RxingCpp, Prep::Working),
                pass(Decoder::RxingJava, Prep::Working),
            ],
            working_side: None,
            budget: Duration::from_secs(3600),
            finder_gate: false,
            early_stop: false,
        }
    }

    /// rqrr, then rxing, both on the full frame, no preprocessing of ours (baseline).
    pub fn combined() -> Self {
        ScanConfig {
            passes: vec![
                pass(Decoder::Rqrr, Prep::Working),
                pass(Decoder::RxingCpp, Prep::Working),
                pass(Decoder::RxingJava, Prep::Working),
            ],
            working_side: None,
            budget: Duration::from_secs(3600),
            finder_gate: false,
            early_stop: false,
        }
    }
}

/// Scans one camera luma plane with the default configuration.
///
/// `luma` holds `height` rows of `row_stride` bytes, of which the first `width`
/// are pixels. The last row may stop right after its pixels (Android's Y plane
/// often does), so `luma.len() >= (height - 1) * row_stride + width`.
pub fn scan_frame(
    luma: &[u8],
    width: u32,
    height: u32,
    row_stride: u32,
) -> Result<ScanOutcome, ScanError> {
    scan_frame_with(luma, width, height, row_stride, &ScanConfig::default())
}

/// [`scan_frame`] for an already tightly packed grey image.
pub fn scan_image(img: &GrayImage) -> Result<ScanOutcome, ScanError> {
    scan_image_with(img, &ScanConfig::default())
}

/// [`scan_image`] with an explicit configuration.
pub fn scan_image_with(img: &GrayImage, config: &ScanConfig) -> Result<ScanOutcome, ScanError> {
    let (w, h) = img.dimensions();
    scan_frame_with(img.as_raw(), w, h, w, config)
}

/// [`scan_frame`] with an explicit configuration.
pub fn scan_frame_with(
    luma: &[u8],
    width: u32,
    height: u32,
    row_stride: u32,
    config: &ScanConfig,
) -> Result<ScanOutcome, ScanError> {
    scan_frame_traced(luma, width, height, row_stride, config).map(|(outcome, _)| outcome)
}

/// What a scan did to reach its outcome (for tests and the benchmark: the
/// gate's effect is otherwise only visible as time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanTrace {
    /// Finder-pattern candidates that could belong to a code (0 with the gate
    /// off, or when the gate ended the scan).
    pub candidates: usize,
    /// Finder-pattern candidates seen at all scales, whether or not two of
    /// them could belong to one code (0 when neither the gate nor the early
    /// stop is on).
    pub seen: usize,
    /// Decoder passes that ran.
    pub passes_run: usize,
    /// A hash (FNV-1a) of every candidate seen at all scales (position,
    /// module size, diagonal flag, in order) and of whether a scale was busy:
    /// two builds of the search that agree on it found the same candidates
    /// (the benchmark's per-frame lines compare builds with it). 0 when
    /// neither the gate nor the early stop is on.
    pub candidates_digest: u64,
}

/// [`scan_frame_with`], also reporting what the scan did.
pub fn scan_frame_traced(
    luma: &[u8],
    width: u32,
    height: u32,
    row_stride: u32,
    config: &ScanConfig,
) -> Result<(ScanOutcome, ScanTrace), ScanError> {
    let start = Instant::now();
    let mut trace = ScanTrace::default();
    check_frame(luma, width, height, row_stride)?;
    // A tightly packed frame is searched in place: the gate ends most frames
    // without a code, and only a decoder pass needs a copy of its own.
    let packed;
    let pixels: &[u8] = if row_stride == width {
        &luma[..width as usize * height as usize]
    } else {
        packed = pack_frame(luma, width, height, row_stride);
        &packed
    };
    let frame = Frame::from_raw(width, height, pixels).expect("a checked frame has width*height bytes");
    // The working image is a reduction of the frame, or the frame itself
    // (copied when a pass needs it).
    let (working, reduced) = match config.working_side {
        Some(side) if width.max(height) > side => {
            let f = side as f64 / width.max(height) as f64;
            let nw = ((width as f64 * f).round() as u32).max(1);
            let nh = ((height as f64 * f).round() as u32).max(1);
            (Some(area_resize(&frame, nw, nh)), true)
        }
        _ => (None, false),
    };
    let mut preps = Preps {
        frame,
        reduced,
        working,
        cache: Vec::new(),
        zoom: None,
    };
    let mut stop_when_read = false;
    // Candidates that could belong to a code, in working-image pixels.
    let mut seeds: Vec<finder::Candidate> = Vec::new();
    let candidates = if config.finder_gate || config.early_stop {
        let gate = preps.finder_candidates(&config.passes);
        trace.seen = gate.all.len();
        trace.candidates_digest = gate.digest();
        if config.finder_gate && gate.in_codes.is_empty() {
            return Ok((ScanOutcome::NothingFound, trace));
        }
        trace.candidates = gate.in_codes.len();
        seeds = gate.in_codes;
        preps.zoom = zoom_region(&seeds, preps.working_dims());
        // The early stop waits for every candidate, not only those in
        // triples: a code whose third pattern the gate missed still holds
        // two unread candidates. A busy scene kept only its strongest
        // candidates, so it never stops early.
        stop_when_read = config.early_stop && !gate.busy;
        Some(gate.all)
    } else {
        None
    };
    let mut foreign = BTreeSet::new();
    let mut read_areas: Vec<Area> = Vec::new();
    for (i, p) in config.passes.iter().enumerate() {
        if i > 0 && start.elapsed() >= config.budget {
            break;
        }
        let all_read = candidates.as_ref().is_some_and(|c| {
            stop_when_read
                && !read_areas.is_empty()
                && c.iter()
                    .all(|c| read_areas.iter().any(|a| a.contains(c.x, c.y)))
        });
        if all_read {
            // Every finder pattern in the frame belongs to a code already read.
            break;
        }
        let to_working = preps.to_working(p.prep);
        let seeds: Vec<grid::Seed> = if p.decoder == Decoder::Hybrid {
            let (to, scale) = preps.working_to_prep(p.prep);
            seeds
                .iter()
                .map(|c| {
                    let (x, y) = to(c.x, c.y);
                    grid::Seed { x, y, module: c.module * scale }
                })
                .collect()
        } else {
            Vec::new()
        };
        let img = preps.get(p.prep);
        let Some(img) = img else { continue };
        trace.passes_run += 1;
        for (mut text, points) in decode_contained(p.decoder, img, &seeds) {
            match Payload::parse_ignoring_expiry(&text) {
                Ok(payload) => {
                    zeroize::Zeroize::zeroize(&mut text);
                    return Ok((ScanOutcome::Shomei(payload), trace));
                }
                Err(_) => {
                    if let Some(area) = Area::around(points.iter().map(|&(x, y)| to_working(x, y)))
                    {
                        read_areas.push(area);
                    }
                    foreign.insert(text);
                }
            }
        }
    }
    let outcome = if foreign.is_empty() {
        ScanOutcome::NothingFound
    } else {
        ScanOutcome::ForeignOnly(foreign.into_iter().collect())
    };
    Ok((outcome, trace))
}

/// The caller's frame, tightly packed (borrowed when it already was).
type Frame<'a> = ImageBuffer<Luma<u8>, &'a [u8]>;

/// Checks the frame geometry against the buffer.
fn check_frame(luma: &[u8], width: u32, height: u32, row_stride: u32) -> Result<(), ScanError> {
    if width == 0 || height == 0 {
        return Err(ScanError::BadFrame(format!("empty frame {width}x{height}")));
    }
    if row_stride < width {
        return Err(ScanError::BadFrame(format!(
            "row stride {row_stride} is less than width {width}"
        )));
    }
    if u64::from(width) * u64::from(height) > MAX_FRAME_PIXELS {
        return Err(ScanError::BadFrame(format!(
            "frame {width}x{height} exceeds {MAX_FRAME_PIXELS} pixels"
        )));
    }
    let (w, h, stride) = (width as usize, height as usize, row_stride as usize);
    let needed = (h - 1)
        .checked_mul(stride)
        .and_then(|n| n.checked_add(w))
        .ok_or_else(|| ScanError::BadFrame("frame size overflows".into()))?;
    if luma.len() < needed {
        return Err(ScanError::BadFrame(format!(
            "buffer of {} bytes is shorter than {needed} needed for {width}x{height} with row stride {row_stride}",
            luma.len()
        )));
    }
    Ok(())
}

/// Copies a checked frame's pixels without the row padding.
fn pack_frame(luma: &[u8], width: u32, height: u32, row_stride: u32) -> Vec<u8> {
    let (w, h, stride) = (width as usize, height as usize, row_stride as usize);
    let mut packed = Vec::with_capacity(w * h);
    for y in 0..h {
        packed.extend_from_slice(&luma[y * stride..y * stride + w]);
    }
    packed
}

/// What the finder gate saw, in working-image coordinates.
struct Gate {
    /// Candidates of which two could belong to one code (none: no code can be read).
    in_codes: Vec<finder::Candidate>,
    /// Every candidate, at every scale.
    all: Vec<finder::Candidate>,
    /// More candidates than were kept at some scale.
    busy: bool,
}

impl Gate {
    /// See [`ScanTrace::candidates_digest`].
    fn digest(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |v: u32| {
            for b in v.to_le_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for c in &self.all {
            eat(c.x.to_bits());
            eat(c.y.to_bits());
            eat(c.module.to_bits());
            eat(u32::from(c.square));
        }
        eat(u32::from(self.busy));
        h
    }
}

/// Lazily built pass inputs, so a frame decoded by the first pass pays for no
/// preprocessing.
struct Preps<'a> {
    /// The frame at full resolution.
    frame: Frame<'a>,
    /// The working image is a reduction of the frame.
    reduced: bool,
    /// The working image: the reduction, or the frame's copy once a pass
    /// needs one (until then the frame stands for it).
    working: Option<GrayImage>,
    cache: Vec<(Prep, Option<GrayImage>)>,
    /// Working-image region (x, y, w, h) and factor of [`Prep::Zoom`].
    zoom: Option<(u32, u32, u32, u32, f32)>,
}

impl Preps<'_> {
    /// The working image's pixels (the frame's, until a pass copied them).
    fn working_view(&self) -> Frame<'_> {
        match &self.working {
            Some(w) => Frame::from_raw(w.width(), w.height(), w.as_raw().as_slice()).expect("an image has width*height bytes"),
            None => Frame::from_raw(self.frame.width(), self.frame.height(), *self.frame.as_raw()).expect("a frame has width*height bytes"),
        }
    }

    fn working_dims(&self) -> (u32, u32) {
        self.working.as_ref().map_or(self.frame.dimensions(), GrayImage::dimensions)
    }

    /// Finder-pattern candidates that could belong to a code, in
    /// working-image coordinates: in the working image, at half and quarter
    /// size (blur shrinks with the image), at a third when a pass of `passes`
    /// decodes there and, when the frame was reduced, in the centre at full
    /// resolution (a far code).
    /// Inverted and binarized images are covered by the working image: the
    /// search sees both polarities and binarizes itself.
    fn finder_candidates(&mut self, passes: &[Pass]) -> Gate {
        // Every scale, not just the first with a pair: the early stop needs
        // every code the frame may hold (a blurred one may only show at half
        // size beside a sharp one).
        let (mut all, mut busy) = finder::candidates(&self.working_view());
        // Half and quarter size always (a code too blurred at the working
        // size shows there), a third when a pass decodes there.
        let scales = [Prep::Half, Prep::Third, Prep::Quarter, Prep::CenterFull];
        let searched = |s: &Prep| *s != Prep::Third || passes.iter().any(|p| p.prep == *s);
        for prep in scales.into_iter().filter(searched) {
            let map = self.to_working(prep);
            if let Some(img) = self.get(prep) {
                let (found, b) = finder::candidates(img);
                busy |= b;
                // Module sizes in working-image pixels too, so that
                // candidates of different scales compare: the patterns of
                // one code may show at different scales (a blurred corner
                // only at half size).
                let scale = map(1.0, 0.0).0 - map(0.0, 0.0).0;
                all.extend(found.into_iter().map(|c| {
                    let (x, y) = map(c.x, c.y);
                    finder::Candidate {
                        x,
                        y,
                        module: c.module * scale,
                        ..c
                    }
                }));
            }
        }
        let in_codes = finder::in_code_pairs(&all);
        Gate {
            in_codes,
            all,
            busy,
        }
    }

    /// Maps a point of the working image into `prep`'s image, and the scale
    /// of lengths.
    fn working_to_prep(&self, prep: Prep) -> (impl Fn(f32, f32) -> (f32, f32) + use<>, f32) {
        let to = self.to_working(prep);
        let (ox, oy) = to(0.0, 0.0);
        let (sx, _) = to(1.0, 0.0);
        let (_, sy) = to(0.0, 1.0);
        let (kx, ky) = ((sx - ox).max(1e-6), (sy - oy).max(1e-6));
        (move |x, y| ((x - ox) / kx, (y - oy) / ky), 1.0 / kx)
    }

    /// Maps a point of `prep`'s image to working-image coordinates.
    fn to_working(&self, prep: Prep) -> impl Fn(f32, f32) -> (f32, f32) + use<> {
        let (ww, wh) = self.working_dims();
        let (fw, fh) = self.frame.dimensions();
        let (sx, sy, ox, oy) = match prep {
            Prep::Working | Prep::Inverted | Prep::LocalMean => (1.0, 1.0, 0.0, 0.0),
            Prep::Half => (
                ww as f32 / (ww / 2).max(1) as f32,
                wh as f32 / (wh / 2).max(1) as f32,
                0.0,
                0.0,
            ),
            Prep::Third => (
                ww as f32 / (ww / 3).max(1) as f32,
                wh as f32 / (wh / 3).max(1) as f32,
                0.0,
                0.0,
            ),
            Prep::Quarter => (
                ww as f32 / (ww / 4).max(1) as f32,
                wh as f32 / (wh / 4).max(1) as f32,
                0.0,
                0.0,
            ),
            Prep::Zoom => match self.zoom {
                Some((x0, y0, _, _, f)) => (1.0 / f, 1.0 / f, x0 as f32, y0 as f32),
                None => (1.0, 1.0, 0.0, 0.0),
            },
            Prep::CenterFull => {
                let (sx, sy) = (ww as f32 / fw as f32, wh as f32 / fh as f32);
                (sx, sy, (fw / 4) as f32 * sx, (fh / 4) as f32 * sy)
            }
        };
        move |x, y| (x * sx + ox, y * sy + oy)
    }

    fn get(&mut self, prep: Prep) -> Option<&GrayImage> {
        if prep == Prep::Working {
            let frame = &self.frame;
            return Some(self.working.get_or_insert_with(|| GrayImage::from_raw(frame.width(), frame.height(), frame.as_raw().to_vec()).expect("a frame has width*height bytes")));
        }
        let idx = match self.cache.iter().position(|(p, _)| *p == prep) {
            Some(i) => i,
            None => {
                let built = self.build(prep);
                self.cache.push((prep, built));
                self.cache.len() - 1
            }
        };
        self.cache[idx].1.as_ref()
    }

    fn build(&self, prep: Prep) -> Option<GrayImage> {
        let w = &self.working_view();
        match prep {
            Prep::Working => Some(GrayImage::from_raw(w.width(), w.height(), w.as_raw().to_vec()).expect("width*height bytes")),
            Prep::Inverted => {
                let mut inv = GrayImage::from_raw(w.width(), w.height(), w.as_raw().to_vec()).expect("width*height bytes");
                image::imageops::invert(&mut inv);
                Some(inv)
            }
            Prep::LocalMean => Some(local_mean_threshold(w)),
            Prep::Half => {
                let (ww, wh) = w.dimensions();
                (ww >= 64 && wh >= 64).then(|| area_resize(w, ww / 2, wh / 2))
            }
            Prep::Third => {
                let (ww, wh) = w.dimensions();
                (ww >= 96 && wh >= 96).then(|| area_resize(w, ww / 3, wh / 3))
            }
            Prep::Quarter => {
                let (ww, wh) = w.dimensions();
                if ww < 128 || wh < 128 {
                    return None;
                }
                // From the half-size image when it is already built (a quarter of the reads).
                let half = self
                    .cache
                    .iter()
                    .find_map(|(p, img)| (*p == Prep::Half).then_some(img.as_ref()).flatten());
                Some(match half {
                    Some(h) => area_resize(h, ww / 4, wh / 4),
                    None => area_resize(w, ww / 4, wh / 4),
                })
            }
            Prep::Zoom => {
                let (x0, y0, cw, ch, f) = self.zoom?;
                let crop = crop(w, x0, y0, cw, ch);
                let (zw, zh) = ((cw as f32 * f).round() as u32, (ch as f32 * f).round() as u32);
                Some(image::imageops::resize(
                    &crop,
                    zw,
                    zh,
                    image::imageops::FilterType::Triangle,
                ))
            }
            Prep::CenterFull => {
                // Only worth it when the working image lost resolution.
                if !self.reduced {
                    return None;
                }
                let full = &self.frame;
                let (fw, fh) = full.dimensions();
                let (cw, ch) = (fw / 2, fh / 2);
                Some(crop(full, fw / 4, fh / 4, cw, ch))
            }
        }
    }
}

/// The `cw`×`ch` region at (`x0`, `y0`) of `src`, cut at the image's
/// border, copied (what `crop_imm(..).to_image()` gives, which wants an
/// image that owns its pixels).
fn crop(src: &Frame, x0: u32, y0: u32, cw: u32, ch: u32) -> GrayImage {
    let (x0, y0) = (x0.min(src.width()), y0.min(src.height()));
    let (cw, ch) = (cw.min(src.width() - x0), ch.min(src.height() - y0));
    let (w, x0, y0, cw, ch) = (src.width() as usize, x0 as usize, y0 as usize, cw as usize, ch as usize);
    let raw: &[u8] = src.as_raw();
    let mut out = Vec::with_capacity(cw * ch);
    for y in y0..y0 + ch {
        out.extend_from_slice(&raw[y * w + x0..y * w + x0 + cw]);
    }
    GrayImage::from_raw(cw as u32, ch as u32, out).expect("cw*ch bytes")
}

/// Candidates with modules under this many working-image pixels are zoomed.
const ZOOM_BELOW_PX: f32 = 4.0;
/// Zoomed to about this many pixels per module.
const ZOOM_TO_PX: f32 = 8.0;
/// The zoomed image stays under this many pixels (a region too large to
/// enlarge that far is enlarged less, or not at all below 1.5×).
const ZOOM_MAX_PIXELS: f32 = 1_500_000.0;

/// The region of [`Prep::Zoom`]: around the candidates with small modules,
/// grown by the largest distance between two of them (a pattern the search
/// missed lies up to a side of the code away from the ones it saw) and 12
/// modules (the code's corners lie 3.5 modules beyond its finder centres,
/// then the quiet zone); and the factor that brings their modules to about
/// [`ZOOM_TO_PX`].
fn zoom_region(cands: &[finder::Candidate], (w, h): (u32, u32)) -> Option<(u32, u32, u32, u32, f32)> {
    let small: Vec<&finder::Candidate> = cands
        .iter()
        .filter(|c| c.module > 0.0 && c.module < ZOOM_BELOW_PX)
        .collect();
    let module = small.iter().map(|c| c.module).fold(f32::MAX, f32::min);
    let largest = small.iter().map(|c| c.module).fold(0.0, f32::max);
    if small.is_empty() {
        return None;
    }
    let pad = 12.0 * largest.max(1.0) + 8.0;
    // The farthest a third pattern can be: the largest pair distance.
    let span = small
        .iter()
        .flat_map(|a| small.iter().map(move |b| (a.x - b.x).abs().max((a.y - b.y).abs())))
        .fold(0.0f32, f32::max);
    let x0 = small.iter().map(|c| c.x).fold(f32::MAX, f32::min) - pad - span;
    let y0 = small.iter().map(|c| c.y).fold(f32::MAX, f32::min) - pad - span;
    let x1 = small.iter().map(|c| c.x).fold(f32::MIN, f32::max) + pad + span;
    let y1 = small.iter().map(|c| c.y).fold(f32::MIN, f32::max) + pad + span;
    let (x0, y0) = (x0.max(0.0) as u32, y0.max(0.0) as u32);
    let (x1, y1) = ((x1.max(0.0) as u32).min(w), (y1.max(0.0) as u32).min(h));
    if x1 <= x0 + 16 || y1 <= y0 + 16 {
        return None;
    }
    let (cw, ch) = (x1 - x0, y1 - y0);
    let f = (ZOOM_TO_PX / module.max(1.0))
        .min((ZOOM_MAX_PIXELS / (cw as f32 * ch as f32)).sqrt())
        .min(4.0);
    (f >= 1.5).then_some((x0, y0, cw, ch, f))
}

/// Where a decoded code lies in the working image: the box around the points
/// its decoder reported (finder centres or corners), grown by a fifth of its
/// size so that it covers the code's finder patterns either way.
struct Area {
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
}

impl Area {
    fn around(points: impl Iterator<Item = (f32, f32)>) -> Option<Area> {
        let mut a = Area {
            x0: f32::MAX,
            y0: f32::MAX,
            x1: f32::MIN,
            y1: f32::MIN,
        };
        let mut n = 0;
        for (x, y) in points {
            a.x0 = a.x0.min(x);
            a.y0 = a.y0.min(y);
            a.x1 = a.x1.max(x);
            a.y1 = a.y1.max(y);
            n += 1;
        }
        if n < 3 {
            return None;
        }
        let m = 0.2 * (a.x1 - a.x0).max(a.y1 - a.y0) + 4.0;
        Some(Area {
            x0: a.x0 - m,
            y0: a.y0 - m,
            x1: a.x1 + m,
            y1: a.y1 + m,
        })
    }

    fn contains(&self, x: f32, y: f32) -> bool {
        (self.x0..=self.x1).contains(&x) && (self.y0..=self.y1).contains(&y)
    }
}

/// A decoded text and the points its decoder located it by.
type Decoded = (String, Vec<(f32, f32)>);

/// Runs one decoder with panics contained; a panic means "nothing found".
fn decode_contained(decoder: Decoder, img: &GrayImage, seeds: &[grid::Seed]) -> Vec<Decoded> {
    contained(|| decode(decoder, img, seeds))
}

/// The decoders only read the image they are given and build fresh state per
/// call, so nothing observable is left half-updated when one unwinds.
fn contained<T>(f: impl FnOnce() -> Vec<T>) -> Vec<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_default()
}

/// `seeds`: our finder-pattern candidates in `img`'s pixels (used by
/// [`Decoder::Hybrid`] only).
fn decode(decoder: Decoder, img: &GrayImage, seeds: &[grid::Seed]) -> Vec<Decoded> {
    let (w, h) = img.dimensions();
    match decoder {
        Decoder::Rqrr => {
            let mut prepared =
                rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
                    img.as_raw()[y * w as usize + x]
                });
            prepared
                .detect_grids()
                .into_iter()
                .filter_map(|g| {
                    let points = g.bounds.iter().map(|p| (p.x as f32, p.y as f32)).collect();
                    g.decode().ok().map(|(_, text)| (text, points))
                })
                .collect()
        }
        Decoder::Hybrid => {
            let Ok(source) = Luma8LuminanceSource::new(img.as_raw().clone(), w, h) else {
                return Vec::new();
            };
            let bitmap = BinaryBitmap::new(HybridBinarizer::new(source));
            grid::decode(bitmap.get_black_matrix(), seeds)
        }
        Decoder::RxingCpp | Decoder::RxingJavaMulti | Decoder::RxingJava => {
            let Ok(source) = Luma8LuminanceSource::new(img.as_raw().clone(), w, h) else {
                return Vec::new();
            };
            let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(source));
            let hints = DecodeHints {
                TryHarder: Some(true),
                PossibleFormats: Some(std::collections::HashSet::from([BarcodeFormat::QR_CODE])),
                ..DecodeHints::default()
            };
            let found = match decoder {
                Decoder::RxingCpp => QrReader.decode_multiple_with_hints(&mut bitmap, &hints),
                Decoder::RxingJavaMulti => {
                    QRCodeMultiReader::new().decode_multiple_with_hints(&mut bitmap, &hints)
                }
                _ => QRCodeReader::new()
                    .decode_with_hints(&mut bitmap, &hints)
                    .map(|r| vec![r]),
            };
            found
                .map(|rs| {
                    rs.iter()
                        .map(|r| {
                            (
                                r.getText().to_owned(),
                                r.getPoints().iter().map(|p| (p.x, p.y)).collect(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
    }
}

/// Box-filter (area-average) resize: each output pixel is the mean of the source
/// pixels it covers, so fine module edges are averaged rather than aliased.
fn area_resize<C: std::ops::Deref<Target = [u8]>>(src: &ImageBuffer<Luma<u8>, C>, nw: u32, nh: u32) -> GrayImage {
    let (sw, sh) = src.dimensions();
    let (sw, sh, nw, nh) = (
        sw as usize,
        sh as usize,
        nw.max(1) as usize,
        nh.max(1) as usize,
    );
    let raw: &[u8] = src.as_raw();
    if (sw == 2 * nw || sw == 2 * nw + 1) && (sh == 2 * nh || sh == 2 * nh + 1) {
        // Half: every output pixel is the mean of a 2×2 block (the general
        // path below gives the same values, several times slower); of an odd
        // width or height, the last column or row also covers the third
        // pixel or row left over, as the general path does
        // ([`covered_mean`]).
        // Sixteen output pixels a step from 32 bytes of each of the two
        // rows, in fixed-size arrays the compiler keeps in vector
        // registers: the two rows added column by column (at most 510),
        // neighbouring columns added, ÷ 4.
        const OUT: usize = 16;
        let last_col = (sw % 2 == 1).then_some(nw - 1);
        let pairs = last_col.unwrap_or(nw);
        let mut out = Vec::with_capacity(nw * nh);
        for y in 0..nh {
            if sh % 2 == 1 && y == nh - 1 {
                let last = |x: usize| if Some(x) == last_col { sw } else { 2 * x + 2 };
                out.extend((0..nw).map(|x| covered_mean(raw, sw, 2 * x..last(x), 2 * y..sh)));
                break;
            }
            let r0 = &raw[2 * y * sw..(2 * y + 1) * sw];
            let r1 = &raw[(2 * y + 1) * sw..(2 * y + 2) * sw];
            let steps = pairs / OUT;
            for c in 0..steps {
                let a: &[u8; 2 * OUT] = r0[2 * OUT * c..2 * OUT * (c + 1)].try_into().expect("2*OUT bytes");
                let b: &[u8; 2 * OUT] = r1[2 * OUT * c..2 * OUT * (c + 1)].try_into().expect("2*OUT bytes");
                let col: [u16; 2 * OUT] = std::array::from_fn(|i| u16::from(a[i]) + u16::from(b[i]));
                let q: [u8; OUT] = std::array::from_fn(|i| ((col[2 * i] + col[2 * i + 1]) >> 2) as u8);
                out.extend_from_slice(&q);
            }
            for x in steps * OUT..pairs {
                let s = u16::from(r0[2 * x]) + u16::from(r0[2 * x + 1]) + u16::from(r1[2 * x]) + u16::from(r1[2 * x + 1]);
                out.push((s / 4) as u8);
            }
            if let Some(x) = last_col {
                out.push(covered_mean(raw, sw, 2 * x..sw, 2 * y..2 * y + 2));
            }
        }
        return GrayImage::from_raw(nw as u32, nh as u32, out).expect("nw*nh bytes");
    }
    if 2 * sw == 3 * nw && 2 * sh == 3 * nh {
        // Two thirds (1920×1080 to the 1280×720 working size): every three
        // source columns make two output pixels, one column then the mean
        // of two, and likewise every three rows one row then two. Each
        // output pixel covers 1, 2 or 4 source pixels, so the general
        // path's integers (×256 ÷ width, added down, ÷ rows ÷ 256) are its
        // sum shifted right; the same values without its per-pixel cases.
        let mut out = Vec::with_capacity(nw * nh);
        let mut pair = vec![0u16; sw];
        for y in 0..nh {
            let first = y * sh / nh;
            let line = |r: usize| &raw[r * sw..(r + 1) * sw];
            // The covered rows summed column by column, and their count's log.
            let rows: u32 = if y % 2 == 0 {
                for (p, &v) in pair.iter_mut().zip(line(first)) {
                    *p = u16::from(v);
                }
                0
            } else {
                for ((p, &a), &b) in pair.iter_mut().zip(line(first)).zip(line(first + 1)) {
                    *p = u16::from(a) + u16::from(b);
                }
                1
            };
            out.extend(pair.chunks_exact(3).flat_map(|c| [(c[0] >> rows) as u8, ((c[1] + c[2]) >> (rows + 1)) as u8]));
        }
        return GrayImage::from_raw(nw as u32, nh as u32, out).expect("nw*nh bytes");
    }
    let xb: Vec<(usize, usize)> = (0..nw)
        .map(|x| {
            let a = x * sw / nw;
            let b = ((x + 1) * sw / nw).max(a + 1).min(sw);
            (a, b)
        })
        .collect();
    // Per output row: each covered source row summed across (×256 ÷ the
    // pixels summed), those sums added down, ÷ the rows added ÷ 256. The
    // common widths of one and two pixels and heights of two rows are
    // spelled out: the same integers without a division per pixel.
    let mut across = vec![0u32; nw];
    let mut down = vec![0u32; nw];
    let mut out = vec![0u8; nw * nh];
    for y in 0..nh {
        let a = y * sh / nh;
        let b = ((y + 1) * sh / nh).max(a + 1).min(sh);
        down.iter_mut().for_each(|d| *d = 0);
        for yy in a..b {
            let line = &raw[yy * sw..(yy + 1) * sw];
            for (s, &(xa, xb)) in across.iter_mut().zip(&xb) {
                *s = match xb - xa {
                    1 => u32::from(line[xa]) * 256,
                    2 => (u32::from(line[xa]) + u32::from(line[xa + 1])) * 128,
                    n => line[xa..xb].iter().map(|&v| u32::from(v)).sum::<u32>() * 256 / n as u32,
                };
            }
            for (d, &s) in down.iter_mut().zip(&across) {
                *d += s;
            }
        }
        let line = &mut out[y * nw..(y + 1) * nw];
        match b - a {
            2 => line.iter_mut().zip(&down).for_each(|(o, &d)| *o = (d / 512).min(255) as u8),
            n => line
                .iter_mut()
                .zip(&down)
                .for_each(|(o, &d)| *o = (d / n as u32 / 256).min(255) as u8),
        }
    }
    GrayImage::from_raw(nw as u32, nh as u32, out).expect("nw*nh bytes")
}

/// One output pixel of [`area_resize`]'s general path: the source pixels
/// `cols` × `rows` summed across per row (×256 ÷ the pixels summed), those
/// sums added down, ÷ the rows added ÷ 256 — the same integers, for the
/// half-size path's odd last column or row.
fn covered_mean(raw: &[u8], sw: usize, cols: std::ops::Range<usize>, rows: std::ops::Range<usize>) -> u8 {
    let n = cols.len() as u32;
    let down: u32 = rows
        .clone()
        .map(|y| {
            let line = &raw[y * sw + cols.start..y * sw + cols.end];
            match n {
                1 => u32::from(line[0]) * 256,
                2 => (u32::from(line[0]) + u32::from(line[1])) * 128,
                n => line.iter().map(|&v| u32::from(v)).sum::<u32>() * 256 / n,
            }
        })
        .sum();
    (down / rows.len() as u32 / 256).min(255) as u8
}

/// Binarizes by comparing each pixel with the mean of a square window around
/// it (via an integral image). The window is an eighth of the shorter side so
/// that it spans a finder pattern of any code large enough to decode.
fn local_mean_threshold<C: std::ops::Deref<Target = [u8]>>(src: &ImageBuffer<Luma<u8>, C>) -> GrayImage {
    let (w, h) = src.dimensions();
    let (w, h) = (w as usize, h as usize);
    let raw: &[u8] = src.as_raw();
    let mut integral = vec![0u64; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0u64;
        for x in 0..w {
            row += u64::from(raw[y * w + x]);
            integral[(y + 1) * (w + 1) + x + 1] = integral[y * (w + 1) + x + 1] + row;
        }
    }
    let r = (w.min(h) / 16).max(4);
    let mut out = vec![255u8; w * h];
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
            let sum = integral[y1 * (w + 1) + x1] + integral[y0 * (w + 1) + x0]
                - integral[y0 * (w + 1) + x1]
                - integral[y1 * (w + 1) + x0];
            let n = ((y1 - y0) * (x1 - x0)) as u64;
            // Dark by a margin below the local mean; the margin keeps flat
            // regions (screen background, noise) white.
            if u64::from(raw[y * w + x]) * n * 100 < sum * 92 {
                out[y * w + x] = 0;
            }
        }
    }
    GrayImage::from_raw(w as u32, h as u32, out).expect("w*h bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_panic_counts_as_nothing_found() {
        // rqrr 0.10 asserts in `detect_grids` on a ZXing blackbox photo
        // (rqrr issue #54); whatever panics inside a pass must not reach the app.
        let texts: Vec<Decoded> = contained(|| panic!("decoder bug"));
        assert!(texts.is_empty());
    }

    #[test]
    fn crop_of_a_borrowed_frame_equals_the_image_crate_crop() {
        let img = GrayImage::from_fn(37, 23, |x, y| image::Luma([((x * 31 + y * 17 + x * y) % 256) as u8]));
        let frame = Frame::from_raw(37, 23, img.as_raw().as_slice()).unwrap();
        // inside, at the edges, over the border (cut), empty
        for (x0, y0, cw, ch) in [(0, 0, 37, 23), (9, 5, 18, 11), (3, 4, 1, 1), (30, 20, 10, 10), (36, 22, 5, 5), (37, 23, 4, 4), (5, 5, 0, 3), (40, 0, 3, 3)] {
            let want = image::imageops::crop_imm(&img, x0, y0, cw, ch).to_image();
            let got = crop(&frame, x0, y0, cw, ch);
            assert_eq!(got.dimensions(), want.dimensions(), "({x0}, {y0}) {cw}x{ch}");
            assert_eq!(got.as_raw(), want.as_raw(), "({x0}, {y0}) {cw}x{ch}");
        }
    }

    #[test]
    fn area_resize_by_exactly_half_is_the_mean_of_each_2x2_block() {
        // widths around the sixteen-pixel step (the tail too), white and
        // black patches (the largest and smallest sums), a gradient
        for (w, h) in [(37u32, 23u32), (1, 1), (2, 3), (3, 2), (4, 4), (5, 3), (7, 2), (8, 5), (9, 9), (64, 6), (15, 3), (16, 2), (17, 4), (31, 3), (32, 5), (33, 2), (320, 7)] {
            let img = GrayImage::from_fn(w * 2, h * 2, |x, y| {
                image::Luma([match (x / 5 + y / 3) % 4 {
                    0 => 255,
                    1 => 0,
                    2 => 254 + ((x + y) % 2) as u8,
                    _ => ((x * 31 + y * 17 + x * y) % 256) as u8,
                }])
            });
            let fast = area_resize(&img, w, h);
            assert_eq!(fast.as_raw(), reference_area_resize(&img, w, h).as_raw(), "{w}x{h}");
            for y in 0..h {
                for x in 0..w {
                    let s: u32 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                        .iter()
                        .map(|&(dx, dy)| u32::from(img.get_pixel(2 * x + dx, 2 * y + dy)[0]))
                        .sum();
                    assert_eq!(u32::from(fast.get_pixel(x, y)[0]), s / 4, "({x}, {y})");
                }
            }
        }
    }

    /// The area average as first written (a division per pixel): the
    /// reference the faster one must equal.
    fn reference_area_resize(src: &GrayImage, nw: u32, nh: u32) -> GrayImage {
        let (sw, sh) = src.dimensions();
        let (sw, sh, nw, nh) = (sw as usize, sh as usize, nw as usize, nh as usize);
        let raw = src.as_raw();
        let xb: Vec<(usize, usize)> = (0..nw)
            .map(|x| {
                let a = x * sw / nw;
                (a, ((x + 1) * sw / nw).max(a + 1).min(sw))
            })
            .collect();
        let mut rows = vec![0u32; sh * nw];
        for y in 0..sh {
            for (x, &(a, b)) in xb.iter().enumerate() {
                let s: u32 = raw[y * sw + a..y * sw + b].iter().map(|&v| u32::from(v)).sum();
                rows[y * nw + x] = s * 256 / (b - a) as u32;
            }
        }
        GrayImage::from_fn(nw as u32, nh as u32, |x, y| {
            let (x, y) = (x as usize, y as usize);
            let a = y * sh / nh;
            let b = ((y + 1) * sh / nh).max(a + 1).min(sh);
            let s: u32 = (a..b).map(|yy| rows[yy * nw + x]).sum();
            image::Luma([(s / (b - a) as u32 / 256).min(255) as u8])
        })
    }

    #[test]
    fn area_resize_to_any_size_is_the_mean_of_the_covered_pixels() {
        let img = GrayImage::from_fn(157, 103, |x, y| {
            image::Luma([((x * 37 + y * 11 + x * y * 7) % 256) as u8])
        });
        for (nw, nh) in [(78, 51), (52, 34), (39, 25), (100, 100), (157, 103), (200, 150), (1, 1), (13, 97)] {
            assert_eq!(
                area_resize(&img, nw, nh).as_raw(),
                reference_area_resize(&img, nw, nh).as_raw(),
                "{nw}x{nh}"
            );
        }
    }

    /// White and black patches (the largest sums), near-white and mixed
    /// ones: the frames the reductions are checked on.
    fn patches(w: u32, h: u32) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            image::Luma([match (x / 5 + y / 3) % 4 {
                0 => 255,
                1 => 0,
                2 => 254 + ((x + y) % 2) as u8,
                _ => ((x * 31 + y * 17 + x * y) % 256) as u8,
            }])
        })
    }

    #[test]
    fn area_resize_to_half_of_an_odd_size_is_the_general_rule() {
        // Odd widths, odd heights and both (the last column or row covers
        // three pixels or rows), around the sixteen-pixel step, white and
        // black patches (the largest sums), against the general path's rule.
        for (w, h) in [(3u32, 3u32), (3, 2), (2, 3), (5, 4), (33, 9), (34, 9), (33, 10), (35, 7), (63, 31), (65, 66), (321, 181), (1041, 15)] {
            let img = patches(w, h);
            let (nw, nh) = (w / 2, h / 2);
            assert_eq!(area_resize(&img, nw, nh).as_raw(), reference_area_resize(&img, nw, nh).as_raw(), "{w}x{h}");
        }
    }

    #[test]
    fn area_resize_to_two_thirds_is_the_general_rule() {
        // 1920×1080 to 1280×720 and small sizes, white and black patches
        // (the largest sums), against the general path's rule
        for (w, h) in [(3u32, 3u32), (6, 3), (3, 6), (9, 12), (33, 21), (48, 30), (1920, 1080)] {
            let img = patches(w, h);
            let (nw, nh) = (w * 2 / 3, h * 2 / 3);
            assert_eq!(area_resize(&img, nw, nh).as_raw(), reference_area_resize(&img, nw, nh).as_raw(), "{w}x{h}");
        }
    }

    #[test]
    fn area_resize_averages_covered_pixels() {
        let img = GrayImage::from_raw(4, 2, vec![0, 255, 100, 100, 0, 255, 100, 100]).unwrap();
        let small = area_resize(&img, 2, 1);
        assert_eq!(small.as_raw(), &vec![127, 100]);
    }

    #[test]
    fn local_mean_threshold_keeps_flat_regions_white() {
        let img = GrayImage::from_pixel(64, 64, image::Luma([90]));
        assert!(
            local_mean_threshold(&img)
                .as_raw()
                .iter()
                .all(|&v| v == 255)
        );
    }
}
