//! Writes each fixture face's dlib chip as PNG and prints its second embedding
//! (for a comparison with dlib's own `compute_face_descriptor` on the same chip).
fn main() {
    let dir = std::env::args().nth(1).expect("output dir");
    let e = facegate_vision::Engine::new(facegate_vision::EngineOptions {
        second_embedding: true,
        ..Default::default()
    })
    .unwrap();
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
            let t = std::time::Instant::now();
            let v = e.embed_second_chip(&chip).unwrap();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let vals: Vec<String> = v.as_slice().iter().map(|x| format!("{x:.7}")).collect();
            println!("{name}.{i}.png {ms:.2} {}", vals.join(","));
        }
    }
}
