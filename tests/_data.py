"""Datasets shared by the test modules: sklearn's bundled ones, standardised."""

from functools import cache

from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.preprocessing import StandardScaler

LOADERS = {
    "iris": load_iris,
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
    "digits": load_digits,
}


@cache
def standardised(name):
    """``(X, y)`` of a bundled dataset with standardised features, read-only (cached)."""
    X, y = LOADERS[name](return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y
