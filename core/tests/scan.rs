//! Camera-frame scanning: real Shomei payload URLs rendered to pixels with the
//! `qrcode` crate, degraded the way a phone camera degrades a code on an EHR
//! monitor, and decoded back from the pixels by `shomei_core::scan`.
//!
//! Time per frame is measured by the benchmark (core/benches/scan.rs), never
//! asserted here.

#[path = "../benches/scan_support/degrade.rs"]
mod degrade;

use degrade::*;
use image::{GrayImage, Luma};
use proptest::prelude::*;
use std::time::Duration;

use shomei_core::scan::{
    Decoder, Pass, Prep, ScanConfig, ScanError, ScanOutcome, ScanTrace, scan_frame, scan_frame_traced, scan_frame_with,
    scan_image,
};
use shomei_core::{
    EnrollmentId, EnrollmentPayload, LoginId, LoginPayload, Origin, Payload, QrSecret,
};

const FOREIGN_TEXT: &str = "https://www.mhlw.go.jp/stf/seisakunitsuite/bunya/0000106.html";

/// A login payload with fixed, random-looking id and secret: the same pixels
/// every run, so a failure reproduces.
fn login(expires_at: u64) -> LoginPayload {
    let mut rng = degrade::Rng::new(2026);
    let mut bytes = || {
        let mut b = [0u8; 16];
        b.iter_mut().for_each(|v| *v = rng.next_u64() as u8);
        b
    };
    LoginPayload {
        origin: Origin::parse("https://auth.sakura-clinic.example.jp").unwrap(),
        login_id: LoginId(bytes()),
        secret: QrSecret::from_bytes(bytes()),
        expires_at,
    }
}

fn far_future() -> u64 {
    4_102_444_800 // 2100-01-01
}

/// The default pass list without the time budget: what a frame yields must not
/// depend on how loaded the test machine is. (The budget itself is checked by
/// `zero_budget_runs_only_the_first_pass`.)
fn unbounded() -> ScanConfig {
    ScanConfig {
        budget: Duration::MAX,
        ..ScanConfig::default()
    }
}

/// Scans a tightly packed image through the camera entry point.
fn scan(img: &GrayImage) -> ScanOutcome {
    scan_frame_with(
        img.as_raw(),
        img.width(),
        img.height(),
        img.width(),
        &unbounded(),
    )
    .expect("well-formed frame")
}

fn assert_reads(img: &GrayImage, expected: &LoginPayload, what: &str) {
    match scan(img) {
        ScanOutcome::Shomei(Payload::Login(p)) => assert_eq!(&p, expected, "{what}: wrong payload"),
        other => panic!("{what}: expected our login payload, got {other:?}"),
    }
}

fn code_frame(p: &LoginPayload, side: f32) -> GrayImage {
    let code = render(&p.to_url(), 4);
    let code = scale(&code, side / code.width() as f32);
    centered(640, 480, &code)
}

#[test]
fn plain_login_code_decodes_to_the_same_payload() {
    let p = login(far_future());
    assert_reads(&code_frame(&p, 300.0), &p, "plain");
}

#[test]
fn enrollment_code_decodes_as_enrollment() {
    let p = EnrollmentPayload {
        origin: Origin::parse("https://shomei.tokyo-med.example.jp:8443").unwrap(),
        enrollment_id: EnrollmentId([0xE7; 16]),
        secret: QrSecret::from_bytes([0x3C; 16]),
        expires_at: far_future(),
    };
    let img = centered(640, 480, &render(&p.to_url(), 5));
    match scan(&img) {
        ScanOutcome::Shomei(Payload::Enrollment(got)) => assert_eq!(got, p),
        other => panic!("expected enrollment payload, got {other:?}"),
    }
}

#[test]
fn expired_code_is_still_returned_for_the_caller_to_judge() {
    let p = login(1_000_000);
    assert_reads(&code_frame(&p, 300.0), &p, "expired");
}

#[test]
fn small_and_large_codes_decode() {
    let p = login(far_future());
    for side in [160.0, 460.0] {
        assert_reads(&code_frame(&p, side), &p, &format!("side {side}"));
    }
}

