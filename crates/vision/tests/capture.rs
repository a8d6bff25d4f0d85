//! The least-work entry points: `one_face` stops at the second face before
//! any landmark or embedding work when the detector is sure of two; the
//! multi-frame `challenge` embeds only the anchor and best frames. Work is
//! measured in model calls (the same on every machine), not time.

use std::collections::HashMap;
use std::sync::OnceLock;

use facegate_vision::{
    compare, Budget, CaptureOptions, CaptureResult, Engine, OneFace, OneFaceOptions, PoseFrames,
    RgbImage, VisionError,
};

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::new(Default::default()).expect("engine loads"))
}

fn image(name: &str) -> RgbImage {
    let p = facegate_assets::fixture(name).expect("fixture available");
    facegate_vision::decode(&std::fs::read(p).unwrap(), &Default::default()).unwrap()
}

/// A real two-person photo made of two fixtures side by side (same height).
fn two_people() -> RgbImage {
    let (a, b) = (image("obama.jpg"), image("biden.jpg"));
    let h = a.height().min(b.height());
    let fit = |i: &RgbImage| {
        let w = i.width() * h / i.height();
        image::imageops::resize(i, w, h, image::imageops::FilterType::Triangle)
    };
    let (a, b) = (fit(&a), fit(&b));
    let mut out = RgbImage::new(a.width() + b.width(), h);
    image::imageops::replace(&mut out, &a, 0, 0);
    image::imageops::replace(&mut out, &b, a.width() as i64, 0);
    out
}

/// The engine's call counters are shared: every test holds this while it runs.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Model calls `f` makes.
fn calls<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = engine().model_calls();
    let out = f();
    (out, engine().model_calls() - before)
}

/// The model calls of one face's full analysis (detector excluded).
fn per_face_calls() -> u64 {
    let img = image("obama.jpg");
    let (faces, n) = calls(|| engine().analyze_image(&img).unwrap());
    assert_eq!(faces.len(), 1);
    n - 1
}

#[test]
fn a_crowd_is_refused_in_less_than_the_cost_of_two_faces() {
    let _serial = serial();
    let two_faces = 1 + 2 * per_face_calls();
    let img = two_people();
    let (full, _) = calls(|| engine().analyze_image(&img).unwrap());
    assert_eq!(full.len(), 2, "the composite shows two people");
    let (r, n) = calls(|| engine().one_face(&img, &Budget::unlimited()).unwrap());
    println!("two people: {r:?} after {n} model calls (two faces cost {two_faces})");
    assert!(matches!(r, OneFace::Several(k) if k >= 2), "{r:?}");
    assert!(n < two_faces, "{n} model calls, two faces cost {two_faces}");

    let dir = std::path::Path::new("../../../shared/eval/detection/many_faces");
    if !dir.exists() {
        println!("skipping the eval crowds: {} is absent", dir.display());
        return;
    }
    for name in [
        "linzaer_10.jpg",
        "deepface_selfie-many-people.jpg",
        "linzaer_19.jpg",
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let (r, n) = calls(|| {
            engine()
                .one_face_bytes(&bytes, &Budget::unlimited())
                .unwrap()
        });
        println!("{name}: {r:?} after {n} model calls (two faces cost {two_faces})");
        assert!(matches!(r, OneFace::Several(_)), "{name}: {r:?}");
        assert!(n < two_faces, "{name}: {n} model calls");
    }
}

#[test]
fn one_face_gives_the_same_face_as_analyze() {
    let _serial = serial();
    for name in ["obama.jpg", "biden.jpg", "astronaut.png"] {
        let img = image(name);
        let full = engine().analyze_image(&img).unwrap();
        let one = engine().one_face(&img, &Budget::unlimited()).unwrap();
        let OneFace::One(f) = one else {
            panic!("{name}: {one:?}")
        };
        assert_eq!(full.len(), 1);
        let s = compare(
            full[0].embedding.as_ref().unwrap(),
            f.embedding.as_ref().unwrap(),
        );
        assert!(s > 0.9999, "{name}: {s}");
        assert_eq!(full[0].liveness, f.liveness);
        assert_eq!(full[0].quality, f.quality);
    }
    let none = engine()
        .one_face(&image("coffee.png"), &Budget::unlimited())
        .unwrap();
    assert!(matches!(none, OneFace::None), "{none:?}");
}

