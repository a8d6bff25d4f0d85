//! The sealed on-disk form of a gallery: a directory with
//! `templates.fgt` (every template sealed with its scenario key) and `keys.fgk`
//! (the data keys wrapped by the KEK). No file holds a plaintext vector.

use crate::{Calibration, Error, Gallery, GalleryOptions, Keyring, SealedTemplate};
use std::io::Write;
use std::path::Path;

const TEMPLATES: &str = "templates.fgt";
const KEYS: &str = "keys.fgk";
const MAGIC: &[u8; 5] = b"FGTF\x01";

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename), mode 0600.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

impl Gallery {
    /// Seals every template with `keyring` and writes them, with the wrapped data keys,
    /// into `dir` (created if needed). The scenario's data key is made here
    /// if it has none, and the keys file is written before the templates.
    pub fn save_sealed(&self, dir: &Path, keyring: &Keyring) -> Result<(), Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        keyring.data_key(self.scenario());
        keyring.save(&dir.join(KEYS))?;
        let mut buf = Vec::from(&MAGIC[..]);
        for id in self.template_ids() {
            let t = self.template(id).expect("listed template exists");
            let b = keyring.seal(&t)?.to_bytes();
            buf.extend_from_slice(&(b.len() as u32).to_le_bytes());
            buf.extend_from_slice(&b);
        }
        write_atomic(&dir.join(TEMPLATES), &buf)
    }

    /// Reads the sealed templates in `dir` with `keyring` (load it first with
    /// [`Keyring::load`] on `dir/keys.fgk`, see [`Gallery::keys_path`]) into a new gallery.
    /// Every template must open (authenticated) for this scenario and model.
    pub fn load_sealed(
        dir: &Path,
        keyring: &Keyring,
        scenario: crate::ScenarioId,
        model_id: &str,
        dim: usize,
        calibration: Calibration,
        opts: GalleryOptions,
    ) -> Result<Gallery, Error> {
        let path = dir.join(TEMPLATES);
        let b = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        if b.len() < MAGIC.len() || &b[..MAGIC.len()] != MAGIC {
            return Err(Error::Format(format!(
                "{}: not a facegate sealed gallery",
                path.display()
            )));
        }
        let mut g = Gallery::new(scenario, model_id, dim, calibration, opts)?;
        let mut o = MAGIC.len();
        while o < b.len() {
            if o + 4 > b.len() {
                return Err(Error::Format(format!("{}: truncated", path.display())));
            }
            let l = u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
            o += 4;
            if o + l > b.len() {
                return Err(Error::Format(format!("{}: truncated", path.display())));
            }
            let s = SealedTemplate::from_bytes(&b[o..o + l])?;
            o += l;
            if s.scenario() != scenario {
                return Err(Error::ScenarioMismatch);
            }
            let t = keyring.open(&s, s.template_id(), s.person(), scenario)?;
            g.add(&t)?;
        }
        Ok(g)
    }

    /// Where [`Gallery::save_sealed`] puts the wrapped data keys.
    pub fn keys_path(dir: &Path) -> std::path::PathBuf {
        dir.join(KEYS)
    }
}
