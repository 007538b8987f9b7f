//! The registered kernels, by name and runtime. Readers take a lock-free snapshot; registration
//! swaps in a new map, so jobs in flight keep the version they started with.

use crate::job::Runtime;
use crate::lanes::batch::Batcher;
use crate::manifest::{Manifest, ManifestError};
use crate::metrics::KernelStats;
use crate::quarantine::Quarantine;
use crate::wasm::{WasmEngine, WasmKernel, load_file};
use arc_swap::ArcSwap;
use helix_math::KernelKind;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// How a kernel's code is reached.
pub enum Entry {
    Native(KernelKind),
    Wasm(WasmKernel),
}

/// One registered kernel version.
pub struct Kernel {
    /// The manifest's name and version, shared with every outcome.
    pub name: Arc<str>,
    pub version: Arc<str>,
    pub manifest: Manifest,
    pub entry: Entry,
    /// Shared by every version of this kernel and runtime, and kept after removal, so counters
    /// and the cost correction survive hot swaps.
    pub stats: Arc<KernelStats>,
    /// Started on the first batched job; ends when this version is dropped.
    pub batcher: OnceLock<Batcher>,
    /// This version's record of sandbox failures; a new version starts clean.
    pub quarantine: Quarantine,
}

impl Kernel {
    pub fn runtime(&self) -> Runtime {
        self.manifest.runtime
    }

    /// Builds a native kernel from its manifest.
    pub fn native(manifest: Manifest) -> Result<Kernel, ManifestError> {
        let entry_name = manifest.entry.clone().unwrap_or_else(|| manifest.name.clone());
        let kind = KernelKind::from_name(&entry_name).ok_or_else(|| ManifestError {
            source: manifest.name.clone(),
            message: format!(
                "no built-in kernel {entry_name:?} (built in: {})",
                KernelKind::ALL.map(KernelKind::name).join(", ")
            ),
        })?;
        if let Some(u) = &manifest.units
            && kind.unit_param() != Some(u.param.as_str())
        {
            return Err(ManifestError {
                source: manifest.name.clone(),
                message: format!("units.param must be {:?} for {entry_name}", kind.unit_param()),
            });
        }
        Ok(Kernel::new(manifest, Entry::Native(kind)))
    }

    /// Builds a Wasm kernel: reads, checks and compiles the module its manifest names, which
    /// lives next to the manifest.
    pub fn wasm(manifest: Manifest, dir: &Path, engine: &Arc<WasmEngine>) -> Result<Kernel, ManifestError> {
        let module = manifest.module.as_ref().expect("validated: a wasm manifest has a module");
        let cache = engine.config.cache_dir.as_deref();
        let k = load_file(engine, &dir.join(&module.path), &module.sha256, cache)
            .map_err(|message| ManifestError { source: manifest.name.clone(), message })?;
        Ok(Kernel::new(manifest, Entry::Wasm(k)))
    }

    /// Loads the manifest at `path` (and its module, for Wasm kernels).
    pub fn load(path: &Path, engine: Option<&Arc<WasmEngine>>) -> Result<Kernel, ManifestError> {
        let m = Manifest::load(path)?;
        match (m.runtime, engine) {
            (Runtime::Native, _) => Kernel::native(m),
            (Runtime::Wasm, Some(e)) => Kernel::wasm(m, path.parent().unwrap_or(Path::new(".")), e),
            (Runtime::Wasm, None) => Err(ManifestError {
                source: path.display().to_string(),
                message: "wasm kernels need the Wasm engine, which this router was built without".into(),
            }),
        }
    }

    pub fn new(manifest: Manifest, entry: Entry) -> Kernel {
        Kernel {
            name: Arc::from(manifest.name.as_str()),
            version: Arc::from(manifest.version.as_str()),
            manifest,
            entry,
            stats: Arc::default(),
            batcher: OnceLock::new(),
            quarantine: Quarantine::default(),
        }
    }
}