#[test]
fn a_cancelled_or_expired_budget_stops_the_work() {
    let _serial = serial();
    let img = image("obama.jpg");
    let b = Budget::unlimited();
    b.cancel();
    let (r, n) = calls(|| engine().one_face(&img, &b));
    assert!(matches!(r, Err(VisionError::Stopped(_))), "{r:?}");
    assert_eq!(n, 0, "no model runs once cancelled");
    let frames = vec![img.clone(); 6];
    let (r, _) = calls(|| {
        engine().challenge(
            &frames,
            &CaptureOptions::default(),
            &Budget::within(std::time::Duration::ZERO),
        )
    });
    assert!(matches!(r, Err(VisionError::Stopped(_))), "{r:?}");
}

#[test]
fn a_six_frame_challenge_costs_little_more_than_one_frame() {
    let _serial = serial();
    // Six frames of one person: the same photo, a mirror and a second photo.
    let a = image("obama.jpg");
    let m = image::imageops::flip_horizontal(&a);
    let frames = vec![a.clone(), m.clone(), a.clone(), m, a.clone(), a.clone()];
    let per_face = per_face_calls();
    let before: HashMap<_, _> = engine().model_calls_by_model().into_iter().collect();
    // The detector on every frame (tracking is compared with this below).
    let untracked = CaptureOptions {
        track: false,
        ..Default::default()
    };
    let (r, n) = calls(|| {
        engine()
            .challenge(&frames, &untracked, &Budget::unlimited())
            .unwrap()
    });
    let by_model: HashMap<&str, u64> = engine()
        .model_calls_by_model()
        .into_iter()
        .map(|(m, c)| (m, c - before[m]))
        .collect();
    println!("{by_model:?}");
    let CaptureResult::Captured(c) = r else {
        panic!("{r:?}")
    };
    let all_frames = 6 * (1 + per_face);
    println!(
        "6 frames: {n} model calls (full analysis of each: {all_frames}; one frame {}); first {}, best {}, similarity {}",
        1 + per_face,
        c.first,
        c.best,
        c.similarity
    );
    // One full frame, then per frame: detect, landmarks, pose, two eyes; the
    // best frame's embedding and liveness.
    assert!(n <= (1 + per_face) + 5 * 5 + 2, "{n} calls");
    let (f, l) = (by_model["fr_feature.onnx"], by_model["fr_liveness.onnx"]);
    assert!(f <= 2, "fr_feature ran {f} times for 6 frames");
    assert_eq!(l, 1, "fr_liveness ran {l} times for 6 frames");
    assert_eq!(c.frames.len(), 6);
    assert!(c.frames.iter().all(|f| f.is_some()));
    assert!(c.similarity >= facegate_vision::DEFAULT_THRESHOLD);
    assert!(c.best_face.liveness.is_some(), "liveness on the best frame");
    // The cues are fr_pose's on each frame (the default source).
    for (i, c) in c.frames.iter().enumerate() {
        let c = c.as_ref().unwrap();
        let d = engine().detect(&frames[i]).unwrap();
        let p = engine().pose(&frames[i], &d[0].bbox).unwrap();
        assert_eq!([c.yaw, c.pitch, c.roll], p, "frame {i}");
    }
    // The best frame's analysis equals the full pipeline's on that frame.
    let full = engine().analyze_image(&frames[c.best]).unwrap();
    let s = compare(
        full[0].embedding.as_ref().unwrap(),
        c.best_face.embedding.as_ref().unwrap(),
    );
    assert!(s > 0.9999);
    assert_eq!(full[0].liveness, c.best_face.liveness);
}

#[test]
fn a_second_person_in_a_frame_stops_the_challenge() {
    let _serial = serial();
    let frames = vec![image("obama.jpg"), two_people(), image("obama.jpg")];
    // The detector on every frame (with tracking, see
    // `with_tracking_a_second_person_on_a_detector_frame_is_caught`).
    let untracked = CaptureOptions {
        track: false,
        ..Default::default()
    };
    let r = engine()
        .challenge(&frames, &untracked, &Budget::unlimited())
        .unwrap();
    assert!(
        matches!(r, CaptureResult::SeveralFaces { frame: 1, .. }),
        "{r:?}"
    );
}

