import numpy as np
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

from sksoftmax import SoftmaxRegressor
from sksoftmax.__main__ import main


def test_demo_prints_comparison(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "SoftmaxRegressor" in out and "LogisticRegression" in out


def test_fit_predict_iris():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = SoftmaxRegressor(random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert clf.score(X, y) > 0.95
