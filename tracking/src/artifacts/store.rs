//! The artifact store handle: `object_store` over the `--artifacts-destination` (a local
//! directory by default; `s3://`, `gs://`, `az://` URLs). Only object-store access lives here.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ferroflow_core::{Error, Result};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::s3direct::S3Direct;

/// Uploads smaller than this are one `put`; larger ones stream as a multipart upload.
const SINGLE_PUT_LIMIT: usize = 8 * 1024 * 1024;
/// Part size of multipart uploads (S3 needs ≥ 5 MiB for every part but the last).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Read size of local-file downloads.
const LOCAL_READ_CHUNK: usize = 1024 * 1024;
/// Parts in flight during a multipart upload (bounds memory to about this × PART_SIZE).
const PARTS_IN_FLIGHT: usize = 4;

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name (last path segment).
    pub name: String,
    pub is_dir: bool,
    /// Size in bytes (files only).
    pub size: Option<u64>,
}

/// An object being read: its size and its bytes as a stream.
pub struct Download {
    pub size: u64,
    pub stream: BoxStream<'static, Result<Bytes>>,
}

/// Shared handle on the artifact destination; cheap to clone.
#[derive(Clone)]
pub struct ArtifactStore {
    inner: Arc<dyn ObjectStore>,
    uri: String,
    local: bool,
    /// Presigned access for clients, on S3 destinations only.
    s3: Option<S3Direct>,
    /// Where other formats (Delta tables) open the same destination.
    root: StoreRoot,
}

/// The destination as a root other readers can open: a local directory, or a bucket-level
/// object store with its `scheme://bucket` URL and the destination's prefix inside it.
#[derive(Clone, Debug)]
pub enum StoreRoot {
    Local(std::path::PathBuf),
    Bucket {
        store: Arc<dyn ObjectStore>,
        url: String,
        prefix: String,
    },
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactStore")
            .field("uri", &self.uri)
            .finish()
    }
}

fn storage(context: &str, err: object_store::Error) -> Error {
    match err {
        object_store::Error::NotFound { .. } => Error::not_found(format!("{context}: not found")),
        e => Error::internal(format!("{context}: {e}")),
    }
}