#[test]
fn a_single_frame_verify_skips_pose_and_eyes_and_keeps_the_rest() {
    let _serial = serial();
    for name in ["obama.jpg", "biden.jpg", "astronaut.png"] {
        let img = image(name);
        let (all, n_all) = calls(|| engine().one_face(&img, &Budget::unlimited()).unwrap());
        let (verify, n_verify) = calls(|| {
            engine()
                .one_face_with(&img, &OneFaceOptions::VERIFY, &Budget::unlimited())
                .unwrap()
        });
        let (OneFace::One(a), OneFace::One(v)) = (all, verify) else {
            panic!("{name}: one face expected")
        };
        println!("{name}: {n_all} model calls with every cue, {n_verify} for a verify");
        // fr_pose once and fr_eye twice fewer.
        assert_eq!(n_verify + 3, n_all, "{name}");
        let (ea, ev) = (a.embedding.as_ref().unwrap(), v.embedding.as_ref().unwrap());
        assert!(
            ea.as_slice()
                .iter()
                .zip(ev.as_slice())
                .all(|(x, y)| (x - y).abs() <= 1e-6),
            "{name}: same embedding"
        );
        assert_eq!(a.liveness, v.liveness, "{name}");
        assert_eq!((a.bbox, a.det_score), (v.bbox, v.det_score), "{name}");
        assert_eq!(v.quality.yaw, None);
        assert_eq!(v.quality.left_eye_open, None);
    }
}

/// Frames of one person whose head turns: the fixture clips of the
/// challenge module, and the gate benchmark's three photos in turn.
fn turning_clips() -> Vec<(String, Vec<RgbImage>)> {
    use facegate_vision::challenge::{clip, Action};
    let mut out = Vec::new();
    for seq in [
        vec![Action::TurnLeft],
        vec![Action::TurnRight],
        vec![Action::OpenMouth, Action::TurnLeft],
        vec![Action::TurnRight, Action::OpenMouth],
        vec![Action::OpenMouth],
    ] {
        if let Some(f) = clip::fixture_clip(&seq).unwrap() {
            out.push((format!("{seq:?}"), f));
        }
    }
    let photos = [image("obama.jpg"), image("obama2.jpg"), image("obama3.jpg")];
    out.push((
        "gate benchmark (obama, obama2, obama3 ×2)".into(),
        photos.iter().cycle().take(6).cloned().collect(),
    ));
    out.push(("still".into(), clip::fixture_still_clip(4).unwrap()));
    out
}

fn captured(frames: &[RgbImage], pose: PoseFrames) -> (Box<facegate_vision::Captured>, u64) {
    let opts = CaptureOptions {
        pose,
        track: false,
        ..Default::default()
    };
    let pose_calls = || {
        engine()
            .model_calls_by_model()
            .into_iter()
            .find(|(m, _)| *m == "fr_pose.onnx")
            .unwrap()
            .1
    };
    let before = pose_calls();
    let r = engine()
        .challenge(frames, &opts, &Budget::unlimited())
        .unwrap();
    let CaptureResult::Captured(c) = r else {
        panic!("{r:?}")
    };
    (c, pose_calls() - before)
}

/// The model yaws' span, as the server's turn-the-head check reads it.
fn model_yaw_span(c: &facegate_vision::Captured) -> f32 {
    let y: Vec<f32> = c
        .frames
        .iter()
        .flatten()
        .filter(|f| f.pose_model)
        .map(|f| f.yaw)
        .collect();
    y.iter().cloned().fold(f32::MIN, f32::max) - y.iter().cloned().fold(f32::MAX, f32::min)
}

