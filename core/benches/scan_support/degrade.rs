//! Synthetic camera frames for the scanner's tests and benchmark: a QR code
//! rendered with the `qrcode` crate, then put through what a phone camera does
//! to a code on an EHR monitor (scale, tilt, blur, sensor noise, perspective,
//! dark mode, screen-pixel moiré, a big frame with row padding).
//!
//! Shared by core/tests/scan.rs and core/benches/scan.rs (included with
//! `#[path]`), so the benchmark's degraded set and the tests agree on what each
//! degradation means. Deterministic: every random choice comes from a seed.
#![allow(dead_code)]

use image::{GrayImage, Luma};
use imageproc::geometric_transformations::{Interpolation, Projection, rotate_about_center, warp};
use qrcode::{EcLevel, QrCode};

/// Renders `text` as a QR code (level M, as the server renders payloads) with
/// `module_px` pixels per module and the standard 4-module quiet zone.
pub fn render(text: &str, module_px: u32) -> GrayImage {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .expect("text fits a QR code");
    code.render::<Luma<u8>>()
        .quiet_zone(true)
        .module_dimensions(module_px, module_px)
        .build()
}

/// A `w`×`h` frame of uniform grey `bg` with `img` pasted at (`x`, `y`).
pub fn place(w: u32, h: u32, bg: u8, img: &GrayImage, x: i64, y: i64) -> GrayImage {
    let mut frame = GrayImage::from_pixel(w, h, Luma([bg]));
    image::imageops::overlay(&mut frame, img, x, y);
    frame
}

/// `img` centred in a `w`×`h` frame of white.
pub fn centered(w: u32, h: u32, img: &GrayImage) -> GrayImage {
    let x = (i64::from(w) - i64::from(img.width())) / 2;
    let y = (i64::from(h) - i64::from(img.height())) / 2;
    place(w, h, 255, img, x, y)
}

/// Resize by factor `f` (bilinear), as a camera at another distance would see it.
pub fn scale(img: &GrayImage, f: f32) -> GrayImage {
    let w = ((img.width() as f32 * f).round() as u32).max(1);
    let h = ((img.height() as f32 * f).round() as u32).max(1);
    image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle)
}

/// Rotate by `degrees` about the centre on a canvas large enough to keep the
/// corners (white fill, as around a code on a screen).
pub fn rotate(img: &GrayImage, degrees: f32) -> GrayImage {
    let side = ((img.width().pow(2) + img.height().pow(2)) as f32)
        .sqrt()
        .ceil() as u32
        + 4;
    let canvas = centered(side, side, img);
    rotate_about_center(
        &canvas,
        degrees.to_radians(),
        Interpolation::Bilinear,
        Luma([255]),
    )
}

/// Gaussian blur (defocus / hand shake), `sigma` in pixels.
pub fn blur(img: &GrayImage, sigma: f32) -> GrayImage {
    imageproc::filter::gaussian_blur_f32(img, sigma)
}

/// Additive Gaussian sensor noise.
pub fn noise(img: &GrayImage, stddev: f64, seed: u64) -> GrayImage {
    imageproc::noise::gaussian_noise(img, 0.0, stddev, seed)
}

/// Perspective warp: the phone held below and to the side of the monitor.
/// `k` (0..0.3) is how far the far corners are pulled in, as a fraction of the side.
pub fn perspective(img: &GrayImage, k: f32) -> GrayImage {
    let pad = (img.width().max(img.height()) / 4).max(8);
    let canvas = centered(img.width() + 2 * pad, img.height() + 2 * pad, img);
    let (w, h) = (canvas.width() as f32, canvas.height() as f32);
    let from = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
    let to = [
        (w * k, h * k * 0.5),
        (w * (1.0 - k * 0.3), 0.0),
        (w, h),
        (0.0, h * (1.0 - k * 0.4)),
    ];
    let proj =
        Projection::from_control_points(from, to).expect("control points in general position");
    warp(&canvas, &proj, Interpolation::Bilinear, Luma([255]))
}

/// A code printed on a cylinder (a bottle, a can, a curled sheet), the
/// cylinder's axis vertical: the label wraps `half_angle_degrees` either side
/// of the line facing the camera, so columns near the left and right edges
/// are foreshortened by cos φ while the centre keeps its size. Seen from
/// `elevation_degrees` above the axis' normal, the parts of the label that
/// turn away also shift vertically by r·(1 − cos φ)·sin α: rows bend into
/// arcs. No single perspective transform maps such a code onto its grid,
/// which is what sets it apart from [`perspective`].
pub fn curve(img: &GrayImage, half_angle_degrees: f32, elevation_degrees: f32) -> GrayImage {
    let pad = (img.width().max(img.height()) / 8).max(8);
    let canvas = centered(img.width() + 2 * pad, img.height() + 2 * pad, img);
    let (sw, sh) = (canvas.width() as f32, canvas.height() as f32);
    let theta = half_angle_degrees.to_radians();
    let (sin_a, cos_a) = elevation_degrees.to_radians().sin_cos();
    // Arc length sw/2 spans theta: radius r, projected half width r·sin θ.
    let r = sw / 2.0 / theta;
    let half_w = r * theta.sin();
    let lift = r * (1.0 - theta.cos()) * sin_a;
    let (ow, oh) = ((2.0 * half_w).ceil() as u32, (sh * cos_a + lift).ceil() as u32);
    let px = |xx: f32, yy: f32| -> f32 {
        if xx < 0.0 || yy < 0.0 || xx >= sw - 1.0 || yy >= sh - 1.0 {
            return 255.0;
        }
        let (x0, y0) = (xx.floor(), yy.floor());
        let (fx, fy) = (xx - x0, yy - y0);
        let at = |x: f32, y: f32| f32::from(canvas.get_pixel(x as u32, y as u32).0[0]);
        at(x0, y0) * (1.0 - fx) * (1.0 - fy)
            + at(x0 + 1.0, y0) * fx * (1.0 - fy)
            + at(x0, y0 + 1.0) * (1.0 - fx) * fy
            + at(x0 + 1.0, y0 + 1.0) * fx * fy
    };
    GrayImage::from_fn(ow, oh, |x, y| {
        let xc = x as f32 + 0.5 - half_w;
        if xc.abs() >= half_w {
            return Luma([255]);
        }
        // Back from the projected position to the point on the label.
        let phi = (xc / r).asin();
        let s = r * phi + sw / 2.0 - 0.5;
        let t = (y as f32 + 0.5 - r * (1.0 - phi.cos()) * sin_a) / cos_a - 0.5;
        Luma([px(s, t).round().clamp(0.0, 255.0) as u8])
    })
}

