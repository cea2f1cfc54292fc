//! Without the ONNX Runtime library nothing panics: loads answer 503 naming the fix.
//! (Its own test binary: the runtime is loaded at most once per process.)

use ferroflow_serving::{init_runtime, runtime_status, BatchOptions, LoadedModel, RuntimeStatus};

#[test]
fn a_missing_library_makes_loads_answer_503_with_the_fix() {
    let status = init_runtime(Some(std::path::Path::new("/nonexistent/libonnxruntime.so")));
    let RuntimeStatus::Unavailable { reason } = status else {
        panic!("loaded a library that does not exist: {status:?}")
    };
    assert!(
        reason.contains("/nonexistent/libonnxruntime.so"),
        "{reason}"
    );
    assert_eq!(runtime_status(), RuntimeStatus::Unavailable { reason });

    let err = LoadedModel::load(
        std::path::Path::new("/nonexistent-model"),
        BatchOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.code.as_str(), "TEMPORARILY_UNAVAILABLE");
    assert_eq!(err.code.http_status().as_u16(), 503);
    assert!(
        err.message.starts_with("ONNX Runtime is not loaded ("),
        "{}",
        err.message
    );
    assert!(err.message.contains("run scripts/onnxruntime.sh and start ferroflow with --onnxruntime-lib <path> or ORT_DYLIB_PATH=<path>"));
}