#[test]
fn the_pose_model_runs_only_where_the_decision_reads_it_and_decides_the_same() {
    use facegate_vision::challenge::{judge, Action};
    let _serial = serial();
    let span = 12.0;
    for (name, frames) in turning_clips() {
        let (every, n_every) = captured(&frames, PoseFrames::Every);
        let (until, n_until) = captured(&frames, PoseFrames::UntilYawSpan(span));
        let (first, n_first) = captured(&frames, PoseFrames::First);
        let (s_every, s_until) = (model_yaw_span(&every), model_yaw_span(&until));
        println!(
            "{name}: fr_pose calls every {n_every} / until-span {n_until} / first {n_first}; \
             span {s_every:.1} / {s_until:.1}; best frame {} / {} / {}",
            every.best, until.best, first.best
        );
        assert_eq!(n_every as usize, frames.len(), "{name}");
        assert_eq!(n_first, 1, "{name}");
        // The turn-the-head decision is the same.
        assert_eq!(s_every >= span, s_until >= span, "{name}");
        // Where the model ran, it gave the same pose as on every frame.
        for (a, b) in every
            .frames
            .iter()
            .zip(&until.frames)
            .chain(every.frames.iter().zip(&first.frames))
        {
            let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
            assert!(a.pose_model);
            if b.pose_model {
                assert_eq!([a.yaw, a.pitch, a.roll], [b.yaw, b.pitch, b.roll], "{name}");
            }
            assert_eq!(a.landmarks68, b.landmarks68, "{name}");
            assert_eq!(
                [a.left_eye_open, a.right_eye_open],
                [b.left_eye_open, b.right_eye_open]
            );
        }
        // The judge (landmark yaw, the model's pitch) decides every sequence
        // without a nod the same with the model on the first frame only.
        let (je, jf) = (judge_cues(&every), judge_cues(&first));
        for a in Action::ALL.into_iter().filter(|&a| a != Action::Nod) {
            for b in Action::ALL
                .into_iter()
                .filter(|&b| b != Action::Nod && b != a)
            {
                for seq in [vec![a], vec![a, b]] {
                    assert_eq!(PoseFrames::for_actions(&seq), PoseFrames::First);
                    assert_eq!(judge(&seq, &je), judge(&seq, &jf), "{name} {seq:?}");
                }
            }
        }
        assert_eq!(PoseFrames::for_actions(&[Action::Nod]), PoseFrames::Every);
        // Embedding and liveness: on the same frames, the same values.
        for c in [&until, &first] {
            assert_eq!(c.first, every.first, "{name}");
            if c.best == every.best {
                assert_eq!(c.best_face.liveness, every.best_face.liveness, "{name}");
                let s = compare(
                    c.best_face.embedding.as_ref().unwrap(),
                    every.best_face.embedding.as_ref().unwrap(),
                );
                assert!(s > 0.99999, "{name}: {s}");
            }
        }
    }
}

/// `img` moved right by `dx` and down by `dy` pixels (dark grey where it uncovers).
fn shifted(img: &RgbImage, dx: u32, dy: u32) -> RgbImage {
    let mut out = RgbImage::from_pixel(img.width(), img.height(), image::Rgb([40, 40, 40]));
    image::imageops::overlay(&mut out, img, dx as i64, dy as i64);
    out
}

/// `frames` as the kiosk's camera sends them: letterboxed onto 640×480 (the
/// e2e canvas) and through JPEG at quality 90.
fn as_camera(frames: &[RgbImage]) -> Vec<RgbImage> {
    frames
        .iter()
        .map(|f| {
            let img = facegate_vision::challenge::clip::letterbox(f, 640, 480);
            let mut jpg = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 90)
                .encode_image(&img)
                .unwrap();
            facegate_vision::decode(&jpg, &Default::default()).unwrap()
        })
        .collect()
}

