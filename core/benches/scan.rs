//! Scanning benchmark: decode rate and time per frame of `shomei_core::scan`
//! against its own baselines (rqrr alone, rxing alone, the two combined) and
//! against zxing-cpp (PyPI) and zbar (Debian `zbar-tools`, when installed) as
//! peers, on the same images in the same run.
//!
//! Run: `cargo bench -p shomei-core --bench scan`
//!
//! Inputs and knobs (environment):
//! - `SHOMEI_QR_PHOTOS`: directory holding `qrcode-*/N.png|jpg` + `N.txt`
//!   (default: `../shared/qr-photos/zxing` beside the repository).
//! - `SHOMEI_QR_BOOFCV`: BoofCV-style categories `<category>/imageNNN.jpg` +
//!   corner files (default: `../shared/qr-photos/boofcv`); scored as distinct
//!   decoded texts per image, at most one per hand-marked code.
//! - `SHOMEI_PYTHON`: Python with `zxing-cpp` and `pillow` (default `python3`);
//!   if the peer cannot run the report says so and the Rust columns stand.
//! - `SHOMEI_SCAN_BENCH_SEEDS`: synthetic frames per degradation (default 8).
//! - `SHOMEI_SCAN_BENCH_OUT`: where the synthetic sets are written for the
//!   peer (default: a directory under the system temp dir).
//! - `SHOMEI_SCAN_BENCH_QUICK=1`: no baselines, no per-pass table.
//! - `SHOMEI_SCAN_BENCH_CONFIGS=key,key,...`: only these configurations, in
//!   this order (keys: rqrr, rxing, combined, no-early-stop, default,
//!   no-gate, previous, no-hybrid, no-rqrr, third).
//! - `SHOMEI_SCAN_BENCH_DIFF=1`: list (on stderr) the images each
//!   configuration reads differently from the first one, with its trace.
//! - `SHOMEI_SCAN_BENCH_TIMING_ONLY=1`: only the time per camera frame.
//! - `SHOMEI_SCAN_BENCH_PEER=0`: do not run zxing-cpp.
//! - `SHOMEI_SCAN_BENCH_FRAMES=label,...`: time only the camera-frame sets
//!   whose label starts with one of these (e.g. `page,empty-real` for the
//!   frames without a code a profile should look at).
//! - `SHOMEI_SCAN_BENCH_PER_FRAME=1`: every timed image's best time and
//!   the scan's trace, on stderr.
//! - `SHOMEI_SCAN_BENCH_REPEAT=N`: runs per frame in the timing table
//!   (default 5, 2 for the real scenes; more gives a profiler more samples).
//!
//! A hit counts only when a decoded text equals the expected text exactly.
//! Nothing here is tuned per image; the pass table shows what each pass of the
//! default configuration adds, measured, so that a pass that stops earning its
//! time can be dropped.

#[path = "scan_support/degrade.rs"]
mod degrade;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use image::GrayImage;
use shomei_core::scan::{
    Decoder, Pass, Prep, ScanConfig, ScanOutcome, scan_frame_traced, scan_frame_with,
};
use shomei_core::{LoginId, LoginPayload, Origin, QrSecret};

struct Sample {
    name: String,
    img: GrayImage,
    expected: String,
}

fn boofcv_root() -> PathBuf {
    match std::env::var_os("SHOMEI_QR_BOOFCV") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/qr-photos/boofcv"),
    }
}

/// A BoofCV photo: the image and the hand-marked corners of each code in it.
struct Marked {
    /// `<category>/<file name>`.
    name: String,
    img: GrayImage,
    codes: usize,
    quads: Vec<[(f32, f32); 4]>,
}

/// The marked corners, four `x y` points per code, in file order.
fn marked_quads(text: &str) -> Vec<[(f32, f32); 4]> {
    let numbers: Vec<f32> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace)
        .filter_map(|t| t.parse::<f32>().ok())
        .collect();
    numbers
        .chunks_exact(8)
        .map(|c| [(c[0], c[1]), (c[2], c[3]), (c[4], c[5]), (c[6], c[7])])
        .collect()
}

/// A real scene without a code: the photo with every marked code painted
/// over (its quadrilateral grown by a third around its centre, filled with
/// the photo's median grey). What the camera sees around a code — monitor
/// bezels, text, desks, hands — stays as photographed.
fn masked(m: &Marked) -> GrayImage {
    let mut img = m.img.clone();
    let mut values: Vec<u8> = img.as_raw().clone();
    values.sort_unstable();
    let fill = values[values.len() / 2];
    for q in &m.quads {
        let (cx, cy) = (
            q.iter().map(|p| p.0).sum::<f32>() / 4.0,
            q.iter().map(|p| p.1).sum::<f32>() / 4.0,
        );
        let g: Vec<(f32, f32)> = q
            .iter()
            .map(|&(x, y)| (cx + (x - cx) * 1.35, cy + (y - cy) * 1.35))
            .collect();
        let (x0, x1) = (
            g.iter().map(|p| p.0).fold(f32::MAX, f32::min),
            g.iter().map(|p| p.0).fold(f32::MIN, f32::max),
        );
        let (y0, y1) = (
            g.iter().map(|p| p.1).fold(f32::MAX, f32::min),
            g.iter().map(|p| p.1).fold(f32::MIN, f32::max),
        );
        let inside = |x: f32, y: f32| {
            // Inside a convex quadrilateral: the same side of all four edges.
            let s: Vec<f32> = (0..4)
                .map(|i| {
                    let (a, b) = (g[i], g[(i + 1) % 4]);
                    (b.0 - a.0) * (y - a.1) - (b.1 - a.1) * (x - a.0)
                })
                .collect();
            s.iter().all(|v| *v >= 0.0) || s.iter().all(|v| *v <= 0.0)
        };
        for y in (y0.max(0.0) as u32)..(y1.max(0.0).ceil() as u32).min(img.height()) {
            for x in (x0.max(0.0) as u32)..(x1.max(0.0).ceil() as u32).min(img.width()) {
                if inside(x as f32 + 0.5, y as f32 + 0.5) {
                    img.put_pixel(x, y, image::Luma([fill]));
                }
            }
        }
    }
    img
}

