//! QR rendering of payload URLs: PNG and SVG for the EHR screen, unicode
//! half blocks for the operator's terminal.

use std::io::Cursor;

use qrcode::{EcLevel, QrCode};

fn code(data: &str) -> Result<QrCode, String> {
    // M: enough redundancy for screens photographed at an angle, small
    // enough that a payload URL stays at a low version.
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).map_err(|e| format!("QR encoding failed: {e}"))
}

/// PNG with `module_px` pixels per module and the standard quiet zone.
pub fn png(data: &str, module_px: u32) -> Result<Vec<u8>, String> {
    let img = code(data)?.render::<image::Luma<u8>>().module_dimensions(module_px, module_px).quiet_zone(true).build();
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(img).write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).map_err(|e| format!("PNG encoding failed: {e}"))?;
    Ok(out)
}

/// SVG document.
pub fn svg(data: &str) -> Result<String, String> {
    Ok(code(data)?.render::<qrcode::render::svg::Color<'_>>().min_dimensions(256, 256).quiet_zone(true).build())
}

/// Text for a terminal: two modules per character cell.
pub fn unicode(data: &str) -> Result<String, String> {
    Ok(code(data)?
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}
