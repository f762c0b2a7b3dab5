"""SoftmaxRegressor on torch / CuPy arrays (array_api_dispatch) against its peers on one device.

For each workload and device the table gives the seconds per epoch (per
iteration for lbfgs), the epochs and seconds until the training objective
(weighted mean cross-entropy + ``0.5 * alpha * ||W||^2``, the same for every
system) first comes within a relative gap of 1e-3 of its optimum, and the gap
where the system stopped. Systems:

- SoftmaxRegressor with numpy input (the reference engine; numba's where its
  rules pick it), for scale;
- SoftmaxRegressor with torch input under ``sklearn.config_context(array_api_dispatch=True)``,
  on CUDA when torch sees a GPU, else on the CPU; with CuPy input when CuPy is
  installed and sees a GPU;
- LogisticRegression(lbfgs) under array_api_dispatch, on the same device,
  fitted from scratch at each ``max_iter`` of a ladder (5, 10, 20, ...);
- a hand-written torch loop on the same device: minibatch SGD (autograd,
  ``torch.optim.SGD``, momentum 0.9) on the same objective, batch 128, the step
  of ``SoftmaxRegressor(solver="sgd")``'s ``eta0="auto"``.

The optimum is the lowest objective any system reached, and
LogisticRegression(lbfgs, tol=1e-10) on numpy; each epoch's objective is
SoftmaxRegressor's own ``loss_curve_`` (exact, after each epoch) or evaluated
in float64 on the host for the others (not timed). Every row that cannot run
here (no GPU, no CuPy, no torch) says so in the table.

Workloads (generated, no download): ``benchmarks/run.py``'s dense Gaussian
mixture, 60,000 x 784 float32, 10 classes, and one 10x larger (600,000 rows);
``--quick``: 5,000 and 50,000 rows, fewer epochs.

Usage::

    python benchmarks/gpu.py --quick     # a few minutes on a CPU-only machine
    python benchmarks/gpu.py             # the 60,000 and 600,000-row workloads

On a GPU machine, install a torch build for its CUDA (and optionally
``cupy-cuda12x``) and run the same command: the device is picked by itself.
Prints the table and writes ``benchmarks/results/gpu.json``.
"""

import os

# scipy reads this once, at its first import: before sklearn imports it.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from sksoftmax import SoftmaxRegressor  # noqa: E402
from sksoftmax._loss import objective  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from run import make_dense  # noqa: E402

GAP = 1e-3
BATCH = 128


def alpha_for(n):
    """1e-4 (LogisticRegression's C=1/6 at 60,000 rows), 1e-3 at --quick's 5,000 rows,
    where 1e-4 makes the problem nearly separable (a tiny optimum, so a relative gap of
    1e-3 is a long way down for every system)."""
    return max(1e-4, 5.0 / n)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def devices():
    """``[(library, device, why_not)]``: the array libraries and devices to run on."""
    found = []
    torch = _torch()
    if torch is None:
        found.append(("torch", None, "torch is not installed"))
    else:
        found.append(("torch", "cuda" if torch.cuda.is_available() else "cpu", None))
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
        found.append(("cupy", "cuda", None if count else "CuPy sees no GPU"))
    except ImportError:
        found.append(("cupy", None, "CuPy is not installed"))
    except Exception as exc:  # no driver
        found.append(("cupy", None, f"CuPy cannot use a GPU ({type(exc).__name__})"))
    return found


def to_library(array, library, device):
    if library == "torch":
        return _torch().asarray(array, device=device)
    import cupy

    return cupy.asarray(array)


def to_host(array):
    if hasattr(array, "cpu"):
        return array.detach().cpu().numpy()
    if hasattr(array, "get"):
        return array.get()
    return np.asarray(array)


def synchronize(library, device):
    if library == "torch" and device == "cuda":
        _torch().cuda.synchronize()
    elif library == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()


def host_objective(X, y, coef, intercept):
    """The objective in float64 on the host (not timed)."""
    coef64, intercept64 = to_host(coef).astype(np.float64), to_host(intercept).astype(np.float64)
    return float(objective(coef64, intercept64, X, y, alpha=alpha_for(len(y))))