/// Codes marked in a BoofCV corner file: coordinates / 8 (four `x y` points
/// per code, one point per line or a whole code per line after `SETS`).
fn marked_codes(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace)
        .filter(|t| t.parse::<f64>().is_ok())
        .count()
        / 8
}

fn load_boofcv(root: &Path) -> Vec<(String, Vec<Marked>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        let mut items = Vec::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&d)
            .map(|e| e.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        paths.sort();
        for path in paths {
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            if !matches!(ext.as_str(), "png" | "jpg" | "jpeg") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(path.with_extension("txt")) else {
                continue;
            };
            match image::open(&path) {
                Ok(img) => items.push(Marked {
                    name: format!(
                        "{}/{}",
                        d.file_name().unwrap().to_string_lossy(),
                        path.file_name().unwrap().to_string_lossy()
                    ),
                    img: img.to_luma8(),
                    codes: marked_codes(&text),
                    quads: marked_quads(&text),
                }),
                Err(e) => eprintln!("skipping {}: {e}", path.display()),
            }
        }
        out.push((d.file_name().unwrap().to_string_lossy().into_owned(), items));
    }
    out
}

/// The distinct texts read in each BoofCV photo.
fn marked_texts(items: &[&Marked], config: &ScanConfig) -> Vec<std::collections::BTreeSet<String>> {
    items
        .iter()
        .map(|m| {
            let (w, h) = m.img.dimensions();
            texts(&scan_frame_with(m.img.as_raw(), w, h, w, config).expect("valid frame"))
                .into_iter()
                .collect()
        })
        .collect()
}

/// Codes read on BoofCV photos (distinct texts, at most the marked count),
/// median and 90th-percentile time per photo, and what each photo read.
struct MarkedRun {
    read: usize,
    median: Duration,
    p90: Duration,
    per_image: Vec<usize>,
}

fn run_marked(items: &[Marked], config: &ScanConfig) -> MarkedRun {
    let mut per_image = Vec::new();
    let mut times = Vec::new();
    let per_frame = std::env::var_os("SHOMEI_SCAN_BENCH_PER_FRAME").is_some();
    for m in items {
        let (w, h) = m.img.dimensions();
        let t0 = Instant::now();
        let (out, trace) = scan_frame_traced(m.img.as_raw(), w, h, w, config).expect("valid frame");
        times.push(t0.elapsed());
        let distinct: std::collections::BTreeSet<String> = texts(&out).into_iter().collect();
        per_image.push(distinct.len().min(m.codes));
        if per_frame {
            eprintln!(
                "photo {} {w}x{h}: {} ms, read {} of {}, {trace:?}",
                m.name,
                ms(*times.last().expect("pushed")),
                distinct.len().min(m.codes),
                m.codes
            );
        }
    }
    times.sort();
    MarkedRun {
        read: per_image.iter().sum(),
        median: quantile(&times, 0.5),
        p90: quantile(&times, 0.9),
        per_image,
    }
}

/// The `q` quantile of sorted times (nearest rank).
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::default();
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn photo_root() -> PathBuf {
    match std::env::var_os("SHOMEI_QR_PHOTOS") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/qr-photos/zxing"),
    }
}

fn load_dir(dir: &Path) -> Vec<Sample> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !matches!(ext.as_str(), "png" | "jpg" | "jpeg") {
            continue;
        }
        let Ok(bytes) = std::fs::read(path.with_extension("txt")) else {
            continue;
        };
        let expected = String::from_utf8_lossy(&bytes).into_owned();
        match image::open(&path) {
            Ok(img) => out.push(Sample {
                name: path.display().to_string(),
                img: img.to_luma8(),
                expected,
            }),
            Err(e) => eprintln!("skipping {}: {e}", path.display()),
        }
    }
    out
}

/// A real login payload URL with id and secret drawn from `seed`, so every run
/// decodes the same pixels.
fn fresh_url(seed: u64) -> String {
    let mut rng = degrade::Rng::new(seed.wrapping_add(0x0051_05e1));
    let mut bytes = || {
        let mut b = [0u8; 16];
        b.iter_mut().for_each(|v| *v = rng.next_u64() as u8);
        b
    };
    LoginPayload {
        origin: Origin::parse("https://auth.sakura-clinic.example.jp").unwrap(),
        login_id: LoginId(bytes()),
        secret: QrSecret::from_bytes(bytes()),
        expires_at: 1_800_000_000 + seed,
    }
    .to_url()
}

