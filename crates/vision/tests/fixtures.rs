//! Always-on tests on the fetched fixtures (real models, real images).

use std::sync::OnceLock;

use facegate_vision::{
    compare, decode, DecodeLimits, Engine, EngineOptions, Face, VisionError, DEFAULT_THRESHOLD,
};

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::new(EngineOptions::default()).expect("engine loads"))
}

fn fixture(name: &str) -> Vec<u8> {
    let p = facegate_assets::fixture(name).expect("fixture available");
    std::fs::read(p).expect("fixture readable")
}

fn faces(name: &str) -> Vec<Face> {
    engine()
        .analyze(&fixture(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn one_embedding(name: &str) -> facegate_vision::Embedding {
    let f = faces(name);
    assert_eq!(f.len(), 1, "{name}: expected one face, got {}", f.len());
    f.into_iter()
        .next()
        .unwrap()
        .embedding
        .expect("embedding on")
}

#[test]
fn obama_matches_obama2() {
    let s = compare(&one_embedding("obama.jpg"), &one_embedding("obama2.jpg"));
    assert!(s >= DEFAULT_THRESHOLD, "same person scored {s}");
}

#[test]
fn obama_does_not_match_biden() {
    let s = compare(&one_embedding("obama.jpg"), &one_embedding("biden.jpg"));
    assert!(s < DEFAULT_THRESHOLD, "different people scored {s}");
}

#[test]
fn no_face_in_coffee_rocket_chelsea() {
    for name in ["coffee.png", "rocket.jpg", "chelsea.png"] {
        let f = faces(name);
        assert!(
            f.is_empty(),
            "{name}: found {} face(s): {:?}",
            f.len(),
            f.iter().map(|f| f.bbox).collect::<Vec<_>>()
        );
    }
}

#[test]
fn face_fields_are_sane() {
    let f = &faces("obama.jpg")[0];
    assert_eq!(f.landmarks68.len(), 68);
    let b = f.bbox;
    for p in f.landmarks5 {
        assert!(
            p[0] > b.x1 && p[0] < b.x2 && p[1] > b.y1 && p[1] < b.y2,
            "{p:?} outside {b:?}"
        );
    }
    let q = f.quality;
    assert!(q.face_px > 200.0, "{q:?}");
    assert!(
        q.yaw.unwrap().abs() < 25.0
            && q.pitch.unwrap().abs() < 25.0
            && q.roll.unwrap().abs() < 15.0,
        "{q:?}"
    );
    assert!(
        q.left_eye_open.unwrap() > 0.5 && q.right_eye_open.unwrap() > 0.5,
        "eyes are open: {q:?}"
    );
    assert!(f.liveness.unwrap() > 0.5, "a live photo: {:?}", f.liveness);
    let e = f.embedding.as_ref().unwrap();
    let n: f32 = e.as_slice().iter().map(|x| x * x).sum();
    assert!((n - 1.0).abs() < 1e-4);
}

#[test]
fn partial_faces_are_found_and_match() {
    let whole = one_embedding("obama.jpg");
    for name in ["obama_partial_face.jpg", "obama_partial_face2.jpg"] {
        let f = faces(name);
        assert_eq!(f.len(), 1, "{name}");
        let b = f[0].bbox;
        assert!(
            b.x1 >= 0.0 && b.y1 >= 0.0,
            "box clamped to the image: {b:?}"
        );
        let s = compare(&whole, f[0].embedding.as_ref().unwrap());
        assert!(s >= DEFAULT_THRESHOLD, "{name}: {s}");
    }
}

#[test]
fn png_with_alpha_decodes() {
    let img = decode(&fixture("32bit.png"), &DecodeLimits::default()).unwrap();
    assert!(img.width() > 0);
    assert_eq!(faces("32bit.png").len(), 1);
}

#[test]
fn truncated_jpeg_is_refused_as_truncated() {
    // Refused by the decoder, as a truncated file, before any model runs
    // (no wall-clock bound here: benchmarks time things, tests do not).
    let full = fixture("obama.jpg");
    let err = engine().analyze(&full[..full.len() / 2]).unwrap_err();
    assert!(matches!(err, VisionError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = 0xFFFF_FFFFu32;
    for &b in kind.iter().chain(data) {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    out.extend_from_slice(&(!crc).to_be_bytes());
}

#[test]
fn png_claiming_50000_squared_is_refused_before_allocation() {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&50_000u32.to_be_bytes());
    ihdr.extend_from_slice(&50_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    png_chunk(&mut png, b"IEND", &[]);
    // TooLarge naming the header's size is the limit check on the header:
    // a decoder that had tried would have failed allocating 7.5 GB instead.
    let err = decode(&png, &DecodeLimits::default()).unwrap_err();
    assert!(matches!(err, VisionError::TooLarge(_)), "{err}");
    assert!(err.to_string().contains("50000"), "{err}");
}

#[test]
fn byte_limit_and_wrong_types_are_refused() {
    let limits = DecodeLimits {
        max_bytes: 1000,
        ..Default::default()
    };
    assert!(matches!(
        decode(&fixture("obama.jpg"), &limits),
        Err(VisionError::TooLarge(_))
    ));
    let pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n";
    let err = decode(pdf, &DecodeLimits::default()).unwrap_err();
    assert!(
        matches!(err, VisionError::UnsupportedFormat(_)) && err.to_string().contains("PDF"),
        "{err}"
    );
    let err = decode(b"hello, this is not an image", &DecodeLimits::default()).unwrap_err();
    assert!(err.to_string().contains("text"), "{err}");
    let err = decode(b"", &DecodeLimits::default()).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    // A JPEG header followed by garbage.
    let mut junk = vec![0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x11, 0x22, 0xFF, 0xD9];
    junk.extend_from_slice(&[0u8; 64]);
    assert!(decode(&junk, &DecodeLimits::default()).is_err());
}

/// Inserts an APP1 EXIF segment with the given orientation after the SOI marker.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2a\0\0\0\x08"); // big-endian, IFD at 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    // Copy the remaining segments, dropping any EXIF (APP1) the file already has.
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF && jpeg[i + 1] != 0xDA {
        let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
        if jpeg[i + 1] != 0xE1 {
            out.extend_from_slice(&jpeg[i..i + 2 + len]);
        }
        i += 2 + len;
    }
    out.extend_from_slice(&jpeg[i..]);
    out
}

#[test]
fn exif_orientation_is_applied() {
    let upright = decode(&fixture("obama.jpg"), &DecodeLimits::default()).unwrap();
    // Store the pixels turned 90° counter-clockwise, tagged "rotate 90° clockwise to display" (6).
    let stored = image::imageops::rotate270(&upright);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92)
        .encode_image(&stored)
        .unwrap();
    let tagged = with_exif_orientation(&jpeg, 6);
    let shown = decode(&tagged, &DecodeLimits::default()).unwrap();
    assert_eq!(
        (shown.width(), shown.height()),
        (upright.width(), upright.height())
    );
    // Untagged, the same file decodes sideways.
    let raw = decode(&jpeg, &DecodeLimits::default()).unwrap();
    assert_eq!(
        (raw.width(), raw.height()),
        (upright.height(), upright.width())
    );
    // The face is found upright without the rotation search.
    let e = Engine::new(EngineOptions {
        try_rotations: false,
        ..Default::default()
    })
    .unwrap();
    assert!(
        e.analyze(&jpeg).unwrap().is_empty(),
        "sideways face without the search"
    );
    let f = e.analyze(&tagged).unwrap();
    assert_eq!(f.len(), 1);
    assert!(
        f[0].quality.roll.unwrap().abs() < 15.0,
        "{:?}",
        f[0].quality
    );
}

#[test]
fn sideways_face_without_exif_is_found_by_rotation_search() {
    let upright = decode(&fixture("obama.jpg"), &DecodeLimits::default()).unwrap();
    let sideways = image::imageops::rotate270(&upright);
    let f = engine().analyze_image(&sideways).unwrap();
    assert_eq!(f.len(), 1);
    let s = compare(
        f[0].embedding.as_ref().unwrap(),
        &one_embedding("obama.jpg"),
    );
    assert!(s > 0.8, "{s}");
    // Box in the sideways image's coordinates.
    assert!(f[0].bbox.x2 <= sideways.width() as f32 && f[0].bbox.y2 <= sideways.height() as f32);
}

#[test]
fn concurrent_use_gives_identical_results() {
    let bytes = fixture("biden.jpg");
    let reference = one_embedding("biden.jpg");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let f = engine().analyze(&bytes).unwrap();
                assert_eq!(f[0].embedding.as_ref().unwrap(), &reference);
            });
        }
    });
}
