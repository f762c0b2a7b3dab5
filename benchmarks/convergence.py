"""Epochs and seconds for SGD variants to reach the optimal objective.

For SAGA (the default solver for dense X) and plain, momentum, Nesterov and
averaged SGD (``solver="sgd"``), one ``fit`` each at
``eta0="auto"`` with the adaptive schedule; after every epoch the penalised
objective of :mod:`sksoftmax._loss` is compared with its optimum, found by
``LogisticRegression(C=1 / (alpha * n_samples))``, and the table gives the epochs
and training seconds until it first comes within ``--gap``. Workloads: digits
(standardised) and a synthetic, learnable 10-class problem of 60000 x 784.

Usage::

    python benchmarks/convergence.py            # full run
    python benchmarks/convergence.py --quick    # under a minute

Prints a table and writes ``benchmarks/results/convergence.json``.
"""

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sksoftmax import SoftmaxRegressor
from sksoftmax._engine import EpochEngine
from sksoftmax._loss import objective

MOMENTUM = 0.9


def synthetic(n_samples, n_features=784, n_classes=10, seed=0):
    """Gaussian features with a few strong directions; labels from a noisy linear model."""
    rng = np.random.default_rng(seed)
    scales = np.concatenate([np.full(20, 3.0), np.ones(n_features - 20)])
    X = rng.standard_normal((n_samples, n_features)) * scales
    W = rng.standard_normal((n_classes, n_features)) / np.sqrt(n_features)
    logits = X @ W.T + rng.gumbel(size=(n_samples, n_classes))
    y = np.argmax(logits, axis=1)
    return StandardScaler().fit_transform(X), y


def methods():
    """Name -> estimator parameters. eta0="auto" scales the step by 1 - momentum,
    so the momentum runs take the same effective step as plain SGD."""
    return {
        "saga (default)": dict(solver="saga"),
        "plain": dict(solver="sgd"),
        "momentum": dict(solver="sgd", momentum=MOMENTUM),
        "nesterov": dict(solver="sgd", momentum=MOMENTUM, nesterov=True),
        "averaged": dict(solver="sgd", average=True),
    }


class EpochRecorder:
    """Wraps EpochEngine.run_epoch to time each epoch and keep the weights the
    model would predict with after it; the objective is computed afterwards, off
    the clock."""

    def __init__(self):
        self.seconds, self.weights = [], []
        self._original = EpochEngine.run_epoch

    def __enter__(self):
        recorder = self

        def run_epoch(engine, X, y, weights, order, coef, intercept, optimizer, **kwargs):
            start = time.perf_counter()
            result = recorder._original(
                engine, X, y, weights, order, coef, intercept, optimizer, **kwargs
            )
            recorder.seconds.append(time.perf_counter() - start)
            used = optimizer.averages if optimizer.averaged() else (coef, intercept)
            offset = kwargs.get("offset")  # training centres X: the intercept is b + W mu
            published = used[1] if offset is None else used[1] - used[0] @ offset
            recorder.weights.append((used[0].copy(), published.copy()))
            return result

        EpochEngine.run_epoch = run_epoch
        return self

    def __exit__(self, *exc_info):
        EpochEngine.run_epoch = self._original


def run_method(X, y, alpha, f_opt, params, gap, max_epochs, batch_size):
    """One real fit: eta0="auto", the adaptive schedule (the step is cut by 5 each
    time the training objective stalls at tol=1e-6, relative, for 5 epochs; SAGA stops
    at its first plateau instead), up to max_epochs
    or the schedule's own end; epochs and seconds until the objective first
    comes within ``gap`` of the optimum."""
    clf = SoftmaxRegressor(
        alpha=alpha,
        learning_rate="adaptive",
        tol=1e-6,
        n_iter_no_change=5,
        batch_size=batch_size,
        max_iter=max_epochs,
        random_state=0,
        **params,
    )
    with warnings.catch_warnings(), EpochRecorder() as recorder:
        warnings.simplefilter("ignore")  # ConvergenceWarning when max_epochs runs out
        clf.fit(X, y)
    elapsed = np.cumsum(recorder.seconds)
    curve = [objective(W, b, X, y, alpha=alpha) - f_opt for W, b in recorder.weights]
    reached = np.flatnonzero(np.asarray(curve) <= gap)
    epoch = int(reached[0]) if len(reached) else len(curve) - 1
    return dict(
        epochs=epoch + 1,
        seconds=float(elapsed[epoch]),
        reached=bool(len(reached)),
        final_gap=float(curve[-1]),
        eta0=float(clf._optimizer.eta0),
        gaps=[float(g) for g in curve],
    )


def run_workload(name, X, y, alpha, gap, max_epochs, batch_size):
    n = len(y)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr = LogisticRegression(C=1.0 / (alpha * n), tol=1e-10, max_iter=10_000).fit(X, y)
    lr_seconds = time.perf_counter() - start
    f_opt = objective(lr.coef_, lr.intercept_, X, y, alpha=alpha)
    rows = []
    for method, params in methods().items():
        result = run_method(X, y, alpha, f_opt, params, gap, max_epochs, batch_size)
        rows.append(dict(workload=name, method=method, **result))
    return dict(
        workload=name,
        n_samples=n,
        n_features=X.shape[1],
        alpha=alpha,
        optimal_objective=f_opt,
        lbfgs_seconds=lr_seconds,
        results=rows,
    )


def print_table(workloads, gap):
    names = [w["workload"] for w in workloads]
    method_names = [r["method"] for r in workloads[0]["results"]]
    header = f"{'method':<10}" + "".join(
        f" | {n + ' epochs':>20} {'seconds':>8} {'final gap':>9}" for n in names
    )
    print(f"Epochs / seconds to reach objective - optimum <= {gap:g} ('>' = not reached)")
    print(header)
    print("-" * len(header))
    for method in method_names:
        line = f"{method:<10}"
        for w in workloads:
            r = next(r for r in w["results"] if r["method"] == method)
            epochs = f"{r['epochs']}" if r["reached"] else f">{r['epochs']}"
            line += f" | {epochs:>20} {r['seconds']:>8.2f} {r['final_gap']:>9.2e}"
        print(line)
    for w in workloads:
        print(
            f"{w['workload']}: n={w['n_samples']}, d={w['n_features']}, alpha={w['alpha']:g}, "
            f"optimum={w['optimal_objective']:.6f} (lbfgs {w['lbfgs_seconds']:.1f} s)"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run, under a minute")
    parser.add_argument("--gap", type=float, default=1e-3, help="target objective gap")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--alpha", type=float, default=1e-2, help="L2 strength")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).resolve().parent / "results" / "convergence.json",
    )
    args = parser.parse_args(argv)

    n_synthetic = 6_000 if args.quick else 60_000
    max_epochs = 40 if args.quick else 300
    X_digits, y_digits = load_digits(return_X_y=True)
    X_digits = StandardScaler().fit_transform(X_digits)
    X_syn, y_syn = synthetic(n_synthetic)
    workloads = [
        run_workload(
            "digits", X_digits, y_digits, args.alpha, args.gap, max_epochs, args.batch_size
        ),
        run_workload(
            f"synthetic{n_synthetic}",
            X_syn,
            y_syn,
            args.alpha,
            args.gap,
            max_epochs,
            args.batch_size,
        ),
    ]
    print_table(workloads, args.gap)
    report = dict(
        gap=args.gap,
        batch_size=args.batch_size,
        max_epochs=max_epochs,
        quick=args.quick,
        momentum=MOMENTUM,
        python=platform.python_version(),
        numpy=np.__version__,
        workloads=workloads,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
