"""
==========================================
Softmax regression on Fashion-MNIST images
==========================================

The tutorial's first experiment: 70,000 grayscale 28x28 pictures of clothing
in ten classes, each image flattened into 784 pixel features in [0, 1]. A
softmax regression has one 784-weight vector per class, which we can look at
as an image: a template that the class's pictures should match.

The tutorial's hand-written trainer used minibatches of 128, a constant step
of 0.01, an L2 penalty ``reg=0.001`` (``0.5 * reg * ||W||^2``) and 30 epochs.
:class:`~sksoftmax.SoftmaxRegressor` minimises exactly that objective with
``batch_size=128, learning_rate="constant", eta0=0.01, alpha=1e-3,
max_iter=30``; ``early_stopping=True`` keeps 10% of the training images aside,
scores them after each epoch and keeps the best weights.

The data come from OpenML (``"Fashion-MNIST"``, version 1), downloaded once
(tens of MB) and cached by :func:`sksoftmax.datasets.load_fashion_mnist`. To
use the original IDX files from https://github.com/zalandoresearch/fashion-mnist
instead, set ``SKSOFTMAX_FASHION_MNIST_IDX`` to the folder holding them (the
script reads that variable). Offline, it stops with a message naming both ways
to supply the data; the documentation build does not run it, as it needs the
network or those files. It needs the ``examples`` extra (matplotlib).
"""

# %%
# Load the data
# -------------
# ``SKSOFTMAX_EXAMPLES_QUICK=1`` trains on 2,000 images for 5 epochs.
import os
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import get_data_home
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import ConfusionMatrixDisplay, log_loss

from sksoftmax import SoftmaxRegressor
from sksoftmax.datasets import load_fashion_mnist

QUICK = os.environ.get("SKSOFTMAX_EXAMPLES_QUICK", "0") not in ("", "0")
OUTPUT = Path(os.environ.get("SKSOFTMAX_EXAMPLES_OUTPUT") or Path(__file__).parent / "output")
OUTPUT.mkdir(parents=True, exist_ok=True)

IDX_FOLDER = os.environ.get("SKSOFTMAX_FASHION_MNIST_IDX") or None
try:
    data = load_fashion_mnist(idx_folder=IDX_FOLDER)
except ConnectionError as exc:
    # Offline. The loader's message names its own arguments (idx_folder=,
    # data_home=); this script takes neither, so say what it does read.
    cause = exc.__cause__ or exc
    raise SystemExit(
        "plot_fashion_mnist.py could not download Fashion-MNIST from OpenML "
        f"({getattr(cause, 'reason', cause)}) and found no cached copy under "
        f"{get_data_home()}.\n"
        "To run it offline, supply the data in one of these ways:\n"
        "  - set SKSOFTMAX_FASHION_MNIST_IDX to a folder holding the four original "
        "IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz), from "
        "https://github.com/zalandoresearch/fashion-mnist;\n"
        "  - or copy scikit-learn's data folder (by default ~/scikit_learn_data, "
        "holding openml/) from a machine where this script or "
        "sksoftmax.datasets.load_fashion_mnist() ran once online, and set "
        "SCIKIT_LEARN_DATA to where you put it (or put it in the folder above)."
    ) from None
X_train, X_test, y_train, y_test = data.X_train, data.X_test, data.y_train, data.y_test
if QUICK:
    rng = np.random.default_rng(0)
    train_rows = rng.permutation(len(y_train))[:2000]
    test_rows = rng.permutation(len(y_test))[:1000]
    X_train, y_train = X_train[train_rows], y_train[train_rows]
    X_test, y_test = X_test[test_rows], y_test[test_rows]
print(f"training on {X_train.shape[0]} images, testing on {X_test.shape[0]}")

# %%
# Train with the tutorial's settings
# ----------------------------------
# ``tol=None`` runs the full epoch budget, as the tutorial's loop did;
# ``verbose=1`` prints the epoch lines the tutorial printed.
alpha = 1e-3
softmax = SoftmaxRegressor(
    batch_size=128,
    learning_rate="constant",
    eta0=0.01,
    alpha=alpha,
    max_iter=5 if QUICK else 30,
    tol=None,
    early_stopping=True,
    random_state=0,
    verbose=1,
)
start = time.perf_counter()
softmax.fit(X_train, y_train)
softmax_seconds = time.perf_counter() - start

