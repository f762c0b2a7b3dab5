"""ONNX export of :class:`~sksoftmax.SoftmaxRegressor` through skl2onnx.

Importing this module registers a shape calculator and a converter for
``SoftmaxRegressor`` with skl2onnx, after which ``skl2onnx.to_onnx`` converts
the estimator alone or inside a :class:`~sklearn.pipeline.Pipeline`, like any
scikit-learn classifier::

    import sksoftmax.onnx  # noqa: F401  (registers the converter)
    from skl2onnx import to_onnx

    onx = to_onnx(model, X[:1])

It needs the ``onnx`` extra (``pip install "sksoftmax[onnx]"``: skl2onnx, and
onnxruntime to run the exported model). Registration is explicit, not done by
``import sksoftmax``, because importing skl2onnx takes seconds.

The graph computes ``z = X @ coef_.T + intercept_`` in the input's precision
(float32 or float64; other numeric inputs are cast to float32), then

- for more than two classes, ``Softmax(z)``;
- for two classes (one weight vector), ``[sigmoid(-z), sigmoid(z)]``, the
  estimator's ``predict_proba``. (skl2onnx's own linear-classifier converter is
  not usable here: it mirrors a single weight vector to ``[-w, w]`` and applies
  a softmax, i.e. ``sigmoid(2 z)``.)

The label is the class of the largest score. skl2onnx's classifier options
apply: ``zipmap`` (True, False or "columns"), ``nocl`` (labels as class
indices), ``output_class_labels`` and ``raw_scores``: with
``raw_scores=True`` the second output is ``decision_function``'s logits
(``[-z, z]`` for two classes, as skl2onnx gives for LogisticRegression)
instead of the probabilities.
"""

import numpy as np
import scipy.sparse as sp

try:
    from skl2onnx import update_registered_converter
    from skl2onnx._parse import _parse_sklearn_classifier
    from skl2onnx.common._apply_operation import apply_add, apply_cast, apply_sigmoid
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from skl2onnx.common.utils_classifier import _finalize_converter_classes, get_label_classes
    from skl2onnx.proto import onnx_proto
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "sksoftmax.onnx needs skl2onnx: pip install 'sksoftmax[onnx]' "
        "(skl2onnx, and onnxruntime to run the exported models)."
    ) from exc

from sklearn.utils.validation import check_is_fitted

from ._softmax_regressor import SoftmaxRegressor

__all__ = ["register", "parser", "shape_calculator", "convert_softmax_regressor"]

ALIAS = "SksoftmaxSoftmaxRegressor"
OPTIONS = {
    "zipmap": [True, False, "columns"],
    "nocl": [True, False],
    "output_class_labels": [False, True],
    "raw_scores": [True, False],
}


def register():
    """Register the SoftmaxRegressor converter with skl2onnx (idempotent).

    Called when :mod:`sksoftmax.onnx` is imported; call it again only if
    something else replaced the registration.
    """
    update_registered_converter(
        SoftmaxRegressor,
        ALIAS,
        shape_calculator,
        convert_softmax_regressor,
        parser=parser,
        options=OPTIONS,
    )


def parser(scope, model, inputs, custom_parsers=None):
    """Parse ``model`` as skl2onnx parses classifiers, once it is known to be fitted.

    skl2onnx's classifier parser adds the ZipMap step; it is also the first
    to read ``classes_``, so without the check an unfitted model would fail
    with skl2onnx's RuntimeError instead of scikit-learn's NotFittedError.

    Parameters
    ----------
    scope : skl2onnx.common._topology.Scope
        The graph being built.
    model : SoftmaxRegressor
        The estimator to convert.
    inputs : list of skl2onnx.common._topology.Variable
        Its input, ``X``.
    custom_parsers : dict, default=None
        Parsers given to ``to_onnx``, passed on.

    Returns
    -------
    outputs : list of skl2onnx.common._topology.Variable
        The label and probability outputs.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``model`` is not fitted.
    """
    check_is_fitted(model)
    return _parse_sklearn_classifier(scope, model, inputs, custom_parsers=custom_parsers)


def shape_calculator(operator):
    """Set the output shapes: a label and one score per class for each sample.

    Parameters
    ----------
    operator : skl2onnx.common._topology.Operator
        The SoftmaxRegressor's node; its output types are set in place.
    """
    calculate_linear_classifier_output_shapes(operator)