fn synthetic_set(seeds: u64) -> Vec<(degrade::Kind, Sample)> {
    let mut out = Vec::new();
    for kind in degrade::KINDS {
        for seed in 0..seeds {
            let url = fresh_url(seed);
            let img = degrade::degraded(&url, kind, seed + 1000);
            out.push((
                kind,
                Sample {
                    name: format!("{kind:?}-{seed}"),
                    img,
                    expected: url,
                },
            ));
        }
    }
    out
}

/// Frames for timing: a code as the user aims at it (slightly tilted, soft,
/// noisy, on a grey screen), and an empty scene — what the camera loop sees
/// most of the time and where every pass runs.
fn timing_frames(w: u32, h: u32, n: u64) -> (Vec<Sample>, Vec<Sample>) {
    let mut with_code = Vec::new();
    let mut empty = Vec::new();
    for seed in 0..n {
        let url = fresh_url(seed);
        let mut rng = degrade::Rng::new(seed + 7);
        let code = degrade::render(&url, 4);
        let side = h as f32 * rng.range(0.35, 0.6);
        let code = degrade::scale(&code, side / code.width() as f32);
        let code = degrade::rotate(&code, rng.range(-12.0, 12.0));
        let x = (w - code.width()) as f32 * rng.range(0.3, 0.7);
        let y = (h - code.height()) as f32 * rng.range(0.3, 0.7);
        let frame = degrade::place(w, h, 210, &code, x as i64, y as i64);
        let frame = degrade::noise(&degrade::blur(&frame, 0.8), 6.0, seed);
        with_code.push(Sample {
            name: format!("code-{w}x{h}-{seed}"),
            img: frame,
            expected: url,
        });
        let scene = GrayImage::from_fn(w, h, |x, y| {
            // Soft gradients and a few edges, like an office behind a monitor.
            let v = 90.0
                + 60.0 * ((x as f32 / 97.0).sin() * (y as f32 / 131.0).cos())
                + if (x / 300 + y / 200) % 2 == 0 {
                    30.0
                } else {
                    0.0
                };
            image::Luma([v.clamp(0.0, 255.0) as u8])
        });
        empty.push(Sample {
            name: format!("empty-{w}x{h}-{seed}"),
            img: degrade::noise(&scene, 5.0, seed),
            expected: String::new(),
        });
    }
    (with_code, empty)
}

/// A monitor showing a page of text, no code: the frame the camera sees while
/// the user aims at an EHR screen before the code is in view. Glyphs are
/// random 3×5 pixel-font bitmaps, so rows and columns are full of short dark
/// and light runs — the hardest case for a finder-pattern search.
fn page_frames(w: u32, h: u32, n: u64) -> Vec<Sample> {
    (0..n)
        .map(|seed| {
            let mut rng = degrade::Rng::new(seed + 77);
            let mut img = GrayImage::from_pixel(w, h, image::Luma([40]));
            let (bx, by) = (w / 12, h / 12);
            for y in by..h - by {
                for x in bx..w - bx {
                    img.put_pixel(x, y, image::Luma([215]));
                }
            }
            let px = rng.range(1.5, 3.5) as u32; // screen pixels per font pixel
            let (gw, gh) = (4 * px, 8 * px);
            let mut y = by + 2 * gh;
            while y + gh < h - by - gh {
                let mut x = bx + 2 * gw;
                while x + gw < w - bx - 2 * gw {
                    if rng.next_u64().is_multiple_of(6) {
                        x += gw; // space between words
                        continue;
                    }
                    let bits = rng.next_u64();
                    for gy in 0..5 {
                        for gx in 0..3 {
                            if bits >> (gy * 3 + gx) & 1 == 1 {
                                for yy in 0..px {
                                    for xx in 0..px {
                                        img.put_pixel(
                                            x + gx * px + xx,
                                            y + gy * px + yy,
                                            image::Luma([30]),
                                        );
                                    }
                                }
                            }
                        }
                    }
                    x += gw;
                }
                y += gh + px * 2;
            }
            let img = degrade::noise(&degrade::blur(&img, 0.7), 4.0, seed);
            Sample {
                name: format!("page-{w}x{h}-{seed}"),
                img,
                expected: String::new(),
            }
        })
        .collect()
}

/// A code held far from the camera in a full-HD frame: about 1.6 px per
/// module, unreadable once the frame is reduced to the working size.
fn far_frames(n: u64) -> Vec<Sample> {
    (0..n)
        .map(|seed| {
            let url = fresh_url(seed);
            let mut rng = degrade::Rng::new(seed + 31);
            let code = degrade::render(&url, 4);
            let code = degrade::scale(&code, 1.6 / 4.0);
            let x = 960.0 + rng.range(-200.0, 200.0) - code.width() as f32 / 2.0;
            let y = 540.0 + rng.range(-100.0, 100.0) - code.height() as f32 / 2.0;
            let frame = degrade::place(1920, 1080, 200, &code, x as i64, y as i64);
            Sample {
                name: format!("far-1920x1080-{seed}"),
                img: degrade::noise(&frame, 4.0, seed),
                expected: url,
            }
        })
        .collect()
}

fn texts(out: &ScanOutcome) -> Vec<String> {
    match out {
        ScanOutcome::Shomei(p) => vec![p.to_url()],
        ScanOutcome::ForeignOnly(t) => t.clone(),
        ScanOutcome::NothingFound => Vec::new(),
    }
}

