//! Proxied-artifact operations: MLflow's path rules, run artifact roots, byte accounting.
//! No HTTP types here.

use bytes::Bytes;
use ferroflow_core::{Error, ErrorCode, Result};
use futures_util::{Stream, StreamExt};
use object_store::path::{Path, PathPart};
use prometheus::IntCounter;

use super::s3direct::{S3Direct, MAX_PARTS};
use super::store::{ArtifactStore, Download, Entry};

/// MLflow's `_UnsupportedMultipartUploadException.MESSAGE` (the client matches its prefix).
pub const MULTIPART_UPLOAD_UNSUPPORTED: &str =
    "Multipart upload is not supported for the current artifact repository";
/// MLflow's `_UnsupportedMultipartDownloadException.MESSAGE`.
pub const MULTIPART_DOWNLOAD_UNSUPPORTED: &str =
    "Multipart download is not supported for the current artifact repository";
use crate::service::TrackingService;

/// A file or directory as MLflow's `FileInfo` (path relative to the listed root).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileInfo {
    pub path: String,
    pub is_dir: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
}

/// Byte counters (`ferroflow_artifact_bytes_total{direction="in|out"}`), owned by the
/// server's metrics registry.
#[derive(Clone)]
pub struct ByteCounters {
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
}

impl Default for ByteCounters {
    fn default() -> Self {
        ByteCounters {
            bytes_in: IntCounter::new("artifact_bytes_in", "unregistered").expect("valid"),
            bytes_out: IntCounter::new("artifact_bytes_out", "unregistered").expect("valid"),
        }
    }
}

/// A download ready to stream: its size, content type and counted bytes.
pub struct Artifact {
    pub name: String,
    pub size: u64,
    pub content_type: &'static str,
    pub stream: futures_util::stream::BoxStream<'static, Result<Bytes>>,
}

#[derive(Clone)]
pub struct ArtifactService {
    store: ArtifactStore,
    tracking: TrackingService,
    counters: ByteCounters,
}

/// Percent-decodes until stable (MLflow's `_decode`), so `%252e%252e` is `..` too.
fn decode_fully(mut s: String) -> String {
    for _ in 0..8 {
        let decoded = percent_decode(&s);
        if decoded == s {
            break;
        }
        s = decoded;
    }
    s
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// MLflow's `validate_path_is_safe`: a relative path with `/` separators and no `..`
/// segment (after decoding), no backslash, NUL, `#` or drive letter. Returns its segments
/// (empty and `.` segments dropped).
pub fn safe_segments(raw: &str) -> Result<Vec<String>> {
    let path = decode_fully(raw.to_string());
    let invalid = || Error::invalid("Invalid path");
    if path.contains('#') || path.contains('\\') || path.contains('\0') {
        return Err(invalid());
    }
    if path.starts_with('/') || (path.len() >= 2 && path.as_bytes()[1] == b':') {
        return Err(invalid());
    }
    let path = path.strip_prefix("file:").unwrap_or(&path);
    if path.starts_with('/') {
        return Err(invalid());
    }
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .map(str::to_string)
        .collect();
    if segments.iter().any(|s| s == "..") {
        return Err(invalid());
    }
    Ok(segments)
}

fn to_path(segments: &[String]) -> Option<Path> {
    if segments.is_empty() {
        None
    } else {
        Some(Path::from_iter(
            segments.iter().map(|s| PathPart::from(s.as_str())),
        ))
    }
}

/// MLflow's `_guess_mime_type`: text/plain for its text extensions (and MLmodel/MLproject),
/// else by extension, else application/octet-stream.
pub fn guess_mime_type(name: &str) -> &'static str {
    const TEXT: &[&str] = &[
        "txt",
        "log",
        "err",
        "cfg",
        "conf",
        "cnf",
        "cf",
        "ini",
        "properties",
        "prop",
        "hocon",
        "toml",
        "yaml",
        "yml",
        "xml",
        "json",
        "js",
        "py",
        "py3",
        "csv",
        "tsv",
        "md",
        "rst",
        "ipynb",
        "MLmodel",
        "MLproject",
    ];
    let ext = match name.rfind('.') {
        Some(i) if i > 0 => &name[i + 1..],
        _ => name,
    };
    if TEXT.contains(&ext) {
        return "text/plain";
    }
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream")
}

