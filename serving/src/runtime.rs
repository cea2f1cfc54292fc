//! Loading the ONNX Runtime shared library, once per process, without ever panicking.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ferroflow_core::{Error, ErrorCode};

/// Whether ONNX Runtime can be used in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeStatus {
    Ready { version: String },
    Unavailable { reason: String },
}

struct Loaded {
    environment: ort::environment::Environment,
    version: String,
}

static LOADED: OnceLock<Loaded> = OnceLock::new();
static LAST_FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// Loads ONNX Runtime from `lib`, else from `ORT_DYLIB_PATH`. Idempotent: once loaded, later
/// calls return the loaded version whatever path they give. A failure is remembered for
/// [`runtime_status`] and may be retried with another path.
pub fn init_runtime(lib: Option<&Path>) -> RuntimeStatus {
    // Serialises loaders so two callers cannot race ort's one-environment-per-process rule.
    let mut last_failure = LAST_FAILURE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(loaded) = LOADED.get() {
        return RuntimeStatus::Ready {
            version: loaded.version.clone(),
        };
    }
    match load(lib) {
        Ok(loaded) => {
            let version = loaded.version.clone();
            tracing::info!(%version, "ONNX Runtime loaded");
            let _ = LOADED.set(loaded);
            *last_failure = None;
            RuntimeStatus::Ready { version }
        }
        Err(reason) => {
            tracing::warn!(%reason, "ONNX Runtime is not available");
            *last_failure = Some(reason.clone());
            RuntimeStatus::Unavailable { reason }
        }
    }
}

/// The current state, without trying to load anything.
pub fn runtime_status() -> RuntimeStatus {
    if let Some(loaded) = LOADED.get() {
        return RuntimeStatus::Ready {
            version: loaded.version.clone(),
        };
    }
    let reason = LAST_FAILURE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(|| "init_runtime was not called".to_string());
    RuntimeStatus::Unavailable { reason }
}

/// The environment sessions are built in, or the 503 every load and predict answers without it.
/// The loaded ONNX Runtime environment (for sessions built outside [`crate::LoadedModel`]).
pub fn environment() -> Result<&'static ort::environment::Environment, Error> {
    match LOADED.get() {
        Some(loaded) => Ok(&loaded.environment),
        None => {
            let RuntimeStatus::Unavailable { reason } = runtime_status() else {
                unreachable!("not loaded means unavailable")
            };
            Err(unavailable_error(&reason))
        }
    }
}

/// The 503 that names the fix.
pub fn unavailable_error(reason: &str) -> Error {
    Error::new(
        ErrorCode::TemporarilyUnavailable,
        format!(
            "ONNX Runtime is not loaded ({reason}); run scripts/onnxruntime.sh and start ferroflow \
             with --onnxruntime-lib <path> or ORT_DYLIB_PATH=<path>"
        ),
    )
}

fn load(lib: Option<&Path>) -> Result<Loaded, String> {
    let path: PathBuf = match lib {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("ORT_DYLIB_PATH") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => return Err("no library path given and ORT_DYLIB_PATH is not set".to_string()),
        },
    };
    // ort resolves relative paths against the executable's directory; make ours absolute first
    // and check it exists, so the message names the path the user gave.
    let path = if path.is_relative() {
        std::env::current_dir()
            .map(|d| d.join(&path))
            .unwrap_or(path)
    } else {
        path
    };
    if !path.is_file() {
        return Err(format!("{} does not exist", path.display()));
    }
    let builder = ort::init_from(&path).map_err(|e| e.to_string())?;
    let environment = builder
        .with_name("ferroflow")
        .with_telemetry(false)
        .build()
        .map_err(|e| format!("creating the ONNX Runtime environment failed: {e}"))?;
    Ok(Loaded {
        environment,
        version: version_from_build_info(ort::info()),
    })
}

/// `ORT Build Info: git-branch=rel-1.31.1, ...` → `1.31.1`; the whole string if it differs.
fn version_from_build_info(info: &str) -> String {
    info.split([',', ' '])
        .find_map(|part| part.strip_prefix("git-branch=rel-"))
        .map(str::to_string)
        .unwrap_or_else(|| info.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_read_from_the_build_info() {
        assert_eq!(
            version_from_build_info("ORT Build Info: git-branch=rel-1.31.1, git-commit-id=abc"),
            "1.31.1"
        );
    }

    #[test]
    fn the_unavailable_error_is_a_503_naming_the_fix() {
        let err = unavailable_error("x does not exist");
        assert_eq!(err.code, ErrorCode::TemporarilyUnavailable);
        assert!(err.message.contains("scripts/onnxruntime.sh"));
        assert!(err.message.contains("ORT_DYLIB_PATH"));
    }
}
