//! Writes the models the engine runs as plain ONNX files, so that another
//! program (the Python peer of `bench/peer_pipeline.py`) can load the very
//! same networks.
//!
//! Each file is the model as ONNX Runtime would receive it *before*
//! facegate's own load-time rewrites: the shipped `fr_*.onnx` files byte for
//! byte, and the second and third models' graphs exactly as built from the
//! published weights ([`crate::dlib_resnet`], [`crate::mobilefacenet`]). Not
//! applied: subnormal weights set to zero and the NCHWc / `PRelu` rewrite
//! ([`crate::runtime::Model::load`]). So a peer that loads these files gets
//! the published networks, not facegate's speed work.

use std::path::{Path, PathBuf};

use crate::VisionError;

/// File name of the second model (dlib's ResNet descriptor) as written.
pub const SECOND_ONNX: &str = "dlib_face_recognition_resnet_model_v1.onnx";
/// File name of the third model (MobileFaceNet) as written.
pub const THIRD_ONNX: &str = "mobilefacenet.onnx";

/// The shipped ONNX models, copied as they are (detector, landmarks,
/// embedding, liveness, pose, eyes: the order the engine loads them in).
pub(crate) const SHIPPED: [&str; 6] = [
    "fr_detect.onnx",
    "fr_landmark.onnx",
    "fr_feature.onnx",
    "fr_liveness.onnx",
    "fr_pose.onnx",
    "fr_eye.onnx",
];

/// One file [`export_models`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportedModel {
    /// The file name inside the output folder.
    pub file: String,
    /// Where it came from: `shipped` (copied) or `built` (graph written from weights).
    pub origin: &'static str,
    /// The pinned asset it was made from.
    pub source: String,
    /// Network input and output names, and the preprocessing the engine applies.
    pub input: &'static str,
    pub output: &'static str,
    pub preprocessing: &'static str,
    pub bytes: usize,
}

/// Writes every model the engine can load into `dir` (created if missing):
/// the six shipped `fr_*.onnx` files and the second and third models' graphs
/// ([`SECOND_ONNX`], [`THIRD_ONNX`]), with `models.json` describing them.
pub fn export_models(dir: &Path) -> Result<Vec<ExportedModel>, VisionError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| VisionError::Asset(format!("cannot create {}: {e}", dir.display())))?;
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf, VisionError> {
        let p = dir.join(name);
        std::fs::write(&p, bytes)
            .map_err(|e| VisionError::Asset(format!("cannot write {}: {e}", p.display())))?;
        Ok(p)
    };
    let mut out = Vec::new();
    for name in SHIPPED {
        let (_, bytes) = crate::embedding::read_model_asset(name)?;
        write(name, &bytes)?;
        out.push(ExportedModel {
            file: name.to_string(),
            origin: "shipped",
            source: name.to_string(),
            input: "input",
            output: if name == "fr_detect.onnx" {
                "scores, boxes"
            } else {
                "output"
            },
            preprocessing: match name {
                "fr_feature.onnx" => {
                    "112x112 ArcFace chip (5-point Umeyama similarity), BGR, (x - 127) / 128"
                }
                "fr_detect.onnx" => "320x240 RGB letterbox (grey 127), (x - 127) / 128",
                "fr_landmark.onnx" => "64x64 grey crop of the square box, x / 256",
                "fr_liveness.onnx" => "128x128 BGR crop of the box enlarged 2.7x, 0..255",
                _ => "see crates/vision/src/stages.rs",
            },
            bytes: bytes.len(),
        });
    }
    let (_, second) = crate::dlib_resnet::onnx_from_weights()?;
    write(SECOND_ONNX, &second)?;
    out.push(ExportedModel {
        file: SECOND_ONNX.to_string(),
        origin: "built",
        source: crate::dlib_resnet::WEIGHTS.to_string(),
        input: crate::dlib_resnet::INPUT,
        output: crate::dlib_resnet::OUTPUT,
        preprocessing: "150x150 dlib chip (68-point mean-face similarity, 25 % padding, \
                        integer box shrink first when the face is over 2x the chip), RGB, \
                        (x - [122.782, 117.001, 104.298]) / 256",
        bytes: second.len(),
    });
    let (_, third) = crate::mobilefacenet::onnx_from_weights()?;
    write(THIRD_ONNX, &third)?;
    out.push(ExportedModel {
        file: THIRD_ONNX.to_string(),
        origin: "built",
        source: format!(
            "{} + {}",
            crate::mobilefacenet::GRAPH,
            crate::mobilefacenet::WEIGHTS
        ),
        input: crate::mobilefacenet::INPUT,
        output: crate::mobilefacenet::OUTPUT,
        preprocessing: "the first model's 112x112 ArcFace chip, RGB, (x - 127.5) / 128",
        bytes: third.len(),
    });
    let json = serde_json::to_string_pretty(&out).map_err(|e| VisionError::Asset(e.to_string()))?;
    write("models.json", json.as_bytes())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Model;

    fn worst(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// The written second and third models, loaded by a plain ONNX Runtime
    /// session (no flush, no rewrite), give the engine's embeddings within
    /// 1e-5 on a fixture face; the shipped files are copied byte for byte.
    #[test]
    fn written_models_give_the_engines_embeddings() {
        let dir = std::env::temp_dir().join(format!("fg-export-{}", std::process::id()));
        let written = export_models(&dir).expect("export");
        assert_eq!(written.len(), 8);
        for name in SHIPPED {
            let a = std::fs::read(dir.join(name)).unwrap();
            let b = std::fs::read(facegate_assets::model(name).unwrap()).unwrap();
            assert!(a == b, "{name} is copied as shipped");
        }
        let e = crate::Engine::new(crate::EngineOptions {
            second_embedding: true,
            third_embedding: true,
            pose: false,
            eyes: false,
            ..Default::default()
        })
        .expect("engine loads");
        let img = image::open(facegate_assets::fixture("obama.jpg").unwrap())
            .unwrap()
            .to_rgb8();
        let faces = e.analyze_image(&img).unwrap();
        assert_eq!(faces.len(), 1);
        let f = &faces[0];
        let plain = |file: &str, name: &'static str| {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            Model::from_graph_with(
                name,
                dir.join(file),
                bytes,
                1,
                false,
                crate::runtime::Tuning::PLAIN,
            )
            .expect("loads in ORT")
        };
        let unit = |mut v: Vec<f32>| {
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= n);
            v
        };

        let chip = crate::dlib_chip(&img, &f.landmarks68);
        let second = plain(SECOND_ONNX, "second")
            .run(
                &[1, 3, 150, 150],
                &crate::dlib_resnet::input_of(&chip),
                &[crate::dlib_resnet::OUTPUT],
            )
            .unwrap()
            .remove(0);
        let engine_second = f.second_embedding.as_ref().unwrap().as_slice();
        let d2 = worst(&unit(second), engine_second);
        assert!(d2 < 1e-5, "second model differs by {d2}");

        let aligned = crate::align(&img, &f.landmarks5);
        let third = plain(THIRD_ONNX, "third")
            .run(
                &[1, 3, 112, 112],
                &crate::mobilefacenet::input_of(&aligned),
                &[crate::mobilefacenet::OUTPUT],
            )
            .unwrap()
            .remove(0);
        let engine_third = f.third_embedding.as_ref().unwrap().as_slice();
        let d3 = worst(&unit(third), engine_third);
        assert!(d3 < 1e-5, "third model differs by {d3}");
        println!("largest difference: second {d2:e}, third {d3:e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