/// The builds registered under one name.
#[derive(Clone, Default)]
pub struct KernelSet {
    pub native: Option<Arc<Kernel>>,
    pub wasm: Option<Arc<Kernel>>,
}

impl KernelSet {
    /// The requested build, or native when none is named.
    pub fn pick(&self, runtime: Option<Runtime>) -> Option<&Arc<Kernel>> {
        match runtime {
            Some(Runtime::Native) => self.native.as_ref(),
            Some(Runtime::Wasm) => self.wasm.as_ref(),
            None => self.native.as_ref().or(self.wasm.as_ref()),
        }
    }

    fn slot(&mut self, runtime: Runtime) -> &mut Option<Arc<Kernel>> {
        match runtime {
            Runtime::Native => &mut self.native,
            Runtime::Wasm => &mut self.wasm,
        }
    }
}

/// A kernel's counters across its versions, and the version serving now (`None` once removed).
pub struct KernelRecord {
    pub name: String,
    pub runtime: Runtime,
    pub stats: Arc<KernelStats>,
    pub current: Option<Arc<Kernel>>,
}

#[derive(Default)]
pub struct Registry {
    kernels: ArcSwap<BTreeMap<String, KernelSet>>,
    /// Counters per kernel name and runtime, across versions (touched only on registration).
    stats: std::sync::Mutex<BTreeMap<(String, Runtime), Arc<KernelStats>>>,
}

impl Registry {
    /// The build of `name` to run for a job preferring `runtime`.
    pub fn pick(&self, name: &str, runtime: Option<Runtime>) -> Option<Arc<Kernel>> {
        self.kernels.load().get(name).and_then(|s| s.pick(runtime)).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Kernel>> {
        self.kernels.load().values().flat_map(|s| s.native.iter().chain(s.wasm.iter()).cloned()).collect()
    }

    /// Registers (or replaces) a kernel version; it inherits the counters of earlier versions.
    pub fn insert(&self, mut kernel: Kernel) {
        let key = (kernel.manifest.name.clone(), kernel.runtime());
        kernel.stats = self.stats.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_default().clone();
        let previous = self.pick(&kernel.manifest.name, Some(kernel.runtime()));
        kernel.quarantine = Quarantine::succeeding(previous.as_ref().map(|k| &k.quarantine));
        let kernel = Arc::new(kernel);
        self.kernels.rcu(|map| {
            let mut next = BTreeMap::clone(map);
            *next.entry(kernel.manifest.name.clone()).or_default().slot(kernel.runtime()) = Some(kernel.clone());
            next
        });
    }

    /// Every kernel name and runtime ever registered, with its counters and current version.
    pub fn stats(&self) -> Vec<KernelRecord> {
        let current = self.kernels.load();
        let stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats
            .iter()
            .map(|((name, runtime), s)| KernelRecord {
                name: name.clone(),
                runtime: *runtime,
                stats: s.clone(),
                current: current.get(name).and_then(|set| set.pick(Some(*runtime))).cloned(),
            })
            .collect()
    }

    /// Unregisters a kernel build; jobs already holding it finish on it.
    pub fn remove(&self, name: &str, runtime: Runtime) {
        self.kernels.rcu(|map| {
            let mut next = BTreeMap::clone(map);
            if let Some(set) = next.get_mut(name) {
                *set.slot(runtime) = None;
                if set.native.is_none() && set.wasm.is_none() {
                    next.remove(name);
                }
            }
            next
        });
    }
}

/// The `*.toml` files in `dir` and in its immediate subfolders, sorted.
pub fn manifest_paths(dir: &Path) -> Result<Vec<std::path::PathBuf>, std::io::Error> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            for sub in std::fs::read_dir(&p)? {
                paths.push(sub?.path());
            }
        } else {
            paths.push(p);
        }
    }
    paths.retain(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"));
    paths.sort();
    Ok(paths)
}