def convert_softmax_regressor(scope, operator, container):
    """Add the nodes computing the labels and probabilities (or logits) of a fitted model.

    Parameters
    ----------
    scope : skl2onnx.common._topology.Scope
        The graph being built, which names the new variables.
    operator : skl2onnx.common._topology.Operator
        Its ``raw_operator`` is the fitted SoftmaxRegressor; one input
        ``X`` of shape (n_samples, n_features), outputs label of shape
        (n_samples,) and scores of shape (n_samples, n_classes).
    container : skl2onnx.common._container.ModelComponentContainer
        Receives the nodes and the initialisers (the weights).
    """
    model = operator.raw_operator
    raw_scores = container.get_options(model, dict(raw_scores=False))["raw_scores"]
    proto_dtype, np_dtype, X = _float_input(scope, operator, container)
    logits = _logits(scope, container, X, model, proto_dtype, np_dtype)
    label_output, scores_output = operator.outputs[0].full_name, operator.outputs[1].full_name
    binary = model.coef_.shape[0] == 1
    if binary:
        # [-z, z]: the logits skl2onnx gives for binary linear models, and the
        # arguments of the two sigmoids.
        negated = scope.get_unique_variable_name("negated_logit")
        container.add_node("Neg", logits, negated, name=scope.get_unique_operator_name("Neg"))
        pair = scores_output if raw_scores else scope.get_unique_variable_name("logit_pair")
        container.add_node(
            "Concat", [negated, logits], pair, axis=1, name=scope.get_unique_operator_name("Concat")
        )
        logits = pair
        if not raw_scores:
            apply_sigmoid(scope, pair, scores_output, container)
    elif raw_scores:
        container.add_node(
            "Identity", logits, scores_output, name=scope.get_unique_operator_name("Identity")
        )
    else:
        container.add_node(
            "Softmax", logits, scores_output, axis=1, name=scope.get_unique_operator_name("Softmax")
        )
    _labels(scope, container, model, logits, label_output)


def _float_input(scope, operator, container):
    """The input as float32 or float64: (ONNX dtype, numpy dtype, variable name)."""
    X = operator.inputs[0]
    if isinstance(X.type, DoubleTensorType):
        return onnx_proto.TensorProto.DOUBLE, np.float64, X.full_name
    if isinstance(X.type, FloatTensorType):
        return onnx_proto.TensorProto.FLOAT, np.float32, X.full_name
    cast = scope.get_unique_variable_name("cast_input")
    apply_cast(scope, X.full_name, cast, container, to=onnx_proto.TensorProto.FLOAT)
    return onnx_proto.TensorProto.FLOAT, np.float32, cast


def _logits(scope, container, X, model, proto_dtype, np_dtype):
    """Add ``X @ coef_.T + intercept_``; return its name, shape (n_samples, n_params)."""
    coef = model.coef_.toarray() if sp.issparse(model.coef_) else model.coef_  # sparsify()
    coef_t = np.asarray(coef, dtype=np_dtype).T
    intercept = np.asarray(model.intercept_, dtype=np_dtype).reshape(1, -1)
    coef_name = scope.get_unique_variable_name("coef")
    intercept_name = scope.get_unique_variable_name("intercept")
    container.add_initializer(coef_name, proto_dtype, coef_t.shape, coef_t.ravel().tolist())
    container.add_initializer(
        intercept_name, proto_dtype, intercept.shape, intercept.ravel().tolist()
    )
    product = scope.get_unique_variable_name("product")
    container.add_node(
        "MatMul", [X, coef_name], product, name=scope.get_unique_operator_name("MatMul")
    )
    logits = scope.get_unique_variable_name("logits")
    apply_add(scope, [product, intercept_name], logits, container)
    return logits


def _labels(scope, container, model, scores, label_output):
    """Add the label output: the class of the largest score, first on ties."""
    argmax = scope.get_unique_variable_name("label_index")
    container.add_node(
        "ArgMax", scores, argmax, axis=1, name=scope.get_unique_operator_name("ArgMax")
    )
    # Handles nocl=True (indices), integer and string labels as skl2onnx does.
    classes = np.asarray(get_label_classes(scope, model))
    _finalize_converter_classes(
        scope, argmax, label_output, container, classes, onnx_proto.TensorProto.DOUBLE
    )


register()
