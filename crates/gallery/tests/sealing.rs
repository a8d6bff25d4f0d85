//! Sealed templates, keys and the on-disk gallery.

use facegate_gallery::*;
use rand::{Rng, SeedableRng};

const DIM: usize = 512;
const MODEL: &str = "synthetic-model";

fn unit(rng: &mut impl Rng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

/// A template of a new person in `scenario` (a random unit vector).
fn template(rng: &mut impl Rng, scenario: ScenarioId, enc: Encoding) -> Template {
    Template::new(PersonId::new(), scenario, MODEL, &unit(rng), enc).unwrap()
}

fn calibration() -> Calibration {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut s: Vec<f32> = (0..5000).map(|_| rng.gen_range(-0.15f32..0.15)).collect();
    Calibration::from_impostor_scores(MODEL, &mut s, "test").unwrap()
}

#[test]
fn sealed_template_round_trips_in_both_encodings() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let ring = Keyring::new(Kek::generate());
    for enc in [Encoding::F32, Encoding::Int8] {
        let t = template(&mut rng, ScenarioId::new(), enc);
        ring.data_key(t.scenario);
        let s = ring.seal(&t).unwrap();
        let s = SealedTemplate::from_bytes(&s.to_bytes()).unwrap();
        assert_eq!(s.model_id(), MODEL);
        assert_eq!(s.dim(), DIM);
        let back = ring.open(&s, t.id, t.person, t.scenario).unwrap();
        assert_eq!(back.vector, t.vector);
        assert_eq!(back.model_id, t.model_id);
    }
}

#[test]
fn sealed_template_fails_to_open_under_another_person_scenario_or_key() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let ring = Keyring::new(Kek::generate());
    let t = template(&mut rng, ScenarioId::new(), Encoding::Int8);
    ring.data_key(t.scenario);
    let s = ring.seal(&t).unwrap();
    assert!(ring.open(&s, t.id, t.person, t.scenario).is_ok());
    // Another person.
    assert!(matches!(
        ring.open(&s, t.id, PersonId::new(), t.scenario),
        Err(Error::OpenFailed)
    ));
    // Another template id.
    assert!(matches!(
        ring.open(&s, TemplateId::new(), t.person, t.scenario),
        Err(Error::OpenFailed)
    ));
    // Another scenario, even one whose key is in the ring.
    let other = ScenarioId::new();
    ring.data_key(other);
    assert!(matches!(
        ring.open(&s, t.id, t.person, other),
        Err(Error::OpenFailed)
    ));
    // Header rewritten to another person (copying the template): authentication fails.
    let mut b = s.to_bytes();
    let off = 9 + MODEL.len() + 16;
    b[off..off + 16].copy_from_slice(PersonId::new().as_bytes());
    let moved = SealedTemplate::from_bytes(&b).unwrap();
    assert!(matches!(
        ring.open_as_recorded(&moved),
        Err(Error::OpenFailed)
    ));
    // Header rewritten to another model.
    let mut b = s.to_bytes();
    b[9] = b'X';
    assert!(matches!(
        ring.open_as_recorded(&SealedTemplate::from_bytes(&b).unwrap()),
        Err(Error::OpenFailed)
    ));
    // A flipped ciphertext bit.
    let mut b = s.to_bytes();
    let last = b.len() - 20;
    b[last] ^= 1;
    assert!(matches!(
        ring.open_as_recorded(&SealedTemplate::from_bytes(&b).unwrap()),
        Err(Error::OpenFailed)
    ));
    // Another keyring (another KEK and so other data keys): the key is unknown.
    let stranger = Keyring::new(Kek::generate());
    assert!(stranger.open(&s, t.id, t.person, t.scenario).is_err());
    // Same data-key id but a different key (forged wrapped key): fails.
    let forged = Keyring::new(Kek::generate());
    forged.data_key(t.scenario);
    assert!(forged.open(&s, t.id, t.person, t.scenario).is_err());
    // The wrapped data key does not unwrap under another KEK.
    let wrapped = ring.wrapped_keys();
    assert!(matches!(
        Keyring::with_wrapped(Kek::generate(), &wrapped),
        Err(Error::WrongKek { .. })
    ));
    // Garbage is refused clearly.
    assert!(matches!(
        SealedTemplate::from_bytes(b"hello"),
        Err(Error::Format(_))
    ));
}

