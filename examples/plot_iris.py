"""
===================================
Softmax regression on the Iris data
===================================

The tutorial's second experiment: Fisher's 150 irises, three species, four
measurements in centimetres. A multinomial softmax regression learns one weight
vector per species; the softmax of the three scores gives the probabilities.

We train :class:`~sksoftmax.SoftmaxRegressor` twice: on two features, to draw
its decision regions, and on all four, to follow its training loss epoch by
epoch and compare it with :class:`~sklearn.linear_model.LogisticRegression`,
which minimises the same objective with a full-batch solver.
"""

# %%
# Set-up
# ------
# Figures go to ``examples/output/`` (or ``$SKSOFTMAX_EXAMPLES_OUTPUT``).
# Iris trains in a fraction of a second, so ``SKSOFTMAX_EXAMPLES_QUICK``
# changes nothing here.
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sksoftmax import SoftmaxRegressor

OUTPUT = Path(os.environ.get("SKSOFTMAX_EXAMPLES_OUTPUT") or Path(__file__).parent / "output")
OUTPUT.mkdir(parents=True, exist_ok=True)

iris = load_iris()
X_train, X_test, y_train, y_test = train_test_split(
    iris.data, iris.target, test_size=0.25, stratify=iris.target, random_state=0
)

# %%
# Decision regions on the two petal measurements
# ----------------------------------------------
# With two features the model is easy to draw: each region is where one of the
# three linear scores is the largest, so the boundaries are straight lines.
petal = [2, 3]
two_features = make_pipeline(StandardScaler(), SoftmaxRegressor(random_state=0))
two_features.fit(X_train[:, petal], y_train)
print(f"two petal features: test accuracy {two_features.score(X_test[:, petal], y_test):.3f}")

fig, (ax_regions, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
xx, yy = np.meshgrid(np.linspace(0.5, 7.5, 300), np.linspace(-0.3, 2.8, 300))
regions = two_features.predict(np.c_[xx.ravel(), yy.ravel()]).reshape(xx.shape)
ax_regions.contourf(
    xx, yy, regions, levels=[-0.5, 0.5, 1.5, 2.5], colors=plt.cm.tab10.colors[:3], alpha=0.3
)
ax_regions.set(xlabel=iris.feature_names[petal[0]], ylabel=iris.feature_names[petal[1]])
for k, name in enumerate(iris.target_names):
    for X, y, marker in [(X_train, y_train, "o"), (X_test, y_test, "^")]:
        rows = y == k
        ax_regions.scatter(
            X[rows, petal[0]],
            X[rows, petal[1]],
            color=plt.cm.tab10(k),
            marker=marker,
            edgecolor="k",
            linewidth=0.5,
            label=f"{name} ({'train' if marker == 'o' else 'test'})",
        )
ax_regions.legend(fontsize="small", loc="upper left")
ax_regions.set_title("SoftmaxRegressor decision regions")

# %%
# Loss curve on all four features
# -------------------------------
# ``loss_curve_`` holds the training objective (mean cross-entropy plus the
# L2 penalty) after each epoch. The dashed line is the same objective at
# LogisticRegression's solution, with ``C = 1 / (alpha * n_samples)``: how
# close SGD gets is decided by ``tol``, the improvement per epoch below which
# the "adaptive" schedule shrinks its step and finally stops.
alpha = 1e-4
results = {}
for tol in (1e-3, 1e-5):
    model = make_pipeline(
        StandardScaler(),
        SoftmaxRegressor(alpha=alpha, tol=tol, random_state=0),
    )
    model.fit(X_train, y_train)
    results[f"SoftmaxRegressor(tol={tol:g})"] = model
    ax_loss.plot(np.arange(1, model[-1].n_iter_ + 1), model[-1].loss_curve_, label=f"tol={tol:g}")

logreg = make_pipeline(StandardScaler(), LogisticRegression(C=1 / (alpha * len(y_train))))
logreg.fit(X_train, y_train)
results["LogisticRegression"] = logreg
optimum = log_loss(y_train, logreg.predict_proba(X_train)) + 0.5 * alpha * np.sum(
    logreg[-1].coef_ ** 2
)
ax_loss.axhline(optimum, color="k", linestyle="--", label="LogisticRegression optimum")
ax_loss.set(
    xlabel="epoch",
    ylabel="training objective",
    xscale="log",
    yscale="log",
    title="loss curve, 4 features",
)
ax_loss.legend()
fig.savefig(OUTPUT / "iris.png", dpi=90)

print(f"{'model':<30}{'test accuracy':>14}{'test log-loss':>14}")
for name, model in results.items():
    proba = model.predict_proba(X_test)
    print(f"{name:<30}{model.score(X_test, y_test):>14.3f}{log_loss(y_test, proba):>14.4f}")
print(f"figure saved to {OUTPUT / 'iris.png'}")

# %%
# Probabilities, not only labels
# ------------------------------
# Each row of ``predict_proba`` is a softmax: non-negative, summing to one.
# Setosa is linearly separable from the others; versicolor and virginica
# overlap, and their probabilities say so.
proba = results["SoftmaxRegressor(tol=1e-05)"].predict_proba(X_test[:5])
for row, label in zip(proba.round(3), y_test[:5], strict=True):
    print(f"true {iris.target_names[label]:<11} p = {row}")