#[test]
fn code_held_at_an_angle_decodes() {
    let p = login(far_future());
    let code = scale(&render(&p.to_url(), 4), 0.7);
    for deg in [10.0, 20.0, -30.0] {
        let img = centered(640, 480, &rotate(&code, deg));
        assert_reads(&img, &p, &format!("rotated {deg}°"));
    }
}

#[test]
fn blurred_code_decodes() {
    let p = login(far_future());
    // 4 px per module: at 3.2 px, σ = 1.5 loses about one code in 40.
    let code = render(&p.to_url(), 4);
    for sigma in [1.0, 1.5] {
        let img = blur(&centered(640, 480, &code), sigma);
        assert_reads(&img, &p, &format!("blur sigma {sigma}"));
    }
}

#[test]
fn noisy_code_decodes() {
    let p = login(far_future());
    let img = noise(&code_frame(&p, 320.0), 30.0, 7);
    assert_reads(&img, &p, "noise");
}

#[test]
fn perspective_warped_code_decodes() {
    let p = login(far_future());
    let code = perspective(&render(&p.to_url(), 4), 0.2);
    let img = centered(640, 480, &scale(&code, 440.0 / code.width() as f32));
    assert_reads(&img, &p, "perspective");
}

#[test]
fn dark_mode_light_on_dark_code_decodes() {
    let p = login(far_future());
    let code = invert(&scale(&render(&p.to_url(), 4), 0.8));
    let img = place(640, 480, 18, &code, 120, 60);
    assert_reads(&img, &p, "dark mode");
}

#[test]
fn zero_budget_runs_only_the_first_pass() {
    // The dark-mode code needs the inverted pass, which comes after the first;
    // with no time budget left after the first pass, the scan stops there.
    let p = login(far_future());
    let img = place(
        640,
        480,
        18,
        &invert(&scale(&render(&p.to_url(), 4), 0.8)),
        120,
        60,
    );
    let hurried = ScanConfig {
        budget: Duration::ZERO,
        ..ScanConfig::default()
    };
    let out = scan_frame_with(img.as_raw(), 640, 480, 640, &hurried).unwrap();
    assert_eq!(out, ScanOutcome::NothingFound);
}

#[test]
fn photo_of_a_screen_with_moire_decodes() {
    let p = login(far_future());
    let photo = screen_photo(&render(&p.to_url(), 4), 3, 2.5, 0.63);
    let photo = scale(&photo, 400.0 / photo.width() as f32);
    let img = place(640, 480, 50, &photo, 110, 40);
    assert_reads(&img, &p, "screen moiré");
}

#[test]
fn code_in_1920x1080_frame_with_row_padding_decodes() {
    let p = login(far_future());
    let code = scale(&render(&p.to_url(), 4), 2.0);
    let frame = place(1920, 1080, 200, &code, 700, 250);
    // Padding bytes are black: if the scanner read them as pixels, the frame
    // would get a black band.
    let stride = 1920 + 128;
    let buf = with_stride(&frame, stride, 0, false);
    match scan_frame(&buf, 1920, 1080, stride).unwrap() {
        ScanOutcome::Shomei(Payload::Login(got)) => assert_eq!(got, p),
        other => panic!("expected our payload, got {other:?}"),
    }
}

#[test]
fn last_row_without_padding_is_accepted() {
    let p = login(far_future());
    let frame = code_frame(&p, 300.0);
    let stride = 640 + 32;
    let buf = with_stride(&frame, stride, 77, true);
    assert_eq!(buf.len(), 479 * 672 + 640);
    match scan_frame(&buf, 640, 480, stride).unwrap() {
        ScanOutcome::Shomei(Payload::Login(got)) => assert_eq!(got, p),
        other => panic!("expected our payload, got {other:?}"),
    }
}

#[test]
fn ours_is_returned_when_a_foreign_code_shares_the_frame() {
    let p = login(far_future());
    let ours = scale(&render(&p.to_url(), 4), 0.75);
    let foreign = scale(&render(FOREIGN_TEXT, 4), 0.9);
    let mut frame = place(1000, 480, 255, &foreign, 20, 40);
    image::imageops::overlay(&mut frame, &ours, 520, 60);
    assert_reads(&frame, &p, "two codes");
}