# %%
# The learned weights, as images
# ------------------------------
# Red pixels push an image towards the class, blue ones away from it. The
# templates for trousers, sandals, sneakers or bags show their outlines; those
# of shirt, T-shirt, pullover and coat look alike, which is where the
# confusions below are.
limit = np.abs(softmax.coef_).max()
fig_w, axes = plt.subplots(2, 5, figsize=(11, 5), layout="constrained")
for k, ax in enumerate(axes.ravel()):
    image = ax.imshow(
        softmax.coef_[k].reshape(data.image_shape), cmap="RdBu_r", vmin=-limit, vmax=limit
    )
    ax.set_title(data.target_names[k])
    ax.set_axis_off()
fig_w.colorbar(image, ax=axes, shrink=0.6, label="weight")
fig_w.suptitle("SoftmaxRegressor.coef_, one 28x28 template per class")
fig_w.savefig(OUTPUT / "fashion_mnist_weights.png", dpi=80)

# %%
# Training and validation curves
# ------------------------------
# ``loss_curve_`` is the training objective per epoch (cross-entropy plus the
# L2 penalty); ``validation_scores_`` is the negated log-loss on the held-out
# 10%. Early stopping kept the epoch with the best validation score.
epochs = np.arange(1, softmax.n_iter_ + 1)
fig_c, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.plot(epochs, softmax.loss_curve_, marker="o", label="training objective")
ax.plot(epochs, -np.array(softmax.validation_scores_), marker="o", label="validation log-loss")
best = int(np.argmax(softmax.validation_scores_)) + 1
ax.axvline(best, color="gray", linestyle=":", label=f"kept: epoch {best}")
ax.set(xlabel="epoch", ylabel="log-loss", title="Fashion-MNIST: SoftmaxRegressor training")
ax.legend()
fig_c.savefig(OUTPUT / "fashion_mnist_curves.png", dpi=80)

# %%
# Next to LogisticRegression
# --------------------------
# The same objective solved by L-BFGS: ``C = 1 / (alpha * n_samples)``.
logreg = LogisticRegression(C=1 / (alpha * len(y_train)), max_iter=100 if QUICK else 300)
start = time.perf_counter()
with warnings.catch_warnings():
    # A few hundred L-BFGS iterations get close enough on 60,000 images.
    warnings.simplefilter("ignore", ConvergenceWarning)
    logreg.fit(X_train, y_train)
logreg_seconds = time.perf_counter() - start

print(f"{'model':<20}{'test accuracy':>14}{'test log-loss':>14}{'fit s':>8}")
for name, model, seconds in [
    ("SoftmaxRegressor", softmax, softmax_seconds),
    ("LogisticRegression", logreg, logreg_seconds),
]:
    loss = log_loss(y_test, model.predict_proba(X_test), labels=model.classes_)
    print(f"{name:<20}{model.score(X_test, y_test):>14.4f}{loss:>14.4f}{seconds:>8.1f}")

# %%
# Confusion matrix
# ----------------
# Rows are the true classes, columns the predictions, normalised per row.
fig_m, ax = plt.subplots(figsize=(7.5, 6.5), layout="constrained")
ConfusionMatrixDisplay.from_estimator(
    softmax,
    X_test,
    y_test,
    labels=np.arange(10),
    display_labels=data.target_names,
    normalize="true",
    values_format=".2f",
    xticks_rotation=45,
    colorbar=False,
    ax=ax,
)
ax.set_title(
    f"SoftmaxRegressor: test accuracy {softmax.score(X_test, y_test):.3f} "
    f"(LogisticRegression {logreg.score(X_test, y_test):.3f})"
)
fig_m.savefig(OUTPUT / "fashion_mnist_confusion.png", dpi=80)
print(f"figures saved to {OUTPUT}")
