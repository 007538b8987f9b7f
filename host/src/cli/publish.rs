//! `helix publish`: validate a manifests folder and write it to a shared kernel store.

use helix_host::catalog::{Store, publish_folder};
use helix_host::wasm::WasmEngine;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(super) struct PublishArgs {
    /// The store: s3://BUCKET/PREFIX (AWS_* variables say how to reach it, e.g.
    /// AWS_ENDPOINT for an S3-compatible server) or file:///FOLDER.
    #[arg(long, value_name = "URL")]
    store: String,
    /// The manifests folder to publish; every manifest must validate, or nothing is written.
    #[arg(long, default_value = "manifests", env = "HELIX_MANIFESTS")]
    manifests: PathBuf,
}

pub(super) async fn run(a: PublishArgs) -> Result<ExitCode, String> {
    let store = Store::open(&a.store, &Default::default())?;
    let engine = WasmEngine::new(Default::default()).ok();
    let keys = publish_folder(&a.manifests, &store, engine).await?;
    for key in &keys {
        println!("{}", store.location(key));
    }
    eprintln!("published {} manifests from {} to {}", keys.len(), a.manifests.display(), store.url());
    Ok(ExitCode::SUCCESS)
}