#[test]
fn detector_tracking_decides_the_same_with_fewer_detector_calls() {
    use facegate_vision::challenge::judge;
    let _serial = serial();
    let mut clips = turning_clips();
    let camera: Vec<_> = clips
        .iter()
        .map(|(name, f)| (format!("{name} (e2e canvas)"), as_camera(f)))
        .collect();
    clips.extend(camera);
    // What a camera sends between poses: each frame held for two more,
    // moved by a few pixels (the tracker follows the face there).
    let held: Vec<_> = clips
        .iter()
        .map(|(name, f)| {
            let frames = f
                .iter()
                .flat_map(|img| [img.clone(), shifted(img, 6, 3), shifted(img, 11, 5)])
                .take(8)
                .collect::<Vec<_>>();
            (format!("{name} (held, moving)"), frames)
        })
        .collect();
    clips.extend(held);
    let detector_calls = || {
        engine()
            .model_calls_by_model()
            .into_iter()
            .find(|(m, _)| *m == "fr_detect.onnx")
            .unwrap()
            .1
    };
    let sequences = one_and_two_action_sequences();
    let (mut with_total, mut without_total) = (0, 0);
    for (name, frames) in &clips {
        for pose in [PoseFrames::Every, PoseFrames::First] {
            let run = |track: bool| {
                let opts = CaptureOptions {
                    pose,
                    track,
                    ..Default::default()
                };
                let before = detector_calls();
                let (r, n) = calls(|| {
                    engine()
                        .challenge(frames, &opts, &Budget::unlimited())
                        .unwrap()
                });
                let CaptureResult::Captured(c) = r else {
                    panic!("{name}: {r:?}")
                };
                (c, n, detector_calls() - before)
            };
            let (with, n_with, d_with) = run(true);
            let (without, n_without, d_without) = run(false);
            println!(
                "{name} {pose:?}: model calls {n_without} → {n_with}, detector {d_without} → {d_with}; \
                 best {} / {}",
                without.best, with.best
            );
            with_total += n_with;
            without_total += n_without;
            assert!(d_with <= d_without, "{name}");
            // At most two landmark calls more for each frame the tracker
            // tried (the photos jump: it gives up and the detector runs).
            let tried = frames.len().saturating_sub(2) as u64;
            assert!(
                n_with <= n_without + 2 * tried,
                "{name}: {n_with} > {n_without} calls"
            );
            let close = |a: &facegate_vision::Face, b: &facegate_vision::Face| {
                let (ea, eb) = (a.embedding.as_ref().unwrap(), b.embedding.as_ref().unwrap());
                assert!(
                    ea.as_slice()
                        .iter()
                        .zip(eb.as_slice())
                        .all(|(x, y)| (x - y).abs() <= 1e-5),
                    "{name}: embedding"
                );
                if with.best == without.best {
                    match (a.liveness, b.liveness) {
                        (Some(x), Some(y)) => {
                            assert!((x - y).abs() <= 1e-5, "{name}: {x} vs {y}")
                        }
                        (x, y) => assert_eq!(x, y, "{name}"),
                    }
                }
            };
            let held = name.contains("held");
            if held {
                assert!(d_with < d_without, "{name}: tracking never held");
            }
            // The same frames are anchored and embedded, with the same
            // results. (A held pose gives near-equal frames: the best may be
            // another of them, by the tracked frames' cues, which come from
            // another crop; the decisions must still be the same.)
            assert_eq!(with.first, without.first, "{name}");
            if held && with.best != without.best {
                let s = compare(
                    with.best_face.embedding.as_ref().unwrap(),
                    without.best_face.embedding.as_ref().unwrap(),
                );
                println!("  another held frame embedded: similarity {s}");
                assert!(s >= facegate_vision::DEFAULT_THRESHOLD, "{name}: {s}");
                assert_eq!(
                    with.best_face
                        .liveness
                        .map(|l| l >= facegate_vision::LIVENESS_THRESHOLD),
                    without
                        .best_face
                        .liveness
                        .map(|l| l >= facegate_vision::LIVENESS_THRESHOLD),
                    "{name}"
                );
            } else {
                assert_eq!(with.best, without.best, "{name}");
                close(&with.best_face, &without.best_face);
            }
            close(&with.first_face, &without.first_face);
            assert_eq!(
                with.similarity >= facegate_vision::DEFAULT_THRESHOLD,
                without.similarity >= facegate_vision::DEFAULT_THRESHOLD,
                "{name}"
            );
            assert_eq!(with.frames.len(), without.frames.len());
            assert!(
                with.frames
                    .iter()
                    .zip(&without.frames)
                    .all(|(a, b)| a.is_some() == b.is_some()),
                "{name}: the same frames have a face"
            );
            // The judge decides every sequence the same (a nod only where
            // the pose model ran on every frame, as the server runs it).
            let (jw, jo) = (judge_cues(&with), judge_cues(&without));
            for seq in &sequences {
                if PoseFrames::for_actions(seq) == pose {
                    assert_eq!(judge(seq, &jw), judge(seq, &jo), "{name} {seq:?}");
                }
            }
        }
    }
    println!("all clips: {without_total} model calls without tracking, {with_total} with");
}

/// With tracking on, a second person is caught on every frame the detector
/// sees: the first, the last, and any frame where tracking stops (here a
/// frame of another size). A second face on a tracked middle frame of the
/// same size is not looked for by design (the embedded frame is always
/// detected again); this test does not claim otherwise.
#[test]
fn with_tracking_a_second_person_on_a_detector_frame_is_caught() {
    let _serial = serial();
    let a = image("obama.jpg");
    let two = two_people();
    let m = image::imageops::flip_horizontal(&a);
    // A second person on the last frame; on the first; on a middle frame
    // (another picture size: tracking stops, the detector runs).
    for frames in [
        vec![a.clone(), a.clone(), a.clone(), two.clone()],
        vec![two.clone(), a.clone(), a.clone()],
        vec![m.clone(), m.clone(), two.clone(), m.clone(), m.clone()],
        vec![m.clone(), two.clone(), m.clone()],
    ] {
        let r = engine()
            .challenge(&frames, &CaptureOptions::default(), &Budget::unlimited())
            .unwrap();
        assert!(matches!(r, CaptureResult::SeveralFaces { .. }), "{r:?}");
    }
}

