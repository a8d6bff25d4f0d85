//! Gallery behaviour on synthetic embeddings (random unit vectors in 512-d).

use facegate_gallery::*;
use rand::{Rng, SeedableRng};

const DIM: usize = 512;
const MODEL: &str = "synthetic-model";

fn unit(rng: &mut impl Rng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

/// A probe near `v`: `v` plus noise, so cos ≈ 0.7.
fn near(v: &[f32], rng: &mut impl Rng) -> Vec<f32> {
    let noise = unit(rng);
    v.iter().zip(&noise).map(|(a, b)| a + b).collect()
}

/// Calibration measured on impostor pairs of the same synthetic distribution.
fn synthetic_calibration() -> Calibration {
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let vs: Vec<Vec<f32>> = (0..700).map(|_| unit(&mut rng)).collect();
    let mut scores = vec![];
    for i in 0..vs.len() {
        for j in i + 1..vs.len() {
            scores.push(vs[i].iter().zip(&vs[j]).map(|(a, b)| a * b).sum());
        }
    }
    Calibration::from_impostor_scores(MODEL, &mut scores, "synthetic test").unwrap()
}

fn gallery(enc: Encoding, n: usize, seed: u64) -> (Gallery, Vec<(PersonId, TemplateId, Vec<f32>)>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let scenario = ScenarioId::new();
    let opts = GalleryOptions {
        encoding: enc,
        ..Default::default()
    };
    let mut g = Gallery::new(scenario, MODEL, DIM, synthetic_calibration(), opts).unwrap();
    let mut people = vec![];
    for _ in 0..n {
        let p = PersonId::new();
        let v = unit(&mut rng);
        let t = Template::new(p, scenario, MODEL, &v, enc).unwrap();
        g.add(&t).unwrap();
        people.push((p, t.id, v));
    }
    (g, people)
}

#[test]
fn identify_returns_unknown_for_a_vector_far_from_everyone() {
    let (g, people) = gallery(Encoding::Int8, 2000, 1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    // A stranger: a fresh random direction.
    let stranger = unit(&mut rng);
    let r = g.identify(&stranger, 5).unwrap();
    assert_eq!(r.decision, Decision::Unknown, "{r:?}");
    assert_eq!(r.candidates.len(), 5, "candidates are still listed");
    // The opposite of an enrolled person is as far as it gets.
    let opposite: Vec<f32> = people[0].2.iter().map(|x| -x).collect();
    assert_eq!(
        g.identify(&opposite, 1).unwrap().decision,
        Decision::Unknown
    );
    // An enrolled person's noisy probe is known.
    let (p, _, v) = &people[7];
    let r = g.identify(&near(v, &mut rng), 5).unwrap();
    match r.decision {
        Decision::Known { person, score } => {
            assert_eq!(person, *p);
            assert!(score > r.threshold);
        }
        Decision::Unknown => panic!("enrolled person not recognised: {r:?}"),
    }
}

#[test]
fn threshold_tightens_with_gallery_size() {
    let (small, _) = gallery(Encoding::Int8, 10, 2);
    let (large, _) = gallery(Encoding::Int8, 3000, 3);
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let probe = unit(&mut rng);
    let a = small.identify(&probe, 1).unwrap();
    let b = large.identify(&probe, 1).unwrap();
    assert!(
        b.threshold > a.threshold,
        "{} vs {}",
        b.threshold,
        a.threshold
    );
    assert!(b.fmr < a.fmr);
}

#[test]
fn verify_fuses_all_templates_of_a_person() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut g, people) = gallery(Encoding::F32, 50, 4);
    let (p, _, v) = people[3].clone();
    // A second template of the same person, closer to the probe.
    let probe = near(&v, &mut rng);
    let t2 = Template::new(
        p,
        g.scenario(),
        MODEL,
        &near(&probe, &mut rng),
        Encoding::F32,
    )
    .unwrap();
    g.add(&t2).unwrap();
    assert_eq!(g.templates_of(p).len(), 2);
    let m = g.verify(p, &probe).unwrap();
    assert!(m.accepted, "{m:?}");
    assert_eq!(m.templates_compared, 2);
    // Someone else's probe is rejected.
    let other = near(&people[4].2, &mut rng);
    assert!(!g.verify(p, &other).unwrap().accepted);
    // Unknown person is an error, not a rejection.
    assert!(matches!(
        g.verify(PersonId::new(), &probe),
        Err(Error::UnknownPerson(_))
    ));
}

