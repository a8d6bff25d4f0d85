//! Active liveness cues and the framing rule on real images: the fetched
//! fixtures always, `../shared/eval` when present (skipped, saying why, when
//! it is not).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use facegate_vision::challenge::{
    clip, context_scale, framing, judge, Action, FrameCues, Framing, THRESHOLDS,
};
use facegate_vision::{Engine, EngineOptions, Face, RgbImage, LIVENESS_THRESHOLD};

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::new(EngineOptions::default()).expect("engine loads"))
}

fn image(name: &str) -> RgbImage {
    let p = facegate_assets::fixture(name).expect("fixture available");
    facegate_vision::decode(&std::fs::read(p).unwrap(), &Default::default()).unwrap()
}

fn mirrored(img: &RgbImage) -> RgbImage {
    image::imageops::flip_horizontal(img)
}

fn face(img: &RgbImage) -> Face {
    let mut f = engine().analyze_image(img).expect("analysed");
    assert_eq!(f.len(), 1, "expected one face");
    f.remove(0)
}

fn cues(img: &RgbImage) -> FrameCues {
    FrameCues::from_face(&face(img)).expect("pose and eye stages on")
}

/// Every ordered sequence of 1–3 different actions.
fn all_sequences() -> Vec<Vec<Action>> {
    let mut out = Vec::new();
    for a in Action::ALL {
        out.push(vec![a]);
        for b in Action::ALL.into_iter().filter(|&b| b != a) {
            out.push(vec![a, b]);
            for c in Action::ALL.into_iter().filter(|&c| c != a && c != b) {
                out.push(vec![a, b, c]);
            }
        }
    }
    out
}

#[test]
fn mirrored_faces_have_opposite_yaw() {
    for name in ["obama2.jpg", "obama3.jpg", "biden.jpg"] {
        let img = image(name);
        let (a, b) = (cues(&img).yaw, cues(&mirrored(&img)).yaw);
        assert!(
            a * b < 0.0 && a.abs() > 5.0 && b.abs() > 5.0,
            "{name}: yaw {a:.1}, mirrored {b:.1}"
        );
        // The mirror image turns by the same amount the other way.
        assert!((a + b).abs() < 5.0, "{name}: yaw {a:.1}, mirrored {b:.1}");
    }
}

#[test]
fn yaw_sign_is_the_persons_own_left() {
    // obama2.jpg: the head is turned to his right (the nose towards the
    // image's left; his left ear shows on the image's right).
    assert!(cues(&image("obama2.jpg")).yaw < -5.0);
}

#[test]
fn one_static_photo_repeated_fails_every_challenge() {
    for name in [
        "obama.jpg",
        "obama2.jpg",
        "obama3.jpg",
        "biden.jpg",
        "astronaut.png",
    ] {
        let c = cues(&image(name));
        let frames = vec![c; 8];
        for seq in all_sequences() {
            assert!(
                judge(&seq, &frames).is_err(),
                "{name} repeated passed {seq:?}"
            );
        }
    }
}

#[test]
fn a_flat_photo_turned_in_front_of_the_camera_shows_no_head_turn() {
    // A printed photo turned by 40° about its vertical axis is, to the
    // camera, the photo squeezed horizontally to cos 40° = 0.77 of its width.
    for name in ["obama.jpg", "obama3.jpg", "biden.jpg"] {
        let img = image(name);
        let w = (img.width() as f32 * 0.77) as u32;
        let squeezed =
            image::imageops::resize(&img, w, img.height(), image::imageops::FilterType::Triangle);
        let (a, b) = (cues(&img), cues(&squeezed));
        assert!(
            (a.yaw - b.yaw).abs() < 6.0,
            "{name}: yaw {:.1} → {:.1} when squeezed",
            a.yaw,
            b.yaw
        );
        for turn in [Action::TurnLeft, Action::TurnRight] {
            assert!(judge(&[turn], &[a, b, a, b]).is_err(), "{name}: {turn:?}");
        }
    }
}

#[test]
fn real_head_turn_and_mouth_pass_in_order_only() {
    // obama3: facing, mouth shut; obama2: head turned to his right, speaking;
    // the mirror of obama2: turned to his left, speaking.
    let (o3, o2) = (image("obama3.jpg"), image("obama2.jpg"));
    let (c3, c2, m2) = (cues(&o3), cues(&o2), cues(&mirrored(&o2)));
    let seq = [Action::TurnRight, Action::OpenMouth];
    assert_eq!(judge(&seq, &[c3, c2, m2]), Ok(()));
    // The mouth opens first, the head turns after: the other order only.
    let other = [c3, m2, c2];
    assert_eq!(
        judge(&seq, &other),
        Err(facegate_vision::ChallengeFailure::Missing {
            step: 1,
            action: Action::OpenMouth
        })
    );
    assert_eq!(
        judge(&[Action::OpenMouth, Action::TurnRight], &other),
        Ok(())
    );
    // A turn to the left from the mirror of obama3.
    let m3 = cues(&mirrored(&o3));
    assert_eq!(judge(&[Action::TurnLeft], &[m3, c3]), Ok(()));
    assert!(judge(&[Action::TurnRight], &[m3, c3]).is_err());
}

