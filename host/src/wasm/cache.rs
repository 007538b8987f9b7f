//! Compiled components on disk, keyed by the module's sha256 and the engine's configuration, so
//! a restart does not recompile.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

fn key(engine: &Engine, sha256: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{sha256}-{:016x}.cwasm", h.finish())
}

/// Loads the component from the cache, or compiles it and stores it there.
pub fn compile(engine: &Engine, bytes: &[u8], sha256: &str, dir: Option<&Path>) -> Result<Component, String> {
    let path: Option<PathBuf> = dir.map(|d| d.join(key(engine, sha256)));
    if let Some(p) = &path
        && p.exists()
    {
        // SAFETY: the cache folder is the host's own; entries are written below from
        // `Component::serialize` of the same engine configuration (the key includes its hash).
        if let Ok(c) = unsafe { Component::deserialize_file(engine, p) } {
            return Ok(c);
        }
    }
    let component = Component::new(engine, bytes).map_err(|e| format!("not a valid component: {e}"))?;
    if let (Some(p), Ok(serialized)) = (&path, component.serialize()) {
        let tmp = p.with_extension("tmp");
        let stored = std::fs::create_dir_all(p.parent().unwrap_or(Path::new(".")))
            .and_then(|_| std::fs::write(&tmp, serialized))
            .and_then(|_| std::fs::rename(&tmp, p));
        if let Err(e) = stored {
            tracing::warn!(error = %e, path = %p.display(), "cannot cache a compiled component");
        }
    }
    Ok(component)
}
