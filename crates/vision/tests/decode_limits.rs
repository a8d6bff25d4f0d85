//! Every accepted format's declared size is checked from its header before
//! any decoding: a tiny file that declares 6000×6000 is refused as too large
//! (not as corrupt, which is what a decoder would say of these files), and
//! formats the engine does not bound are refused outright.

use std::time::Instant;

use facegate_vision::{decode, header_dimensions, DecodeLimits, VisionError};
use image::{ImageEncoder, RgbImage};

/// The server's limit: 4096² pixels.
const LIMITS: DecodeLimits = DecodeLimits {
    max_bytes: 20 << 20,
    max_pixels: 4096 * 4096,
};

fn small() -> RgbImage {
    RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 128])
    })
}

fn encoded(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut v);
    v
}

/// Decodes and checks the answer is "too large", from the header alone.
fn refused_as_too_large(name: &str, bytes: &[u8]) {
    let t = Instant::now();
    let r = decode(bytes, &LIMITS);
    let us = t.elapsed().as_micros();
    println!("{name}: {} bytes, refused in {us} µs: {r:?}", bytes.len());
    assert!(matches!(r, Err(VisionError::TooLarge(_))), "{name}: {r:?}");
    let (_, w, h) = header_dimensions(bytes).unwrap();
    assert_eq!((w, h), (6000, 6000), "{name}");
}

fn webp_lossless() -> Vec<u8> {
    let img = small();
    encoded(|v| {
        image::codecs::webp::WebPEncoder::new_lossless(v)
            .write_image(img.as_raw(), 64, 48, image::ExtendedColorType::Rgb8)
            .unwrap()
    })
}

#[test]
fn lossless_webp_declaring_6000x6000_is_refused_before_decode() {
    let mut b = webp_lossless();
    assert_eq!(&b[12..16], b"VP8L");
    assert_eq!(
        decode(&b, &LIMITS).unwrap().dimensions(),
        (64, 48),
        "the file as encoded decodes"
    );
    // Width-1 and height-1 are 14-bit fields after the 0x2F signature.
    let mut bits = u32::from_le_bytes(b[21..25].try_into().unwrap());
    bits = (bits & !((1 << 28) - 1)) | 5999 | 5999 << 14;
    b[21..25].copy_from_slice(&bits.to_le_bytes());
    refused_as_too_large("VP8L", &b);
}