#[test]
fn int8_search_agrees_with_f32_and_batch_agrees_with_single() {
    let (gi, people) = gallery(Encoding::Int8, 3000, 8);
    let (mut gf, _) = gallery(Encoding::F32, 0, 8);
    // Same templates in an f32 gallery of the same scenario.
    let mut gf2 = Gallery::new(
        gi.scenario(),
        MODEL,
        DIM,
        synthetic_calibration(),
        GalleryOptions {
            encoding: Encoding::F32,
            ..Default::default()
        },
    )
    .unwrap();
    for (p, id, v) in &people {
        let mut t = Template::new(*p, gi.scenario(), MODEL, v, Encoding::F32).unwrap();
        t.id = *id;
        gf2.add(&t).unwrap();
    }
    std::mem::swap(&mut gf, &mut gf2);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let probes: Vec<Vec<f32>> = (0..70).map(|i| near(&people[i * 13].2, &mut rng)).collect();
    let flat: Vec<f32> = probes.concat();
    let bi = gi.search_batch(&flat, 3).unwrap();
    let bf = gf.search_batch(&flat, 3).unwrap();
    for (i, p) in probes.iter().enumerate() {
        let si = gi.search_with(p, 3, Search::Exact).unwrap();
        let sf = gf.search_with(p, 3, Search::Exact).unwrap();
        assert_eq!(si[0].template, people[i * 13].1);
        assert_eq!(sf[0].template, people[i * 13].1);
        assert!(
            (si[0].score - sf[0].score).abs() < 0.01,
            "{} vs {}",
            si[0].score,
            sf[0].score
        );
        assert_eq!(bi[i], si, "int8 batch = single");
        for (a, b) in bf[i].iter().zip(&sf) {
            assert_eq!(a.template, b.template);
            assert!((a.score - b.score).abs() < 1e-4);
        }
    }
}

#[test]
fn scalar_kernel_gives_the_same_gallery_answers() {
    let (g, people) = gallery(Encoding::Int8, 500, 10);
    let mut scalar = Gallery::new(
        g.scenario(),
        MODEL,
        DIM,
        synthetic_calibration(),
        GalleryOptions {
            kernel: kernels::KernelKind::Scalar,
            ..Default::default()
        },
    )
    .unwrap();
    for id in g.template_ids() {
        scalar.add(&g.template(id).unwrap()).unwrap();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for person in people.iter().take(20) {
        let p = near(&person.2, &mut rng);
        assert_eq!(
            g.search_with(&p, 5, Search::Exact).unwrap(),
            scalar.search_with(&p, 5, Search::Exact).unwrap()
        );
    }
}

#[test]
fn add_and_remove_without_rebuild() {
    let (mut g, people) = gallery(Encoding::Int8, 1000, 12);
    g.build_ann(HnswParams::default());
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let (p, id, v) = people[10].clone();
    let probe = near(&v, &mut rng);
    assert_eq!(g.search(&probe, 1).unwrap()[0].template, id);
    assert!(g.remove(id));
    assert!(!g.remove(id));
    assert!(!g.contains(id));
    assert_eq!(g.len(), 999);
    for how in [Search::Exact, Search::Auto] {
        let r = g.search_with(&probe, 5, how).unwrap();
        assert!(
            r.iter().all(|c| c.template != id && c.person != p),
            "{how:?}"
        );
    }
    assert_eq!(g.identify(&probe, 1).unwrap().decision, Decision::Unknown);
    // Added later: found by exact and by the HNSW graph.
    let newp = PersonId::new();
    let nv = unit(&mut rng);
    let t = Template::new(newp, g.scenario(), MODEL, &nv, Encoding::Int8).unwrap();
    g.add(&t).unwrap();
    assert!(matches!(g.add(&t), Err(Error::DuplicateTemplate(_))));
    let q = near(&nv, &mut rng);
    assert_eq!(g.search_with(&q, 1, Search::Exact).unwrap()[0].person, newp);
    assert_eq!(g.search(&q, 1).unwrap()[0].person, newp);
    assert_eq!(g.remove_person(newp), 1);
    assert_eq!(g.people(), 999);
}

#[test]
fn hnsw_recall_matches_exact() {
    let (mut g, people) = gallery(Encoding::Int8, 5000, 14);
    g.build_ann(HnswParams::default());
    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
    let mut hits = 0;
    for i in 0..200 {
        let p = near(&people[i * 25].2, &mut rng);
        let exact = g.search_with(&p, 1, Search::Exact).unwrap();
        let ann = g.search_with(&p, 1, Search::Ann { ef: 64 }).unwrap();
        hits += (exact[0].template == ann[0].template) as usize;
    }
    assert!(hits >= 196, "recall@1 {hits}/200");
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let (mut g, _) = gallery(Encoding::Int8, 10, 16);
    assert!(matches!(
        g.identify(&[0.0; 10], 1),
        Err(Error::DimensionMismatch {
            expected: 512,
            got: 10
        })
    ));
    assert!(matches!(
        g.identify(&[0.0; DIM], 1),
        Err(Error::InvalidVector(_))
    ));
    let mut nan = vec![0.1; DIM];
    nan[3] = f32::NAN;
    assert!(matches!(g.search(&nan, 1), Err(Error::InvalidVector(_))));
    let other = Template::new(
        PersonId::new(),
        ScenarioId::new(),
        MODEL,
        &[0.1; DIM],
        Encoding::Int8,
    )
    .unwrap();
    assert!(matches!(g.add(&other), Err(Error::ScenarioMismatch)));
    let wrong_model = Template::new(
        PersonId::new(),
        g.scenario(),
        "other",
        &[0.1; DIM],
        Encoding::Int8,
    )
    .unwrap();
    assert!(matches!(
        g.add(&wrong_model),
        Err(Error::ModelMismatch { .. })
    ));
    assert_eq!(g.len(), 10, "refusals lose nothing");
}

#[test]
fn gallery_and_keyring_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Gallery>();
    shared::<Keyring>();
    shared::<Calibration>();
}

