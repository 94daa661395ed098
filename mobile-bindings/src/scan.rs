//! Camera frames to QR payloads.
//!
//! The app hands over the luma (Y) plane of each preview frame exactly as the camera
//! produced it (row padding included) and gets back what was found. Synchronous on purpose:
//! the app calls it from its own camera thread, one frame at a time, and drops frames while
//! a scan runs.

use shomei_core::scan::{ScanError as CoreError, ScanOutcome};

use crate::payload::PayloadInfo;

/// What a frame contained.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ScanResult {
    /// A Shomei code. It may be expired; the `Authenticator` checks that when it is used
    /// (the app should still offer to rescan if `expires_at` has passed).
    Shomei { payload: PayloadInfo },
    /// Only QR codes that are not Shomei's (their texts, e.g. to tell the user why nothing
    /// happens).
    ForeignOnly { texts: Vec<String> },
    /// No readable QR code in this frame.
    NothingFound,
}

/// A frame the scanner cannot read as described.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum ScanError {
    /// Width, height or row stride do not fit the buffer (or are zero).
    #[error("bad camera frame: {reason}")]
    BadFrame { reason: String },
}

impl From<CoreError> for ScanError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::BadFrame(reason) => ScanError::BadFrame { reason },
        }
    }
}

/// Looks for QR codes in one 8-bit luma plane.
///
/// `luma` is borrowed for the duration of the call, without a copy: in Kotlin it is a
/// *direct* `java.nio.ByteBuffer` (camera2's `Image.Plane.buffer` is one), in Swift `Data`.
/// `row_stride` is the number of bytes from one row's start to the next (>= `width`).
#[uniffi::export]
pub fn scan_frame(
    luma: &[u8],
    width: u32,
    height: u32,
    row_stride: u32,
) -> Result<ScanResult, ScanError> {
    let outcome = shomei_core::scan::scan_frame(luma, width, height, row_stride)?;
    Ok(match outcome {
        ScanOutcome::Shomei(payload) => ScanResult::Shomei {
            payload: PayloadInfo::from(&payload),
        },
        ScanOutcome::ForeignOnly(texts) => ScanResult::ForeignOnly { texts },
        ScanOutcome::NothingFound => ScanResult::NothingFound,
    })
}
