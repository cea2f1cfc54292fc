"""Proxied artifacts through the real mlflow client (mlflow-artifacts:/ run roots).

Nested paths are reached through the run's artifact URI (`mlflow-artifacts:/...`), not
`runs:/<id>/<path>`: for a `runs:/` URI with a path, mlflow 3 also looks for a logged model of
that name (POST /logged-models/search), which ferroflow does not serve yet.
"""

from __future__ import annotations

import hashlib
import os

import mlflow
import mlflow.artifacts
import pytest
from helpers import error_body
from mlflow.exceptions import MlflowException


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture
def run_id(client, experiment_id):
    return client.create_run(experiment_id).info.run_id


def _uri(client, run_id, path=""):
    root = client.get_run(run_id).info.artifact_uri
    return f"{root}/{path}" if path else root


def _list(client, run_id, path):
    """MlflowArtifactsRepository.list_artifacts(path) on the run's root: run-relative paths."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(_uri(client, run_id)).list_artifacts(path)


def test_run_artifact_root_is_proxied(client, run_id):
    assert client.get_run(run_id).info.artifact_uri.startswith("mlflow-artifacts:")


def test_log_artifact_and_download(client, run_id, tmp_path):
    src = tmp_path / "hello.txt"
    src.write_text("hello artifacts\n")
    with mlflow.start_run(run_id=run_id):
        mlflow.log_artifact(str(src))
        mlflow.log_artifact(str(src), artifact_path="sub/dir")

    top = client.list_artifacts(run_id)
    assert [(f.path, f.is_dir) for f in top] == [("hello.txt", False), ("sub", True)]
    assert top[0].file_size == len("hello artifacts\n")
    nested = _list(client, run_id, "sub/dir")
    assert [(f.path, f.is_dir, f.file_size) for f in nested] == [("sub/dir/hello.txt", False, 16)]

    out = mlflow.artifacts.download_artifacts(
        artifact_uri=_uri(client, run_id, "hello.txt"), dst_path=str(tmp_path / "out")
    )
    assert open(out).read() == "hello artifacts\n"


def test_log_artifacts_nested_dir(client, run_id, tmp_path):
    src = tmp_path / "model"
    (src / "data" / "deep").mkdir(parents=True)
    (src / "MLmodel").write_text("flavors: {}\n")
    (src / "data" / "weights.bin").write_bytes(os.urandom(4096))
    (src / "data" / "deep" / "notes.json").write_text('{"a": 1}')
    with mlflow.start_run(run_id=run_id):
        mlflow.log_artifacts(str(src), artifact_path="model")

    listed = _list(client, run_id, "model")
    assert [(f.path, f.is_dir) for f in listed] == [
        ("model/MLmodel", False),
        ("model/data", True),
    ]
    deep = _list(client, run_id, "model/data")
    assert [(f.path, f.is_dir) for f in deep] == [
        ("model/data/deep", True),
        ("model/data/weights.bin", False),
    ]
    # A file path lists as empty, as MLflow's repositories answer.
    assert _list(client, run_id, "model/MLmodel") == []

    dst = tmp_path / "dl"
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=_uri(client, run_id, "model"), dst_path=str(dst)
    )
    for rel in ["MLmodel", "data/weights.bin", "data/deep/notes.json"]:
        assert (src / rel).read_bytes() == open(os.path.join(local, rel), "rb").read(), rel

    # The whole run, through an artifact URI.
    all_local = mlflow.artifacts.download_artifacts(
        artifact_uri=_uri(client, run_id), dst_path=str(tmp_path / "all")
    )
    assert os.path.exists(os.path.join(all_local, "model", "data", "deep", "notes.json"))


def test_missing_artifact_download_fails(client, rest, run_id, tmp_path, server_kind):
    # The client wraps every failed file into one MlflowException naming the server's answer.
    with pytest.raises(MlflowException) as info:
        mlflow.artifacts.download_artifacts(
            artifact_uri=_uri(client, run_id, "nope.txt"), dst_path=str(tmp_path)
        )
    message = info.value.message
    assert "nope.txt" in message, message
    if server_kind != "ferroflow":
        return
    assert "404" in message and "RESOURCE_DOES_NOT_EXIST" in message, message
    # The same over REST: MLflow's error body, not a 500.
    root = _uri(client, run_id).split("mlflow-artifacts:/", 1)[-1]
    resp = rest.get(f"/api/2.0/mlflow-artifacts/artifacts/{root.lstrip('/')}/nope.txt")
    error_body(resp, "RESOURCE_DOES_NOT_EXIST", 404)


def test_an_upload_onto_a_directory_or_under_a_file_is_refused_and_writes_nothing(
        rest, client, run_id, server_kind, artifacts_destination):
    if server_kind != "ferroflow":
        pytest.skip("MLflow answers these with a 500")
    if artifacts_destination and "://" in artifacts_destination:
        pytest.skip("object stores have no directories: a key may also be a prefix there")
    root = _uri(client, run_id).split("mlflow-artifacts:/", 1)[-1].lstrip("/")
    base = f"/api/2.0/mlflow-artifacts/artifacts/{root}"
    assert rest.put(f"{base}/d/inner.txt", content=b"inner").status_code == 200
    for body in (b"small", b"x" * (20 << 20)):  # one put, and a multipart upload
        error_body(rest.put(f"{base}/d", content=body), "INVALID_PARAMETER_VALUE", 400)
    error_body(rest.put(f"{base}/d/inner.txt/below", content=b"x"), "INVALID_PARAMETER_VALUE", 400)
    listed = rest.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": f"{root}/d"}).json()
    assert [f["path"] for f in listed["files"]] == ["inner.txt"], listed
    assert rest.get(f"{base}/d/inner.txt").content == b"inner"


def test_rest_list_and_get_artifact(rest, client, run_id, tmp_path):
    src = tmp_path / "metrics.csv"
    src.write_text("a,b\n1,2\n")
    with mlflow.start_run(run_id=run_id):
        mlflow.log_artifact(str(src), artifact_path="tables")
    resp = rest.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run_id})
    assert resp.status_code == 200
    body = resp.json()
    assert body["root_uri"] == client.get_run(run_id).info.artifact_uri
    assert body["files"] == [{"path": "tables", "is_dir": True}]

    resp = rest.get("/get-artifact", params={"run_id": run_id, "path": "tables/metrics.csv"})
    assert resp.status_code == 200
    assert resp.content == b"a,b\n1,2\n"
    assert resp.headers["content-type"].startswith("text/plain")

    bad = rest.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": "../x"})
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_large_artifact_round_trip(client, run_id, tmp_path, monkeypatch):
    # 200 MiB through a debug build on a loaded machine: more than the suite's 30 s per request.
    # mlflow reads MLFLOW_HTTP_REQUEST_TIMEOUT on every request (rest_utils.http_request).
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "180")
    size = 200 * 1024 * 1024
    src = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    with open(src, "wb") as f:
        for i in range(size // len(block)):
            f.write(block[i % 256 :] + block[: i % 256])
    expected = _sha256(src)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_artifact(str(src), artifact_path="large")
    (info,) = _list(client, run_id, "large")
    assert info.file_size == size
    src.unlink()
    out = mlflow.artifacts.download_artifacts(
        artifact_uri=_uri(client, run_id, "large/big.bin"), dst_path=str(tmp_path / "dl")
    )
    assert _sha256(out) == expected


def _s3_destination():
    """The S3 destination the suite's server was started on, or None (local directory)."""
    dest = os.environ.get("FERROFLOW_TEST_ARTIFACTS_DESTINATION", "")
    return dest if dest.startswith("s3://") else None


