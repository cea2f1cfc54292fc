//! Artifact URIs as MLflow resolves them (mlflow/utils/uri.py).

use std::path::Path;

/// The URI's scheme (`s3`, `file`, `mlflow-artifacts`), or `None` for a plain path.
pub fn scheme(uri: &str) -> Option<&str> {
    let (scheme, _) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    // A one-letter scheme is a Windows drive (`C:\…`), as urllib would see it otherwise.
    (first.is_ascii_alphabetic()
        && scheme.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// MLflow's `resolve_uri_if_local`: a relative local path becomes absolute against `cwd` (a
/// plain path stays a plain path; `file:rel` becomes `file:///cwd/rel`); anything else — an
/// absolute path, `file:///…`, a remote URI — is returned as given.
pub fn resolve_if_local(uri: &str, cwd: &Path) -> String {
    let join = |rel: &str| {
        // pathlib's joinpath: `.` components and repeated slashes go, `..` stays.
        let mut out = cwd.to_string_lossy().trim_end_matches('/').to_string();
        for part in rel.split('/').filter(|p| !p.is_empty() && *p != ".") {
            out.push('/');
            out.push_str(part);
        }
        if out.is_empty() {
            "/".to_string()
        } else {
            out
        }
    };
    match scheme(uri) {
        None if !uri.starts_with('/') => join(uri),
        Some("file") => {
            let rest = &uri["file:".len()..];
            // `file:rel` and `file:./rel` are relative; `file:/abs`, `file:///abs` and
            // `file://host/…` are not.
            if rest.starts_with('/') {
                uri.to_string()
            } else {
                format!("file://{}", join(rest))
            }
        }
        _ => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_local_uris_resolve_against_the_working_directory_as_mlflow_does() {
        let cwd = Path::new("/srv/mlflow");
        for (given, want) in [
            ("relative/dir", "/srv/mlflow/relative/dir"),
            ("./rel2", "/srv/mlflow/rel2"),
            ("a//b/./c", "/srv/mlflow/a/b/c"),
            ("../up", "/srv/mlflow/../up"),
            ("file:rel3", "file:///srv/mlflow/rel3"),
            ("file:///tmp/abs", "file:///tmp/abs"),
            ("/tmp/abs2", "/tmp/abs2"),
            ("s3://bucket/x", "s3://bucket/x"),
            ("mlflow-artifacts:/", "mlflow-artifacts:/"),
            ("mlflow-artifacts:/exp", "mlflow-artifacts:/exp"),
        ] {
            assert_eq!(resolve_if_local(given, cwd), want, "{given}");
        }
    }
}
