"""Registers iris LR (ZipMap), RF and MLP ONNX models on a tracking server and creates a
batching and a non-batching serving endpoint for each. Writes <out>/<model>.onnx and
<out>/body.json (a one-row `inputs` request).

Usage: serving_models.py TRACKING_URL OUT_DIR
"""

import json
import sys
import warnings

import httpx
import mlflow
import mlflow.onnx
import numpy as np
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

warnings.simplefilter("ignore")
url, out = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(url)
iris = load_iris()
X, y = iris.data.astype(np.float32), iris.target
models = {
    "lr": (LogisticRegression(max_iter=500).fit(X, y), True),
    "rf": (RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y), False),
    "mlp": (MLPClassifier(hidden_layer_sizes=(32,), max_iter=500, random_state=0).fit(X, y), False),
}
mlflow.set_experiment("serving-bench")
for key, (model, zipmap) in models.items():
    onx = convert_sklearn(
        model,
        initial_types=[("X", FloatTensorType([None, 4]))],
        options=None if zipmap else {id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    with open(f"{out}/{key}.onnx", "wb") as f:
        f.write(onx.SerializeToString())
    with mlflow.start_run():
        mlflow.onnx.log_model(onx, name="model", registered_model_name=f"iris-{key}")
    for suffix, batch in [("batch", 64), ("nobatch", 1)]:
        r = httpx.post(f"{url}/api/2.0/serving-endpoints", json={
            "name": f"{key}-{suffix}",
            "config": {"served_models": [{"model_name": f"iris-{key}", "model_version": "1",
                                          "max_batch_size": batch}]},
        }, timeout=60)
        r.raise_for_status()
with open(f"{out}/body.json", "w") as f:
    json.dump({"inputs": [X[0].tolist()]}, f)
print("registered", ", ".join(f"iris-{k}" for k in models))