/// Environment value of the first variable that is set and non-empty.
fn env_any(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

impl ArtifactStore {
    /// Opens the destination: a local directory (created if missing, `file://` accepted) or an
    /// `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` URL whose
    /// credentials come from the usual environment variables.
    pub fn open(destination: &str) -> Result<ArtifactStore> {
        let (scheme, rest) = match destination.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => (String::new(), destination),
        };
        let cloud = |e: object_store::Error| {
            Error::invalid(format!(
                "Cannot open artifact destination '{destination}': {e}"
            ))
        };
        let mut s3_direct = None;
        let bucket_root = |store: Arc<dyn ObjectStore>, scheme: &str| {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            StoreRoot::Bucket {
                store,
                url: format!("{scheme}://{bucket}"),
                prefix: prefix.trim_matches('/').to_string(),
            }
        };
        let root;
        let (inner, local): (Arc<dyn ObjectStore>, bool) = match scheme.as_str() {
            "" | "file" => {
                let dir = std::path::PathBuf::from(rest);
                std::fs::create_dir_all(&dir).map_err(|e| {
                    Error::invalid(format!(
                        "Cannot create artifact destination '{}': {e}",
                        dir.display()
                    ))
                })?;
                let fs = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(cloud)?
                    .with_automatic_cleanup(true);
                root = StoreRoot::Local(std::path::absolute(&dir).unwrap_or(dir));
                (Arc::new(fs), true)
            }
            "s3" | "s3a" => {
                let bucket = rest.split('/').next().unwrap_or_default();
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_url(format!("s3://{bucket}"));
                if let Some(endpoint) = env_any(&["MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"]) {
                    if endpoint.starts_with("http://") {
                        b = b.with_allow_http(true);
                    }
                    b = b.with_endpoint(endpoint);
                }
                let region = env_any(&["AWS_REGION", "AWS_DEFAULT_REGION"])
                    .unwrap_or_else(|| "us-east-1".to_string());
                b = b.with_region(&region);
                let s3 = b.build().map_err(cloud)?;
                let prefix = rest.split_once('/').map(|(_, p)| p).unwrap_or("");
                s3_direct = Some(S3Direct::new(s3.clone(), prefix, &region));
                root = bucket_root(Arc::new(s3.clone()), "s3");
                (with_prefix(s3, rest), false)
            }
            "gs" => {
                let bucket = rest.split('/').next().unwrap_or_default();
                let gcs = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(format!("gs://{bucket}"))
                    .build()
                    .map_err(cloud)?;
                root = bucket_root(Arc::new(gcs.clone()), "gs");
                (with_prefix(gcs, rest), false)
            }
            "az" | "azure" | "abfs" | "abfss" | "wasb" | "wasbs" => {
                let container = rest.split('/').next().unwrap_or_default();
                let az = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(format!("{scheme}://{container}"))
                    .build()
                    .map_err(cloud)?;
                let az: Arc<dyn ObjectStore> = Arc::new(az);
                root = bucket_root(az.clone(), "az");
                (with_prefix(az, rest), false)
            }
            other => {
                return Err(Error::invalid(format!(
                    "Unsupported artifact destination scheme '{other}' in '{destination}' \
                     (use a directory, s3://, gs:// or az://)"
                )))
            }
        };
        Ok(ArtifactStore {
            inner,
            uri: destination.to_string(),
            local,
            s3: s3_direct,
            root,
        })
    }

    /// A local directory that already exists (a `file://` artifact root outside the proxied
    /// destination), opened without creating anything; `None` when it does not exist.
    pub fn open_existing_local(dir: &std::path::Path) -> Result<Option<ArtifactStore>> {
        if !dir.is_dir() {
            return Ok(None);
        }
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| {
            Error::internal(format!(
                "Cannot open artifact root '{}': {e}",
                dir.display()
            ))
        })?;
        Ok(Some(ArtifactStore {
            inner: Arc::new(fs),
            uri: dir.display().to_string(),
            local: true,
            s3: None,
            root: StoreRoot::Local(dir.to_path_buf()),
        }))
    }

    /// The object store under the destination (paths are relative to it).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.inner.clone()
    }

    /// The destination as a root for other readers and writers (Delta tables).
    pub fn root(&self) -> &StoreRoot {
        &self.root
    }

    /// Presigned (direct) client access, offered on S3 destinations.
    pub fn direct(&self) -> Option<&S3Direct> {
        self.s3.as_ref()
    }

    /// The destination this handle was opened on.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Writes `location` from a stream of chunks in bounded memory; returns the bytes written.
    /// The object appears only once the whole stream is written (a failed upload leaves none).
    pub async fn put_stream<S, E>(&self, location: &Path, mut body: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let ctx = format!("writing artifact '{location}'");
        let local = self.local;
        // A file where the path needs a directory (local store): the client's mistake.
        let storage = |ctx: &str, e: object_store::Error| {
            if local && is_dir_error(&e) {
                Error::invalid(format!(
                    "Cannot write artifact '{location}': an artifact of a parent's name is a file"
                ))
            } else {
                storage(ctx, e)
            }
        };
        let read_err = |e: E| Error::invalid(format!("Failed to read the request body: {e}"));
        if local && self.inner.list(Some(location)).next().await.is_some() {
            return Err(Error::invalid(format!(
                "Cannot write artifact '{location}': it is a directory holding other artifacts"
            )));
        }
        // Small bodies: one put.
        let mut first = BytesMut::new();
        let mut total = 0u64;
        while first.len() < SINGLE_PUT_LIMIT {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(read_err)?;
                    total += chunk.len() as u64;
                    first.extend_from_slice(&chunk);
                }
                None => {
                    self.inner
                        .put(location, PutPayload::from_bytes(first.freeze()))
                        .await
                        .map_err(|e| storage(&ctx, e))?;
                    return Ok(total);
                }
            }
        }
        // Large bodies: multipart, a few parts in flight.
        let upload = self
            .inner
            .put_multipart(location)
            .await
            .map_err(|e| storage(&ctx, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        writer.put(first.freeze());
        loop {
            let next = match body.next().await {
                None => break,
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => {
                    let _ = writer.abort().await;
                    return Err(read_err(e));
                }
            };
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = writer.abort().await;
                return Err(storage(&ctx, e));
            }
            total += next.len() as u64;
            writer.put(next);
        }
        writer.finish().await.map_err(|e| storage(&ctx, e))?;
        Ok(total)
    }

    /// Opens `location` for reading; `RESOURCE_DOES_NOT_EXIST` when there is no such object.
    pub async fn get(&self, location: &Path) -> Result<Download> {
        let res = self.inner.get(location).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => {
                Error::not_found(format!("Artifact '{location}' does not exist."))
            }
            // A directory on the local store.
            e if self.local && is_dir_error(&e) => {
                Error::not_found(format!("Artifact '{location}' does not exist."))
            }
            e => storage(&format!("reading artifact '{location}'"), e),
        })?;
        let size = res.meta.size;
        let ctx = format!("reading artifact '{location}'");
        let stream = match res.payload {
            // object_store reads local files 8 KiB per blocking task; larger reads keep a
            // download from being bound by task hand-offs.
            object_store::GetResultPayload::File(file, _) => file_stream(file, ctx),
            object_store::GetResultPayload::Stream(s) => {
                s.map_err(move |e| storage(&ctx, e)).boxed()
            }
        };
        Ok(Download { size, stream })
    }

    /// The immediate children of the directory `dir` (None: the root), sorted by name. A
    /// file or a missing path lists as empty, as MLflow's repositories do.
    pub async fn list(&self, dir: Option<&Path>) -> Result<Vec<Entry>> {
        let res = self
            .inner
            .list_with_delimiter(dir)
            .await
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(object_store::ListResult {
                    common_prefixes: Vec::new(),
                    objects: Vec::new(),
                }),
                e => Err(storage("listing artifacts", e)),
            })?;
        let mut entries: Vec<Entry> = res
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .map(|name| Entry {
                name,
                is_dir: true,
                size: None,
            })
            .chain(res.objects.iter().filter_map(|o| {
                o.location.filename().map(|name| Entry {
                    name: name.to_string(),
                    is_dir: false,
                    size: Some(o.size),
                })
            }))
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.dedup_by(|a, b| a.name == b.name);
        Ok(entries)
    }

    /// Every object under the directory `dir`, with its path relative to `dir`.
    pub async fn list_recursive(&self, dir: &Path) -> Result<Vec<(Vec<String>, u64)>> {
        let prefix: Vec<String> = dir.parts().map(|p| p.as_ref().to_string()).collect();
        let objects: Vec<object_store::ObjectMeta> = self
            .inner
            .list(Some(dir))
            .try_collect()
            .await
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(Vec::new()),
                e => Err(storage("listing artifacts", e)),
            })?;
        Ok(objects
            .into_iter()
            .filter_map(|o| {
                let parts: Vec<String> =
                    o.location.parts().map(|p| p.as_ref().to_string()).collect();
                parts
                    .strip_prefix(prefix.as_slice())
                    .filter(|rest| !rest.is_empty())
                    .map(|rest| (rest.to_vec(), o.size))
            })
            .collect())
    }

    /// Deletes the object `location` and everything under it as a directory (None: all).
    /// Deleting nothing is not an error (as MLflow's local repository).
    pub async fn delete(&self, location: Option<&Path>) -> Result<()> {
        if let Some(loc) = location {
            match self.inner.delete(loc).await {
                Ok(()) => {}
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) if self.local && is_dir_error(&e) => {}
                Err(e) => return Err(storage(&format!("deleting artifact '{loc}'"), e)),
            }
        }
        let under: Vec<Path> = self
            .inner
            .list(location)
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(Vec::new()),
                e => Err(storage("listing artifacts to delete", e)),
            })?;
        for p in under {
            match self.inner.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage(&format!("deleting artifact '{p}'"), e)),
            }
        }
        Ok(())
    }
}

