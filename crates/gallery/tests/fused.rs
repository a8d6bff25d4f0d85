//! The fused gallery (`FusedGallery`) on synthetic embeddings with the
//! shipped three-model fusion and its tables: the fused score is the
//! fusion of the part cosines, first-model-only templates keep matching on
//! their own scale, and the re-ranked 1:N answer is the exhaustive one.

use facegate_gallery::*;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

const DIMS: [usize; 3] = [512, 128, 192];

fn spec() -> FusedSpec {
    let (fused_model_id, fusion) = FusionN::builtin3().unwrap();
    let first = Calibration::builtin().unwrap();
    FusedSpec {
        first_model_id: first.model_id().to_string(),
        first_dim: DIMS[0],
        first_calibration: first,
        fused_calibration: Calibration::builtin_for(&fused_model_id).unwrap(),
        fused_model_id,
        other_dims: DIMS[1..].to_vec(),
        fusion,
    }
}

fn unit(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn random(rng: &mut impl Rng, d: usize) -> Vec<f32> {
    unit((0..d).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
}

/// One face: a unit vector per model.
type Face = Vec<Vec<f32>>;

fn face(rng: &mut impl Rng) -> Face {
    DIMS.iter().map(|&d| random(rng, d)).collect()
}

/// Another image of the same face: each part moved by noise of weight `w`.
fn near(f: &Face, w: f32, rng: &mut impl Rng) -> Face {
    f.iter()
        .map(|p| {
            let n = random(rng, p.len());
            unit(p.iter().zip(&n).map(|(a, b)| a + w * b).collect())
        })
        .collect()
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn fused_template(p: PersonId, s: ScenarioId, spec: &FusedSpec, f: &Face) -> Template {
    let parts: Vec<&[f32]> = f.iter().map(|v| v.as_slice()).collect();
    parts_template(p, s, &spec.fused_model_id, &parts, Encoding::F32).unwrap()
}

fn probe_of(f: &Face) -> (Vec<f32>, Vec<&[f32]>) {
    (f[0].clone(), f[1..].iter().map(|v| v.as_slice()).collect())
}

#[test]
fn a_fused_verify_is_the_fusion_of_the_part_cosines_against_the_fused_table() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let spec = spec();
    let s = ScenarioId::new();
    let mut g = FusedGallery::new(s, spec.clone(), GalleryOptions::default()).unwrap();
    let (a, b) = (PersonId::new(), PersonId::new());
    let (fa, fb) = (face(&mut rng), face(&mut rng));
    g.add(&fused_template(a, s, &spec, &fa)).unwrap();
    g.add(&fused_template(b, s, &spec, &fb)).unwrap();
    assert_eq!((g.len(), g.fused_len(), g.people()), (2, 2, 2));
    for w in [0.2f32, 0.5, 0.8, 1.2, 3.0] {
        let p = near(&fa, w, &mut rng);
        let (first, others) = probe_of(&p);
        let m = g
            .verify(
                a,
                &Probe {
                    first: &first,
                    others: Some(&others),
                },
            )
            .unwrap();
        let want = spec
            .fusion
            .score(&[cos(&p[0], &fa[0]), cos(&p[1], &fa[1]), cos(&p[2], &fa[2])]);
        // The first part is searched in int8: its cosine is off by ~1e-3,
        // times the first weight (≈ 16).
        assert!(
            (m.score - want).abs() < 0.06,
            "w {w}: {} vs {want}",
            m.score
        );
        let fmr = Calibration::fmr_for_fpir(GalleryOptions::default().verify_fmr, 1);
        assert_eq!(m.threshold, spec.fused_calibration.threshold(fmr));
        assert_eq!(m.accepted, m.score > m.threshold);
    }
    // A close image of a is accepted, b's face is not.
    let close_a = near(&fa, 0.3, &mut rng);
    let (first, others) = probe_of(&close_a);
    let probe = Probe {
        first: &first,
        others: Some(&others),
    };
    assert!(g.verify(a, &probe).unwrap().accepted);
    assert!(!g.verify(b, &probe).unwrap().accepted);
    // Without the other embeddings, the same probe is scored by the first
    // model alone, on its own table.
    let m = g
        .verify(
            a,
            &Probe {
                first: &first,
                others: None,
            },
        )
        .unwrap();
    assert!(m.score <= 1.0 && m.threshold < 1.0, "{m:?}");
    // Wrong probe shapes and model ids are refused.
    let short = [&others[0][..64], others[1]];
    assert!(matches!(
        g.verify(
            a,
            &Probe {
                first: &first,
                others: Some(&short)
            }
        ),
        Err(Error::DimensionMismatch { .. })
    ));
    let alien = Template::new(a, s, "another-model", &fa[0], Encoding::F32).unwrap();
    assert!(matches!(g.add(&alien), Err(Error::ModelMismatch { .. })));
    // Removing a person wipes every part.
    assert_eq!(g.remove_person(a), 1);
    assert_eq!((g.len(), g.fused_len()), (1, 1));
    assert!(matches!(g.verify(a, &probe), Err(Error::UnknownPerson(_))));
}

#[test]
fn a_template_of_the_first_model_alone_keeps_matching_on_its_own_scale() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let spec = spec();
    let s = ScenarioId::new();
    let mut g = FusedGallery::new(s, spec.clone(), GalleryOptions::default()).unwrap();
    let (old, new) = (PersonId::new(), PersonId::new());
    let (fo, fnew) = (face(&mut rng), face(&mut rng));
    let legacy = Template::new(old, s, &spec.first_model_id, &fo[0], Encoding::Int8).unwrap();
    g.add(&legacy).unwrap();
    g.add(&fused_template(new, s, &spec, &fnew)).unwrap();
    assert!(!g.is_fused(legacy.id));
    assert_eq!((g.len(), g.fused_len()), (2, 1));
    let p = near(&fo, 0.3, &mut rng);
    let (first, others) = probe_of(&p);
    let probe = Probe {
        first: &first,
        others: Some(&others),
    };
    let m = g.verify(old, &probe).unwrap();
    assert!((m.score - cos(&p[0], &fo[0])).abs() < 0.01, "{m:?}");
    assert!(m.accepted && m.threshold < 1.0, "{m:?}");
    let id = g.identify(&probe, 5).unwrap();
    assert_eq!(
        id.decision,
        Decision::Known {
            person: old,
            score: m.score
        }
    );
    // A person with both kinds of template is answered by the stronger
    // one: a far first-model template is outweighed by a close fused one.
    let (far_person, ff) = (PersonId::new(), face(&mut rng));
    let far = near(&ff, 2.5, &mut rng);
    g.add(&Template::new(far_person, s, &spec.first_model_id, &far[0], Encoding::Int8).unwrap())
        .unwrap();
    let p = near(&ff, 0.3, &mut rng);
    let (first, others) = probe_of(&p);
    let probe = Probe {
        first: &first,
        others: Some(&others),
    };
    assert!(!g.verify(far_person, &probe).unwrap().accepted);
    g.add(&fused_template(
        far_person,
        s,
        &spec,
        &near(&ff, 0.2, &mut rng),
    ))
    .unwrap();
    let m2 = g.verify(far_person, &probe).unwrap();
    assert!(m2.accepted && m2.threshold > 1.0, "fused wins: {m2:?}");
    assert_eq!(m2.templates_compared, 2);
}

/// A deployment that switches between the pair and the three-model fusion
/// keeps every person: the other fusion's templates match by their first
/// part, on the first model's scale.
#[test]
fn another_fusions_template_is_kept_as_its_first_part() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let three = spec();
    let (pair_id, pair) = {
        let f = Fusion::builtin().unwrap();
        (
            f.model_id.clone(),
            FusionN {
                weights: f.weights.to_vec(),
                bias: f.bias,
            },
        )
    };
    let pair_spec = FusedSpec {
        fused_calibration: Calibration::builtin_for(&pair_id).unwrap(),
        fused_model_id: pair_id,
        other_dims: vec![DIMS[1]],
        fusion: pair,
        ..three.clone()
    };
    let s = ScenarioId::new();
    let mut g = FusedGallery::new(s, pair_spec.clone(), GalleryOptions::default()).unwrap();
    let (p, f) = (PersonId::new(), face(&mut rng));
    let t = fused_template(p, s, &three, &f);
    g.add(&t).unwrap();
    assert!(!g.is_fused(t.id));
    let close = near(&f, 0.3, &mut rng);
    let m = g
        .verify(
            p,
            &Probe {
                first: &close[0],
                others: Some(&[close[1].as_slice()]),
            },
        )
        .unwrap();
    assert!(m.accepted && m.threshold < 1.0, "{m:?}");
    assert!((m.score - cos(&close[0], &f[0])).abs() < 0.01, "{m:?}");
    // Not a fusion of the first model: refused.
    let alien = Template::new(p, s, "x+y", &f[0], Encoding::F32).unwrap();
    assert!(matches!(g.add(&alien), Err(Error::ModelMismatch { .. })));
}

