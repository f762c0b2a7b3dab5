"""Reusable hypothesis strategies for the kernels of :mod:`sksoftmax._loss`.

In the style of thinc's ``strategies.py``: small building blocks (dtypes,
logit matrices, labelled problems) that the property tests combine.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

DTYPES = (np.float32, np.float64)

# Row sums of a softmax equal one to within this, per dtype.
SUM_TOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}


def dtypes():
    """float32 or float64."""
    return st.sampled_from(DTYPES).map(np.dtype)


def finite_floats(dtype, max_abs):
    """Finite floats in ``[-max_abs, max_abs]`` representable in ``dtype``."""
    width = 32 if np.dtype(dtype) == np.float32 else 64
    return st.floats(-max_abs, max_abs, width=width, allow_nan=False, allow_infinity=False)


@st.composite
def logit_matrices(draw, dtype=None, max_abs=1e4, min_classes=1, max_classes=6, max_rows=8):
    """Logits ``Z`` of shape (n_samples, n_columns) with ``|Z| <= max_abs``.

    Parameters
    ----------
    dtype : dtype or None
        Drawn from float32 / float64 when None.
    max_abs : float
        Bound on the magnitude of every logit.
    min_classes, max_classes : int
        Range of the number of columns.
    max_rows : int
        At most this many rows (at least one).
    """
    dtype = draw(dtypes()) if dtype is None else np.dtype(dtype)
    n_rows = draw(st.integers(1, max_rows))
    n_cols = draw(st.integers(min_classes, max_classes))
    # Mix wide and narrow rows: uniform draws over +-1e4 alone would hardly ever
    # produce logits close to one another, where the sum of probabilities is hard.
    scale = draw(st.sampled_from([1.0, 30.0, max_abs]))
    elements = finite_floats(dtype, min(scale, max_abs))
    return draw(arrays(dtype, (n_rows, n_cols), elements=elements))


@st.composite
def problems(draw, n_classes=None, weighted=None, alpha=None, dtype=np.float64):
    """A labelled problem and a point at which to evaluate the objective.

    Returns a dict with ``X`` (n_samples, n_features), ``y`` class indices with
    every class present, ``sample_weight`` (None or positive floats), ``coef``
    (n_params, n_features), ``intercept`` (n_params,), ``alpha`` and
    ``n_classes``; ``n_params`` is 1 for two classes, else ``n_classes``.
    Values are moderate so that central finite differences are accurate.
    """
    if n_classes is None:
        n_classes = draw(st.integers(2, 5))
    n_params = 1 if n_classes == 2 else n_classes
    n_features = draw(st.integers(1, 5))
    n_samples = draw(st.integers(n_classes, n_classes + 8))
    X = draw(arrays(dtype, (n_samples, n_features), elements=finite_floats(dtype, 3.0)))
    # every class appears at least once, the rest at random
    rest = draw(arrays(np.int64, n_samples - n_classes, elements=st.integers(0, n_classes - 1)))
    y = np.concatenate([np.arange(n_classes), rest])
    if weighted is None:
        weighted = draw(st.booleans())
    sample_weight = (
        draw(arrays(dtype, n_samples, elements=st.floats(0.125, 4.0, width=32)))
        if weighted
        else None
    )
    if alpha is None:
        alpha = draw(st.sampled_from([0.0, 0.01, 0.7]))
    coef = draw(arrays(dtype, (n_params, n_features), elements=finite_floats(dtype, 2.0)))
    intercept = draw(arrays(dtype, n_params, elements=finite_floats(dtype, 2.0)))
    return dict(
        X=X,
        y=y,
        sample_weight=sample_weight,
        coef=coef,
        intercept=intercept,
        alpha=alpha,
        n_classes=n_classes,
    )