def softmax_regressor_trace(X, y, max_iter, library=None, device=None):
    """Per-epoch (seconds since the start, objective) of one fit with verbose=1."""
    model = SoftmaxRegressor(
        alpha=alpha_for(len(y)), batch_size=BATCH, max_iter=max_iter, random_state=0, verbose=1
    )
    X_in = X if library is None else to_library(X, library, device)
    y_in = y if library is None else to_library(y, library, device)
    out = io.StringIO()
    dispatch = library is not None
    with (
        sklearn.config_context(array_api_dispatch=dispatch),
        contextlib.redirect_stdout(out),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X_in, y_in)
        synchronize(library, device)
        total = time.perf_counter() - start
    elapsed = [float(s) for s in re.findall(r"elapsed: ([0-9.]+) s", out.getvalue())]
    return list(zip(elapsed, model.loss_curve_, strict=False)), total, model.n_iter_


def lbfgs_trace(X, y, library, device, budget):
    """(seconds, objective, max_iter) of LogisticRegression(lbfgs) under dispatch, fitted
    from scratch at each max_iter of a ladder, until it converges or runs out of budget."""
    X_in, y_in = to_library(X, library, device), to_library(y, library, device)
    trace, per_iteration = [], []
    max_iter, spent = 5, 0.0
    while spent < budget:
        C = 1.0 / (alpha_for(len(y)) * len(y))
        model = LogisticRegression(C=C, max_iter=max_iter, tol=1e-10)
        with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            model.fit(X_in, y_in)
            synchronize(library, device)
            seconds = time.perf_counter() - start
        spent += seconds
        n_iter = int(to_host(model.n_iter_).max())
        per_iteration.append(seconds / max(1, n_iter))
        trace.append((seconds, host_objective(X, y, model.coef_, model.intercept_), max_iter))
        if n_iter < max_iter:  # converged
            break
        max_iter *= 2
    return trace, float(np.median(per_iteration)), n_iter < max_iter


def torch_loop_trace(X, y, device, epochs, eta):
    """Hand-written minibatch SGD in torch on the same objective: (seconds, objective).

    Momentum 0.9 with ``lr = eta * (1 - 0.9)``: the effective step ``eta`` (as
    SoftmaxRegressor's eta0="auto" scales its step under momentum)."""
    alpha = alpha_for(len(y))
    torch = _torch()
    generator = torch.Generator(device="cpu").manual_seed(0)
    X_t = torch.asarray(X, device=device)
    y_t = torch.asarray(y, device=device)
    n, d = X.shape
    k = int(y.max()) + 1
    W = torch.zeros((k, d), dtype=X_t.dtype, device=device, requires_grad=True)
    b = torch.zeros(k, dtype=X_t.dtype, device=device, requires_grad=True)
    optimizer = torch.optim.SGD([W, b], lr=eta * (1 - 0.9), momentum=0.9)
    trace, seconds = [], 0.0
    # On the CPU, batch-sized work on one thread, as SoftmaxRegressor's engine does
    # (two threads spin around each tiny operation when the other core is busy).
    threads = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(1)
    for _ in range(epochs):
        synchronize("torch", device)
        start = time.perf_counter()
        order = torch.randperm(n, generator=generator).to(device)
        for s in range(0, n, BATCH):
            rows = order[s : s + BATCH]
            logits = X_t[rows] @ W.T + b
            loss = torch.nn.functional.cross_entropy(logits, y_t[rows])
            loss = loss + 0.5 * alpha * (W * W).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        synchronize("torch", device)
        seconds += time.perf_counter() - start
        trace.append((seconds, host_objective(X, y, W.detach(), b.detach())))
    torch.set_num_threads(threads)
    return trace


def first_within(trace, optimum):
    """(epochs or iterations, seconds) of the first point within the gap, or (None, None).

    A point is (seconds, objective) after each epoch, or (seconds, objective,
    iterations) for a fit of the lbfgs ladder."""
    for i, (seconds, value, *iterations) in enumerate(trace):
        if (value - optimum) / abs(optimum) <= GAP:
            return (iterations[0] if iterations else i + 1), seconds
    return None, None


