"""ONNX export: onnxruntime reproduces the estimator's predictions.

The oracle is the estimator itself (``predict_proba``, ``predict``,
``decision_function``) on the same rows; skipped without the ``onnx`` extra.
"""

import importlib
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

pytest.importorskip("skl2onnx")
rt = pytest.importorskip("onnxruntime")

from skl2onnx import to_onnx  # noqa: E402

import sksoftmax.onnx  # noqa: E402,F401  (registers the converter)
from sksoftmax import SoftmaxRegressor  # noqa: E402

DATASETS = {"iris": load_iris, "breast_cancer": load_breast_cancer, "digits": load_digits}
ATOL = {np.float64: 1e-6, np.float32: 1e-5}


def _data(name, dtype=np.float64):
    X, y = DATASETS[name](return_X_y=True)
    return X.astype(dtype), y


def _scaled(X):
    """Standardised features, for a lone SoftmaxRegressor (as the pipeline does)."""
    return ((X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1)).astype(X.dtype)


def _run(model, X, options=None):
    """Export ``model`` for X's dtype and run it on X; returns the outputs by name."""
    onx = to_onnx(model, X[:1], options=options)
    session = rt.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: X})
    return dict(zip([o.name for o in session.get_outputs()], outputs, strict=True))


def _fit(name, dtype, pipeline, **params):
    X, y = _data(name, dtype)
    estimator = SoftmaxRegressor(random_state=0, **params)
    if pipeline:
        model = Pipeline([("scale", StandardScaler()), ("softmax", estimator)])
    else:
        X = _scaled(X)
        model = estimator
    return model.fit(X, y), X, y


@pytest.mark.parametrize("pipeline", [False, True], ids=["alone", "pipeline"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_probabilities_and_labels_match(name, dtype, pipeline):
    model, X, _ = _fit(name, dtype, pipeline)
    out = _run(model, X, options={SoftmaxRegressor: {"zipmap": False}})
    assert out["probabilities"].dtype == dtype
    np.testing.assert_allclose(
        out["probabilities"], model.predict_proba(X), rtol=0, atol=ATOL[dtype]
    )
    np.testing.assert_array_equal(out["label"], model.predict(X))


def test_binary_is_the_sigmoid_of_one_weight_vector():
    # skl2onnx's linear-classifier converter would give sigmoid(2 z) here.
    model, X, _ = _fit("breast_cancer", np.float64, pipeline=False)
    z = model.decision_function(X)
    p1 = _run(model, X, options={SoftmaxRegressor: {"zipmap": False}})["probabilities"][:, 1]
    np.testing.assert_allclose(p1, 1 / (1 + np.exp(-z)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_float64_model_exported_for_float32_input(dtype):
    """A model trained on float64 runs on the dtype given to to_onnx."""
    model, X, _ = _fit("iris", np.float64, pipeline=True)
    X = X.astype(dtype)
    out = _run(model, X, options={SoftmaxRegressor: {"zipmap": False}})
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), atol=ATOL[dtype])


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_string_labels(name):
    X, y = _data(name)
    names = np.array(["setosa", "versicolor", "virginica", "extra"])[y]
    model = Pipeline([("scale", StandardScaler()), ("softmax", SoftmaxRegressor(random_state=0))])
    model.fit(X, names)
    out = _run(model, X, options={SoftmaxRegressor: {"zipmap": False}})
    np.testing.assert_array_equal(out["label"], model.predict(X))
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_zipmap_gives_one_dict_per_row(name):
    """The default output (float32: onnxruntime's ZipMap takes float only)."""
    model, X, _ = _fit(name, np.float32, pipeline=True)
    out = _run(model, X)
    proba = model.predict_proba(X)
    assert len(out["output_probability"]) == len(X)
    for row, expected in zip(out["output_probability"], proba, strict=True):
        assert list(row) == model.classes_.tolist()
        np.testing.assert_allclose(list(row.values()), expected, atol=1e-5)
    np.testing.assert_array_equal(out["output_label"], model.predict(X))


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_zipmap_columns(name):
    model, X, _ = _fit(name, np.float64, pipeline=True)
    out = _run(model, X, options={SoftmaxRegressor: {"zipmap": "columns"}})
    columns = np.column_stack([out[f"i{label}"] for label in model.classes_])
    np.testing.assert_allclose(columns, model.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_nocl_gives_class_indices(name):
    model, X, y = _fit(name, np.float64, pipeline=True)
    labels = y + 10  # indices and labels differ
    model.fit(X, labels)
    out = _run(model, X, options={SoftmaxRegressor: {"zipmap": False, "nocl": True}})
    np.testing.assert_array_equal(out["label"], np.searchsorted(model.classes_, model.predict(X)))


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_raw_scores_are_the_logits(name):
    model, X, _ = _fit(name, np.float64, pipeline=True)
    out = _run(model, X, options={SoftmaxRegressor: {"zipmap": False, "raw_scores": True}})
    logits = model.decision_function(X)
    if logits.ndim == 1:  # binary: [-z, z], as skl2onnx gives for LogisticRegression
        logits = np.column_stack([-logits, logits])
    np.testing.assert_allclose(out["probabilities"], logits, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(out["label"], model.predict(X))


def test_output_class_labels():
    model, X, _ = _fit("iris", np.float64, pipeline=True)
    options = {SoftmaxRegressor: {"zipmap": False, "output_class_labels": True}}
    np.testing.assert_array_equal(_run(model, X, options)["class_labels"], model.classes_)


@pytest.mark.parametrize(
    "params",
    [{"average": True}, {"fit_intercept": False}, {"momentum": 0.9, "nesterov": True}],
    ids=["average", "no-intercept", "nesterov"],
)
def test_other_fitted_states(params):
    """The exported weights are the ones predict uses (e.g. the averaged ones)."""
    model, X, _ = _fit("digits", np.float64, pipeline=True, max_iter=5, tol=None, **params)
    out = _run(model, X, options={SoftmaxRegressor: {"zipmap": False}})
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), atol=1e-6)


def test_sparse_trained_model_exports():
    """Training on CSR leaves coef_ Fortran-ordered; the export does not care."""
    X, y = _data("iris")
    X = _scaled(X)
    model = SoftmaxRegressor(random_state=0).fit(sp.csr_matrix(X), y)
    out = _run(model, X, options={SoftmaxRegressor: {"zipmap": False}})
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), atol=1e-6)


def test_integer_input_is_cast_to_float32():
    X, y = _data("digits")  # integer pixels 0..16
    X = X.astype(np.int64)
    model = Pipeline([("scale", StandardScaler()), ("softmax", SoftmaxRegressor(random_state=0))])
    model.fit(X, y)
    out = _run(model, X, options={SoftmaxRegressor: {"zipmap": False}})
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("name", sksoftmax.onnx.__all__)
def test_docstrings(name):
    numpydoc_validate = pytest.importorskip("numpydoc.validate").validate
    ignored = {"ES01", "SA01", "EX01", "RT02"}  # as for the estimator (tests/test_common.py)
    errors = numpydoc_validate(f"sksoftmax.onnx.{name}")["errors"]
    assert [e for e in errors if e[0] not in ignored] == []


def test_unfitted_model_raises_not_fitted():
    X, _ = _data("iris")
    with pytest.raises(NotFittedError):
        to_onnx(SoftmaxRegressor(), X[:1])


def test_missing_extra_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # import skl2onnx fails
    monkeypatch.delitem(sys.modules, "sksoftmax.onnx")
    with pytest.raises(ImportError, match=r"sksoftmax\[onnx\]"):
        importlib.import_module("sksoftmax.onnx")