#[test]
fn foreign_code_alone_is_reported_with_its_text() {
    let img = centered(640, 480, &render(FOREIGN_TEXT, 5));
    assert_eq!(
        scan(&img),
        ScanOutcome::ForeignOnly(vec![FOREIGN_TEXT.to_owned()])
    );
}

#[test]
fn malformed_shomei_lookalike_is_foreign() {
    // Right shape, but the body is one byte short: not a payload we accept.
    let url = login(far_future()).to_url();
    let broken = &url[..url.len() - 2];
    let img = centered(640, 480, &render(broken, 4));
    assert_eq!(
        scan(&img),
        ScanOutcome::ForeignOnly(vec![broken.to_owned()])
    );
}

#[test]
fn empty_frame_finds_nothing() {
    let img = GrayImage::from_pixel(1280, 720, Luma([128]));
    assert_eq!(scan(&img), ScanOutcome::NothingFound);
}

#[test]
fn scan_image_reads_a_packed_grey_image() {
    let p = login(far_future());
    match scan_image(&code_frame(&p, 300.0)).unwrap() {
        ScanOutcome::Shomei(Payload::Login(got)) => assert_eq!(got, p),
        other => panic!("expected our payload, got {other:?}"),
    }
}

fn assert_bad_frame(r: Result<ScanOutcome, ScanError>, what: &str) {
    assert!(
        matches!(r, Err(ScanError::BadFrame(_))),
        "{what}: expected BadFrame, got {r:?}"
    );
}

#[test]
fn zero_width_or_height_is_a_bad_frame() {
    assert_bad_frame(scan_frame(&[0; 16], 0, 4, 4), "zero width");
    assert_bad_frame(scan_frame(&[0; 16], 4, 0, 4), "zero height");
}

#[test]
fn stride_smaller_than_width_is_a_bad_frame() {
    assert_bad_frame(scan_frame(&[0; 100], 10, 10, 9), "stride < width");
}

#[test]
fn buffer_shorter_than_geometry_is_a_bad_frame() {
    // 10 rows of stride 12 need 9*12+10 = 118 bytes.
    assert_bad_frame(scan_frame(&[0; 117], 10, 10, 12), "short by one");
    assert!(scan_frame(&[0; 118], 10, 10, 12).is_ok());
}

#[test]
fn absurd_dimensions_are_a_bad_frame_not_an_allocation() {
    assert_bad_frame(
        scan_frame(&[0; 64], u32::MAX, u32::MAX, u32::MAX),
        "u32::MAX",
    );
    assert_bad_frame(
        scan_frame(&[0; 64], 100_000, 100_000, 100_000),
        "10 gigapixels",
    );
}