/// `img` darkened to 7 % (a camera's exposure dropping for a frame): the
/// landmark tracker still follows the face there, the detector finds none.
fn darkened(img: &RgbImage) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = (*c as f32 * 0.07) as u8;
        }
    }
    out
}

/// `img` with a second person (biden.jpg's face, about 110 px) at its lower left.
fn with_second_person(img: &RgbImage) -> RgbImage {
    let other = as_camera(&[image("biden.jpg")]).remove(0);
    let face = image::imageops::crop_imm(&other, 270, 10, 140, 150).to_image();
    let face = image::imageops::resize(&face, 168, 180, image::imageops::FilterType::Triangle);
    let mut out = img.clone();
    image::imageops::replace(&mut out, &face, 20, 260);
    out
}

/// A track lost mid-way (the detector does not confirm the tracked face on
/// the embedded frame: a frame too dark for it, through which the landmark
/// tracker held on) is re-detected from the frame where it was lost, not
/// the whole challenge again: the same decision as without tracking, with
/// fewer detector runs (full frame analyses) than without tracking, so
/// fewer than re-running the challenge. A second person on a tracked frame
/// that the re-detection walks over is seen, and a face swapped in after
/// the lost frame still fails the same-person check.
#[test]
fn a_track_lost_mid_way_is_re_detected_from_there_only() {
    use facegate_vision::challenge::judge;
    let _serial = serial();
    let detector_calls = || {
        engine()
            .model_calls_by_model()
            .into_iter()
            .find(|(m, _)| *m == "fr_detect.onnx")
            .unwrap()
            .1
    };
    let run = |frames: &[RgbImage], track: bool| {
        let opts = CaptureOptions {
            pose: PoseFrames::Every,
            track,
            ..Default::default()
        };
        let before = detector_calls();
        let (r, n) = calls(|| {
            engine()
                .challenge(frames, &opts, &Budget::unlimited())
                .unwrap()
        });
        (r, n, detector_calls() - before)
    };
    let sequences = one_and_two_action_sequences();
    let other = as_camera(&[image("astronaut.png")]).remove(0);
    let mut lost_seen = 0;
    for name in ["obama.jpg", "obama2.jpg", "obama3.jpg"] {
        let base = as_camera(&[image(name)]).remove(0);
        // Eight frames of a camera following a face that drifts by 3 px a
        // frame; the third is too dark for the detector.
        let at = |k: u32| shifted(&base, 3 * k, k);
        let lost: Vec<RgbImage> = (0..8)
            .map(|k| if k == 2 { darkened(&at(k)) } else { at(k) })
            .collect();
        let (with, n_with, d_with) = run(&lost, true);
        let (without, n_without, d_without) = run(&lost, false);
        let (CaptureResult::Captured(with), CaptureResult::Captured(without)) = (with, without)
        else {
            panic!("{name}: both capture")
        };
        println!(
            "{name}, track lost: detector {d_without} → {d_with} (a re-run of the whole \
             challenge: more than {}), model calls {n_without} → {n_with}, lost at {:?}",
            lost.len(),
            with.lost
        );
        if !with.lost.is_empty() {
            lost_seen += 1;
            assert_eq!(with.lost, [2], "{name}: lost where the frame is dark");
        }
        assert!(d_with < d_without, "{name}: {d_with} ≥ {d_without}");
        assert_eq!(with.first, without.first, "{name}");
        assert_eq!(with.best, without.best, "{name}");
        for (a, b) in [
            (&with.first_face, &without.first_face),
            (&with.best_face, &without.best_face),
        ] {
            let (ea, eb) = (a.embedding.as_ref().unwrap(), b.embedding.as_ref().unwrap());
            assert!(
                ea.as_slice()
                    .iter()
                    .zip(eb.as_slice())
                    .all(|(x, y)| (x - y).abs() <= 1e-5),
                "{name}: embedding"
            );
            match (a.liveness, b.liveness) {
                (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-5, "{name}: {x} vs {y}"),
                (x, y) => assert_eq!(x, y, "{name}"),
            }
        }
        assert!(
            with.frames
                .iter()
                .zip(&without.frames)
                .all(|(a, b)| a.is_some() == b.is_some()),
            "{name}: the same frames have a face (none on the dark one)"
        );
        assert!(with.frames[2].is_none(), "{name}");
        let (jw, jo) = (judge_cues(&with), judge_cues(&without));
        for seq in &sequences {
            assert_eq!(judge(seq, &jw), judge(seq, &jo), "{name} {seq:?}");
        }

        // A second person on a tracked frame before the lost one: the
        // detector checks that frame on its way to the lost one.
        let mut second = lost.clone();
        second[1] = with_second_person(&second[1]);
        for track in [true, false] {
            let (r, _, _) = run(&second, track);
            assert!(
                matches!(r, CaptureResult::SeveralFaces { frame: 1, .. }),
                "{name} track {track}: {r:?}"
            );
        }

        // Another person from the frame after the lost one on: the
        // decision (not the same person) is the one without tracking.
        let swapped: Vec<RgbImage> = (0..8)
            .map(|k| match k {
                2 => darkened(&at(k)),
                k if k > 2 => shifted(&other, 3 * k, k),
                k => at(k),
            })
            .collect();
        let (with, _, _) = run(&swapped, true);
        let (without, _, _) = run(&swapped, false);
        let (CaptureResult::Captured(with), CaptureResult::Captured(without)) = (with, without)
        else {
            panic!("{name}: both capture")
        };
        let same =
            |c: &facegate_vision::Captured| c.similarity >= facegate_vision::DEFAULT_THRESHOLD;
        println!(
            "{name}, swapped after the lost frame: best {} / {}, similarity {} / {}",
            with.best, without.best, with.similarity, without.similarity
        );
        assert_eq!(same(&with), same(&without), "{name}");
        if with.best > 2 {
            assert!(
                !same(&with),
                "{name}: the other person is embedded and refused"
            );
        }
    }
    assert!(
        lost_seen >= 2,
        "the dark frame lost the track in {lost_seen} of 3"
    );
}

