//! A shared kernel store: manifests and their modules in an object store that every replica
//! polls: S3 or an S3-compatible server (`s3://bucket/prefix`), or a folder several machines
//! mount (`file:///mnt/kernels`), through the `object_store` crate.
//!
//! The layout under the URL's prefix:
//! - `NAME.toml`, or `FOLDER/NAME.toml` one level down: a manifest;
//! - `modules/SHA256.wasm`: a module, named by the sha256 of its bytes.
//!
//! A Wasm manifest's module is the object `modules/<module.sha256>.wasm`; its `module.path` is
//! only the file name the module gets beside the manifest in a replica's mirror. Writers put
//! the module before the manifest, and a module's name is its content, so a replica that sees a
//! manifest either finds the exact module it names or refuses it.

use crate::wasm::sha256_hex;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How a replica reaches and polls a store (`[store]` in `helix serve`'s configuration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// How often the store is listed for new, changed and removed manifests; 0 turns the poll
    /// off (`POST /v1/admin/reload` still syncs).
    pub poll_ms: u64,
    /// The local folder the store is mirrored into (emptied at start); by default a folder
    /// of its own under the system's temporary folder.
    pub mirror: Option<std::path::PathBuf>,
    /// `object_store` options, for example `aws_endpoint`, `aws_region`, `aws_allow_http`,
    /// `aws_access_key_id`; `AWS_*` environment variables are read too, and these win.
    pub options: BTreeMap<String, String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { poll_ms: 5_000, mirror: None, options: BTreeMap::new() }
    }
}