struct Run {
    hits: usize,
    /// Frames in which anything at all was decoded (false reads on frames
    /// without a code).
    any: usize,
    hit_flags: Vec<bool>,
    median: Duration,
    p90: Duration,
    /// Frames in which at least one decoder pass ran (the rest ended at the
    /// finder gate).
    decoded: usize,
}

fn run(samples: &[&Sample], config: &ScanConfig, repeat: usize) -> Run {
    let mut hit_flags = Vec::with_capacity(samples.len());
    let mut times = Vec::with_capacity(samples.len());
    let mut any = 0;
    let mut decoded = 0;
    let per_frame = std::env::var_os("SHOMEI_SCAN_BENCH_PER_FRAME").is_some();
    for s in samples {
        let (w, h) = s.img.dimensions();
        let mut best = Duration::MAX;
        let mut hit = false;
        let mut found_any = false;
        let mut passes = false;
        let mut last = Default::default();
        for _ in 0..repeat.max(1) {
            let t0 = Instant::now();
            let (out, trace) =
                scan_frame_traced(s.img.as_raw(), w, h, w, config).expect("valid frame");
            best = best.min(t0.elapsed());
            passes |= trace.passes_run > 0;
            last = trace;
            hit = texts(&out).contains(&s.expected);
            if out != ScanOutcome::NothingFound {
                found_any = true;
            }
        }
        if per_frame {
            eprintln!(
                "frame {} {w}x{h}: {} ms, {}, {last:?}",
                s.name,
                ms(best),
                if s.expected.is_empty() {
                    if found_any { "false read" } else { "nothing read" }
                } else if hit {
                    "read"
                } else {
                    "missed"
                }
            );
        }
        any += usize::from(found_any);
        decoded += usize::from(passes);
        hit_flags.push(hit);
        times.push(best);
    }
    times.sort();
    Run {
        hits: hit_flags.iter().filter(|h| **h).count(),
        any,
        hit_flags,
        median: quantile(&times, 0.5),
        p90: quantile(&times, 0.9),
        decoded,
    }
}

