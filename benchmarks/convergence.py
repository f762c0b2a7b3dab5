"""Epochs and seconds for SGD variants to reach the optimal objective.

For plain, momentum, Nesterov and averaged SGD (constant step), train one
epoch at a time (``warm_start`` continues exactly) and record when the penalised
objective of :mod:`sksoftmax._loss` first comes within ``--gap`` of its optimum,
found by ``LogisticRegression(C=1 / (alpha * n_samples))``. Workloads: digits
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
from sksoftmax._loss import objective
from sksoftmax._optim import auto_eta0

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


def methods(eta0):
    """Name -> estimator parameters; momentum runs take the same effective step."""
    return {
        "plain": dict(eta0=eta0),
        "momentum": dict(eta0=eta0 * (1 - MOMENTUM), momentum=MOMENTUM),
        "nesterov": dict(eta0=eta0 * (1 - MOMENTUM), momentum=MOMENTUM, nesterov=True),
        "averaged": dict(eta0=eta0, average=True),
    }


def run_method(X, y, alpha, f_opt, params, gap, max_epochs, batch_size):
    clf = SoftmaxRegressor(
        alpha=alpha,
        learning_rate="constant",
        batch_size=batch_size,
        max_iter=1,
        tol=None,
        warm_start=True,
        random_state=0,
        **params,
    )
    seconds, curve = 0.0, []
    for epoch in range(1, max_epochs + 1):
        start = time.perf_counter()
        clf.fit(X, y)
        seconds += time.perf_counter() - start
        curve.append(objective(clf.coef_, clf.intercept_, X, y, alpha=alpha) - f_opt)
        if curve[-1] <= gap:
            return dict(epochs=epoch, seconds=seconds, reached=True, final_gap=curve[-1])
    return dict(epochs=max_epochs, seconds=seconds, reached=False, final_gap=curve[-1])


def run_workload(name, X, y, alpha, gap, max_epochs, batch_size):
    n = len(y)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr = LogisticRegression(C=1.0 / (alpha * n), tol=1e-10, max_iter=10_000).fit(X, y)
    lr_seconds = time.perf_counter() - start
    f_opt = objective(lr.coef_, lr.intercept_, X, y, alpha=alpha)
    eta0 = auto_eta0(X, binary=False, fit_intercept=True, alpha=alpha, batch_size=batch_size)
    rows = []
    for method, params in methods(eta0).items():
        result = run_method(X, y, alpha, f_opt, params, gap, max_epochs, batch_size)
        rows.append(dict(workload=name, method=method, eta0=params["eta0"], **result))
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