/// Bytes of a local file read in `LOCAL_READ_CHUNK` pieces on the blocking pool.
fn file_stream(file: std::fs::File, ctx: String) -> BoxStream<'static, Result<Bytes>> {
    futures_util::stream::try_unfold(Some(file), move |file| {
        let ctx = ctx.clone();
        async move {
            let Some(mut file) = file else {
                return Ok(None);
            };
            let (file, chunk) = tokio::task::spawn_blocking(move || {
                use std::io::Read;
                let mut buf = vec![0u8; LOCAL_READ_CHUNK];
                let mut filled = 0;
                while filled < buf.len() {
                    match file.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                buf.truncate(filled);
                Ok((file, buf))
            })
            .await
            .map_err(|e| Error::internal(format!("{ctx}: {e}")))?
            .map_err(|e| Error::internal(format!("{ctx}: {e}")))?;
            if chunk.is_empty() {
                Ok(None)
            } else {
                Ok(Some((Bytes::from(chunk), Some(file))))
            }
        }
    })
    .boxed()
}

fn with_prefix<T: ObjectStore>(store: T, rest: &str) -> Arc<dyn ObjectStore> {
    let prefix = rest
        .split_once('/')
        .map(|(_, p)| p.trim_matches('/'))
        .unwrap_or("");
    if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(PrefixStore::new(store, Path::from(prefix)))
    }
}

fn is_dir_error(e: &object_store::Error) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("is a directory") || text.contains("not a file") || text.contains("directory")
}