/// Frames built to look like codes (finder-pattern squares, broken grids,
/// alternating stripes) rather than random noise: they reach the decoders'
/// deeper stages.
fn crafted_frames() -> Vec<GrayImage> {
    let mut frames = Vec::new();
    let finder = |img: &mut GrayImage, x0: u32, y0: u32, m: u32| {
        for y in 0..7 * m {
            for x in 0..7 * m {
                let (cx, cy) = (x / m, y / m);
                let ring = cx == 0 || cy == 0 || cx == 6 || cy == 6;
                let core = (2..=4).contains(&cx) && (2..=4).contains(&cy);
                if ring || core {
                    img.put_pixel(x0 + x, y0 + y, Luma([0]));
                }
            }
        }
    };
    // Three finder patterns and nothing else; then with random modules.
    for m in [1, 3, 8] {
        let mut img = GrayImage::from_pixel(40 * m + 20, 40 * m + 20, Luma([255]));
        finder(&mut img, 10, 10, m);
        finder(&mut img, 10 + 26 * m, 10, m);
        finder(&mut img, 10, 10 + 26 * m, m);
        frames.push(img.clone());
        let mut rng = degrade::Rng::new(u64::from(m));
        for y in 10 + 8 * m..10 + 33 * m {
            for x in 10 + 8 * m..10 + 33 * m {
                if rng.next_u64() & 1 == 0 {
                    img.put_pixel(x, y, Luma([0]));
                }
            }
        }
        frames.push(img);
    }
    // A real code with 40% of its data-area modules flipped (far past what
    // level M corrects): format and version info intact, data unrecoverable.
    let code = render(&login(far_future()).to_url(), 3);
    let mut scrambled = code.clone();
    let mut rng = degrade::Rng::new(99);
    let modules = code.width() / 3;
    for my in 13..modules - 13 {
        for mx in 13..modules - 13 {
            if rng.next_u64() % 5 < 2 {
                for y in my * 3..my * 3 + 3 {
                    for x in mx * 3..mx * 3 + 3 {
                        let v = scrambled.get_pixel(x, y).0[0];
                        scrambled.put_pixel(x, y, Luma([255 - v]));
                    }
                }
            }
        }
    }
    frames.push(scrambled);
    // Many tiny finder patterns (a decoder's O(n³) grouping stress).
    let mut many = GrayImage::from_pixel(400, 400, Luma([255]));
    for i in 0..12 {
        for j in 0..12 {
            finder(&mut many, 4 + i * 32, 4 + j * 32, 3);
        }
    }
    frames.push(many);
    // Stripes, checkerboard, all black, one pixel, one row, one column.
    frames.push(GrayImage::from_fn(300, 300, |x, _| {
        Luma([if x % 2 == 0 { 0 } else { 255 }])
    }));
    frames.push(GrayImage::from_fn(300, 300, |x, y| {
        Luma([if (x / 3 + y / 3) % 2 == 0 { 0 } else { 255 }])
    }));
    frames.push(GrayImage::from_pixel(200, 200, Luma([0])));
    frames.push(GrayImage::from_pixel(1, 1, Luma([0])));
    frames.push(GrayImage::from_fn(500, 1, |x, _| {
        Luma([(x * 37 % 256) as u8])
    }));
    frames.push(GrayImage::from_fn(1, 500, |_, y| {
        Luma([(y * 91 % 256) as u8])
    }));
    frames
}

#[test]
fn crafted_frames_never_panic_and_find_no_payload() {
    for (i, img) in crafted_frames().iter().enumerate() {
        let out = scan_image(img).unwrap_or_else(|e| panic!("frame {i}: {e}"));
        assert!(
            !matches!(out, ScanOutcome::Shomei(_)),
            "frame {i} produced a payload"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_and_geometry_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..6000),
        width in 0u32..90,
        height in 0u32..90,
        extra_stride in 0u32..8,
    ) {
        let stride = width.saturating_add(extra_stride);
        let needed = if width == 0 || height == 0 { 0 } else { (height as usize - 1) * stride as usize + width as usize };
        let r = scan_frame(&bytes, width, height, stride);
        if width == 0 || height == 0 || bytes.len() < needed {
            prop_assert!(matches!(r, Err(ScanError::BadFrame(_))));
        } else {
            prop_assert!(r.is_ok());
        }
    }
}

// --- The finder-pattern gate ---------------------------------------------------
//
// Most frames hold no code; the gate ends them before any decoder runs, and
// ends a frame early once every code it can see has been read. Its effect is
// otherwise only time, so these tests read the scan's trace (how many passes
// ran) — never the clock.

/// `gate` on: the finder gate and the early stop; off: neither.
fn traced(img: &GrayImage, gate: bool) -> (ScanOutcome, ScanTrace) {
    let config = ScanConfig {
        finder_gate: gate,
        early_stop: gate,
        ..unbounded()
    };
    scan_frame_traced(
        img.as_raw(),
        img.width(),
        img.height(),
        img.width(),
        &config,
    )
    .expect("well-formed frame")
}

/// A monitor showing text (random 3×5 pixel-font glyphs), no code: rows and
/// columns full of short dark and light runs.
fn text_page(w: u32, h: u32, px: u32, seed: u64) -> GrayImage {
    let mut rng = degrade::Rng::new(seed);
    let mut img = GrayImage::from_pixel(w, h, Luma([215]));
    let (gw, gh) = (4 * px, 8 * px);
    let mut y = gh;
    while y + 2 * gh < h {
        let mut x = gw;
        while x + 2 * gw < w {
            let bits = rng.next_u64();
            for gy in 0..5 {
                for gx in 0..3 {
                    if bits >> (gy * 3 + gx) & 1 == 1 {
                        for yy in 0..px {
                            for xx in 0..px {
                                img.put_pixel(x + gx * px + xx, y + gy * px + yy, Luma([30]));
                            }
                        }
                    }
                }
            }
            x += gw;
        }
        y += gh + 2 * px;
    }
    noise(&blur(&img, 0.7), 4.0, seed)
}