/// One rule decides whether two boxes are one face, on consecutive frames
/// and between the tracker's and the detector's box: IoU ≥ 0.3
/// ([`facegate_vision::SAME_FACE_IOU`]). One face moving as far as the
/// tracker allows in a frame passes; two real people side by side do not.
#[test]
fn same_face_is_one_rule() {
    use facegate_vision::{same_face, BBox, SAME_FACE_IOU};
    let _serial = serial();
    let sq = |cx: f32, cy: f32, side: f32| BBox {
        x1: cx - side / 2.0,
        y1: cy - side / 2.0,
        x2: cx + side / 2.0,
        y2: cy + side / 2.0,
    };
    let a = sq(100.0, 100.0, 100.0);
    // The tracker's largest step: 0.15 of a side diagonally, 10 % larger.
    let d = 15.0 / 2f32.sqrt();
    assert!(same_face(&a, &sq(100.0 + d, 100.0 + d, 110.0)));
    // A person at a gate moving half a side between sparse frames.
    assert!(same_face(&a, &sq(150.0, 100.0, 100.0)));
    // Two heads touching: centres 0.8 of a side apart (IoU 0.11).
    assert!(!same_face(&a, &sq(180.0, 100.0, 100.0)));
    assert!(SAME_FACE_IOU > sq(0.0, 0.0, 1.0).iou(&sq(0.8, 0.0, 1.0)));
    // Real faces: the two people of a photo are not one face; one face
    // detected, moved by 6 px and detected again is.
    let two = two_people();
    let dets = engine().detect(&two).unwrap();
    assert_eq!(dets.len(), 2);
    assert!(!same_face(&dets[0].bbox, &dets[1].bbox));
    let one = as_camera(&[image("obama.jpg")]).remove(0);
    let (b0, b1) = (
        engine().detect(&one).unwrap()[0].bbox,
        engine().detect(&shifted(&one, 6, 3)).unwrap()[0].bbox,
    );
    assert!(same_face(&b0, &b1), "{}", b0.iou(&b1));
}

/// The cues the judge reads, from every frame a capture kept.
fn judge_cues(c: &facegate_vision::Captured) -> Vec<facegate_vision::challenge::FrameCues> {
    c.frames
        .iter()
        .flatten()
        .map(|f| {
            facegate_vision::challenge::FrameCues::from_parts(
                &f.landmarks68,
                f.pitch,
                [f.left_eye_open, f.right_eye_open],
            )
            .unwrap()
        })
        .collect()
}

