//! A replica's copy of the shared store: every poll lists the store once, fetches only the
//! manifests whose stamp (ETag) changed and the modules it does not hold yet, checks each
//! module against the sha256 its manifest names, and writes module then manifest into a local
//! folder, one subfolder per manifest, which the reloader then scans like any manifests
//! folder. A manifest whose module is missing or does not match is refused there, and the
//! version this replica serves stays.

use super::store::{Listing, Store, module_key};
use super::upload::plain_file_name;
use crate::job::Runtime;
use crate::manifest::{Manifest, ManifestError};
use crate::wasm::sha256_hex;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A manifest as last seen in the store.
struct Seen {
    stamp: String,
    /// The kernel it names, when it was mirrored (a refused one may name none).
    kernel: Option<(String, Runtime)>,
    /// Refused: tried again when its stamp or the store's modules change.
    refused: bool,
}

/// What the mirror knows of the store. Only the syncing task touches it (behind the catalog's
/// sync lock), never a job.
#[derive(Default)]
pub struct MirrorState {
    seen: HashMap<String, Seen>,
    modules: BTreeSet<String>,
}

/// Store traffic since start, for the metrics.
#[derive(Debug, Default)]
pub struct StoreCounts {
    /// Listings of the store.
    pub polls: AtomicU64,
    /// Objects downloaded (manifests and modules).
    pub fetches: AtomicU64,
    /// Polls that failed (the store was unreachable); the mirror keeps what it had.
    pub failures: AtomicU64,
}

pub struct Mirror {
    pub store: Store,
    dir: PathBuf,
    /// The folder is this process's own (the default): removed when the mirror goes.
    owned: bool,
    pub counts: StoreCounts,
}

impl Drop for Mirror {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Mirror {
    /// A mirror of `store` in `dir`, which is emptied: what it held may be stale. An `owned`
    /// folder is removed with the mirror.
    pub fn new(store: Store, dir: &Path, owned: bool) -> Result<Mirror, String> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| format!("cannot empty the mirror {}: {e}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create the mirror {}: {e}", dir.display()))?;
        Ok(Mirror { store, dir: dir.to_path_buf(), owned, counts: StoreCounts::default() })
    }

    /// Where an upload of kernel `name` goes: the key of the manifest that registered it
    /// (`true`: it replaces that one), else `NAME.toml`, unless that key holds another kernel.
    pub fn key_for(state: &MirrorState, name: &str, runtime: Runtime) -> Result<(String, bool), String> {
        let is_it = |k: &(String, Runtime)| k.0 == name && k.1 == runtime;
        if let Some((key, _)) = state.seen.iter().find(|(_, s)| s.kernel.as_ref().is_some_and(is_it)) {
            return Ok((key.clone(), true));
        }
        let key = format!("{name}.toml");
        match state.seen.get(&key).and_then(|s| s.kernel.as_ref()) {
            Some((other, r)) => {
                Err(format!("the store's {key} holds kernel {other:?} ({}): rename one of them", r.as_str()))
            }
            None => Ok((key, false)),
        }
    }

    /// Brings the local folder in step with the store; the manifests refused on the way.
    pub async fn sync(&self, state: &mut MirrorState) -> Result<Vec<ManifestError>, String> {
        self.counts.polls.fetch_add(1, Relaxed);
        let listing = self.store.list().await.inspect_err(|_| {
            self.counts.failures.fetch_add(1, Relaxed);
        })?;
        let modules_changed = listing.modules != state.modules;
        let mut refused = Vec::new();
        for listed in &listing.manifests {
            let unchanged =
                state.seen.get(&listed.key).is_some_and(|s| s.stamp == listed.stamp && !(s.refused && modules_changed));
            if unchanged {
                continue;
            }
            let previous = state.seen.get(&listed.key).and_then(|s| s.kernel.clone());
            match self.mirror_one(&listed.key, &listing).await {
                Ok(kernel) => {
                    state.seen.insert(
                        listed.key.clone(),
                        Seen { stamp: listed.stamp.clone(), kernel: Some(kernel), refused: false },
                    );
                }
                Err(message) => {
                    let source = self.store.location(&listed.key);
                    tracing::warn!(manifest = %source, error = %message, "store manifest refused; the version served stays");
                    refused.push(ManifestError { source, message });
                    state.seen.insert(
                        listed.key.clone(),
                        Seen { stamp: listed.stamp.clone(), kernel: previous, refused: true },
                    );
                }
            }
        }
        let listed: BTreeSet<&str> = listing.manifests.iter().map(|l| l.key.as_str()).collect();
        let gone: Vec<String> = state.seen.keys().filter(|k| !listed.contains(k.as_str())).cloned().collect();
        for key in gone {
            state.seen.remove(&key);
            let folder = self.folder_of(&key);
            if folder.exists() {
                std::fs::remove_dir_all(&folder).map_err(|e| format!("cannot remove {}: {e}", folder.display()))?;
            }
        }
        state.modules = listing.modules;
        Ok(refused)
    }

    /// One manifest's subfolder: its key with `/` spelled `~`, so one level is enough.
    fn folder_of(&self, key: &str) -> PathBuf {
        self.dir.join(key.replace('/', "~"))
    }

    /// Fetches the manifest at `key` and, if it is new here, its module; checks the module
    /// against the manifest's sha256; writes the module, then the manifest.
    async fn mirror_one(&self, key: &str, listing: &Listing) -> Result<(String, Runtime), String> {
        let text = self.store.get(key).await?;
        self.counts.fetches.fetch_add(1, Relaxed);
        let text = String::from_utf8(text).map_err(|_| "the manifest is not UTF-8 text".to_string())?;
        let manifest = Manifest::parse(&text, key).map_err(|e| e.message)?;
        let folder = self.folder_of(key);
        std::fs::create_dir_all(&folder).map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        if let Some(module) = &manifest.module {
            let file = folder.join(plain_file_name(&module.path)?);
            let held = std::fs::read(&file).is_ok_and(|b| sha256_hex(&b) == module.sha256);
            if !held {
                if !listing.modules.contains(&module.sha256) {
                    return Err(format!(
                        "its module {} is not in the store",
                        self.store.location(&module_key(&module.sha256))
                    ));
                }
                let bytes = self.store.get(&module_key(&module.sha256)).await?;
                self.counts.fetches.fetch_add(1, Relaxed);
                let actual = sha256_hex(&bytes);
                if actual != module.sha256 {
                    return Err(format!(
                        "{} hashes to {actual}, not to its name: the object is corrupt or was overwritten",
                        self.store.location(&module_key(&module.sha256))
                    ));
                }
                write_atomically(&file, &bytes)?;
            }
        }
        let name =
            Path::new(key).file_name().map_or_else(|| "kernel.toml".into(), |n| n.to_string_lossy().into_owned());
        write_atomically(&folder.join(name), text.as_bytes())?;
        Ok((manifest.name, manifest.runtime))
    }
}

/// Writes beside `path`, then renames over it: a reader sees the old file or the new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let file = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{file}.part"));
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
