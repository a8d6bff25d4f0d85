//! Prints, one CSV line per image (and per mirrored image), what the
//! challenge and framing rules see: the measurement behind the thresholds in
//! `challenge.rs` (see BENCHMARKS.md, "Liveness").
//!
//! `cargo run -p facegate-vision --example cues -- IMAGE...`
use facegate_vision::challenge::{context_scale, FrameCues};

fn main() {
    let engine = facegate_vision::Engine::new(Default::default()).expect("engine");
    println!("image,mirrored,w,h,faces,box,context,live,yaw,pitch,roll,eye_l,eye_r,mouth,nose_dx,ear,nose_dy");
    for p in std::env::args().skip(1) {
        let bytes = std::fs::read(&p).unwrap();
        let img = facegate_vision::decode(&bytes, &Default::default()).unwrap();
        if let Some(dir) = std::env::var_os("FG_PNG_DIR") {
            // A PNG copy to look at (investigation only).
            let name = std::path::Path::new(&p).file_stem().unwrap().to_owned();
            let out = std::path::Path::new(&dir).join(name).with_extension("png");
            img.save(out).unwrap();
        }
        for mirrored in [false, true] {
            let im = if mirrored {
                image::imageops::flip_horizontal(&img)
            } else {
                img.clone()
            };
            let faces = engine.analyze_image(&im).unwrap();
            let Some(f) = faces.first() else {
                println!(
                    "{p},{mirrored},{},{},0,,,,,,,,,,,,",
                    im.width(),
                    im.height()
                );
                continue;
            };
            let c = FrameCues::from_face(f).unwrap();
            let lm = &f.landmarks68;
            // Nose tip offset from the eye-mouth midline, over the eye distance
            // (positive: nose towards the image's right).
            let mid = (lm[36][0] + lm[45][0] + lm[48][0] + lm[54][0]) / 4.0;
            let nose_dx = (lm[30][0] - mid) / (lm[45][0] - lm[36][0]).abs().max(1.0);
            let eye_y = (lm[36][1] + lm[39][1] + lm[42][1] + lm[45][1]) / 4.0;
            let mouth_y = (lm[48][1] + lm[54][1]) / 2.0;
            let nose_dy = (lm[30][1] - eye_y) / (mouth_y - eye_y).max(1.0);
            let d = |a: usize, b: usize| {
                ((lm[a][0] - lm[b][0]).powi(2) + (lm[a][1] - lm[b][1]).powi(2)).sqrt()
            };
            let ear = (d(37, 41) + d(38, 40)) / (2.0 * d(36, 39))
                + (d(43, 47) + d(44, 46)) / (2.0 * d(42, 45));
            println!(
                "{p},{mirrored},{},{},{},{:.0},{:.2},{:.3},{:.1},{:.1},{:.1},{:.2},{:.2},{:.3},{:.3},{:.3},{:.3}",
                im.width(),
                im.height(),
                faces.len(),
                f.bbox.width(),
                context_scale(&f.bbox, im.width(), im.height()),
                f.liveness.unwrap_or(f32::NAN),
                c.yaw,
                c.pitch,
                f.quality.roll.unwrap_or(f32::NAN),
                f.quality.left_eye_open.unwrap(),
                f.quality.right_eye_open.unwrap(),
                c.mouth_open,
                nose_dx,
                ear / 2.0,
                nose_dy
            );
        }
    }
}
