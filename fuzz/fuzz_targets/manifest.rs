//! Manifest text from outside (a file drop or an upload): parsing and validation never panic,
//! and a manifest that validates survives a round trip through TOML unchanged.

#![no_main]

use helix_host::catalog::native_kernel;
use helix_host::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(manifest) = Manifest::parse(text, "fuzz") else { return };
    let written = toml::to_string(&manifest).expect("a valid manifest serialises");
    let again = Manifest::parse(&written, "round trip").expect("a written manifest parses again");
    assert_eq!(manifest, again, "round trip changed the manifest:\n{written}");
    let _ = native_kernel(manifest);
});