def run(args):
    rows, skipped = [], []
    sizes = (5_000, 50_000) if args.quick else (60_000, 600_000)
    max_epochs = 100 if args.quick else 300
    found = devices()
    for library, _device, why in found:
        if why:
            skipped.append(f"SoftmaxRegressor / {library}: {why}")
    torch_device = next((d for lib, d, why in found if lib == "torch" and not why), None)
    for n in sizes:
        X, y, _, _ = make_dense(n, 0)
        X = X.astype(np.float32)
        name = f"{n:,} x {X.shape[1]}"
        print(f"\n[{name}]", flush=True)
        traces = {}
        trace, total, epochs = softmax_regressor_trace(X, y, max_epochs)
        traces[("SoftmaxRegressor", "numpy", "cpu")] = (trace, total / max(1, epochs), "")
        for library, device, why in found:
            if why:
                continue
            trace, total, epochs = softmax_regressor_trace(X, y, max_epochs, library, device)
            key = ("SoftmaxRegressor", library, device)
            traces[key] = (trace, total / max(1, epochs), "array_api_dispatch")
            print(f"  {key}: {total:.2f} s, {epochs} epochs", flush=True)
        if torch_device is not None:
            budget = 30.0 if args.quick else 900.0
            trace, per_iter, converged = lbfgs_trace(X, y, "torch", torch_device, budget)
            traces[("LogisticRegression(lbfgs)", "torch", torch_device)] = (
                trace,
                per_iter,
                "array_api_dispatch; s/epoch is s/iteration, epochs to 1e-3 the max_iter of "
                "the first fit within it, s to 1e-3 that fit's time; "
                + ("converged" if converged else f"not converged within {budget:.0f} s"),
            )
            eta = SoftmaxRegressor(solver="sgd", alpha=alpha_for(n), batch_size=BATCH, max_iter=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                eta.fit(X[:5000], y[:5000])
            step = eta._optimizer.eta0
            trace = torch_loop_trace(X, y, torch_device, 20 if args.quick else 50, step)
            traces[("torch loop (SGD, momentum 0.9)", "torch", torch_device)] = (
                trace,
                trace[-1][0] / len(trace),
                f"lr={step * 0.1:.3g} (effective step {step:.3g})",
            )
        else:
            skipped.append("LogisticRegression / torch loop: torch is not installed")
        reached = [v for trace, _, _ in traces.values() for _, v, *_ in trace]
        if n <= 60_000:  # and a long lbfgs on numpy; past that it takes too long on a CPU
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                C = 1.0 / (alpha_for(n) * n)
                ref = LogisticRegression(C=C, tol=1e-10, max_iter=2000).fit(X, y)
            reached.append(host_objective(X, y, ref.coef_, ref.intercept_))
        optimum = min(reached)
        for (system, library, device), (trace, per_epoch, note) in traces.items():
            epochs, seconds = first_within(trace, optimum)
            final = trace[-1][1] if trace else float("nan")
            rows.append(
                dict(
                    workload=name,
                    alpha=alpha_for(n),
                    optimum=optimum,
                    system=system,
                    library=library,
                    device=str(device),
                    seconds_per_epoch=per_epoch,
                    epochs_to_gap=epochs,
                    seconds_to_gap=seconds,
                    final_gap=(final - optimum) / abs(optimum),
                    note=note,
                )
            )
    return rows, skipped


def print_table(rows, skipped):
    header = ("workload", "system", "array", "s/epoch", "epochs to 1e-3", "s to 1e-3", "gap at end")
    lines = [header]
    for r in rows:
        lines.append(
            (
                r["workload"],
                r["system"],
                f"{r['library']} {r['device']}",
                f"{r['seconds_per_epoch']:.3f}",
                "-" if r["epochs_to_gap"] is None else str(r["epochs_to_gap"]),
                "not reached" if r["seconds_to_gap"] is None else f"{r['seconds_to_gap']:.2f}",
                f"{r['final_gap']:.1e}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print()
    for j, line in enumerate(lines):
        print(" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
        if j == 0:
            print("-+-".join("-" * w for w in widths))
    for workload in dict.fromkeys(r["workload"] for r in rows):
        r = next(r for r in rows if r["workload"] == workload)
        print(f"  {workload}: alpha={r['alpha']:g}, optimum {r['optimum']:.6f}")
    for r in rows:
        if r["note"]:
            print(f"  {r['workload']} / {r['system']} / {r['library']}: {r['note']}")
    for line in skipped:
        print(f"skipped: {line}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 and 50,000 rows")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "gpu.json"))
    args = parser.parse_args()
    rows, skipped = run(args)
    print_table(rows, skipped)
    torch = _torch()
    meta = dict(
        quick=args.quick,
        python=platform.python_version(),
        machine=platform.machine(),
        torch=None if torch is None else torch.__version__,
        cuda=None if torch is None else torch.cuda.is_available(),
        sklearn=sklearn.__version__,
    )
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(dict(meta=meta, rows=rows, skipped=skipped), indent=2))
    print(f"\nwrote {output}")


if __name__ == "__main__":
    main()