/// What a camera consumer sees of a clip frame: letterboxed to 640×480
/// and through I420, as Chromium's fake camera plays `write_y4m`'s video.
fn through_camera(img: &RgbImage) -> RgbImage {
    let boxed = clip::letterbox(img, 640, 480);
    clip::from_i420(&clip::to_i420(&boxed), 640, 480)
}

#[test]
fn the_e2e_clip_performs_its_actions_with_margin_and_the_still_clip_fails() {
    let mut done = 0;
    for seq in all_sequences() {
        let Some(frames) = clip::fixture_clip(&seq).unwrap() else {
            continue;
        };
        let c: Vec<FrameCues> = frames.iter().map(|f| cues(&through_camera(f))).collect();
        assert_eq!(judge(&seq, &c), Ok(()), "{seq:?}: {c:?}");
        // Margin: every movement asked for is at least 15 % past its threshold.
        for (a, f) in seq.iter().zip(&c[1..]) {
            let (need, got) = match a {
                Action::TurnLeft => (THRESHOLDS.turn_deg, f.yaw - c[0].yaw),
                Action::TurnRight => (THRESHOLDS.turn_deg, c[0].yaw - f.yaw),
                _ => (THRESHOLDS.mouth_delta, f.mouth_open - c[0].mouth_open),
            };
            println!("{seq:?} {a:?}: {got:.2} against {need}");
            assert!(got >= 1.15 * need, "{seq:?} {a:?}: {got:.2} against {need}");
        }
        done += 1;
    }
    // Each turn alone, the mouth alone, and each turn with the mouth in both orders.
    assert_eq!(done, 7);
    let still: Vec<FrameCues> = clip::fixture_still_clip(6)
        .unwrap()
        .iter()
        .map(|f| cues(&through_camera(f)))
        .collect();
    for seq in all_sequences() {
        assert!(
            judge(&seq, &still).is_err(),
            "the still clip passed {seq:?}"
        );
    }
    let mut y4m = Vec::new();
    clip::write_y4m(
        &clip::fixture_clip(&[Action::TurnLeft]).unwrap().unwrap(),
        640,
        480,
        10,
        5,
        &mut y4m,
    )
    .unwrap();
    assert_eq!(y4m.len(), 43 + 10 * (6 + 640 * 480 * 3 / 2));
}

fn crop_to(img: &RgbImage, f: &Face, margin: f32) -> RgbImage {
    let b = f.bbox;
    let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
    let half = b.width().max(b.height()) * (0.5 + margin);
    let x = (cx - half).max(0.0) as u32;
    let y = (cy - half).max(0.0) as u32;
    let w = ((2.0 * half) as u32).min(img.width() - x);
    let h = ((2.0 * half) as u32).min(img.height() - y);
    image::imageops::crop_imm(img, x, y, w, h).to_image()
}

#[test]
fn a_face_that_fills_the_frame_is_told_to_step_back() {
    for name in ["obama.jpg", "biden.jpg", "astronaut.png"] {
        let img = image(name);
        let f = face(&img);
        assert_eq!(
            framing(&f.bbox, img.width(), img.height()),
            Framing::Ok,
            "{name} whole"
        );
        let tight = crop_to(&img, &f, 0.1);
        let ft = face(&tight);
        assert_eq!(
            framing(&ft.bbox, tight.width(), tight.height()),
            Framing::StepBack,
            "{name} cropped to the face: context {:.2}",
            context_scale(&ft.bbox, tight.width(), tight.height())
        );
    }
}

#[test]
fn a_live_fixture_passes_the_passive_threshold_with_context() {
    for name in ["obama.jpg", "biden.jpg"] {
        let f = face(&image(name));
        assert!(
            f.liveness.unwrap() >= LIVENESS_THRESHOLD,
            "{name}: {:?}",
            f.liveness
        );
    }
}

// ------------------------------------------------ ../shared/eval (optional)

fn eval_dir(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/eval")
        .join(name);
    if p.join("labels.csv").is_file() {
        Some(p)
    } else {
        println!(
            "SKIPPED: {} is absent (evaluation data lives outside the repository)",
            p.display()
        );
        None
    }
}

/// The framing of every `step`-th image listed in a folder's labels.csv.
fn framings(dir: &Path, step: usize) -> Vec<Framing> {
    let labels = std::fs::read_to_string(dir.join("labels.csv")).unwrap();
    labels
        .lines()
        .skip(1)
        .step_by(step)
        .filter_map(|l| {
            let file = l.split(',').next()?;
            let img = facegate_vision::decode(
                &std::fs::read(dir.join(file)).unwrap(),
                &Default::default(),
            )
            .unwrap();
            let faces = engine().analyze_image(&img).unwrap();
            let f = faces
                .iter()
                .max_by(|a, b| a.bbox.width().total_cmp(&b.bbox.width()))?;
            Some(framing(&f.bbox, img.width(), img.height()))
        })
        .collect()
}

#[test]
fn whole_frames_are_scored_and_tight_crops_are_told_to_step_back() {
    let (Some(frames), Some(crops)) = (eval_dir("antispoof-frames"), eval_dir("antispoof")) else {
        return;
    };
    let f = framings(&frames, 3);
    assert!(f.iter().all(|x| *x == Framing::Ok), "{f:?}");
    let c = framings(&crops, 8);
    let back = c.iter().filter(|x| **x == Framing::StepBack).count();
    assert!(
        back as f64 >= 0.95 * c.len() as f64,
        "{back} of {} crops told to step back",
        c.len()
    );
}