def _run_dir(client, run_id):
    """The run's artifact directory relative to the mlflow-artifacts root."""
    return _uri(client, run_id).split("mlflow-artifacts:/", 1)[1].strip("/")


def test_server_info_advertises_multipart_only_on_s3(rest):
    info = rest.get("/api/3.0/mlflow/server-info").json()
    on_s3 = _s3_destination() is not None
    assert info["multipart_uploads_enabled"] is on_s3
    assert info["multipart_downloads_enabled"] is on_s3


def test_multipart_upload_goes_through_presigned_part_urls(
    client, run_id, tmp_path, monkeypatch
):
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    if _s3_destination() is None:
        pytest.skip("proxied multipart upload needs an S3 destination (the S3 run covers it)")
    # Three parts: S3 wants every part but the last to be at least 5 MiB.
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1 << 20))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 << 20))
    calls = []
    original = HttpArtifactRepository._try_multipart_upload

    def spy(self, local_file, artifact_path=None):
        calls.append(artifact_path)
        return original(self, local_file, artifact_path)

    monkeypatch.setattr(HttpArtifactRepository, "_try_multipart_upload", spy)
    src = tmp_path / "parts.bin"
    src.write_bytes(os.urandom(12 << 20))
    with mlflow.start_run(run_id=run_id):
        mlflow.log_artifact(str(src), artifact_path="mpu")
    assert calls == ["mpu"]
    (info,) = _list(client, run_id, "mpu")
    assert info.path == "mpu/parts.bin" and info.file_size == 12 << 20
    # The download goes through a presigned GET (multipart download) on S3.
    out = mlflow.artifacts.download_artifacts(
        artifact_uri=_uri(client, run_id, "mpu/parts.bin"), dst_path=str(tmp_path / "dl")
    )
    assert _sha256(out) == _sha256(src)


