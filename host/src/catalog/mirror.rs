//! A replica's copy of the shared store: every poll lists the store once, fetches only the
//! manifests whose stamp (ETag) changed and the modules it does not hold yet, checks each
//! module against the sha256 its manifest names, and writes module then manifest into a local
//! folder, one subfolder per manifest, which the reloader then scans like any manifests
//! folder. A manifest whose module is missing or does not match is refused there, and the
//! version this replica serves stays.

use super::store::{Listing, Store, module_key};
use super::upload::{plain_file_name, write_atomically};
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
    /// Listings or downloads that failed (the store was unreachable); the mirror keeps what
    /// it had and tries again at the next poll.
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
        // An unmounted volume or a wrong prefix lists nothing: keep serving rather than drop
        // every kernel (remove them one at a time, or restart on an empty store).
        if listing.manifests.is_empty() && !state.seen.is_empty() {
            self.counts.failures.fetch_add(1, Relaxed);
            return Err(format!(
                "{} lists no manifests: keeping the {} kernels this replica serves",
                self.store.url(),
                state.seen.len()
            ));
        }
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
                // Not the manifest's fault: left unseen, so the next poll tries again.
                Err(Miss::Unreachable(message)) => {
                    self.counts.failures.fetch_add(1, Relaxed);
                    tracing::warn!(manifest = %self.store.location(&listed.key), error = %message, "store object not mirrored; the next poll tries again");
                }
                Ok(kernel) => {
                    state.seen.insert(
                        listed.key.clone(),
                        Seen { stamp: listed.stamp.clone(), kernel: Some(kernel), refused: false },
                    );
                }
                Err(Miss::Refused(message)) => {
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
    async fn mirror_one(&self, key: &str, listing: &Listing) -> Result<(String, Runtime), Miss> {
        let text = self.store.get(key).await.map_err(Miss::Unreachable)?;
        self.counts.fetches.fetch_add(1, Relaxed);
        let text = String::from_utf8(text).map_err(|_| Miss::Refused("the manifest is not UTF-8 text".into()))?;
        let manifest = Manifest::parse(&text, key).map_err(|e| Miss::Refused(e.message))?;
        let folder = self.folder_of(key);
        std::fs::create_dir_all(&folder)
            .map_err(|e| Miss::Unreachable(format!("cannot create {}: {e}", folder.display())))?;
        if let Some(module) = &manifest.module {
            let file = folder.join(plain_file_name(&module.path).map_err(Miss::Refused)?);
            let held = std::fs::read(&file).is_ok_and(|b| sha256_hex(&b) == module.sha256);
            if !held {
                let module_key = module_key(&module.sha256);
                if !listing.modules.contains(&module.sha256) {
                    return Err(Miss::Refused(format!(
                        "its module {} is not in the store",
                        self.store.location(&module_key)
                    )));
                }
                let bytes = self.store.get(&module_key).await.map_err(Miss::Unreachable)?;
                self.counts.fetches.fetch_add(1, Relaxed);
                let actual = sha256_hex(&bytes);
                if actual != module.sha256 {
                    return Err(Miss::Refused(format!(
                        "{} hashes to {actual}, not to its name: the object is corrupt or was overwritten",
                        self.store.location(&module_key)
                    )));
                }
                write_atomically(&file, &bytes).map_err(Miss::Unreachable)?;
            }
        }
        let name =
            Path::new(key).file_name().map_or_else(|| "kernel.toml".into(), |n| n.to_string_lossy().into_owned());
        write_atomically(&folder.join(name), text.as_bytes()).map_err(Miss::Unreachable)?;
        Ok((manifest.name, manifest.runtime))
    }
}

/// Why a manifest was not mirrored.
enum Miss {
    /// Its content is wrong (unparsable, its module missing or corrupt): refused until it or
    /// the store's modules change.
    Refused(String),
    /// The store or the local folder failed: tried again at the next poll.
    Unreachable(String),
}