/// The int8 exact scan skips rows by an upper bound from the high nibble plane; it must
/// return exactly what a full int8 scan returns (scores and templates), for top-1 and
/// for larger k, with removed slots, several templates per person, and probes both near
/// an enrolled vector and far from everyone.
#[test]
fn pruned_int8_scan_equals_a_full_int8_scan() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    let scenario = ScenarioId::new();
    for kernel in [kernels::detected(), kernels::KernelKind::Scalar] {
        let opts = GalleryOptions {
            kernel,
            ..Default::default()
        };
        let mut g = Gallery::new(scenario, MODEL, DIM, synthetic_calibration(), opts).unwrap();
        let n = 6000;
        let vs = synthetic::face_like_vectors(n, DIM, 64, 5);
        let mut ids = vec![];
        let mut person = PersonId::new();
        for (i, v) in vs.chunks_exact(DIM).enumerate() {
            if i % 3 == 0 {
                person = PersonId::new();
            }
            let t = Template::new(person, scenario, MODEL, v, Encoding::Int8).unwrap();
            g.add(&t).unwrap();
            ids.push(t.id);
        }
        for id in ids.iter().step_by(7) {
            assert!(g.remove(*id));
        }
        // Brute force over the stored int8 vectors.
        let stored: Vec<(TemplateId, PersonId, f32, Vec<i8>)> = g
            .template_ids()
            .into_iter()
            .map(|id| {
                let t = g.template(id).unwrap();
                match &t.vector {
                    Vector::Int8 { scale, data } => (id, t.person, *scale, data.clone()),
                    Vector::F32(_) => unreachable!(),
                }
            })
            .collect();
        for case in 0..24 {
            let probe = if case % 3 == 2 {
                unit(&mut rng)
            } else {
                let i = rng.gen_range(0..n);
                near(&vs[i * DIM..(i + 1) * DIM], &mut rng)
            };
            let pt =
                Template::new(PersonId::new(), scenario, MODEL, &probe, Encoding::Int8).unwrap();
            let (qs, q) = match &pt.vector {
                Vector::Int8 { scale, data } => (*scale, data.clone()),
                Vector::F32(_) => unreachable!(),
            };
            let mut all: Vec<(f32, TemplateId, PersonId)> = stored
                .iter()
                .map(|(id, p, s, x)| {
                    let dot: i32 = q.iter().zip(x).map(|(&a, &b)| a as i32 * b as i32).sum();
                    (dot as f32 * qs * s, *id, *p)
                })
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0));
            for k in [1usize, 3, 10, 50] {
                let got = g.search_with(&probe, k, Search::Exact).unwrap();
                let want: Vec<f32> = all.iter().take(k).map(|a| a.0).collect();
                let got_scores: Vec<f32> = got.iter().map(|c| c.score).collect();
                assert_eq!(got_scores, want, "{kernel:?} case {case} k {k}");
                for c in &got {
                    let hit = all.iter().find(|a| a.1 == c.template).unwrap();
                    assert_eq!(hit.0, c.score);
                }
                // By person: the best template of each of the k best people.
                let mut best: Vec<(f32, PersonId)> = vec![];
                for a in &all {
                    if !best.iter().any(|b| b.1 == a.2) {
                        best.push((a.0, a.2));
                    }
                    if best.len() == k {
                        break;
                    }
                }
                let id = g.identify(&probe, k).unwrap();
                let got: Vec<(f32, PersonId)> =
                    id.candidates.iter().map(|c| (c.score, c.person)).collect();
                assert_eq!(
                    got.iter().map(|g| g.0).collect::<Vec<_>>(),
                    best.iter().map(|b| b.0).collect::<Vec<_>>(),
                    "{kernel:?} identify case {case} k {k}"
                );
            }
        }
    }
}