def test_multipart_abort_and_bad_requests(rest, client, run_id):
    run_dir = _run_dir(client, run_id)
    create = rest.post(
        f"/api/2.0/mlflow-artifacts/mpu/create/{run_dir}/x",
        json={"path": "/tmp/local/file.bin", "num_parts": 2},
    )
    if _s3_destination() is None:
        assert create.status_code == 501
        assert create.json() == {
            "error_code": "NOT_IMPLEMENTED",
            "message": "Multipart upload is not supported for the current artifact repository",
        }
        presigned = rest.get(f"/api/2.0/mlflow-artifacts/presigned/{run_dir}/x/file.bin")
        assert presigned.status_code == 501
        assert presigned.json()["error_code"] == "NOT_IMPLEMENTED"
    else:
        assert create.status_code == 200, create.text
        body = create.json()
        assert [c["part_number"] for c in body["credentials"]] == [1, 2]
        assert all("X-Amz-Signature=" in c["url"] for c in body["credentials"])
        upload_id = body["upload_id"]
        abort = rest.post(
            f"/api/2.0/mlflow-artifacts/mpu/abort/{run_dir}/x",
            json={"path": "/tmp/local/file.bin", "upload_id": upload_id},
        )
        assert abort.status_code == 200 and abort.json() == {}
        # Parts must be 1..n in order (checked before S3 is asked).
        done = rest.post(
            f"/api/2.0/mlflow-artifacts/mpu/complete/{run_dir}/x",
            json={
                "path": "/tmp/local/file.bin",
                "upload_id": upload_id,
                "parts": [{"part_number": 2, "etag": '"abc"'}],
            },
        )
        assert done.status_code == 400, done.text
        assert done.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        # The aborted upload left no object.
        gone = rest.get(f"/api/2.0/mlflow-artifacts/presigned/{run_dir}/x/file.bin")
        assert gone.status_code == 404
        missing = rest.get(f"/api/2.0/mlflow-artifacts/presigned/{run_dir}/x/nothing.bin")
        assert missing.status_code == 404
    # Whatever the store: a traversal path or a missing field is a 400 first.
    bad = rest.post(
        "/api/2.0/mlflow-artifacts/mpu/create/%2E%2E/etc", json={"path": "f", "num_parts": 1}
    )
    assert bad.status_code == 400
    no_path = rest.post(f"/api/2.0/mlflow-artifacts/mpu/create/{run_dir}", json={"num_parts": 1})
    assert no_path.status_code == 400
    assert no_path.json()["error_code"] == "INVALID_PARAMETER_VALUE"