/// Whether `source` (a `--manifests` value) names a store rather than a local folder.
pub fn is_store_url(source: &str) -> bool {
    source
        .split_once("://")
        .is_some_and(|(scheme, _)| !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Request deadlines for an S3 store, before `[store.options]` (which may change them).
const STORE_TIMEOUTS: [(&str, &str); 2] = [("connect_timeout", "2s"), ("timeout", "10s")];

/// The folder modules live in, under the prefix.
const MODULES: &str = "modules";

/// The key, under the prefix, of the module whose bytes hash to `sha256`.
pub fn module_key(sha256: &str) -> String {
    format!("{MODULES}/{sha256}.wasm")
}

/// One object of a listing, by its key under the prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The key under the prefix, for example `mc-option.toml` or `modules/ab12….wasm`.
    pub key: String,
    /// What changes when the object does: its ETag (or generation), else its time and size.
    pub stamp: String,
}

/// What one listing holds, sorted by key.
#[derive(Debug, Default)]
pub struct Listing {
    /// The manifests.
    pub manifests: Vec<Listed>,
    /// The sha256 of every module present.
    pub modules: std::collections::BTreeSet<String>,
}

/// An opened store.
pub struct Store {
    url: String,
    objects: Arc<dyn ObjectStore>,
    prefix: Key,
}

impl Store {
    /// Opens the store at `url` (`s3://…`, `file:///…`) with `options` over the `AWS_*`
    /// environment variables. Nothing is contacted yet. Requests give up within seconds
    /// (`STORE_TIMEOUTS`, unless the options say otherwise), so an unreachable store costs a
    /// poll, not minutes of held-up uploads.
    pub fn open(url: &str, options: &BTreeMap<String, String>) -> Result<Store, String> {
        let supported = "supported: s3://BUCKET/PREFIX, file:///FOLDER";
        let parsed = url::Url::parse(url)
            .map_err(|e| format!("{url:?} is not a store URL ({e}): write s3://BUCKET/PREFIX or file:///FOLDER"))?;
        let cannot = |e: &dyn std::fmt::Display| format!("cannot open the store {url}: {e} ({supported})");
        let (scheme, prefix) = ObjectStoreScheme::parse(&parsed).map_err(|e| cannot(&e))?;
        let objects: Arc<dyn ObjectStore> = match scheme {
            ObjectStoreScheme::Local => Arc::new(LocalFileSystem::new()),
            ObjectStoreScheme::AmazonS3 => {
                let mut builder = AmazonS3Builder::new().with_url(url).with_retry(RetryConfig {
                    backoff: Default::default(),
                    max_retries: 2,
                    retry_timeout: std::time::Duration::from_secs(5),
                });
                let from_env =
                    std::env::vars().filter(|(k, _)| k.starts_with("AWS_")).map(|(k, v)| (k.to_ascii_lowercase(), v));
                for (key, value) in from_env.filter_map(|(k, v)| Some((k.parse::<AmazonS3ConfigKey>().ok()?, v))) {
                    builder = builder.with_config(key, value);
                }
                let given = STORE_TIMEOUTS.iter().map(|(k, v)| (k.to_string(), v.to_string())).chain(options.clone());
                for (key, value) in given {
                    let key = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>().map_err(|e| {
                        format!(
                            "[store.options] {key:?}: {e} (object_store's S3 options, e.g. aws_endpoint, aws_region)"
                        )
                    })?;
                    builder = builder.with_config(key, value);
                }
                Arc::new(builder.build().map_err(|e| cannot(&e))?)
            }
            other => return Err(cannot(&format!("{other:?} is not built in"))),
        };
        Ok(Store { url: url.trim_end_matches('/').to_string(), objects, prefix })
    }

    /// The URL the store was opened with, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where `key` (under the prefix) is, as a URL, for messages.
    pub fn location(&self, key: &str) -> String {
        format!("{}/{key}", self.url)
    }

    fn full(&self, key: &str) -> Key {
        Key::from_iter(self.prefix.parts().chain(Key::from(key).parts()))
    }

    /// Lists the store once: every manifest with its stamp, and the modules present.
    pub async fn list(&self) -> Result<Listing, String> {
        use futures_util::TryStreamExt;
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let objects: Vec<_> =
            self.objects.list(prefix).try_collect().await.map_err(|e| format!("cannot list {}: {e}", self.url))?;
        let mut listing = Listing::default();
        for meta in objects {
            let Some(parts) = meta.location.prefix_match(&self.prefix) else { continue };
            let parts: Vec<String> = parts.map(|p| p.as_ref().to_string()).collect();
            match parts.as_slice() {
                [dir, file] if dir == MODULES => {
                    if let Some(sha) = file.strip_suffix(".wasm") {
                        listing.modules.insert(sha.to_string());
                    }
                }
                [_] | [_, _] if parts.last().is_some_and(|f| f.ends_with(".toml")) => {
                    let stamp = meta.e_tag.clone().or(meta.version.clone()).unwrap_or_else(|| {
                        format!("{}/{}", meta.last_modified.timestamp_nanos_opt().unwrap_or(0), meta.size)
                    });
                    listing.manifests.push(Listed { key: parts.join("/"), stamp });
                }
                _ => {}
            }
        }
        listing.manifests.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listing)
    }

    /// The bytes of `key`.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        let read = async { self.objects.get(&self.full(key)).await?.bytes().await };
        read.await.map(|b| b.to_vec()).map_err(|e| format!("cannot read {}: {e}", self.location(key)))
    }

    /// Writes `bytes` at `key` as they are. Kernels go through `publish`, which names a module
    /// by its hash; this is for tools and tests that must write something else.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), String> {
        self.objects
            .put(&self.full(key), PutPayload::from(bytes))
            .await
            .map(drop)
            .map_err(|e| format!("cannot write {}: {e}", self.location(key)))
    }

    /// Writes a kernel: its module first, under the name its bytes hash to, then the manifest
    /// at `manifest_key`, so the manifest never names a module that is not there. The caller
    /// has validated both (the manifest's sha256 is the module's).
    pub async fn publish(
        &self,
        manifest_key: &str,
        manifest_text: &str,
        module: Option<Vec<u8>>,
    ) -> Result<(), String> {
        if let Some(bytes) = module {
            self.put(&module_key(&sha256_hex(&bytes)), bytes).await?;
        }
        self.put(manifest_key, manifest_text.as_bytes().to_vec()).await
    }

    /// Removes the manifest at `key` (its module stays: another manifest may name it).
    pub async fn remove(&self, key: &str) -> Result<(), String> {
        self.objects.delete(&self.full(key)).await.map_err(|e| format!("cannot remove {}: {e}", self.location(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_folders() {
        for url in ["s3://bucket/prefix", "file:///mnt/kernels", "gs://b"] {
            assert!(is_store_url(url), "{url}");
        }
        for folder in ["manifests", "/srv/kernels", "./a://b", "C:manifests", "://x"] {
            assert!(!is_store_url(folder), "{folder}");
        }
    }

    #[test]
    fn a_bad_url_names_the_forms_that_work() {
        let e = Store::open("s3:/", &BTreeMap::new()).err().unwrap();
        assert!(e.contains("s3://BUCKET/PREFIX"), "{e}");
        let e = Store::open("ftp://host/x", &BTreeMap::new()).err().unwrap();
        assert!(e.contains("supported: s3://BUCKET/PREFIX, file:///FOLDER"), "{e}");
        let typo = [("aws_endpoit".to_string(), "http://127.0.0.1:1".to_string())].into();
        let e = Store::open("s3://bucket/prefix", &typo).err().unwrap();
        assert!(e.contains("aws_endpoit") && e.contains("[store.options]"), "{e}");
    }

    /// A folder store through `file://`: the layout, the write order and the listing.
    #[tokio::test]
    async fn a_published_kernel_lists_its_manifest_and_its_module_by_hash() {
        let dir = std::env::temp_dir().join(format!("helix-store-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&format!("file://{}/kernels", dir.display()), &BTreeMap::new()).unwrap();
        assert!(store.list().await.unwrap().manifests.is_empty());
        store.publish("k.toml", "name = \"k\"", Some(b"module bytes".to_vec())).await.unwrap();
        store.publish("sub/n.toml", "name = \"n\"", None).await.unwrap();
        let listing = store.list().await.unwrap();
        let keys: Vec<&str> = listing.manifests.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(keys, ["k.toml", "sub/n.toml"]);
        assert_eq!(listing.modules.iter().collect::<Vec<_>>(), [&sha256_hex(b"module bytes")]);
        assert_eq!(store.get(&module_key(&sha256_hex(b"module bytes"))).await.unwrap(), b"module bytes");
        let before = listing.manifests[0].stamp.clone();
        store.publish("k.toml", "name = \"k\"\nversion = \"2\"", None).await.unwrap();
        assert_ne!(store.list().await.unwrap().manifests[0].stamp, before, "a rewrite changes the stamp");
        store.remove("k.toml").await.unwrap();
        assert_eq!(store.list().await.unwrap().manifests.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