/// The local directory an artifact root names when it is a `file:` URI or an absolute path —
/// the roots `mlflow server --default-artifact-root file:///…` (or an experiment's
/// `artifact_location`) gives, which the client writes itself and the server reads in place.
/// `None` for any other root, and for a path with `.`/`..` segments.
pub fn local_root(artifact_uri: &str) -> Option<std::path::PathBuf> {
    let path = if let Some(rest) = artifact_uri.strip_prefix("file://") {
        rest.strip_prefix("localhost").unwrap_or(rest)
    } else if let Some(rest) = artifact_uri.strip_prefix("file:") {
        rest
    } else {
        artifact_uri
    };
    if !path.starts_with('/') {
        return None;
    }
    let path = decode_fully(path.split(['?', '#']).next().unwrap_or("").to_string());
    if path.contains('\0') || path.split('/').any(|seg| seg == ".." || seg == ".") {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

fn proxied_root_segments(artifact_uri: &str) -> Result<Vec<String>> {
    let not_proxied = || {
        Error::invalid(format!(
            "The artifact root '{artifact_uri}' is neither this server's proxied artifact store \
             (mlflow-artifacts:/) nor a local directory (file:///…)."
        ))
    };
    let path = if let Some(rest) = artifact_uri.strip_prefix("mlflow-artifacts:") {
        // mlflow-artifacts://netloc/path or mlflow-artifacts:/path
        match rest.strip_prefix("//") {
            Some(r) => r.split_once('/').map(|(_, p)| p).unwrap_or(""),
            None => rest,
        }
        .to_string()
    } else if artifact_uri.starts_with("http://") || artifact_uri.starts_with("https://") {
        let anchor = "/api/2.0/mlflow-artifacts/artifacts/";
        match artifact_uri.split_once(anchor) {
            Some((_, p)) => p.to_string(),
            None => return Err(not_proxied()),
        }
    } else {
        return Err(not_proxied());
    };
    let path = path.split(['?', '#']).next().unwrap_or("").to_string();
    Ok(path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .map(str::to_string)
        .collect())
}

impl ArtifactService {
    pub fn new(store: ArtifactStore, tracking: TrackingService, counters: ByteCounters) -> Self {
        ArtifactService {
            store,
            tracking,
            counters,
        }
    }

    pub fn store(&self) -> &ArtifactStore {
        &self.store
    }

    /// Whether the proxied multipart-upload protocol (presigned part URLs) and presigned
    /// downloads are offered: on S3 destinations, as MLflow's `S3ArtifactRepository`.
    pub fn multipart_uploads_enabled(&self) -> bool {
        self.store.direct().is_some()
    }

    fn direct(&self, unsupported: &'static str) -> Result<&S3Direct> {
        self.store
            .direct()
            .ok_or_else(|| Error::new(ErrorCode::NotImplemented, unsupported))
    }

    /// The object a multipart upload writes: the directory from the URL plus the base name
    /// of the client's local file (`path`), as MLflow's repositories join them.
    fn multipart_location(raw_dir: &str, local_file: &str) -> Result<Path> {
        let mut segments = safe_segments(raw_dir)?;
        let name = local_file.rsplit(['/', '\\']).next().unwrap_or_default();
        let name_segments = safe_segments(name)?;
        if name_segments.len() != 1 {
            return Err(Error::invalid(format!("Invalid path '{local_file}'")));
        }
        segments.extend(name_segments);
        to_path(&segments).ok_or_else(|| Error::invalid("Invalid path"))
    }

    /// `mpu/create`: opens an S3 multipart upload, returns its id and one presigned PUT URL
    /// per part.
    pub async fn create_multipart(
        &self,
        raw_dir: &str,
        local_file: &str,
        num_parts: u32,
    ) -> Result<(String, Vec<(u32, String)>)> {
        let direct = self.direct(MULTIPART_UPLOAD_UNSUPPORTED)?;
        let location = Self::multipart_location(raw_dir, local_file)?;
        if num_parts > MAX_PARTS {
            return Err(Error::invalid(format!(
                "num_parts must be at most {MAX_PARTS}, got {num_parts}"
            )));
        }
        direct.create_multipart(&location, num_parts).await
    }

    /// `mpu/complete`: assembles the uploaded parts (1..=n, with their ETags).
    pub async fn complete_multipart(
        &self,
        raw_dir: &str,
        local_file: &str,
        upload_id: &str,
        parts: Vec<(u32, String)>,
    ) -> Result<()> {
        let direct = self.direct(MULTIPART_UPLOAD_UNSUPPORTED)?;
        let location = Self::multipart_location(raw_dir, local_file)?;
        direct.complete_multipart(&location, upload_id, parts).await
    }

    /// `mpu/abort`: drops the upload and its parts.
    pub async fn abort_multipart(
        &self,
        raw_dir: &str,
        local_file: &str,
        upload_id: &str,
    ) -> Result<()> {
        let direct = self.direct(MULTIPART_UPLOAD_UNSUPPORTED)?;
        let location = Self::multipart_location(raw_dir, local_file)?;
        direct.abort_multipart(&location, upload_id).await
    }

    /// `mlflow-artifacts/presigned/<path>`: a presigned GET URL and the object's size.
    pub async fn presigned_download(&self, raw_path: &str) -> Result<(String, u64)> {
        let direct = self.direct(MULTIPART_DOWNLOAD_UNSUPPORTED)?;
        let segments = safe_segments(raw_path)?;
        let location = to_path(&segments)
            .ok_or_else(|| Error::invalid("Invalid path: an artifact path is required"))?;
        direct.presigned_get(&location).await
    }

    /// Stores `raw_path` from the request body stream; returns the bytes written.
    pub async fn upload<S, E>(&self, raw_path: &str, body: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let segments = safe_segments(raw_path)?;
        let path = to_path(&segments)
            .ok_or_else(|| Error::invalid("Invalid path: an artifact path is required"))?;
        let counter = self.counters.bytes_in.clone();
        let counted = body.map(move |chunk| {
            if let Ok(c) = &chunk {
                counter.inc_by(c.len() as u64);
            }
            chunk
        });
        self.store.put_stream(&path, counted).await
    }

    /// The storage segments of `uri`: a proxied artifact URI (`mlflow-artifacts:/…`) or a path
    /// relative to the destination root; `..` and other escapes are refused.
    fn uri_segments(uri: &str) -> Result<Vec<String>> {
        let raw = if uri.starts_with("mlflow-artifacts:")
            || uri.starts_with("http://")
            || uri.starts_with("https://")
        {
            proxied_root_segments(uri)?.join("/")
        } else {
            uri.to_string()
        };
        safe_segments(&raw)
    }

    /// Resolves `runs:/<run_id>/<path>` to the run's artifact URI joined with the path;
    /// other URIs are returned as given.
    pub async fn resolve_runs_uri(&self, uri: &str) -> Result<String> {
        let uri = uri.trim();
        let Some(rest) = uri.strip_prefix("runs:/") else {
            return Ok(uri.to_string());
        };
        let (run_id, path) = rest
            .split_once('/')
            .ok_or_else(|| Error::invalid(format!("'{uri}' must be runs:/<run_id>/<path>")))?;
        let run = self.tracking.get_run(run_id).await?;
        Ok(format!(
            "{}/{path}",
            run.info.artifact_uri.trim_end_matches('/')
        ))
    }

    /// The object store and path of an artifact named by a proxied URI or a
    /// destination-relative path, for readers that stream it themselves (Parquet).
    pub fn locate(
        &self,
        uri: &str,
    ) -> Result<(std::sync::Arc<dyn object_store::ObjectStore>, Path)> {
        let segments = Self::uri_segments(uri)?;
        let path = to_path(&segments)
            .ok_or_else(|| Error::invalid(format!("Invalid artifact URI '{uri}'")))?;
        Ok((self.store.object_store(), path))
    }

    /// Reads a whole artifact named by a proxied URI or a destination-relative path, refusing
    /// anything larger than `limit` bytes.
    pub async fn read_all(&self, uri: &str, limit: u64) -> Result<Bytes> {
        let segments = Self::uri_segments(uri)?;
        let mut artifact = self.open(&segments).await?;
        if artifact.size > limit {
            return Err(Error::invalid(format!(
                "'{uri}' is {} bytes; the limit is {limit}",
                artifact.size
            )));
        }
        let mut out = Vec::with_capacity(artifact.size as usize);
        while let Some(chunk) = artifact.stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(out))
    }

    /// Writes `bytes` at `relative` under the artifact root `root_uri` (a proxied URI such as a
    /// run's or a logged model's artifact location).
    pub async fn write_under(&self, root_uri: &str, relative: &str, bytes: Bytes) -> Result<u64> {
        let mut segments = Self::uri_segments(root_uri)?;
        segments.extend(safe_segments(relative)?);
        let path = to_path(&segments)
            .ok_or_else(|| Error::invalid("Invalid path: an artifact path is required"))?;
        self.counters.bytes_in.inc_by(bytes.len() as u64);
        let body = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(bytes)]);
        self.store.put_stream(&path, body).await
    }

    /// Opens `raw_path` (relative to the destination root) for download.
    pub async fn download(&self, raw_path: &str) -> Result<Artifact> {
        let segments = safe_segments(raw_path)?;
        self.open(&segments).await
    }

    async fn open(&self, segments: &[String]) -> Result<Artifact> {
        self.open_in(&self.store, segments).await
    }

    async fn open_in(&self, store: &ArtifactStore, segments: &[String]) -> Result<Artifact> {
        let path = to_path(segments).ok_or_else(|| {
            Error::not_found("Artifact '' does not exist (the root is a directory).")
        })?;
        let Download { size, stream } = store.get(&path).await?;
        let counter = self.counters.bytes_out.clone();
        let stream = stream
            .map(move |chunk| {
                if let Ok(c) = &chunk {
                    counter.inc_by(c.len() as u64);
                }
                chunk
            })
            .boxed();
        let name = segments.last().cloned().unwrap_or_default();
        Ok(Artifact {
            content_type: guess_mime_type(&name),
            name,
            size,
            stream,
        })
    }

    /// Lists the directory `raw_path` (None: the root); paths are entry names, as MLflow's
    /// `GET /mlflow-artifacts/artifacts?path=`.
    pub async fn list(&self, raw_path: Option<&str>) -> Result<Vec<FileInfo>> {
        let segments = match raw_path {
            Some(p) => safe_segments(p)?,
            None => Vec::new(),
        };
        Ok(self
            .store
            .list(to_path(&segments).as_ref())
            .await?
            .into_iter()
            .map(|Entry { name, is_dir, size }| FileInfo {
                path: name,
                is_dir,
                file_size: size,
            })
            .collect())
    }

    /// Deletes `raw_path` (a file or a directory tree).
    pub async fn delete(&self, raw_path: &str) -> Result<()> {
        let segments = safe_segments(raw_path)?;
        self.store.delete(to_path(&segments).as_ref()).await
    }

    /// `GET /api/2.0/mlflow/artifacts/list`: the run's artifact root and the entries of
    /// `path` under it, with paths relative to the run's root.
    pub async fn list_run(
        &self,
        run_id: &str,
        path: Option<&str>,
    ) -> Result<(String, Vec<FileInfo>)> {
        let run = self.tracking.get_run(run_id).await?;
        self.list_under(run.info.artifact_uri, path).await
    }

    /// Lists `path` (None: the root) under a proxied artifact root; paths are relative to
    /// the root, as MLflow's `_list_artifacts_for_proxied_run_artifact_root`.
    async fn list_under(
        &self,
        root_uri: String,
        path: Option<&str>,
    ) -> Result<(String, Vec<FileInfo>)> {
        let relative = match path {
            Some(p) => Some(safe_segments(p)?),
            None => None,
        };
        let Some((store, mut segments)) = self.root(&root_uri)? else {
            // A local root nothing was written to yet lists as empty, as in MLflow.
            return Ok((root_uri, Vec::new()));
        };
        let rel_prefix = relative.as_ref().map(|r| r.join("/")).unwrap_or_default();
        segments.extend(relative.unwrap_or_default());
        let files = store
            .list(to_path(&segments).as_ref())
            .await?
            .into_iter()
            .map(|Entry { name, is_dir, size }| FileInfo {
                path: if rel_prefix.is_empty() {
                    name
                } else {
                    format!("{rel_prefix}/{name}")
                },
                is_dir,
                file_size: size,
            })
            .collect();
        Ok((root_uri, files))
    }

    /// `GET /get-artifact?run_id=&path=`: a run's artifact, for download.
    pub async fn download_run_artifact(&self, run_id: &str, path: &str) -> Result<Artifact> {
        let run = self.tracking.get_run(run_id).await?;
        self.download_under(&run.info.artifact_uri, path).await
    }

    /// `path` (checked as MLflow's `validate_path_is_safe`) under a proxied artifact URI, e.g.
    /// a model version's location.
    pub async fn download_under(&self, artifact_uri: &str, path: &str) -> Result<Artifact> {
        let relative = safe_segments(path)?;
        let Some((store, mut segments)) = self.root(artifact_uri)? else {
            return Err(Error::not_found(format!(
                "Artifact '{path}' does not exist under '{artifact_uri}'."
            )));
        };
        segments.extend(relative);
        self.open_in(&store, &segments).await
    }

    /// The store holding an artifact root's files and the root's segments inside it: this
    /// server's destination for a proxied root; the directory itself for a local root
    /// (`None` while that directory does not exist). Paths joined to the segments are checked
    /// by `safe_segments`, so nothing outside the root is reachable.
    fn root(&self, artifact_uri: &str) -> Result<Option<(ArtifactStore, Vec<String>)>> {
        match local_root(artifact_uri) {
            Some(dir) => Ok(ArtifactStore::open_existing_local(&dir)?.map(|s| (s, Vec::new()))),
            None => Ok(Some((
                self.store.clone(),
                proxied_root_segments(artifact_uri)?,
            ))),
        }
    }

    /// The UI's `upload-artifact`: stores `data` at `path` under the run's artifact root.
    pub async fn upload_run_artifact(&self, run_id: &str, path: &str, data: Bytes) -> Result<u64> {
        let run = self.tracking.get_run(run_id).await?;
        let relative = safe_segments(path)?;
        let (store, mut segments) = match local_root(&run.info.artifact_uri) {
            // A local root is created on first write, as the client's local repository does.
            Some(dir) => (ArtifactStore::open(&dir.display().to_string())?, Vec::new()),
            None => (
                self.store.clone(),
                proxied_root_segments(&run.info.artifact_uri)?,
            ),
        };
        segments.extend(relative);
        let path = to_path(&segments)
            .ok_or_else(|| Error::invalid("Invalid path: an artifact path is required"))?;
        self.counters.bytes_in.inc_by(data.len() as u64);
        store
            .put_stream(
                &path,
                futures_util::stream::iter([Ok::<_, std::convert::Infallible>(data)]),
            )
            .await
    }

    /// Copies every file under a proxied artifact URI (`mlflow-artifacts:/…`, e.g. a model
    /// version's location) into the local directory `dest`; returns the files copied.
    pub async fn download_tree(&self, artifact_uri: &str, dest: &std::path::Path) -> Result<usize> {
        let Some((store, segments)) = self.root(artifact_uri)? else {
            return Err(Error::not_found(format!(
                "No artifacts found at '{artifact_uri}'"
            )));
        };
        let root = match to_path(&segments) {
            Some(p) => p,
            // A local root is its own directory; the proxied destination as a whole is not a
            // model.
            None if local_root(artifact_uri).is_some() => Path::default(),
            None => {
                return Err(Error::invalid(format!(
                    "'{artifact_uri}' names the whole artifact store"
                )))
            }
        };
        let files = store.list_recursive(&root).await?;
        if files.is_empty() {
            return Err(Error::not_found(format!(
                "No artifacts found at '{artifact_uri}'"
            )));
        }
        let io =
            |e: std::io::Error| Error::internal(format!("writing into {}: {e}", dest.display()));
        for (relative, _) in &files {
            let mut target = dest.to_path_buf();
            for part in relative {
                // object_store paths never hold `..` or separators; refuse them anyway.
                if part == ".." || part.contains(['/', '\\']) {
                    return Err(Error::invalid(format!("Invalid artifact path '{part}'")));
                }
                target.push(part);
            }
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(io)?;
            }
            let mut all = segments.clone();
            all.extend(relative.iter().cloned());
            let path = to_path(&all).expect("non-empty path");
            let Download { mut stream, .. } = store.get(&path).await?;
            let mut file = tokio::fs::File::create(&target).await.map_err(io)?;
            while let Some(chunk) = stream.next().await {
                tokio::io::AsyncWriteExt::write_all(&mut file, &chunk?)
                    .await
                    .map_err(io)?;
            }
            tokio::io::AsyncWriteExt::flush(&mut file)
                .await
                .map_err(io)?;
        }
        Ok(files.len())
    }

    /// `logged-models/{id}/artifacts/directories`: a logged model's artifacts under `path`.
    pub async fn list_logged_model(
        &self,
        model_id: &str,
        path: Option<&str>,
    ) -> Result<(String, Vec<FileInfo>)> {
        let model = self.tracking.get_logged_model(model_id).await?;
        self.list_under(model.info.artifact_uri, path).await
    }

    /// `logged-models/{id}/artifacts/files?artifact_file_path=`: one of its files.
    pub async fn download_logged_model_artifact(
        &self,
        model_id: &str,
        path: &str,
    ) -> Result<Artifact> {
        safe_segments(path)?;
        let model = self.tracking.get_logged_model(model_id).await?;
        self.download_under(&model.info.artifact_uri, path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_variants_are_refused() {
        for p in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "%2e%2e/x",
            "%2E%2E%2Fx",
            "%252e%252e/x",
            "a\\..\\x",
            "a\0b",
            "C:/x",
            "file:///etc/passwd",
            "a#b",
        ] {
            assert!(safe_segments(p).is_err(), "{p:?} accepted");
        }
        assert_eq!(safe_segments("a/./b//c.txt").unwrap(), ["a", "b", "c.txt"]);
        assert_eq!(safe_segments("a..b/c").unwrap(), ["a..b", "c"]);
    }

    #[test]
    fn mime_types_follow_mlflow() {
        assert_eq!(guess_mime_type("MLmodel"), "text/plain");
        assert_eq!(guess_mime_type("a.json"), "text/plain");
        assert_eq!(guess_mime_type("a.yaml"), "text/plain");
        assert_eq!(guess_mime_type("model.pkl"), "application/octet-stream");
        assert_eq!(guess_mime_type("x.png"), "image/png");
    }

    #[test]
    fn proxied_roots() {
        assert_eq!(
            proxied_root_segments("mlflow-artifacts:/1/abc/artifacts").unwrap(),
            ["1", "abc", "artifacts"]
        );
        assert_eq!(
            proxied_root_segments("mlflow-artifacts://host:5000/1/abc/artifacts").unwrap(),
            ["1", "abc", "artifacts"]
        );
        assert_eq!(
            proxied_root_segments("http://h/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts")
                .unwrap(),
            ["1", "r", "artifacts"]
        );
        assert!(proxied_root_segments("s3://b/x").is_err());
    }
}
