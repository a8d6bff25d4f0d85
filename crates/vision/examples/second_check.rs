//! Writes each fixture face's dlib chip as PNG and prints its second embedding
//! (for a comparison with dlib's own `compute_face_descriptor` on the same
//! chip), then the median time of the chip and of the second model on one
//! ONNX Runtime thread.
//!
//! `cargo run --release -p facegate-vision --example second_check -- OUT_DIR [ITERATIONS]`
fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("output dir");
    let iterations: usize = args.next().map_or(20, |s| s.parse().expect("a count"));
    let e = facegate_vision::Engine::new(facegate_vision::EngineOptions {
        second_embedding: true,
        ..Default::default()
    })
    .unwrap();
    let mut faces = vec![];
    for name in [
        "obama.jpg",
        "obama2.jpg",
        "obama3.jpg",
        "biden.jpg",
        "astronaut.png",
    ] {
        let p = facegate_assets::fixture(name).unwrap();
        let img = facegate_vision::decode(&std::fs::read(p).unwrap(), &Default::default()).unwrap();
        for (i, d) in e.detect(&img).unwrap().iter().enumerate() {
            let lm = e.landmarks(&img, &d.bbox).unwrap();
            let chip = facegate_vision::dlib_chip(&img, &lm);
            chip.save(format!("{dir}/{name}.{i}.png")).unwrap();
            let v = e.embed_second_chip(&chip).unwrap();
            let vals: Vec<String> = v.as_slice().iter().map(|x| format!("{x:.7}")).collect();
            println!("{name}.{i}.png {}", vals.join(","));
            faces.push((img.clone(), lm));
        }
    }
    let (mut chip_ms, mut model_ms) = (vec![], vec![]);
    for _ in 0..iterations {
        for (img, lm) in &faces {
            let t = std::time::Instant::now();
            let chip = facegate_vision::dlib_chip(img, lm);
            chip_ms.push(t.elapsed().as_secs_f64() * 1e3);
            let t = std::time::Instant::now();
            e.embed_second_chip(&chip).unwrap();
            model_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    eprintln!(
        "median over {} faces × {iterations}: chip {:.2} ms, second model {:.2} ms (min {:.2})",
        faces.len(),
        median(&mut chip_ms),
        median(&mut model_ms),
        model_ms[0]
    );
}
