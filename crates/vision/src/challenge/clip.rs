//! Fake-camera clips made at test time from the fetched fixture photos, for
//! end-to-end tests (the kiosk in Chromium with `--use-file-for-fake-video-capture`)
//! and demos. Not used by the engine.
//!
//! The fixtures hold one man photographed twice with his head turned:
//! `obama3.jpg` (turned slightly to his left, mouth shut) and `obama2.jpg`
//! (turned to his right, speaking). With their mirror images they give two
//! frontal-enough start frames and, from each, a head turn of 18–21° (the
//! judge needs 15°) and an open mouth. So a clip can perform any sequence of
//! at most one turn and an open mouth, in any order; blinks and nods are not
//! in the fixtures ([`fixture_clip`] answers `None` for them).

use std::io::Write;

use image::RgbImage;

use super::Action;
use crate::VisionError;

fn fixture(name: &str) -> Result<RgbImage, VisionError> {
    let p = facegate_assets::fixture(name).map_err(|e| VisionError::Asset(e.to_string()))?;
    let bytes =
        std::fs::read(&p).map_err(|e| VisionError::Asset(format!("{}: {e}", p.display())))?;
    crate::decode(&bytes, &Default::default())
}

/// Still frames (start first) that perform `actions` in order, made from
/// the fixture photos; `None` when the fixtures cannot perform them (a
/// blink, a nod, or turns to both sides). Hold each frame for a while in a
/// video (see [`write_y4m`]).
pub fn fixture_clip(actions: &[Action]) -> Result<Option<Vec<RgbImage>>, VisionError> {
    let left = actions.contains(&Action::TurnLeft);
    let right = actions.contains(&Action::TurnRight);
    if (left && right)
        || actions
            .iter()
            .any(|a| matches!(a, Action::Blink | Action::Nod))
    {
        return Ok(None);
    }
    let o3 = fixture("obama3.jpg")?;
    let o2 = fixture("obama2.jpg")?;
    let m3 = image::imageops::flip_horizontal(&o3);
    let m2 = image::imageops::flip_horizontal(&o2);
    // From obama3 (yaw ≈ +9°): its mirror turns right (−18°) with the mouth
    // shut; the mirror of obama2 opens the mouth without turning (+2°).
    // From the mirror of obama3 (≈ −9°): obama3 turns left (+18°); obama2
    // opens the mouth without turning (−3°).
    let (start, turn, mouth) = if left { (m3, o3, o2) } else { (o3, m3, m2) };
    let mut frames = vec![start];
    for a in actions {
        frames.push(match a {
            Action::TurnLeft | Action::TurnRight => turn.clone(),
            _ => mouth.clone(),
        });
    }
    Ok(Some(frames))
}

/// A clip that performs nothing: one photo (`obama.jpg`), held still.
pub fn fixture_still_clip(frames: usize) -> Result<Vec<RgbImage>, VisionError> {
    Ok(vec![fixture("obama.jpg")?; frames.max(1)])
}

/// `img` scaled to fit `w`×`h`, centred on dark grey.
pub fn letterbox(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let scale = (w as f32 / img.width() as f32).min(h as f32 / img.height() as f32);
    let (nw, nh) = (
        ((img.width() as f32 * scale) as u32).clamp(1, w),
        ((img.height() as f32 * scale) as u32).clamp(1, h),
    );
    let small = image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle);
    let mut canvas = RgbImage::from_pixel(w, h, image::Rgb([40, 40, 40]));
    image::imageops::overlay(
        &mut canvas,
        &small,
        ((w - nw) / 2) as i64,
        ((h - nh) / 2) as i64,
    );
    canvas
}

/// RGB to planar I420 (BT.601 full range, as Y4M's `C420jpeg` says); `w`
/// and `h` even.
pub fn to_i420(img: &RgbImage) -> Vec<u8> {
    let (w, h) = (img.width(), img.height());
    let mut y = vec![0u8; (w * h) as usize];
    let mut u = vec![0u8; (w * h / 4) as usize];
    let mut v = vec![0u8; (w * h / 4) as usize];
    let c = |x: f32| x.round().clamp(0.0, 255.0) as u8;
    for (x, yy, p) in img.enumerate_pixels() {
        let [r, g, b] = p.0.map(|c| c as f32);
        y[(yy * w + x) as usize] = c(0.299 * r + 0.587 * g + 0.114 * b);
        if x % 2 == 0 && yy % 2 == 0 {
            let i = ((yy / 2) * (w / 2) + x / 2) as usize;
            u[i] = c(128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b);
            v[i] = c(128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b);
        }
    }
    [y, u, v].concat()
}

/// Planar I420 back to RGB (what a camera consumer sees).
pub fn from_i420(data: &[u8], w: u32, h: u32) -> RgbImage {
    let (ys, us) = ((w * h) as usize, (w * h / 4) as usize);
    RgbImage::from_fn(w, h, |x, yy| {
        let i = ((yy / 2) * (w / 2) + x / 2) as usize;
        let y = data[(yy * w + x) as usize] as f32;
        let u = data[ys + i] as f32 - 128.0;
        let v = data[ys + us + i] as f32 - 128.0;
        let c = |x: f32| x.round().clamp(0.0, 255.0) as u8;
        image::Rgb([
            c(y + 1.402 * v),
            c(y - 0.344136 * u - 0.714136 * v),
            c(y + 1.772 * u),
        ])
    })
}

/// Writes `frames` as a `w`×`h` Y4M video at `fps`, each frame letterboxed
/// and held for `hold` video frames (Chromium's fake camera loops it).
pub fn write_y4m(
    frames: &[RgbImage],
    w: u32,
    h: u32,
    fps: u32,
    hold: usize,
    mut out: impl Write,
) -> std::io::Result<()> {
    writeln!(out, "YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg")?;
    for f in frames {
        let yuv = to_i420(&letterbox(f, w, h));
        for _ in 0..hold.max(1) {
            out.write_all(b"FRAME\n")?;
            out.write_all(&yuv)?;
        }
    }
    Ok(())
}