/// A soft, noisy scene with large edges (an office behind the monitor).
fn office_scene(seed: u64) -> GrayImage {
    let scene = GrayImage::from_fn(1280, 720, |x, y| {
        let v = 90.0
            + 60.0 * ((x as f32 / 97.0).sin() * (y as f32 / 131.0).cos())
            + if (x / 300 + y / 200) % 2 == 0 {
                30.0
            } else {
                0.0
            };
        Luma([v.clamp(0.0, 255.0) as u8])
    });
    noise(&scene, 5.0, seed)
}

#[test]
fn frame_without_finder_patterns_ends_at_the_gate_with_nothing_found() {
    let frames = [
        ("flat grey", GrayImage::from_pixel(1280, 720, Luma([128]))),
        ("office scene", office_scene(1)),
        ("office scene, other noise", office_scene(2)),
    ];
    for (what, img) in &frames {
        let (out, trace) = traced(img, true);
        assert_eq!(out, ScanOutcome::NothingFound, "{what}");
        assert_eq!(
            trace.passes_run, 0,
            "{what}: the gate should have ended the scan, {trace:?}"
        );
        // Without the gate the same frame goes through every pass: the gate,
        // not the frame, is what saved them.
        let (out, trace) = traced(img, false);
        assert_eq!(out, ScanOutcome::NothingFound, "{what} without the gate");
        assert!(trace.passes_run >= 6, "{what} without the gate: {trace:?}");
    }
}

#[test]
fn a_tightly_packed_frame_searched_in_place_scans_as_the_same_frame_copied_from_padded_rows() {
    // A frame whose rows are tightly packed is searched where it lies (no
    // copy until a decoder pass needs one); a frame with row padding is
    // first copied without it. Both must find the same candidates (digest),
    // run the same passes and read the same — with and without a code, at
    // the working size and reduced from 1920×1080 (centre crop at full size).
    let p = login(far_future());
    let big = place(1920, 1080, 200, &scale(&render(&p.to_url(), 4), 2.0), 700, 250);
    let frames = [
        ("code", code_frame(&p, 300.0)),
        ("code in 1920x1080", big),
        ("foreign code", centered(640, 480, &render(FOREIGN_TEXT, 5))),
        ("office scene", office_scene(3)),
        ("text page", text_page(1280, 720, 2, 3)),
        ("flat 1920x1080", GrayImage::from_pixel(1920, 1080, Luma([128]))),
    ];
    for (what, img) in &frames {
        let (w, h) = img.dimensions();
        let tight = scan_frame_traced(img.as_raw(), w, h, w, &unbounded()).unwrap();
        for (extra, last_short) in [(64, false), (3, true)] {
            let buf = with_stride(img, w + extra, 0, last_short);
            let padded = scan_frame_traced(&buf, w, h, w + extra, &unbounded()).unwrap();
            assert_eq!(tight, padded, "{what}, stride {}", w + extra);
        }
        assert_ne!(tight.1.candidates_digest, 0, "{what}: the gate ran");
    }
}

#[test]
fn a_page_of_text_yields_no_read_through_the_gate() {
    // Text makes finder-pattern look-alikes that the geometry does not
    // always rule out (then the passes run: a cost in time the benchmark
    // measures); whatever ran, nothing is read.
    for (px, seed) in [(2, 3), (3, 4)] {
        let (out, trace) = traced(&text_page(1280, 720, px, seed), true);
        assert_eq!(out, ScanOutcome::NothingFound, "{px} px font: {trace:?}");
    }
}

#[test]
fn default_scan_stops_after_the_pass_that_read_every_candidate() {
    let img = centered(640, 480, &render(FOREIGN_TEXT, 5));
    let (out, trace) = scan_frame_traced(img.as_raw(), 640, 480, 640, &unbounded()).unwrap();
    assert_eq!(out, ScanOutcome::ForeignOnly(vec![FOREIGN_TEXT.to_owned()]));
    assert_eq!(trace.passes_run, 1, "{trace:?}");
}

