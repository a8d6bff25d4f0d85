//! Image decoding with limits: JPEG, PNG and WebP only; EXIF orientation
//! applied; the pixel limit is checked against the header before any pixel
//! buffer is allocated; truncated files are refused rather than half-decoded.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use crate::VisionError;

/// Limits applied by [`decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Largest accepted width × height, read from the header before decoding.
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    /// 20 MiB and 40 megapixels: any phone or camera photo, and no more.
    fn default() -> Self {
        DecodeLimits {
            max_bytes: 20 << 20,
            max_pixels: 40_000_000,
        }
    }
}

fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(ImageFormat::WebP)
    } else {
        None
    }
}

fn describe(bytes: &[u8]) -> &'static str {
    if bytes.is_empty() {
        "an empty file"
    } else if bytes.starts_with(b"%PDF") {
        "a PDF document"
    } else if bytes.starts_with(b"GIF8") {
        "a GIF image"
    } else if bytes.starts_with(b"BM") {
        "a BMP image"
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        "a TIFF image"
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        "an HEIF/AVIF or MP4 file"
    } else if bytes.starts_with(b"PK\x03\x04") {
        "a ZIP archive"
    } else if bytes
        .iter()
        .take(512)
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        "text"
    } else {
        "an unrecognised format"
    }
}

/// A JPEG is complete when an end-of-image marker (FF D9) follows the last
/// start-of-scan marker (FF DA). Entropy-coded data byte-stuffs 0xFF, so
/// neither marker can appear inside it; an EXIF thumbnail's own FF D9 comes
/// before the main image's scans and does not count.
fn jpeg_complete(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        None => false,
        Some(p) => bytes[p..].windows(2).any(|w| w == [0xFF, 0xD9]),
    }
}

/// Decodes JPEG, PNG or WebP bytes into an RGB image with EXIF orientation
/// applied. Refuses other formats, files over `limits.max_bytes`, images whose
/// header claims more than `limits.max_pixels` (before allocating them), and
/// truncated or corrupt files.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, VisionError> {
    if bytes.len() > limits.max_bytes {
        return Err(VisionError::TooLarge(format!(
            "the file is {} bytes; the limit is {} bytes",
            bytes.len(),
            limits.max_bytes
        )));
    }
    let format = sniff(bytes).ok_or_else(|| {
        VisionError::UnsupportedFormat(format!(
            "the data is {}, not a JPEG, PNG or WebP image",
            describe(bytes)
        ))
    })?;
    if format == ImageFormat::Jpeg && !jpeg_complete(bytes) {
        return Err(VisionError::Corrupt(
            "the JPEG is truncated (no end-of-image marker after its last scan)".into(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut lim = image::Limits::default();
    // Decoder working memory: the pixels at up to 16 bytes each (RGBA f32 worst case) plus slack.
    lim.max_alloc = Some(
        limits
            .max_pixels
            .saturating_mul(16)
            .saturating_add(64 << 20),
    );
    reader.limits(lim);
    let corrupt = |e: image::ImageError| classify(format, e);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (w, h) = decoder.dimensions();
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels {
        return Err(VisionError::TooLarge(format!(
            "the {format:?} header claims {w}×{h} = {pixels} pixels; the limit is {}",
            limits.max_pixels
        )));
    }
    if w == 0 || h == 0 {
        return Err(VisionError::Corrupt(format!(
            "the {format:?} header claims an empty {w}×{h} image"
        )));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    img.apply_orientation(orientation);
    Ok(match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

fn classify(format: ImageFormat, e: image::ImageError) -> VisionError {
    match e {
        image::ImageError::Limits(l) => VisionError::TooLarge(format!(
            "decoding this {format:?} would exceed the memory limit ({l})"
        )),
        image::ImageError::Unsupported(u) => {
            VisionError::UnsupportedFormat(format!("this {format:?} variant is not supported: {u}"))
        }
        other => VisionError::Corrupt(format!(
            "the {format:?} data is truncated or corrupt: {other}"
        )),
    }
}
