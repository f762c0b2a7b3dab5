"""Throughput of the two scale-out recipes, in training samples per second.

1. Streaming from disk without Dask: ``partial_fit`` chunk by chunk over an
   ``np.load(..., mmap_mode="r")`` memory map (next to the same loop over an
   in-memory array, its peer).
2. ``dask_ml.wrappers.Incremental(SoftmaxRegressor())`` on a
   ``distributed.LocalCluster`` of worker processes, the blocks read from the
   same ``.npy`` file by the workers; fit, and the lazy blockwise predict (next
   to an in-process predict over the memory map).

The file is freshly written, so it is read from the page cache: this measures
the training loop and Dask's overheads, not the disk. Each figure is the median
of ``--repeats`` runs. Prints a table and writes JSON to ``benchmarks/results/``.

Usage::

    python benchmarks/scale_out.py            # 256 MiB of float64, 8 MiB chunks
    python benchmarks/scale_out.py --quick    # 32 MiB, a smoke run
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sklearn

import sksoftmax
from sksoftmax import SoftmaxRegressor

MiB = 2**20
RESULTS = Path(__file__).resolve().parent / "results"


def make_chunk(index, n_rows, n_features, n_classes):
    centers = np.random.default_rng(0).normal(scale=0.3, size=(n_classes, n_features))
    rng = np.random.default_rng([1, index])
    y = rng.integers(n_classes, size=n_rows)
    return centers[y] + rng.standard_normal((n_rows, n_features)), y


def chunk_bounds(n_rows, chunk_rows):
    return [(start, min(start + chunk_rows, n_rows)) for start in range(0, n_rows, chunk_rows)]


def write_dataset(directory, n_rows, n_features, n_classes, chunk_rows):
    X_path, y_path = Path(directory, "X.npy"), Path(directory, "y.npy")
    X = np.lib.format.open_memmap(X_path, "w+", dtype=np.float64, shape=(n_rows, n_features))
    y = np.lib.format.open_memmap(y_path, "w+", dtype=np.int64, shape=(n_rows,))
    for i, (start, stop) in enumerate(chunk_bounds(n_rows, chunk_rows)):
        X[start:stop], y[start:stop] = make_chunk(i, stop - start, n_features, n_classes)
    X.flush()
    y.flush()
    return X_path, y_path


def stream_fit(X, y, bounds, classes):
    model = SoftmaxRegressor(random_state=0)
    start = time.perf_counter()
    for lo, hi in bounds:
        model.partial_fit(X[lo:hi], y[lo:hi], classes=classes)
    return time.perf_counter() - start, model


def stream_predict(model, X, bounds):
    start = time.perf_counter()
    for lo, hi in bounds:
        model.predict(X[lo:hi])
    return time.perf_counter() - start


def load_block(path, start, stop):
    """Read rows [start, stop) of a .npy file (runs on a Dask worker)."""
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def dask_runs(args, X_path, y_path, n_rows, n_features, bounds, classes):
    import dask
    import dask.array as da
    from dask_ml.wrappers import Incremental
    from distributed import Client, LocalCluster, wait

    def blocks(path, shape_tail, dtype):
        parts = [
            da.from_delayed(
                dask.delayed(load_block)(str(path), lo, hi), (hi - lo, *shape_tail), dtype
            )
            for lo, hi in bounds
        ]
        return da.concatenate(parts)

    fit_times, predict_times = [], []
    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    )
    client = Client(cluster)
    try:
        client.wait_for_workers(args.workers)
        Xd = blocks(X_path, (n_features,), np.float64).persist()
        yd = blocks(y_path, (), np.int64).persist()
        wait([Xd, yd])
        for _ in range(args.repeats + 1):  # the first run warms the workers' imports
            model = Incremental(SoftmaxRegressor(random_state=0), shuffle_blocks=False)
            start = time.perf_counter()
            model.fit(Xd, yd, classes=classes)
            fit_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            model.predict(Xd).compute()
            predict_times.append(time.perf_counter() - start)
    finally:
        client.close()
        cluster.close()
    return fit_times[1:], predict_times[1:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-mib", type=int, default=256, help="size of X on disk")
    parser.add_argument("--chunk-mib", type=float, default=8, help="size of one chunk of X")
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="32 MiB, 2 MiB chunks, 1 repeat")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask recipe")
    parser.add_argument("--output", type=Path, default=RESULTS / "scale_out.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.data_mib, args.chunk_mib, args.repeats = 32, 2, 1

    row_bytes = args.features * 8
    n_rows = args.data_mib * MiB // row_bytes
    chunk_rows = int(args.chunk_mib * MiB // row_bytes)
    bounds = chunk_bounds(n_rows, chunk_rows)
    classes = np.arange(args.classes)
    rows = []

    def record(recipe, phase, times):
        seconds = statistics.median(times)
        rows.append(
            {
                "recipe": recipe,
                "phase": phase,
                "samples": n_rows,
                "seconds": round(seconds, 4),
                "samples_per_second": round(n_rows / seconds),
                "runs": len(times),
            }
        )

    with tempfile.TemporaryDirectory(prefix="sksoftmax-scale-out-") as tmp:
        X_path, y_path = write_dataset(tmp, n_rows, args.features, args.classes, chunk_rows)
        X_mm, y_mm = np.load(X_path, mmap_mode="r"), np.load(y_path, mmap_mode="r")
        X_mem, y_mem = np.array(X_mm), np.array(y_mm)

        fits = {"memmap": [], "memory": []}
        predicts = {"memmap": [], "memory": []}
        for _ in range(args.repeats):  # alternate the peers, so load drifts hit both
            for name, (X, y) in (("memmap", (X_mm, y_mm)), ("memory", (X_mem, y_mem))):
                seconds, model = stream_fit(X, y, bounds, classes)
                fits[name].append(seconds)
                predicts[name].append(stream_predict(model, X, bounds))
        record("partial_fit stream over np.memmap (1 process)", "fit", fits["memmap"])
        record("partial_fit stream over in-memory ndarray (1 process)", "fit", fits["memory"])
        del X_mem, y_mem

        if not args.no_dask:
            fit_times, predict_times = dask_runs(
                args, X_path, y_path, n_rows, args.features, bounds, classes
            )
            record(f"dask_ml Incremental, LocalCluster {args.workers} processes", "fit", fit_times)
        record("predict over np.memmap chunks (1 process)", "predict", predicts["memmap"])
        if not args.no_dask:
            record(
                f"dask_ml Incremental, LocalCluster {args.workers} processes",
                "predict",
                predict_times,
            )
        del X_mm, y_mm

    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "sksoftmax": sksoftmax.__version__,
    }
    if not args.no_dask:
        import dask
        import dask_ml
        import distributed

        versions.update(
            dask=dask.__version__, distributed=distributed.__version__, dask_ml=dask_ml.__version__
        )
    report = {
        "benchmark": "scale_out",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
        "versions": versions,
        "config": {
            "data_mib": args.data_mib,
            "chunk_mib": args.chunk_mib,
            "rows": n_rows,
            "chunk_rows": chunk_rows,
            "chunks": len(bounds),
            "features": args.features,
            "classes": args.classes,
            "dtype": "float64",
            "batch_size": SoftmaxRegressor().batch_size,
            "workers": args.workers,
            "repeats": args.repeats,
        },
        "results": rows,
    }

    print(
        f"{n_rows:,} rows x {args.features} features (float64, {args.data_mib} MiB) in "
        f"{len(bounds)} chunks of {chunk_rows:,} rows; {os.cpu_count()} CPUs; "
        f"median of {args.repeats}"
    )
    width = max(len(r["recipe"]) for r in rows)
    print(f"{'recipe':<{width}}  {'phase':<7}  {'seconds':>8}  {'samples/s':>11}")
    for r in rows:
        print(
            f"{r['recipe']:<{width}}  {r['phase']:<7}  {r['seconds']:>8.3f}  "
            f"{r['samples_per_second']:>11,}"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
