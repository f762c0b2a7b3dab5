"""Demo: ``python -m sksoftmax`` trains SoftmaxRegressor next to LogisticRegression."""

import sys
import time

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from . import SoftmaxRegressor


def main(argv=None):
    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    print(f"{'model':<22}{'accuracy':>10}{'log-loss':>10}{'fit s':>8}")
    for name, model in [
        ("SoftmaxRegressor", SoftmaxRegressor(random_state=0)),
        ("LogisticRegression", LogisticRegression()),
    ]:
        pipe = make_pipeline(StandardScaler(), model)
        start = time.perf_counter()
        pipe.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        loss = log_loss(y_test, pipe.predict_proba(X_test))
        print(f"{name:<22}{pipe.score(X_test, y_test):>10.4f}{loss:>10.4f}{seconds:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