#[test]
fn extended_webp_declaring_6000x6000_is_refused_before_decode() {
    let inner = webp_lossless();
    // RIFF · WEBP · VP8X (canvas 6000×6000) · the lossless image's VP8L chunk.
    let mut vp8x = b"VP8X".to_vec();
    vp8x.extend_from_slice(&10u32.to_le_bytes());
    vp8x.extend_from_slice(&[0, 0, 0, 0]);
    vp8x.extend_from_slice(&5999u32.to_le_bytes()[..3]);
    vp8x.extend_from_slice(&5999u32.to_le_bytes()[..3]);
    vp8x.extend_from_slice(&inner[12..]);
    let mut b = b"RIFF".to_vec();
    b.extend_from_slice(&(4 + vp8x.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WEBP");
    b.extend_from_slice(&vp8x);
    refused_as_too_large("VP8X", &b);
}

#[test]
fn lossy_webp_declaring_6000x6000_is_refused_before_decode() {
    // A VP8 key frame header: frame tag, start code, 14-bit width and height.
    let mut frame = vec![0x50, 0x01, 0x00, 0x9D, 0x01, 0x2A];
    frame.extend_from_slice(&6000u16.to_le_bytes());
    frame.extend_from_slice(&6000u16.to_le_bytes());
    frame.extend_from_slice(&[0u8; 16]);
    let mut b = b"RIFF".to_vec();
    b.extend_from_slice(&(12 + frame.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WEBPVP8 ");
    b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    b.extend_from_slice(&frame);
    refused_as_too_large("VP8", &b);
}

#[test]
fn png_declaring_6000x6000_is_refused_before_decode() {
    let img = small();
    let mut b = encoded(|v| {
        image::codecs::png::PngEncoder::new(v)
            .write_image(img.as_raw(), 64, 48, image::ExtendedColorType::Rgb8)
            .unwrap()
    });
    assert_eq!(decode(&b, &LIMITS).unwrap().dimensions(), (64, 48));
    b[16..20].copy_from_slice(&6000u32.to_be_bytes());
    b[20..24].copy_from_slice(&6000u32.to_be_bytes());
    refused_as_too_large("PNG", &b);
}

#[test]
fn jpeg_declaring_6000x6000_is_refused_before_decode() {
    let img = small();
    let mut b = encoded(|v| {
        image::codecs::jpeg::JpegEncoder::new_with_quality(v, 80)
            .write_image(img.as_raw(), 64, 48, image::ExtendedColorType::Rgb8)
            .unwrap()
    });
    assert_eq!(decode(&b, &LIMITS).unwrap().dimensions(), (64, 48));
    let sof = b
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline SOF0");
    b[sof + 5..sof + 7].copy_from_slice(&6000u16.to_be_bytes());
    b[sof + 7..sof + 9].copy_from_slice(&6000u16.to_be_bytes());
    refused_as_too_large("JPEG", &b);
}

#[test]
fn headers_cut_after_the_size_are_still_refused_as_too_large() {
    // Only the header: a decoder would call these truncated; the size check
    // comes first, so they are refused for their size.
    let mut b = webp_lossless();
    let mut bits = u32::from_le_bytes(b[21..25].try_into().unwrap());
    bits = (bits & !((1 << 28) - 1)) | 5999 | 5999 << 14;
    b[21..25].copy_from_slice(&bits.to_le_bytes());
    b.truncate(25);
    refused_as_too_large("VP8L header only", &b);
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend_from_slice(&6000u32.to_be_bytes());
    png.extend_from_slice(&6000u32.to_be_bytes());
    refused_as_too_large("PNG header only", &png);
}

/// A 64×48 BMP as `image` writes it (40-byte info header).
fn bmp() -> Vec<u8> {
    let img = small();
    encoded(|v| {
        image::codecs::bmp::BmpEncoder::new(v)
            .write_image(img.as_raw(), 64, 48, image::ExtendedColorType::Rgb8)
            .unwrap()
    })
}

#[test]
fn bmp_declaring_6000x6000_is_refused_before_decode() {
    let mut b = bmp();
    assert_eq!(
        decode(&b, &LIMITS).unwrap(),
        small(),
        "the file as encoded decodes, pixel for pixel"
    );
    // Width and height: signed 32-bit little-endian at 18 and 22 (a
    // negative height is a top-down image: its size counts the same).
    b[18..22].copy_from_slice(&6000i32.to_le_bytes());
    b[22..26].copy_from_slice(&(-6000i32).to_le_bytes());
    refused_as_too_large("BMP", &b);
    // The OS/2 core header (12 bytes, 16-bit sides), header only.
    let mut core = b"BM\0\0\0\0\0\0\0\0\x1a\0\0\0\x0c\0\0\0".to_vec();
    core.extend_from_slice(&6000u16.to_le_bytes());
    core.extend_from_slice(&6000u16.to_le_bytes());
    refused_as_too_large("BMP core header only", &core);
}

#[test]
fn gif_declaring_6000x6000_is_refused_as_too_large_and_any_gif_as_unsupported() {
    // The logical screen's 16-bit width and height follow the signature.
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&6000u16.to_le_bytes());
    gif.extend_from_slice(&6000u16.to_le_bytes());
    gif.extend_from_slice(&[0, 0, 0]);
    refused_as_too_large("GIF", &gif);
    // A small one: no GIF decoder in the build, so refused as unsupported.
    let mut small_gif = b"GIF87a".to_vec();
    small_gif.extend_from_slice(&64u16.to_le_bytes());
    small_gif.extend_from_slice(&48u16.to_le_bytes());
    small_gif.extend_from_slice(&[0, 0, 0, 0x3B]);
    let r = decode(&small_gif, &LIMITS);
    assert!(matches!(r, Err(VisionError::UnsupportedFormat(_))), "{r:?}");
}

#[test]
fn formats_the_engine_does_not_bound_are_refused() {
    let cases: [(&str, &[u8]); 3] = [
        ("TIFF", b"II*\0\x08\0\0\0"),
        ("ICO", b"\0\0\x01\0\x01\0\0\0\0\0\0\0\0\0"),
        ("HEIF", b"\0\0\0\x18ftypheic\0\0\0\0"),
    ];
    for (name, bytes) in cases {
        let r = decode(bytes, &LIMITS);
        assert!(
            matches!(r, Err(VisionError::UnsupportedFormat(_))),
            "{name}: {r:?}"
        );
        assert!(header_dimensions(bytes).is_err(), "{name}");
    }
}
