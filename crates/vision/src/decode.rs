//! Image decoding with limits: JPEG, PNG, WebP and BMP (the `image` features
//! enabled; every other format is refused); EXIF orientation applied; the
//! pixel limit is checked against the file's own header, read here by
//! [`header_dimensions`] before any decoder runs (PNG `IHDR`, JPEG `SOFn`,
//! WebP `VP8 `, lossless `VP8L` and extended `VP8X` canvas, the BMP info
//! header, GIF's logical screen), so a tiny file that declares a huge image
//! costs microseconds; truncated files are refused rather than half-decoded.
//! GIF has no decoder in this build: its declared size is checked first (a
//! GIF bomb is answered "too large"), then it is refused as unsupported.

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
    } else if bytes.starts_with(b"BM") {
        Some(ImageFormat::Bmp)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(ImageFormat::Gif)
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

fn u16be(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes(
        b.get(i..i + 2)?.try_into().ok()?,
    )))
}

fn u16le(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes(
        b.get(i..i + 2)?.try_into().ok()?,
    )))
}

fn u24le(b: &[u8], i: usize) -> Option<u32> {
    let s = b.get(i..i + 3)?;
    Some(u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16)
}

/// Width and height from the first SOFn marker before the first scan.
fn jpeg_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while *b.get(i)? == 0xFF && *b.get(i + 1)? == 0xFF {
            i += 1;
        }
        if *b.get(i)? != 0xFF {
            return None;
        }
        let m = *b.get(i + 1)?;
        match m {
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => {
                i += 2;
                continue;
            }
            // Start of scan or end of image before any frame header.
            0xDA | 0xD9 => return None,
            0xC0..=0xCF if !matches!(m, 0xC4 | 0xC8 | 0xCC) => {
                // SOFn: length, precision, height, width.
                let h = u16be(b, i + 5)?;
                let w = u16be(b, i + 7)?;
                return Some((w, h));
            }
            _ => i += 2 + u16be(b, i + 2)? as usize,
        }
    }
}

/// Canvas size from the first chunk of a WebP: `VP8 ` (lossy key frame),
/// `VP8L` (lossless) or `VP8X` (extended: animation, alpha, metadata).
fn webp_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let chunk = b.get(12..16)?;
    let d = b.get(20..)?;
    match chunk {
        b"VP8 " => {
            // Frame tag (3 bytes), start code 9D 01 2A, 14-bit width and height.
            if d.get(3..6)? != [0x9D, 0x01, 0x2A] {
                return None;
            }
            Some((u16le(d, 6)? & 0x3FFF, u16le(d, 8)? & 0x3FFF))
        }
        b"VP8L" => {
            if *d.first()? != 0x2F {
                return None;
            }
            let bits = u32::from_le_bytes(d.get(1..5)?.try_into().ok()?);
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8X" => Some((u24le(d, 4)? + 1, u24le(d, 7)? + 1)),
        _ => None,
    }
}

/// Width and height from a BMP's info header: the 12-byte OS/2 core header
/// (16-bit sides) or any later one (32-bit signed sides; a negative height
/// is a top-down image).
fn bmp_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let dib = u32::from_le_bytes(b.get(14..18)?.try_into().ok()?);
    if dib == 12 {
        return Some((u16le(b, 18)?, u16le(b, 20)?));
    }
    let i32le = |i: usize| Some(i32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
    Some((i32le(18)?.unsigned_abs(), i32le(22)?.unsigned_abs()))
}

/// The format and the width and height an image file declares, read from its
/// header without decoding anything (microseconds, no allocation). Reads the
/// formats [`decode`] accepts, JPEG, PNG, WebP (lossy, lossless, extended)
/// and BMP, and GIF (whose declared size is checked before it is refused).
/// Hosts can call it to refuse an oversized image before queueing any work.
pub fn header_dimensions(bytes: &[u8]) -> Result<(ImageFormat, u32, u32), VisionError> {
    let format = sniff(bytes).ok_or_else(|| {
        VisionError::UnsupportedFormat(format!(
            "the data is {}, not a JPEG, PNG, WebP or BMP image",
            describe(bytes)
        ))
    })?;
    let dims = match format {
        ImageFormat::Png if bytes.get(12..16) == Some(&b"IHDR"[..]) => {
            let u32be = |i: usize| Some(u32::from_be_bytes(bytes.get(i..i + 4)?.try_into().ok()?));
            u32be(16).zip(u32be(20))
        }
        ImageFormat::Jpeg => jpeg_dimensions(bytes),
        ImageFormat::WebP => webp_dimensions(bytes),
        ImageFormat::Bmp => bmp_dimensions(bytes),
        // The logical screen: 16-bit width and height after the signature.
        ImageFormat::Gif => u16le(bytes, 6).zip(u16le(bytes, 8)),
        _ => None,
    };
    let (w, h) = dims.ok_or_else(|| {
        VisionError::Corrupt(format!(
            "the {format:?} header is truncated or malformed (no image size before the data)"
        ))
    })?;
    Ok((format, w, h))
}

/// Refuses an image whose declared size is empty or above the limit.
fn check_pixels(
    format: ImageFormat,
    w: u32,
    h: u32,
    limits: &DecodeLimits,
) -> Result<(), VisionError> {
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
    Ok(())
}

/// A JPEG is complete when an end-of-image marker (FF D9) follows the last
/// start-of-scan marker (FF DA). Entropy-coded data byte-stuffs 0xFF, so
/// neither marker can appear inside it; an EXIF thumbnail's own FF D9 comes
/// before the main image's scans and does not count.
fn jpeg_complete(bytes: &[u8]) -> bool {
    // The same answer as "an EOI after the last SOS", found from the ends:
    // the last EOI (at the very end of a normal file), no SOS after it, and
    // an SOS before it (near the start). The straightforward form scanned
    // the whole entropy-coded data twice per frame.
    let marker = |m: u8| move |w: &[u8]| w == [0xFF, m];
    let Some(eoi) = bytes.windows(2).rposition(marker(0xD9)) else {
        return false;
    };
    !bytes[eoi..].windows(2).any(marker(0xDA)) && bytes[..eoi].windows(2).any(marker(0xDA))
}

/// Decodes JPEG, PNG, WebP or BMP bytes into an RGB image with EXIF orientation
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
    let (format, w, h) = header_dimensions(bytes)?;
    check_pixels(format, w, h, limits)?;
    if format == ImageFormat::Gif {
        return Err(VisionError::UnsupportedFormat(
            "the data is a GIF image; send a JPEG, PNG, WebP or BMP image".into(),
        ));
    }
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
    // The decoder's own reading of the header, in case it differs from ours.
    let (w, h) = decoder.dimensions();
    check_pixels(format, w, h, limits)?;
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// The straightforward form [`super::jpeg_complete`] replaced.
    fn eoi_after_last_sos(bytes: &[u8]) -> bool {
        let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
        match last_sos {
            None => false,
            Some(p) => bytes[p..].windows(2).any(|w| w == [0xFF, 0xD9]),
        }
    }

    proptest! {
        /// Byte strings drawn mostly from the marker bytes, so that SOS and
        /// EOI markers occur, overlap and repeat in every order.
        #[test]
        fn jpeg_complete_is_eoi_after_the_last_sos(
            bytes in proptest::collection::vec(
                prop_oneof![Just(0xFFu8), Just(0xDA), Just(0xD9), any::<u8>()], 0..40)
        ) {
            prop_assert_eq!(super::jpeg_complete(&bytes), eoi_after_last_sos(&bytes));
        }
    }
}