/// Dark mode: light modules on a dark background.
pub fn invert(img: &GrayImage) -> GrayImage {
    let mut out = img.clone();
    image::imageops::invert(&mut out);
    out
}

/// Lower contrast and lift the black level, as a photographed backlit screen.
pub fn low_contrast(img: &GrayImage, lo: u8, hi: u8) -> GrayImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        p.0[0] = (u32::from(lo) + u32::from(p.0[0]) * u32::from(hi - lo) / 255) as u8;
    }
    out
}

/// A photo of a screen: every screen pixel becomes a `cell`×`cell` patch with a
/// dark gap line (the pixel grid), the result is tilted slightly and resampled
/// at a non-integer factor so the grid aliases into moiré bands.
pub fn screen_photo(img: &GrayImage, cell: u32, tilt_degrees: f32, shrink: f32) -> GrayImage {
    let (w, h) = img.dimensions();
    let mut screen = GrayImage::new(w * cell, h * cell);
    for (x, y, p) in screen.enumerate_pixels_mut() {
        let v = img.get_pixel(x / cell, y / cell).0[0];
        let gap = x % cell == cell - 1 || y % cell == cell - 1;
        p.0[0] = if gap { v / 4 } else { v };
    }
    let tilted = rotate(&screen, tilt_degrees);
    let small = scale(&tilted, shrink);
    low_contrast(&small, 40, 220)
}

/// Copies a tightly packed image into a camera-style buffer with `stride`
/// bytes per row; the padding is filled with `pad` (never pixels).
/// With `trim_last_row`, the last row stops after its pixels, as Android's Y
/// plane often does.
pub fn with_stride(img: &GrayImage, stride: u32, pad: u8, trim_last_row: bool) -> Vec<u8> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let stride = stride as usize;
    let mut buf = vec![pad; stride * h];
    for y in 0..h {
        buf[y * stride..y * stride + w].copy_from_slice(&img.as_raw()[y * w..(y + 1) * w]);
    }
    if trim_last_row {
        buf.truncate((h - 1) * stride + w);
    }
    buf
}

/// Small deterministic PRNG (xorshift64*), so sets are reproducible without a
/// `rand` dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

/// One degradation of the benchmark's synthetic set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Scaled,
    Rotated,
    Blur1,
    Blur15,
    Noise,
    Perspective,
    DarkMode,
    Moire,
    LowContrast,
    Combined,
}

pub const KINDS: [Kind; 10] = [
    Kind::Scaled,
    Kind::Rotated,
    Kind::Blur1,
    Kind::Blur15,
    Kind::Noise,
    Kind::Perspective,
    Kind::DarkMode,
    Kind::Moire,
    Kind::LowContrast,
    Kind::Combined,
];

/// One synthetic frame of kind `kind` containing `text`, 640×480, parameters
/// drawn from `seed` within ranges a phone camera produces.
pub fn degraded(text: &str, kind: Kind, seed: u64) -> GrayImage {
    let mut rng = Rng::new(seed ^ (kind as u64) << 32);
    let base = render(text, 4);
    let fit = |img: &GrayImage, side: f32| scale(img, side / img.width().max(img.height()) as f32);
    let img = match kind {
        Kind::Scaled => fit(&base, rng.range(150.0, 420.0)),
        Kind::Rotated => rotate(
            &fit(&base, 300.0),
            rng.range(10.0, 30.0) * if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 },
        ),
        Kind::Blur1 => blur(&fit(&base, 320.0), 1.0),
        Kind::Blur15 => blur(&fit(&base, 320.0), 1.5),
        Kind::Noise => noise(&fit(&base, 320.0), f64::from(rng.range(15.0, 35.0)), seed),
        Kind::Perspective => fit(&perspective(&base, rng.range(0.1, 0.25)), 420.0),
        Kind::DarkMode => invert(&fit(&base, rng.range(200.0, 400.0))),
        Kind::Moire => fit(
            &screen_photo(&base, 3, rng.range(-4.0, 4.0), rng.range(0.55, 0.8)),
            rng.range(300.0, 420.0),
        ),
        Kind::LowContrast => low_contrast(&fit(&base, 320.0), 70, 170),
        Kind::Combined => {
            let r = rotate(&fit(&base, 280.0), rng.range(-20.0, 20.0));
            noise(&blur(&low_contrast(&r, 40, 210), 1.0), 12.0, seed)
        }
    };
    let bg = if kind == Kind::DarkMode { 20 } else { 235 };
    let x = (640 - img.width() as i64) / 2 + (rng.range(-40.0, 40.0) as i64);
    let y = (480 - img.height() as i64) / 2 + (rng.range(-20.0, 20.0) as i64);
    let frame = place(640, 480, bg, &img, x, y);
    if kind == Kind::Noise || kind == Kind::Combined {
        noise(&frame, 8.0, seed + 1)
    } else {
        frame
    }
}