#[test]
fn code_is_still_read_through_the_gate_by_the_first_pass() {
    let p = login(far_future());
    let img = code_frame(&p, 300.0);
    let (out, trace) = traced(&img, true);
    assert_eq!(out, ScanOutcome::Shomei(Payload::Login(p)));
    assert!(trace.candidates >= 3, "{trace:?}");
    assert_eq!(trace.passes_run, 1, "{trace:?}");
}

#[test]
fn foreign_code_ends_the_scan_once_every_candidate_is_read() {
    let img = centered(640, 480, &render(FOREIGN_TEXT, 5));
    let (out, trace) = traced(&img, true);
    assert_eq!(out, ScanOutcome::ForeignOnly(vec![FOREIGN_TEXT.to_owned()]));
    assert_eq!(
        trace.passes_run, 1,
        "its three finder patterns are inside the code read: {trace:?}"
    );
    let (out, trace) = traced(&img, false);
    assert_eq!(out, ScanOutcome::ForeignOnly(vec![FOREIGN_TEXT.to_owned()]));
    assert!(
        trace.passes_run >= 6,
        "without the gate every pass runs: {trace:?}"
    );
}

#[test]
fn ours_beside_a_foreign_code_is_still_read_through_the_gate() {
    // The foreign code is read first; ours holds unread candidates, so the scan goes on.
    let p = login(far_future());
    let ours = scale(&render(&p.to_url(), 4), 0.75);
    let foreign = scale(&render(FOREIGN_TEXT, 4), 0.9);
    let mut frame = place(1000, 480, 255, &foreign, 20, 40);
    image::imageops::overlay(&mut frame, &ours, 520, 60);
    let (out, _) = traced(&frame, true);
    assert_eq!(out, ScanOutcome::Shomei(Payload::Login(p)));
}

#[test]
fn rendered_codes_of_every_size_are_decoded_from_pixels_through_the_gate() {
    // Versions 1 to 40 (finder centres 14 to 170 modules apart), 2 to 5 px
    // per module, dark-on-light and light-on-dark.
    for (i, version) in [1i16, 2, 4, 7, 10, 15, 20, 27, 33, 40]
        .into_iter()
        .enumerate()
    {
        let text = format!("version {version}");
        let code = qrcode::QrCode::with_version(
            text.as_bytes(),
            qrcode::Version::Normal(version),
            qrcode::EcLevel::M,
        )
        .expect("fits");
        let px = 2 + (i as u32 % 4);
        let img: GrayImage = code
            .render::<Luma<u8>>()
            .quiet_zone(true)
            .module_dimensions(px, px)
            .build();
        let img = if i % 3 == 2 { invert(&img) } else { img };
        let bg = if i % 3 == 2 { 0 } else { 255 };
        let (w, h) = (img.width().max(640), img.height().max(480));
        let frame = place(
            w,
            h,
            bg,
            &img,
            i64::from(w - img.width()) / 2,
            i64::from(h - img.height()) / 2,
        );
        let (out, trace) = traced(&frame, true);
        assert_eq!(
            out,
            ScanOutcome::ForeignOnly(vec![text.clone()]),
            "version {version} at {px} px/module, {trace:?}"
        );
        assert!(trace.candidates >= 3, "version {version}: {trace:?}");
    }
}

#[test]
fn default_scan_ends_a_frame_without_finder_patterns_before_any_decoder() {
    // The gate is on by default: what the phone sees while it is being aimed
    // costs no decoder pass.
    assert!(ScanConfig::default().finder_gate);
    for (what, img) in [
        ("flat grey", GrayImage::from_pixel(1280, 720, Luma([128]))),
        ("office scene", office_scene(3)),
    ] {
        let (out, trace) = scan_frame_traced(img.as_raw(), 1280, 720, 1280, &unbounded()).unwrap();
        assert_eq!(out, ScanOutcome::NothingFound, "{what}");
        assert_eq!(trace.passes_run, 0, "{what}: {trace:?}");
    }
}

