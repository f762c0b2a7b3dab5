"""
=======================================================
One softmax or ten sigmoids? Multinomial vs one-vs-rest
=======================================================

scikit-learn already trains linear classifiers by SGD:
:class:`~sklearn.linear_model.SGDClassifier` with ``loss="log_loss"``. For
more than two classes it fits one binary logistic regression per class
(one-vs-rest) and, to predict probabilities, rescales the ten independent
sigmoid outputs so that they sum to one. :class:`~sksoftmax.SoftmaxRegressor`
fits one multinomial model whose softmax *is* a probability distribution,
the model that :class:`~sklearn.linear_model.LogisticRegression` fits with a
full-batch solver.

On the 8x8 digits we compare the three on test log-loss, calibration,
accuracy and fit time, all after a StandardScaler and with the same L2
penalty ``alpha=1e-4`` (``C = 1 / (alpha * n_samples)`` for
LogisticRegression).
"""

# %%
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
from sklearn.calibration import calibration_curve
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sksoftmax import SoftmaxRegressor

QUICK = os.environ.get("SKSOFTMAX_EXAMPLES_QUICK", "0") not in ("", "0")
OUTPUT = Path(os.environ.get("SKSOFTMAX_EXAMPLES_OUTPUT") or Path(__file__).parent / "output")
OUTPUT.mkdir(parents=True, exist_ok=True)
REPEATS = 1 if QUICK else 5  # fits per model; the fastest time is reported

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
alpha = 1e-4
models = {
    "SoftmaxRegressor\n(multinomial, SGD)": SoftmaxRegressor(alpha=alpha, random_state=0),
    "SGDClassifier\n(one-vs-rest, SGD)": SGDClassifier(
        loss="log_loss", alpha=alpha, random_state=0
    ),
    "LogisticRegression\n(multinomial, L-BFGS)": LogisticRegression(
        C=1 / (alpha * len(y_train)), max_iter=1000
    ),
}

# %%
# Fit and score
# -------------
results = {}
for name, model in models.items():
    pipe = make_pipeline(StandardScaler(), model)
    seconds = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        pipe.fit(X_train, y_train)
        seconds.append(time.perf_counter() - start)
    proba = pipe.predict_proba(X_test)
    results[name] = {
        "proba": proba,
        "accuracy": accuracy_score(y_test, pipe.classes_[proba.argmax(axis=1)]),
        "log-loss": log_loss(y_test, proba),
        "fit s": min(seconds),
    }

print(f"{'model':<42}{'accuracy':>10}{'log-loss':>10}{'fit s':>8}")
for name, r in results.items():
    label = name.replace("\n", " ")
    print(f"{label:<42}{r['accuracy']:>10.4f}{r['log-loss']:>10.4f}{r['fit s']:>8.3f}")

# %%
# Reliability diagram
# -------------------
# For each test image take the predicted class and its probability (the
# model's confidence); cut the images into six equal-sized groups by
# confidence and plot, per group, the mean confidence against the
# fraction classified correctly. A calibrated model sits on the
# diagonal. The legend gives the share of test images predicted with a
# confidence above 0.999: one-vs-rest SGD puts most of its predictions there,
# wrong ones included, and each confident mistake costs a large log-loss.
# Its ten sigmoids are fitted separately and only rescaled afterwards, so
# nothing in its training asks the probabilities to be calibrated together.
fig, (ax_cal, ax_loss, ax_acc, ax_time) = plt.subplots(
    1, 4, figsize=(15, 4), layout="constrained", width_ratios=[1.6, 1, 1, 1]
)
ax_cal.plot([0, 1], [0, 1], color="gray", linestyle=":", label="calibrated")
colors = plt.cm.tab10.colors
for (name, r), color in zip(results.items(), colors, strict=False):
    confidence = r["proba"].max(axis=1)
    correct = r["proba"].argmax(axis=1) == y_test
    accuracy_in_bin, confidence_in_bin = calibration_curve(
        correct, confidence, n_bins=6, strategy="quantile"
    )
    label = f"{name.split(chr(10))[0]}: {(confidence > 0.999).mean():.0%} at > 0.999"
    ax_cal.plot(confidence_in_bin, accuracy_in_bin, marker="o", color=color, label=label)
ax_cal.set(
    xlabel="confidence (probability of the predicted class)",
    ylabel="fraction correct",
    title="reliability diagram (top label)",
    xlim=(0.45, 1.01),
    ylim=(0.45, 1.01),
)
ax_cal.legend(fontsize="small", loc="upper left")

# %%
# The three numbers
# -----------------
names = list(results)
for ax, metric, title in [
    (ax_loss, "log-loss", "test log-loss (lower is better)"),
    (ax_acc, "accuracy", "test accuracy"),
    (ax_time, "fit s", "fit time, seconds"),
]:
    values = [results[name][metric] for name in names]
    ax.barh(range(len(names)), values, color=colors[: len(names)])
    ax.set_yticks(range(len(names)), names if ax is ax_loss else [""] * len(names))
    ax.invert_yaxis()
    ax.set_title(title)
    for i, value in enumerate(values):
        ax.text(value, i, f" {value:.3f}", va="center", fontsize="small")
    ax.margins(x=0.3)
ax_acc.set_xlim(min(results[n]["accuracy"] for n in names) - 0.05, 1)
fig.savefig(OUTPUT / "multinomial_vs_ovr.png", dpi=80)
print(f"figure saved to {OUTPUT / 'multinomial_vs_ovr.png'}")