/// What an exhaustive scan answers: every template scored in f32 (fused
/// where it carries every part), the rarest score first.
fn exhaustive(
    spec: &FusedSpec,
    enrolled: &[(PersonId, Face, bool)],
    p: &Face,
    fmr: f64,
) -> Vec<(PersonId, f32, bool, f64)> {
    let mut best: std::collections::HashMap<PersonId, (f32, bool, f64)> = Default::default();
    for (person, f, fused) in enrolled {
        let (score, cal) = if *fused {
            let s: Vec<f32> = (0..3).map(|i| cos(&p[i], &f[i])).collect();
            (spec.fusion.score(&s), &spec.fused_calibration)
        } else {
            (cos(&p[0], &f[0]), &spec.first_calibration)
        };
        let ok = score > cal.threshold(fmr);
        let r = cal.fmr_at(score);
        let e = best.entry(*person).or_insert((score, ok, r));
        if (ok, -r) > (e.1, -e.2) {
            *e = (score, ok, r);
        }
    }
    let mut v: Vec<_> = best
        .into_iter()
        .map(|(p, (s, ok, r))| (p, s, ok, r))
        .collect();
    v.sort_by(|a, b| (b.2, -b.3).partial_cmp(&(a.2, -a.3)).unwrap());
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// The re-ranked search (first model's int8 top RERANK people, then the
    /// per-template scores) answers as the exhaustive scan does: same
    /// person, same accept or reject, for enrolled and never-enrolled
    /// probes, over galleries larger than the re-rank depth, with a share of
    /// first-model-only templates.
    #[test]
    fn the_reranked_answer_is_the_exhaustive_one(
        seed in any::<u64>(),
        people in 25usize..70,
        legacy_every in 2usize..6,
        noise in 0.1f32..1.6,
        stranger in any::<bool>(),
    ) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let spec = spec();
        let s = ScenarioId::new();
        let mut g = FusedGallery::new(s, spec.clone(), GalleryOptions::default()).unwrap();
        let mut enrolled = vec![];
        for i in 0..people {
            let person = PersonId::new();
            let f = face(&mut rng);
            for j in 0..1 + i % 3 {
                let img = if j == 0 { f.clone() } else { near(&f, 0.3, &mut rng) };
                let fused = (i + j) % legacy_every != 0;
                let t = if fused {
                    fused_template(person, s, &spec, &img)
                } else {
                    Template::new(person, s, &spec.first_model_id, &img[0], Encoding::Int8).unwrap()
                };
                g.add(&t).unwrap();
                enrolled.push((person, img, fused));
            }
        }
        let target = &enrolled[rng.gen_range(0..enrolled.len())].1.clone();
        let p = if stranger { face(&mut rng) } else { near(target, noise, &mut rng) };
        let (first, others) = probe_of(&p);
        let id = g.identify(&Probe { first: &first, others: Some(&others) }, 5).unwrap();
        let fmr = Calibration::fmr_for_fpir(GalleryOptions::default().target_fpir, g.len());
        let want = exhaustive(&spec, &enrolled, &p, fmr);
        // Scores within int8's error of a threshold, or two people within
        // it of each other, may fall either way: not a difference.
        let close = |s: f32, t: f32| (s - t).abs() < 0.1;
        let best = want[0];
        let t_best = if id.candidates.is_empty() { f32::NAN } else { id.threshold };
        let ambiguous = close(best.1, t_best)
            || want.get(1).is_some_and(|w| w.2 == best.2 && (w.3.log10() - best.3.log10()).abs() < 0.05);
        if !ambiguous {
            match id.decision {
                Decision::Known { person, .. } => {
                    prop_assert!(best.2, "re-rank accepted {person}, the scan rejects: {want:?}");
                    prop_assert_eq!(person, best.0);
                }
                Decision::Unknown => prop_assert!(!best.2, "re-rank rejected, the scan accepts {:?}", best),
            }
        }
        prop_assert!(id.candidates.len() <= 5);
        prop_assert_eq!(id.gallery_size, enrolled.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The cascade (the first model alone where its bounds decide) never
    /// rejects what the fusion would accept, accepts on the first model only
    /// above a score whose first-model false-match rate is CASCADE_SHARE of
    /// the target, and otherwise asks for the other models: 1:1 and 1:N,
    /// over probes from close to far and strangers, with first-model-only
    /// templates among the fused ones.
    #[test]
    fn the_cascade_rejects_only_what_the_fusion_rejects(
        seed in any::<u64>(),
        people in 3usize..40,
        noise in 0.05f32..3.0,
        others_noise in 0.05f32..1.0,
        stranger in any::<bool>(),
    ) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let spec = spec();
        let s = ScenarioId::new();
        let mut g = FusedGallery::new(s, spec.clone(), GalleryOptions::default()).unwrap();
        let mut faces = vec![];
        for i in 0..people {
            let person = PersonId::new();
            let f = face(&mut rng);
            let t = if i % 4 == 3 {
                Template::new(person, s, &spec.first_model_id, &f[0], Encoding::Int8).unwrap()
            } else {
                fused_template(person, s, &spec, &f)
            };
            g.add(&t).unwrap();
            faces.push((person, f));
        }
        let (target, f) = faces[rng.gen_range(0..faces.len())].clone();
        // The models disagree as they do on hard images: the first one's
        // part moved by `noise`, the others' by `others_noise`.
        let p = if stranger {
            face(&mut rng)
        } else {
            let (a, b) = (near(&f, noise, &mut rng), near(&f, others_noise, &mut rng));
            vec![a[0].clone(), b[1].clone(), b[2].clone()]
        };
        let (first, others) = probe_of(&p);
        let fused = Probe { first: &first, others: Some(&others) };
        // 1:1
        let full = g.verify(target, &fused).unwrap();
        match g.verify_cascade(target, &first).unwrap() {
            Cascade::Decided(m) if m.accepted => {
                let fmr = spec.first_calibration.fmr_at(m.score);
                prop_assert!(fmr <= m.fmr * CASCADE_SHARE * 1.01 || !g.is_fused(g.templates_of(target)[0]),
                    "accepted on the first model at FMR {fmr} (target {})", m.fmr);
            }
            Cascade::Decided(m) => {
                prop_assert!(!full.accepted, "the cascade rejected {m:?}, the fusion accepts {full:?}");
            }
            Cascade::NeedsOthers => {
                prop_assert!(g.is_fused(g.templates_of(target)[0]), "a first-model template never needs the others");
            }
        }
        // 1:N
        let full = g.identify(&fused, 5).unwrap();
        match g.identify_cascade(&first, 5).unwrap() {
            Cascade::Decided(id) => {
                if id.decision == Decision::Unknown {
                    prop_assert_eq!(&full.decision, &Decision::Unknown, "the cascade said unknown, the fusion knows");
                }
                prop_assert_eq!(id.gallery_size, full.gallery_size);
            }
            Cascade::NeedsOthers => {}
        }
    }
}
