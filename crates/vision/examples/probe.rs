//! Prints what the engine sees in each image given on the command line.
//! Environment knobs for investigation: FG_THR (detector threshold), FG_TILES
//! (group-photo mode), FG_CANDS (list raw detections with their embedding norm).
fn main() {
    let mut o = facegate_vision::EngineOptions::default();
    if let Some(t) = std::env::var("FG_THR").ok().and_then(|v| v.parse().ok()) {
        o.det_threshold = t;
    }
    o.detect_tiles = std::env::var_os("FG_TILES").is_some_and(|v| !v.is_empty());
    let engine = facegate_vision::Engine::new(o).expect("engine");
    for p in std::env::args().skip(1) {
        let bytes = std::fs::read(&p).unwrap();
        if std::env::var_os("FG_CANDS").is_some() {
            let img = facegate_vision::decode(&bytes, &Default::default()).unwrap();
            for d in engine.detect(&img).unwrap() {
                let lm = engine.landmarks(&img, &d.bbox).unwrap();
                let al = facegate_vision::align(&img, &facegate_vision::five_points(&lm));
                let (_, n) = engine.embed_with_norm(&al).unwrap();
                println!(
                    "  cand {:.0},{:.0},{:.0},{:.0} score {:.3} norm {n:.3}",
                    d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2, d.score
                );
            }
        }
        match engine.analyze(&bytes) {
            Ok(faces) => {
                println!("{p}: {} face(s)", faces.len());
                for f in &faces {
                    println!(
                        "  box {:.0},{:.0},{:.0},{:.0} score {:.3} live {:?} q {:?}",
                        f.bbox.x1,
                        f.bbox.y1,
                        f.bbox.x2,
                        f.bbox.y2,
                        f.det_score,
                        f.liveness,
                        f.quality
                    );
                }
            }
            Err(e) => println!("{p}: error {e}"),
        }
    }
}