/// `config` with `extra` passes appended (candidates measured beside the default).
fn with_passes(mut config: ScanConfig, extra: &[(Decoder, Prep)]) -> ScanConfig {
    for &(decoder, prep) in extra {
        let pass = Pass { decoder, prep };
        if !config.passes.contains(&pass) {
            config.passes.push(pass);
        }
    }
    config
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn write_set(dir: &Path, samples: &[&Sample]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (i, s) in samples.iter().enumerate() {
        s.img
            .save(dir.join(format!("{i:04}.png")))
            .map_err(std::io::Error::other)?;
        std::fs::write(dir.join(format!("{i:04}.txt")), &s.expected)?;
    }
    Ok(())
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let seeds: u64 = std::env::var("SHOMEI_SCAN_BENCH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let out_dir = std::env::var_os("SHOMEI_SCAN_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("shomei-scan-bench-{}", std::process::id()))
        });

    let root = photo_root();
    let mut photo_sets: Vec<(String, Vec<Sample>)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&root) {
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for d in dirs {
            let name = d.file_name().unwrap().to_string_lossy().into_owned();
            photo_sets.push((name, load_dir(&d)));
        }
    }
    if photo_sets.is_empty() {
        eprintln!(
            "no real photos under {} (set SHOMEI_QR_PHOTOS); real-photo rows will be empty",
            root.display()
        );
    }
    let photos: Vec<&Sample> = photo_sets.iter().flat_map(|(_, s)| s.iter()).collect();
    let boof_root = boofcv_root();
    let boofcv = load_boofcv(&boof_root);
    let synth = synthetic_set(seeds);
    let synth_refs: Vec<&Sample> = synth.iter().map(|(_, s)| s).collect();
    let (code720, empty720) = timing_frames(1280, 720, 6);
    let (code1080, empty1080) = timing_frames(1920, 1080, 6);
    let far1080 = far_frames(6);
    let page720 = page_frames(1280, 720, 6);
    // Real scenes without a code: every BoofCV photo with its codes painted over.
    let real_empty: Vec<Sample> = boofcv
        .iter()
        .flat_map(|(cat, items)| items.iter().enumerate().map(move |(i, m)| (cat, i, m)))
        .map(|(cat, i, m)| Sample {
            name: format!("masked-{cat}-{i}"),
            img: masked(m),
            expected: String::new(),
        })
        .collect();
    let quick = std::env::var_os("SHOMEI_SCAN_BENCH_QUICK").is_some();

    // Peer, same images (the synthetic and timing frames are written as PNG).
    let mut peer_args: Vec<String> = vec!["--repeat".into(), "3".into()];
    for (name, _) in &photo_sets {
        peer_args.push(format!("photos/{name}={}", root.join(name).display()));
    }
    for (name, _) in &boofcv {
        peer_args.push(format!("count/{name}={}", boof_root.join(name).display()));
    }
    let sets_to_write: [(&str, Vec<&Sample>); 8] = [
        ("synthetic", synth_refs.clone()),
        ("code-1280x720", code720.iter().collect()),
        ("code-1920x1080", code1080.iter().collect()),
        ("empty-1280x720", empty720.iter().collect()),
        ("empty-1920x1080", empty1080.iter().collect()),
        ("far-1920x1080", far1080.iter().collect()),
        ("page-1280x720", page720.iter().collect()),
        ("empty-real-boofcv-masked", real_empty.iter().collect()),
    ];
    for (name, samples) in &sets_to_write {
        let dir = out_dir.join(name);
        if let Err(e) = write_set(&dir, samples) {
            eprintln!("cannot write {}: {e}", dir.display());
        }
        peer_args.push(format!("{name}={}", dir.display()));
    }
    let python = std::env::var("SHOMEI_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/scan_zxing_peer.py");
    let run_peer = std::env::var("SHOMEI_SCAN_BENCH_PEER").map_or(true, |v| v != "0");
    let peer: Option<serde_json::Value> = if !run_peer {
        eprintln!("SHOMEI_SCAN_BENCH_PEER=0: peer not run");
        None
    } else {
        match Command::new(&python).arg(&script).args(&peer_args).output() {
            Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).ok(),
            Ok(o) => {
                eprintln!("peer failed: {}", String::from_utf8_lossy(&o.stderr));
                None
            }
            Err(e) => {
                eprintln!("cannot run {python}: {e}");
                None
            }
        }
    };
    let peer_cell = |set: &str, who: &str, what: &str| -> String {
        peer.as_ref()
            .and_then(|p| p["sets"][set][who][what].as_f64())
            .map(|v| {
                if what == "hits" || what == "any" {
                    format!("{v}")
                } else {
                    format!("{v:.1}")
                }
            })
            .unwrap_or_else(|| "-".into())
    };
    let peer_hits_sum = |prefix: &str, who: &str| -> String {
        let Some(p) = &peer else { return "-".into() };
        let Some(sets) = p["sets"].as_object() else {
            return "-".into();
        };
        let sum: f64 = sets
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .filter_map(|(_, v)| v[who]["hits"].as_f64())
            .sum();
        if sets
            .iter()
            .any(|(k, v)| k.starts_with(prefix) && v.get(who).is_some())
        {
            format!("{sum}")
        } else {
            "-".into()
        }
    };

    // No time budget here: on a loaded machine the 250 ms budget would cut
    // late passes and make the decode rates depend on the load. (On a phone
    // the budget bounds a hard frame; the passes are the same.)
    let unbounded = |c: ScanConfig| ScanConfig {
        budget: Duration::MAX,
        ..c
    };
    // SHOMEI_SCAN_BENCH_QUICK: only the default and the default without the
    // gate, and no per-pass table (a quicker loop while changing the scanner).
    let configs: Vec<(&str, &str, ScanConfig)> = vec![
        ("rqrr", "rqrr only", unbounded(ScanConfig::rqrr_only())),
        ("rxing", "rxing only", unbounded(ScanConfig::rxing_only())),
        ("combined", "rqrr+rxing", unbounded(ScanConfig::combined())),
        (
            "no-early-stop",
            "final without early stop",
            unbounded(ScanConfig {
                finder_gate: false,
                early_stop: false,
                ..ScanConfig::default()
            }),
        ),
        (
            "default",
            "final (default)",
            unbounded(ScanConfig::default()),
        ),
        (
            "no-gate",
            "default without finder gate",
            unbounded(ScanConfig {
                finder_gate: false,
                ..ScanConfig::default()
            }),
        ),
        (
            "previous",
            "previous default (8 passes, no gate)",
            unbounded({
                let mut c = ScanConfig::default();
                c.passes.truncate(8);
                c.finder_gate = false;
                c
            }),
        ),
        // The default before the hybrid passes (issue 11, 2026-12-02): what
        // they add or cost, image by image.
        (
            "no-hybrid",
            "default without the hybrid passes",
            unbounded({
                let mut c = ScanConfig::default();
                c.passes.retain(|p| p.decoder != Decoder::Hybrid);
                c
            }),
        ),
        // The default without rqrr's passes: what rqrr adds, image by image.
        (
            "no-rqrr",
            "default without rqrr",
            unbounded({
                let mut c = ScanConfig::default();
                c.passes.retain(|p| p.decoder != Decoder::Rqrr);
                c
            }),
        ),
        // A candidate extension, measured beside the default (not in it):
        // zxing-cpp's downscale step is a third.
        (
            "third",
            "default + third-size pass",
            unbounded(with_passes(
                ScanConfig::default(),
                &[(Decoder::RxingCpp, Prep::Third)],
            )),
        ),
    ];
    // SHOMEI_SCAN_BENCH_CONFIGS=key,key,...: only those configurations, in
    // that order (the first is the reference of SHOMEI_SCAN_BENCH_DIFF).
    let configs: Vec<(&str, ScanConfig)> = match std::env::var("SHOMEI_SCAN_BENCH_CONFIGS") {
        Ok(keys) => keys
            .split(',')
            .filter_map(|k| {
                let found = configs.iter().find(|(key, _, _)| *key == k.trim());
                if found.is_none() {
                    eprintln!("unknown configuration {k:?}");
                }
                found.map(|(_, name, c)| (*name, c.clone()))
            })
            .collect(),
        Err(_) => configs
            .into_iter()
            .filter(|(key, _, _)| !quick || !matches!(*key, "rqrr" | "rxing" | "combined"))
            .map(|(_, name, c)| (name, c))
            .collect(),
    };
    let diff = std::env::var_os("SHOMEI_SCAN_BENCH_DIFF").is_some();

    println!("# Shomei scan benchmark");
    println!();
    println!(
        "real photos: {} images in {} ({}); synthetic: {} frames 640x480 ({} kinds x {seeds}); peer: zxing-cpp {}{}",
        photos.len(),
        root.display(),
        photo_sets
            .iter()
            .map(|(n, s)| format!("{n}: {}", s.len()))
            .collect::<Vec<_>>()
            .join(", "),
        synth.len(),
        degrade::KINDS.len(),
        peer.as_ref()
            .and_then(|p| p["zxing_cpp_version"].as_str())
            .unwrap_or("(not run)"),
        if peer.as_ref().and_then(|p| p["zbar"].as_bool()) == Some(true) {
            ", zbar (zbarimg)"
        } else {
            ""
        },
    );
    // SHOMEI_SCAN_BENCH_TIMING_ONLY: only the time per camera frame (for a
    // profiler or a quick look at frames without a code).
    let timing_only = std::env::var_os("SHOMEI_SCAN_BENCH_TIMING_ONLY").is_some();
    let frame_sets: Option<Vec<String>> = std::env::var("SHOMEI_SCAN_BENCH_FRAMES")
        .ok()
        .map(|v| v.split(',').map(|p| p.trim().to_owned()).collect());
    let repeat_override: Option<usize> = std::env::var("SHOMEI_SCAN_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut final_photo_flags = Vec::new();
    if !timing_only {
        println!();
        println!("## Decode rate (exact text) and median time per image");
        println!();
        println!("| decoder | real photos | median ms | synthetic | median ms |");
        println!("|---|---|---|---|---|");
        let mut photo_flags: Vec<Vec<bool>> = Vec::new();
        let mut synth_flags: Vec<Vec<bool>> = Vec::new();
        for (name, cfg) in &configs {
            let rp = run(&photos, cfg, 1);
            let rs = run(&synth_refs, cfg, 1);
            photo_flags.push(rp.hit_flags.clone());
            synth_flags.push(rs.hit_flags.clone());
            println!(
                "| {name} | {}/{} | {} | {}/{} | {} |",
                rp.hits,
                photos.len(),
                ms(rp.median),
                rs.hits,
                synth_refs.len(),
                ms(rs.median)
            );
            if name.starts_with("final (default") || final_photo_flags.is_empty() {
                final_photo_flags = rp.hit_flags;
            }
        }
        println!(
            "| zxing-cpp (peer) | {}/{} | {} | {}/{} | {} |",
            peer_hits_sum("photos/", "zxing_cpp"),
            photos.len(),
            // The peer reports medians per set, listed in set order.
            photo_sets
                .iter()
                .map(|(n, _)| peer_cell(&format!("photos/{n}"), "zxing_cpp", "median_ms"))
                .collect::<Vec<_>>()
                .join("/"),
            peer_cell("synthetic", "zxing_cpp", "hits"),
            synth_refs.len(),
            peer_cell("synthetic", "zxing_cpp", "median_ms"),
        );
        if peer.as_ref().and_then(|p| p["zbar"].as_bool()) == Some(true) {
            println!(
                "| zbar (peer, zbarimg per file) | {}/{} | {} (incl. process start) | {}/{} | - |",
                peer_hits_sum("photos/", "zbar"),
                photos.len(),
                photo_sets
                    .iter()
                    .map(|(n, _)| peer_cell(
                        &format!("photos/{n}"),
                        "zbar",
                        "median_ms_incl_process"
                    ))
                    .collect::<Vec<_>>()
                    .join("/"),
                peer_cell("synthetic", "zbar", "hits"),
                synth_refs.len(),
            );
        }
        println!();
        println!("Real photos per set: hits, median / p90 ms per photo");
        println!();
        println!(
            "| set | {} | zxing-cpp (peer) |",
            configs
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(" | ")
        );
        println!("|---|{}---|", "---|".repeat(configs.len()));
        for (name, set) in &photo_sets {
            let refs: Vec<&Sample> = set.iter().collect();
            let cells: Vec<String> = configs
                .iter()
                .map(|(_, cfg)| {
                    let r = run(&refs, cfg, 1);
                    format!(
                        "{}/{} ({} / {})",
                        r.hits,
                        refs.len(),
                        ms(r.median),
                        ms(r.p90)
                    )
                })
                .collect();
            let key = format!("photos/{name}");
            println!(
                "| {name} | {} | {} ({} / {}) |",
                cells.join(" | "),
                peer_cell(&key, "zxing_cpp", "hits"),
                peer_cell(&key, "zxing_cpp", "median_ms"),
                peer_cell(&key, "zxing_cpp", "p90_ms"),
            );
        }
        if diff {
            for (i, (name, cfg)) in configs.iter().enumerate().skip(1) {
                for (set, flags, samples) in [
                    ("photos", &photo_flags, &photos),
                    ("synthetic", &synth_flags, &synth_refs),
                ] {
                    let names: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
                    let lost: Vec<String> = (0..names.len())
                        .filter(|&j| flags[0][j] && !flags[i][j])
                        .map(|j| {
                            let img = &samples[j].img;
                            let (w, h) = img.dimensions();
                            let (_, t) = scan_frame_traced(img.as_raw(), w, h, w, cfg).unwrap();
                            format!("{} ({t:?})", names[j])
                        })
                        .collect();
                    let won: Vec<&str> = (0..names.len())
                        .filter(|&j| !flags[0][j] && flags[i][j])
                        .map(|j| names[j])
                        .collect();
                    eprintln!(
                        "diff {name} vs {}: {set} lost {lost:?} won {won:?}",
                        configs[0].0
                    );
                }
            }
        }

        if !boofcv.is_empty() {
            println!();
            println!(
                "## BoofCV photos ({}): codes read (distinct texts, at most the marked count), median / p90 ms per photo",
                boof_root.display()
            );
            println!();
            println!(
                "| category | codes | {} | zxing-cpp (peer) |",
                configs
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
            println!("|---|---|{}---|", "---|".repeat(configs.len()));
            let mut totals = vec![0usize; configs.len()];
            let mut total_codes = 0;
            for (name, items) in &boofcv {
                let codes: usize = items.iter().map(|m| m.codes).sum();
                total_codes += codes;
                let mut cells = Vec::new();
                let mut reference: Option<Vec<usize>> = None;
                for (i, (cname, cfg)) in configs.iter().enumerate() {
                    let r = run_marked(items, cfg);
                    totals[i] += r.read;
                    cells.push(format!("{} ({} / {})", r.read, ms(r.median), ms(r.p90)));
                    if diff {
                        match &reference {
                            None => reference = Some(r.per_image.clone()),
                            Some(base) => {
                                let changed: Vec<String> = base
                                    .iter()
                                    .zip(&r.per_image)
                                    .enumerate()
                                    .filter(|(_, (a, b))| a != b)
                                    .map(|(j, (a, b))| {
                                        let img = &items[j].img;
                                        let (w, h) = img.dimensions();
                                        let (_, t) =
                                            scan_frame_traced(img.as_raw(), w, h, w, cfg).unwrap();
                                        format!("{name}-{j} {w}x{h}: {a}->{b} ({t:?})")
                                    })
                                    .collect();
                                if !changed.is_empty() {
                                    eprintln!(
                                        "diff {cname} vs {}: BoofCV {changed:?}",
                                        configs[0].0
                                    );
                                }
                            }
                        }
                    }
                }
                let set = format!("count/{name}");
                println!(
                    "| {name} ({} photos) | {codes} | {} | {} ({} / {}) |",
                    items.len(),
                    cells.join(" | "),
                    peer_cell(&set, "zxing_cpp", "hits"),
                    peer_cell(&set, "zxing_cpp", "median_ms"),
                    peer_cell(&set, "zxing_cpp", "p90_ms")
                );
            }
            println!(
                "| all | {total_codes} | {} | {} |",
                totals
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" | "),
                peer_hits_sum("count/", "zxing_cpp")
            );
        }

        println!();
        println!("## Synthetic set per degradation ({seeds} frames each)");
        println!();
        println!(
            "| kind | {} | zxing-cpp |",
            configs
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(" | ")
        );
        println!("|---|{}---|", "---|".repeat(configs.len()));
        let per_config_flags: Vec<Vec<bool>> = configs
            .iter()
            .map(|(_, c)| run(&synth_refs, c, 1).hit_flags)
            .collect();
        for kind in degrade::KINDS {
            let idx: Vec<usize> = synth
                .iter()
                .enumerate()
                .filter(|(_, (k, _))| *k == kind)
                .map(|(i, _)| i)
                .collect();
            let cells: Vec<String> = per_config_flags
                .iter()
                .map(|f| idx.iter().filter(|i| f[**i]).count().to_string())
                .collect();
            let kind_samples: Vec<&Sample> = idx.iter().map(|i| &synth[*i].1).collect();
            let dir = out_dir.join(format!("kind-{kind:?}"));
            let peer_kind = write_set(&dir, &kind_samples)
                .ok()
                .and_then(|_| {
                    Command::new(&python)
                        .arg(&script)
                        .arg(format!("k={}", dir.display()))
                        .output()
                        .ok()
                })
                .filter(|o| o.status.success())
                .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
                .and_then(|v| v["sets"]["k"]["zxing_cpp"]["hits"].as_f64())
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into());
            println!("| {kind:?} | {} | {peer_kind} |", cells.join(" | "));
        }
    }

    println!();
    println!(
        "## Time per camera frame (median / p90 ms over the set, best of 5 runs per frame; 2 for the real scenes, unless SHOMEI_SCAN_BENCH_REPEAT)"
    );
    println!();
    println!(
        "Frames without a code: the cell's count is frames where anything was decoded (false reads)."
    );
    println!();
    println!(
        "| frame | {} | zxing-cpp ms (hits) |",
        configs
            .iter()
            .map(|(n, _)| format!("{n} ms"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}---|", "---|".repeat(configs.len()));
    for (label, set) in [
        ("code-1280x720", &code720),
        ("code-1920x1080", &code1080),
        ("far-1920x1080", &far1080),
        ("empty-1280x720", &empty720),
        ("empty-1920x1080", &empty1080),
        ("page-1280x720", &page720),
        ("empty-real-boofcv-masked", &real_empty),
    ] {
        if !frame_sets.as_ref().is_none_or(|f| f.iter().any(|p| label.starts_with(p.as_str()))) {
            continue;
        }
        let no_code = set.iter().all(|s| s.expected.is_empty());
        let refs: Vec<&Sample> = set.iter().collect();
        let repeat = repeat_override.unwrap_or(if refs.len() > 20 { 2 } else { 5 });
        let mut cells = Vec::new();
        for (_, cfg) in &configs {
            let r = run(&refs, cfg, repeat);
            if no_code {
                cells.push(format!(
                    "{} / {} ({} false, decoders ran on {})",
                    ms(r.median),
                    ms(r.p90),
                    r.any,
                    r.decoded
                ));
            } else {
                cells.push(format!(
                    "{} / {} ({}/{})",
                    ms(r.median),
                    ms(r.p90),
                    r.hits,
                    refs.len()
                ));
            }
        }
        let peer_hits = if no_code {
            format!(" ({} false)", peer_cell(label, "zxing_cpp", "any"))
        } else {
            format!(
                " ({}/{})",
                peer_cell(label, "zxing_cpp", "hits"),
                refs.len()
            )
        };
        println!(
            "| {label} ({} frames) | {} | {} / {}{peer_hits} |",
            refs.len(),
            cells.join(" | "),
            peer_cell(label, "zxing_cpp", "median_ms"),
            peer_cell(label, "zxing_cpp", "p90_ms")
        );
    }

    if quick || timing_only {
        return;
    }
    println!();
    println!(
        "## What each pass adds (default passes cumulative, in order; then candidates left out)"
    );
    println!();
    println!(
        "Each pass run alone (default working size); 'new' = images no earlier default pass read (for passes not in the default: no default pass read)."
    );
    println!();
    let default = ScanConfig::default();
    let mut seen_p = vec![false; photos.len()];
    let mut seen_s = vec![false; synth_refs.len()];
    let mut seen_far = vec![false; far1080.len()];
    let far_refs: Vec<&Sample> = far1080.iter().collect();
    let boof_refs: Vec<&Marked> = boofcv.iter().flat_map(|(_, items)| items.iter()).collect();
    let mut seen_b: Vec<std::collections::BTreeSet<String>> =
        vec![Default::default(); boof_refs.len()];
    let codes_read = |sets: &[std::collections::BTreeSet<String>]| -> usize {
        sets.iter()
            .zip(&boof_refs)
            .map(|(s, m)| s.len().min(m.codes))
            .sum()
    };
    let candidates: Vec<(bool, Pass)> = default
        .passes
        .iter()
        .map(|p| (true, *p))
        .chain(
            [
                (Decoder::RxingCpp, Prep::Third),
                (Decoder::Rqrr, Prep::Inverted),
                (Decoder::RxingJavaMulti, Prep::Working),
                (Decoder::RxingJava, Prep::LocalMean),
            ]
            .into_iter()
            .map(|(decoder, prep)| (false, Pass { decoder, prep })),
        )
        .collect();
    println!(
        "| pass | in default | alone photos | new photos | alone synthetic | new synthetic | new far-1920x1080 | alone BoofCV codes | new BoofCV codes | median ms alone (photos) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (in_default, p) in candidates {
        let single = ScanConfig {
            passes: vec![p],
            finder_gate: false,
            early_stop: false,
            ..default.clone()
        };
        let rp = run(&photos, &single, 1);
        let rs = run(&synth_refs, &single, 1);
        let rf = run(&far_refs, &single, 1);
        let rb = marked_texts(&boof_refs, &single);
        let union: Vec<std::collections::BTreeSet<String>> = seen_b
            .iter()
            .zip(&rb)
            .map(|(a, b)| a.union(b).cloned().collect())
            .collect();
        let (alone_b, new_b) = (codes_read(&rb), codes_read(&union) - codes_read(&seen_b));
        if in_default {
            seen_b = union;
        }
        let new = |flags: &[bool], seen: &[bool]| {
            flags.iter().zip(seen).filter(|(h, s)| **h && !**s).count()
        };
        let (new_p, new_s, new_f) = (
            new(&rp.hit_flags, &seen_p),
            new(&rs.hit_flags, &seen_s),
            new(&rf.hit_flags, &seen_far),
        );
        if in_default {
            for (seen, flags) in [
                (&mut seen_p, &rp.hit_flags),
                (&mut seen_s, &rs.hit_flags),
                (&mut seen_far, &rf.hit_flags),
            ] {
                for (s, h) in seen.iter_mut().zip(flags) {
                    *s |= *h;
                }
            }
        }
        println!(
            "| {:?} on {:?} | {} | {} | +{new_p} | {} | +{new_s} | +{new_f} | {alone_b} | +{new_b} | {} |",
            p.decoder,
            p.prep,
            if in_default { "yes" } else { "no" },
            rp.hits,
            rs.hits,
            ms(rp.median)
        );
    }
    println!(
        "| union of default | | {} | | {} | | {} | {} | | |",
        seen_p.iter().filter(|s| **s).count(),
        seen_s.iter().filter(|s| **s).count(),
        seen_far.iter().filter(|s| **s).count(),
        codes_read(&seen_b)
    );

    // Images nobody here reads, for the record (names only; not used to tune).
    let missed: BTreeMap<&str, ()> = photos
        .iter()
        .zip(&final_photo_flags)
        .filter(|(_, h)| !**h)
        .map(|(s, _)| (s.name.as_str(), ()))
        .collect();
    eprintln!("final config missed {} real photos", missed.len());
}