#[test]
fn kek_rotation_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let old = Kek::generate();
    let mut ring = Keyring::new(old.clone());
    let scen = [ScenarioId::new(), ScenarioId::new()];
    let ts: Vec<Template> = (0..40)
        .map(|i| template(&mut rng, scen[i % 2], Encoding::Int8))
        .collect();
    for s in scen {
        ring.data_key(s);
    }
    let sealed: Vec<Vec<u8>> = ts
        .iter()
        .map(|t| ring.seal(t).unwrap().to_bytes())
        .collect();
    // A data-key rotation in the middle: old templates must still open.
    ring.rotate_data_key(scen[0]);
    let t_new = template(&mut rng, scen[0], Encoding::Int8);
    let s_new = ring.seal(&t_new).unwrap().to_bytes();
    let keys = dir.path().join("keys");
    ring.save(&keys).unwrap();

    let new = Kek::generate();
    let rewrapped = ring.rotate_kek(new.clone());
    assert_eq!(rewrapped.len(), 3);
    assert!(rewrapped
        .iter()
        .all(|w| w.kek_fingerprint_hex() == new.fingerprint_hex()));
    ring.save(&keys).unwrap();
    // Old KEK no longer opens the saved keyring; the new one does, and everything opens.
    assert!(Keyring::load(&keys, old).is_err());
    let reloaded = Keyring::load(&keys, new).unwrap();
    for (t, b) in ts.iter().zip(&sealed) {
        let s = SealedTemplate::from_bytes(b).unwrap();
        assert_eq!(
            reloaded
                .open(&s, t.id, t.person, t.scenario)
                .unwrap()
                .vector,
            t.vector
        );
    }
    let s = SealedTemplate::from_bytes(&s_new).unwrap();
    assert_eq!(
        reloaded
            .open(&s, t_new.id, t_new.person, t_new.scenario)
            .unwrap()
            .vector,
        t_new.vector
    );
    // New seals after reload use the rotated (current) data key.
    assert_eq!(reloaded.data_key(scen[0]).id, s.key_id());
}

#[test]
fn kek_file_is_created_0600_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/kek");
    let a = Kek::load_or_create(&path).unwrap();
    let b = Kek::load_or_create(&path).unwrap();
    assert_eq!(a.fingerprint_hex(), b.fingerprint_hex());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            matches!(Kek::load_or_create(&path), Err(Error::Key(_))),
            "world-readable key refused"
        );
    }
    assert!(Kek::from_hex("abc").is_err());
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn gallery_on_disk_contains_no_raw_embedding_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let ring = Keyring::new(Kek::generate());
    for enc in [Encoding::Int8, Encoding::F32] {
        let scenario = ScenarioId::new();
        let opts = GalleryOptions {
            encoding: enc,
            ..Default::default()
        };
        let mut g = Gallery::new(scenario, MODEL, DIM, calibration(), opts.clone()).unwrap();
        let mut vs = vec![];
        for _ in 0..30 {
            let v = unit(&mut rng);
            g.add(&Template::new(PersonId::new(), scenario, MODEL, &v, enc).unwrap())
                .unwrap();
            vs.push(v);
        }
        let sub = dir.path().join(format!("{enc:?}"));
        g.save_sealed(&sub, &ring).unwrap();
        let mut files = 0;
        for e in std::fs::read_dir(&sub).unwrap() {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            files += 1;
            for id in g.template_ids() {
                let t = g.template(id).unwrap();
                // The stored vector, as f32 and as int8, in 16-byte windows.
                let f: Vec<u8> = t
                    .vector
                    .to_f32()
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect();
                let q8 = t.vector.to_encoding(Encoding::Int8);
                let q = match &q8 {
                    Vector::Int8 { data, .. } => data.iter().map(|&x| x as u8).collect::<Vec<u8>>(),
                    _ => unreachable!(),
                };
                for w in (0..f.len() - 16).step_by(64) {
                    assert!(!contains(&bytes, &f[w..w + 16]), "f32 bytes found");
                }
                for w in (0..q.len() - 16).step_by(64) {
                    assert!(!contains(&bytes, &q[w..w + 16]), "int8 bytes found");
                }
            }
            for v in &vs {
                let f: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                assert!(!contains(&bytes, &f[..16]), "input f32 bytes found");
            }
        }
        assert_eq!(files, 2);
        // And it loads back identically.
        let other = Keyring::load(&Gallery::keys_path(&sub), Kek::generate());
        assert!(other.is_err(), "a different KEK cannot read the keys");
        let back =
            Gallery::load_sealed(&sub, &ring, scenario, MODEL, DIM, calibration(), opts).unwrap();
        assert_eq!(back.len(), 30);
        for id in g.template_ids() {
            assert_eq!(
                back.template(id).unwrap().vector,
                g.template(id).unwrap().vector
            );
        }
    }
}

/// A scenario without a data key is refused, never given one only this
/// process holds (a restart would lose it and every template sealed with
/// it); once the key is made (and persisted by the caller) sealing works.
#[test]
fn sealing_without_a_data_key_is_refused_not_keyed_in_memory() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let ring = Keyring::new(Kek::generate());
    let t = template(&mut rng, ScenarioId::new(), Encoding::Int8);
    assert!(matches!(
        ring.seal(&t),
        Err(facegate_gallery::Error::NoDataKey(id)) if id == t.scenario.0
    ));
    assert!(ring.wrapped_keys().is_empty(), "no key was made");
    let k = ring.data_key(t.scenario);
    assert_eq!(ring.seal(&t).unwrap().key_id(), k.id);
}
