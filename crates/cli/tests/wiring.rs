//! Cross-crate invariants the leaf crates cannot check on their own.

/// The embedded impostor-score table was computed with one feature pipeline;
/// thresholds are meaningless for another. When vision's MODEL_ID changes,
/// regenerate it: `facegate bench calibrate --images ../shared/eval/lfw-view1
/// --pairs pairsDevTrain.txt`.
#[test]
fn gallery_calibration_matches_the_vision_model() {
    let cal = facegate_gallery::Calibration::builtin().expect("embedded calibration parses");
    assert_eq!(
        cal.model_id(),
        facegate_vision::MODEL_ID,
        "the embedded calibration is for another feature pipeline: regenerate it"
    );
    // Stricter false-match rates must need higher similarity.
    let (t3, t4, t5) = (
        cal.threshold(1e-3),
        cal.threshold(1e-4),
        cal.threshold(1e-5),
    );
    assert!(
        t3 < t4 && t4 < t5,
        "thresholds not monotone: {t3} {t4} {t5}"
    );
    assert!(facegate_vision::DEFAULT_THRESHOLD > 0.0 && facegate_vision::DEFAULT_THRESHOLD < t5);
}

/// The second model's and the fused score's tables, and the fusion weights,
/// belong to the vision crate's model ids. Regenerate with `facegate bench lfw
/// --calibrate pairsDevTrain.txt --write-fusion crates/gallery/data/fusion.txt`,
/// then `facegate bench calibrate --model second` and `--model fused`.
#[test]
fn fused_calibration_and_fusion_match_the_vision_models() {
    let fusion = facegate_gallery::Fusion::builtin().expect("embedded fusion parses");
    assert_eq!(fusion.model_id, facegate_vision::FUSED_MODEL_ID);
    for id in [
        facegate_vision::SECOND_MODEL_ID,
        facegate_vision::FUSED_MODEL_ID,
    ] {
        let cal = facegate_gallery::Calibration::builtin_for(id).expect("embedded table");
        let (t3, t4, t5) = (
            cal.threshold(1e-3),
            cal.threshold(1e-4),
            cal.threshold(1e-5),
        );
        assert!(t3 < t4 && t4 < t5, "{id}: not monotone: {t3} {t4} {t5}");
    }
}

/// The three-model fusion's weights and its 1:1 table belong to the vision crate's
/// model ids (first + second + third). Regenerate both with `facegate bench calibrate
/// --images ../shared/eval/lfw-view1 --pairs pairsDevTrain.txt --model fused3`.
#[test]
fn three_model_fusion_and_its_calibration_match_the_vision_models() {
    let (id, fusion) = facegate_gallery::FusionN::builtin3().expect("embedded fusion3 parses");
    assert_eq!(
        id,
        format!(
            "{}+{}",
            facegate_vision::FUSED_MODEL_ID,
            facegate_vision::THIRD_MODEL_ID
        )
    );
    assert_eq!(fusion.weights.len(), 3);
    let cal = facegate_gallery::Calibration::builtin_for(&id).expect("embedded table");
    let (t3, t4, t5) = (
        cal.threshold(1e-3),
        cal.threshold(1e-4),
        cal.threshold(1e-5),
    );
    assert!(t3 < t4 && t4 < t5, "{id}: not monotone: {t3} {t4} {t5}");
}