#[test]
fn a_code_with_one_finder_pattern_hidden_still_reaches_the_decoders() {
    // Glare or a finger over one corner: the two visible finder patterns are
    // enough for the gate to let the decoders look (they have their own
    // thresholds and may still find the third).
    let p = login(far_future());
    let module = 4;
    let mut code = render(&p.to_url(), module);
    // top-right finder pattern: 7 modules after the 4-module quiet zone
    let (w, q) = (code.width(), 4 * module);
    for y in q..q + 8 * module {
        for x in w - q - 8 * module..w - q {
            code.put_pixel(x, y, Luma([255]));
        }
    }
    let frame = centered(640, 480, &code);
    let (_, trace) = traced(&frame, true);
    assert!(trace.candidates >= 2, "{trace:?}");
    assert!(
        trace.passes_run > 0,
        "the gate must not end this frame: {trace:?}"
    );
}

/// The default pass list without the passes that measure the grid from the
/// timing patterns or enlarge small modules (the default before them).
fn without_hybrid() -> ScanConfig {
    let mut config = unbounded();
    config.passes.retain(|p| p.decoder != Decoder::Hybrid);
    config
}

#[test]
fn code_on_a_cylinder_is_read_by_the_timing_pattern_grid() {
    // A code on a bottle: the columns near the edges foreshortened (70° of
    // arc either side), or a milder curve seen from 15° above its axis (the
    // rows bow). No perspective transform through the finder patterns maps
    // these onto their modules, and the guessed dimension is off; the
    // timing patterns give both. Without those passes neither is read.
    let p = login(far_future());
    for (arc, elevation) in [(70.0, 0.0), (40.0, 15.0)] {
        let code = curve(&render(&p.to_url(), 4), arc, elevation);
        let img = place(640, 480, 235, &code, 10, 10);
        let what = format!("{arc}° arc, {elevation}° above");
        assert_reads(&img, &p, &what);
        let old = scan_frame_with(img.as_raw(), 640, 480, 640, &without_hybrid()).unwrap();
        assert_eq!(old, ScanOutcome::NothingFound, "{what}: read without the grid passes");
    }
}

#[test]
fn small_modules_are_enlarged_around_their_finder_patterns() {
    // 2.4 px per module, blurred: the zoom pass alone (the region around
    // the gate's candidates, enlarged) reads it, at the right place in
    // the frame whatever its offset.
    let p = login(far_future());
    let code = blur(&scale(&render(&p.to_url(), 4), 0.6), 0.6);
    let zoom_only = ScanConfig {
        passes: vec![Pass {
            decoder: Decoder::Hybrid,
            prep: Prep::Zoom,
        }],
        ..unbounded()
    };
    for (x, y) in [(40, 30), (420, 300)] {
        let img = place(640, 480, 235, &code, x, y);
        let (out, trace) = scan_frame_traced(img.as_raw(), 640, 480, 640, &zoom_only).unwrap();
        assert_eq!(out, ScanOutcome::Shomei(Payload::Login(p.clone())), "code at ({x}, {y}): {trace:?}");
    }
    // A large code has no small-module candidates: the zoom pass has no image.
    let (out, trace) = scan_frame_traced(code_frame(&p, 400.0).as_raw(), 640, 480, 640, &zoom_only).unwrap();
    assert_eq!(out, ScanOutcome::NothingFound);
    assert_eq!(trace.passes_run, 0, "{trace:?}");
}

#[test]
fn the_candidates_digest_names_what_the_gate_saw() {
    // The same frame twice: the same digest; a frame with other candidates:
    // another; neither gate nor early stop: none (builds are compared by it).
    let p = login(far_future());
    let code = centered(640, 480, &render(&p.to_url(), 4));
    let (_, a) = traced(&code, true);
    let (_, b) = traced(&code, true);
    assert!(a.seen >= 3, "{a:?}");
    assert_eq!(a.candidates_digest, b.candidates_digest);
    let moved = place(640, 480, 255, &render(&p.to_url(), 4), 20, 30);
    let (_, c) = traced(&moved, true);
    assert_ne!(a.candidates_digest, c.candidates_digest, "{a:?} {c:?}");
    let (_, off) = traced(&code, false);
    assert_eq!(off.candidates_digest, 0);
}