/// Every challenge of one action, and of two different actions in order.
fn one_and_two_action_sequences() -> Vec<Vec<facegate_vision::challenge::Action>> {
    use facegate_vision::challenge::Action;
    let mut sequences: Vec<Vec<Action>> = Vec::new();
    for a in Action::ALL {
        sequences.push(vec![a]);
        for b in Action::ALL.into_iter().filter(|&b| b != a) {
            sequences.push(vec![a, b]);
        }
    }
    sequences
}

/// With the other embeddings deferred, a face carries their inputs and no
/// embedding, costs no call of those models, and `other_embeddings` later
/// gives exactly what the engine computes at once: for a single frame and
/// for the best frame of a challenge.
#[test]
fn deferred_other_embeddings_are_the_eager_ones_and_cost_nothing_until_asked() {
    let _serial = serial(); // it calls the shared engine once
    let both = |defer| {
        Engine::new(facegate_vision::EngineOptions {
            second_embedding: true,
            third_embedding: true,
            defer_other_embeddings: defer,
            pose: false,
            eyes: false,
            ..Default::default()
        })
        .expect("engine loads")
    };
    let (eager, lazy) = (both(false), both(true));
    assert_eq!(
        (eager.other_models(), lazy.other_models()),
        ((true, true), (true, true))
    );
    assert_eq!(engine().other_models(), (false, false));
    let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x == y);
    let check = |e: &facegate_vision::Face, l: &facegate_vision::Face, name: &str| {
        assert!(
            e.deferred.is_none() && e.second_embedding.is_some(),
            "{name}"
        );
        assert!(
            l.deferred.is_some() && l.second_embedding.is_none(),
            "{name}"
        );
        assert!(l.third_embedding.is_none(), "{name}");
        let before = lazy.model_calls();
        let o = lazy.other_embeddings(l).unwrap();
        let (s, t) = (o.second.unwrap(), o.third.unwrap());
        assert_eq!(
            lazy.model_calls() - before,
            2,
            "{name}: the two models, once each"
        );
        let o = eager.other_embeddings(e).unwrap();
        let (es, et) = (o.second.unwrap(), o.third.unwrap());
        assert!(same(s.as_slice(), es.as_slice()), "{name}: second");
        assert!(same(t.as_slice(), et.as_slice()), "{name}: third");
        // A face found by an engine without the models has none.
        assert!(format!("{:?}", l.deferred).contains("redacted"));
    };
    for name in ["obama.jpg", "biden.jpg", "astronaut.png"] {
        let img = image(name);
        let one = |e: &Engine| {
            let before = e.model_calls();
            let f = e
                .one_face_with(&img, &OneFaceOptions::VERIFY, &Budget::unlimited())
                .unwrap();
            let OneFace::One(f) = f else {
                panic!("{name}: one face expected")
            };
            (f, e.model_calls() - before)
        };
        let ((fe, ne), (fl, nl)) = (one(&eager), one(&lazy));
        assert_eq!(ne, nl + 2, "{name}: deferring saves the two model calls");
        check(&fe, &fl, name);
    }
    for (name, frames) in turning_clips().into_iter().take(2) {
        let opts = CaptureOptions::default();
        let run = |e: &Engine| match e.challenge(&frames, &opts, &Budget::unlimited()).unwrap() {
            CaptureResult::Captured(c) => c,
            other => panic!("{name}: {other:?}"),
        };
        let (ce, cl) = (run(&eager), run(&lazy));
        assert_eq!(ce.best, cl.best, "{name}");
        check(&ce.best_face, &cl.best_face, &name);
    }
    let no_models = engine()
        .one_face_with(
            &image("obama.jpg"),
            &OneFaceOptions::VERIFY,
            &Budget::unlimited(),
        )
        .unwrap();
    let OneFace::One(f) = no_models else { panic!() };
    let o = engine().other_embeddings(&f).unwrap();
    assert!(o.second.is_none() && o.third.is_none());
    // The pair alone: only dlib's chip is kept, only its model runs.
    let pair = Engine::new(facegate_vision::EngineOptions {
        second_embedding: true,
        defer_other_embeddings: true,
        pose: false,
        eyes: false,
        ..Default::default()
    })
    .unwrap();
    let OneFace::One(f) = pair
        .one_face_with(
            &image("obama.jpg"),
            &OneFaceOptions::VERIFY,
            &Budget::unlimited(),
        )
        .unwrap()
    else {
        panic!()
    };
    let before = pair.model_calls();
    let o = pair.other_embeddings(&f).unwrap();
    assert!(o.second.is_some() && o.third.is_none());
    assert_eq!(pair.model_calls() - before, 1);
}
