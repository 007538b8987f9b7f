//! Compiled components on disk, keyed by the module's sha256 and the engine's configuration, so
//! a restart does not recompile.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A component's bytes: a component as it is, a core module wrapped into one.
///
/// A guest built for `wasm32-unknown-unknown` is a core module that carries its contract in
/// wit-bindgen's `component-type` section and imports no functions; wrapping it gives a
/// component of one core instance. A `wasm32-wasip2` build links the standard library's WASI
/// imports, each instantiated as a shim at every job: measured (`--bench wasm_per_job`),
/// instantiate + empty call 7.35-8.29 -> 4.65-5.09 us at p50.
fn as_component(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    if !wasmparser::Parser::is_core_wasm(bytes) {
        return Ok(bytes.into());
    }
    wit_component::ComponentEncoder::default()
        .module(bytes)
        .and_then(|e| e.validate(true).encode())
        .map(Into::into)
        .map_err(|e| {
            format!(
                "is a core Wasm module that cannot be made a component ({e:#}); build it with \
                 helix-kernel-sdk for wasm32-unknown-unknown (or wasm32-wasip2)"
            )
        })
}

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
    let component = Component::new(engine, &as_component(bytes)?).map_err(|e| format!("not a valid component: {e}"))?;
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
