"""
=============================================
Tuning the step size and the penalty together
=============================================

``eta0`` (the SGD step) and ``alpha`` (the L2 penalty) interact: a small step
may not get anywhere in the epoch budget, and a strong penalty caps how
confident the model can become. Because :class:`~sksoftmax.SoftmaxRegressor`
is a scikit-learn estimator, :class:`~sklearn.model_selection.GridSearchCV`
can search both inside a :class:`~sklearn.pipeline.Pipeline` that standardises
the features first, on the 8x8 digits.

We use the "constant" schedule so that ``eta0`` is the step throughout, a
fixed budget of epochs (``tol=None``), and score each cell by cross-validated
accuracy and log-loss.
"""

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sksoftmax import SoftmaxRegressor

QUICK = os.environ.get("SKSOFTMAX_EXAMPLES_QUICK", "0") not in ("", "0")
OUTPUT = Path(os.environ.get("SKSOFTMAX_EXAMPLES_OUTPUT") or Path(__file__).parent / "output")
OUTPUT.mkdir(parents=True, exist_ok=True)

X, y = load_digits(return_X_y=True)
if QUICK:
    X, y = X[:600], y[:600]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# The search
# ----------
pipe = Pipeline(
    [
        ("scale", StandardScaler()),
        (
            "softmax",
            SoftmaxRegressor(
                learning_rate="constant", tol=None, max_iter=5 if QUICK else 30, random_state=0
            ),
        ),
    ]
)
param_grid = {
    "softmax__eta0": [1e-3, 1e-2, 1e-1, 1.0],
    "softmax__alpha": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
}
if QUICK:
    param_grid = {"softmax__eta0": [1e-3, 1e-1], "softmax__alpha": [1e-4, 1e-2]}
search = GridSearchCV(
    pipe,
    param_grid,
    scoring={"accuracy": "accuracy", "log-loss": "neg_log_loss"},
    refit="log-loss",
    cv=3,
)
search.fit(X_train, y_train)
print("best parameters (by log-loss):", search.best_params_)
accuracy = (search.predict(X_test) == y_test).mean()
print(f"test accuracy of the refitted best model: {accuracy:.4f}")

# %%
# Heatmaps of the validation scores
# ---------------------------------
# Rows are step sizes, columns penalties; each cell is the mean over the 3
# folds. Too small a step underfits whatever the penalty; with a good step,
# the penalty trades accuracy for calibrated (less extreme) probabilities.
etas = param_grid["softmax__eta0"]
alphas = param_grid["softmax__alpha"]
results = search.cv_results_


def grid(metric):
    scores = np.empty((len(etas), len(alphas)))
    for eta, alpha, score in zip(
        results["param_softmax__eta0"],
        results["param_softmax__alpha"],
        results[metric],
        strict=True,
    ):
        scores[etas.index(eta), alphas.index(alpha)] = score
    return scores


fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
for ax, (metric, title, sign, cmap) in zip(
    axes,
    [
        ("mean_test_accuracy", "validation accuracy", 1, "viridis"),
        ("mean_test_log-loss", "validation log-loss", -1, "viridis_r"),
    ],
    strict=True,
):
    scores = sign * grid(metric)
    image = ax.imshow(scores, cmap=cmap, aspect="auto")
    for i in range(len(etas)):
        for j in range(len(alphas)):
            bright = image.norm(scores[i, j]) > 0.6
            if cmap.endswith("_r"):
                bright = not bright
            color = "k" if bright else "w"
            ax.text(j, i, f"{scores[i, j]:.3f}", ha="center", va="center", color=color)
    ax.set_xticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set_yticks(range(len(etas)), [f"{e:g}" for e in etas])
    ax.set(xlabel="alpha", ylabel="eta0", title=title)
    fig.colorbar(image, ax=ax)
fig.suptitle("GridSearchCV over SoftmaxRegressor(learning_rate='constant'), digits, 3-fold CV")
fig.savefig(OUTPUT / "grid_search.png", dpi=90)
print(f"figure saved to {OUTPUT / 'grid_search.png'}")
