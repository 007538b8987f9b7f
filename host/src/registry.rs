//! Layer 5: the map of registered kernels, by name and runtime: the kernel map only (building
//! kernels from manifests is `catalog`'s job). Readers take a lock-free snapshot; registration
//! swaps in a new map, so jobs in flight keep the version they started with.

use crate::job::Runtime;
use crate::manifest::Manifest;
use crate::metrics::KernelStats;
use crate::quarantine::Quarantine;
use crate::wasm::WasmKernel;
use arc_swap::ArcSwap;
use helix_math::KernelKind;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// How a kernel's code is reached.
pub enum Entry {
    /// Built into the host.
    Native(KernelKind),
    /// A compiled Wasm component.
    Wasm(WasmKernel),
}

/// One registered kernel version.
pub struct Kernel {
    /// Unique to this version in this process: what per-version state (its batcher) is keyed by.
    pub(crate) id: u64,
    /// The manifest's name, shared with every outcome.
    pub name: Arc<str>,
    /// The manifest's version, shared with every outcome.
    pub version: Arc<str>,
    /// The manifest it was built from.
    pub manifest: Manifest,
    /// Its code.
    pub entry: Entry,
    /// Shared by every version of this kernel and runtime, and kept after removal, so counters
    /// and the cost correction survive hot swaps.
    pub(crate) stats: Arc<KernelStats>,
    /// This version's record of sandbox failures; a new version starts clean.
    pub(crate) quarantine: Quarantine,
}

impl Kernel {
    /// Native or Wasm.
    pub fn runtime(&self) -> Runtime {
        self.manifest.runtime
    }

    /// A kernel version from its manifest and its code, not registered yet.
    pub fn new(manifest: Manifest, entry: Entry) -> Kernel {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Kernel {
            id: NEXT_ID.fetch_add(1, Relaxed),
            name: Arc::from(manifest.name.as_str()),
            version: Arc::from(manifest.version.as_str()),
            manifest,
            entry,
            stats: Arc::default(),
            quarantine: Quarantine::default(),
        }
    }
}

/// The builds registered under one name.
#[derive(Clone, Default)]
struct KernelSet {
    native: Option<Arc<Kernel>>,
    wasm: Option<Arc<Kernel>>,
}

impl KernelSet {
    /// The requested build, or native when none is named.
    fn pick(&self, runtime: Option<Runtime>) -> Option<&Arc<Kernel>> {
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
pub(crate) struct KernelRecord {
    pub(crate) name: String,
    pub(crate) runtime: Runtime,
    pub(crate) stats: Arc<KernelStats>,
    pub(crate) current: Option<Arc<Kernel>>,
}

/// The kernels serving now.
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

    /// Why no build of `name` serves a job preferring `runtime`, and what would: the runtime
    /// it does have, or the nearest registered name (a typo). Off the job path: only a job
    /// naming no kernel asks.
    pub fn missing(&self, name: &str, runtime: Option<Runtime>) -> String {
        let map = self.kernels.load();
        if let (Some(set), Some(r)) = (map.get(name), runtime) {
            let other = if r == Runtime::Native { Runtime::Wasm } else { Runtime::Native };
            if set.pick(Some(other)).is_some() {
                return format!(
                    "no kernel {name:?} for runtime {}: it runs as {} (drop \"runtime\")",
                    r.as_str(),
                    other.as_str()
                );
            }
        }
        let nearest = map
            .keys()
            .map(|k| (strsim::damerau_levenshtein(name, k), k))
            .filter(|(d, k)| *d <= (k.len() / 3).max(2))
            .min();
        match nearest {
            Some((_, k)) => {
                format!("no kernel {name:?}: did you mean {k:?}? (`helix kernels` or GET /v1/kernels lists them)")
            }
            None => format!("no kernel {name:?} (`helix kernels` or GET /v1/kernels lists them)"),
        }
    }

    /// Every build serving now, ordered by name (native before Wasm).
    pub fn all(&self) -> Vec<Arc<Kernel>> {
        self.kernels.load().values().flat_map(|s| s.native.iter().chain(s.wasm.iter()).cloned()).collect()
    }

    /// Registers (or replaces) a kernel version; it inherits the counters of earlier versions.
    pub(crate) fn insert(&self, mut kernel: Kernel) {
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
    pub(crate) fn stats(&self) -> Vec<KernelRecord> {
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
    pub(crate) fn remove(&self, name: &str, runtime: Runtime) {
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
