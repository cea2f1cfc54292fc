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


def test_missing_artifact_download_fails(client, run_id, tmp_path):
    with pytest.raises(Exception):
        mlflow.artifacts.download_artifacts(
            artifact_uri=_uri(client, run_id, "nope.txt"), dst_path=str(tmp_path)
        )


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


def test_large_artifact_round_trip(client, run_id, tmp_path):
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
