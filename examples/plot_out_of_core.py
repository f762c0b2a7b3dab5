"""
======================================
Training out of core from a memory map
======================================

:class:`~sksoftmax.SoftmaxRegressor` learns from data that does not fit in
memory by calling :meth:`~sksoftmax.SoftmaxRegressor.partial_fit` on one chunk
at a time. Here the data sits on disk as a ``.npy`` file opened with
``np.load(..., mmap_mode="r")``: slicing the memory map reads only the rows of
one chunk, and ``partial_fit`` trains on that slice without copying it, so the
memory the process allocates stays near the size of one chunk however large the
file is. No Dask is needed.

Each ``partial_fit`` call is one pass of minibatch SGD over its chunk; the
step-size schedule, momentum and averages carry over from chunk to chunk, and
``shuffle=True`` shuffles rows within the chunk. Rows are never mixed across
chunks, so chunks should be in random order (shuffle the chunk order at each
epoch, as below) or written in random order.

Set ``SKSOFTMAX_EXAMPLES_QUICK=1`` for a small, fast run.
"""

# %%
# Write a dataset to disk, one chunk at a time
# --------------------------------------------
# The file is written through a memory map too, so creating it never needs more
# than one chunk in memory. The data are five Gaussian classes in 100
# dimensions, stored as float32 (the model then trains and keeps float32
# weights).

import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from sksoftmax import SoftmaxRegressor

QUICK = os.environ.get("SKSOFTMAX_EXAMPLES_QUICK") == "1"
OUTPUT = Path(os.environ.get("SKSOFTMAX_EXAMPLES_OUTPUT") or Path(__file__).parent / "output")

MiB = 2**20
N_FEATURES, N_CLASSES = 100, 5
DATA_MIB = 24 if QUICK else 512
CHUNK_MIB = 2 if QUICK else 8
N_EPOCHS = 1 if QUICK else 2
ROW_BYTES = N_FEATURES * np.dtype(np.float32).itemsize
N_ROWS = DATA_MIB * MiB // ROW_BYTES
CHUNK_ROWS = CHUNK_MIB * MiB // ROW_BYTES
CENTERS = np.random.default_rng(0).normal(scale=0.3, size=(N_CLASSES, N_FEATURES))


def make_chunk(index, n_rows):
    """The rows of chunk ``index``: the same every time it is asked for."""
    rng = np.random.default_rng([1, index])
    y = rng.integers(N_CLASSES, size=n_rows)
    X = CENTERS[y] + rng.standard_normal((n_rows, N_FEATURES))
    return X.astype(np.float32), y


def chunk_bounds(n_rows, chunk_rows):
    return [(start, min(start + chunk_rows, n_rows)) for start in range(0, n_rows, chunk_rows)]


workdir = tempfile.TemporaryDirectory(prefix="sksoftmax-out-of-core-")
X_path, y_path = Path(workdir.name, "X.npy"), Path(workdir.name, "y.npy")
X_disk = np.lib.format.open_memmap(X_path, mode="w+", dtype=np.float32, shape=(N_ROWS, N_FEATURES))
y_disk = np.lib.format.open_memmap(y_path, mode="w+", dtype=np.int64, shape=(N_ROWS,))
chunks = chunk_bounds(N_ROWS, CHUNK_ROWS)
for i, (start, stop) in enumerate(chunks):
    X_disk[start:stop], y_disk[start:stop] = make_chunk(i, stop - start)
X_disk.flush()
y_disk.flush()
del X_disk, y_disk
X_test, y_test = make_chunk(10**9, 10_000)  # held out: a chunk index never written
print(
    f"Wrote {X_path.stat().st_size / MiB:.0f} MiB ({N_ROWS:,} rows) to disk; "
    f"training in {len(chunks)} chunks of {CHUNK_ROWS * ROW_BYTES / MiB:.1f} MiB."
)

# %%
# Stream the chunks through ``partial_fit``
# -----------------------------------------
# One progress line per chunk: the rows seen, the training throughput so far
# (``partial_fit`` time only, without the scoring) and the held-out accuracy.
# The chunks come in a new random order at each epoch.

X_disk = np.load(X_path, mmap_mode="r")
y_disk = np.load(y_path, mmap_mode="r")
classes = np.arange(N_CLASSES)
order_rng = np.random.default_rng(0)
chunk_orders = [order_rng.permutation(len(chunks)) for _ in range(N_EPOCHS)]

# Warm-up on a throwaway model: with numba installed, the first large chunk
# compiles the compiled epoch (or loads it from numba's cache), a one-time cost
# in time and memory that would otherwise be counted against the first chunk.
first_chunk = slice(*chunks[0])
SoftmaxRegressor().partial_fit(X_disk[first_chunk], y_disk[first_chunk], classes)

model = SoftmaxRegressor(random_state=0)
seen, history, training_time = 0, [], 0.0
for epoch, order in enumerate(chunk_orders):
    for k, i in enumerate(order):
        start, stop = chunks[i]
        chunk_start = time.perf_counter()
        model.partial_fit(X_disk[start:stop], y_disk[start:stop], classes=classes)
        training_time += time.perf_counter() - chunk_start  # scoring not included
        seen += stop - start
        accuracy = model.score(X_test, y_test)
        history.append((seen, accuracy))
        if k % max(1, len(chunks) // 8) == 0 or k == len(chunks) - 1:
            print(
                f"epoch {epoch + 1} chunk {k + 1:3d}/{len(chunks)}  "
                f"rows seen {seen:>10,}  {seen / training_time:>9,.0f} samples/s  "
                f"held-out accuracy {accuracy:.3f}"
            )
print(f"Training throughput: {seen / training_time:,.0f} samples/s, read from the memory map.")

# %%
# The memory a chunk costs, in a separate traced pass
# ---------------------------------------------------
# :mod:`tracemalloc` counts every buffer numpy allocates, so it measures the
# peak memory that training on one chunk adds; but tracing slows allocation
# down, so it was off while timing above. This pass trains a second model on
# the first epoch's chunks in the same order (the same model, step for step)
# and records each chunk's peak.
# The pages of the memory map are not allocations: they are the operating
# system's file cache, shared and dropped under memory pressure.

traced_model = SoftmaxRegressor(random_state=0)
peaks = []
tracemalloc.start()
for i in chunk_orders[0]:
    start, stop = chunks[i]
    base, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    traced_model.partial_fit(X_disk[start:stop], y_disk[start:stop], classes=classes)
    peaks.append(tracemalloc.get_traced_memory()[1] - base)
tracemalloc.stop()
del X_disk, y_disk
workdir.cleanup()

seen, accuracy = map(np.array, zip(*history, strict=True))
peak = np.array(peaks)
print(
    f"Largest per-chunk peak: {peak.max() / MiB:.2f} MiB for a {CHUNK_MIB} MiB chunk "
    f"and {DATA_MIB} MiB of data."
)

# %%
# Accuracy and memory over the stream
# -----------------------------------
# On this easy problem the held-out accuracy reaches its plateau within the
# first chunks; later chunks only move it within the noise of a constant SGD
# step (``average=True`` would smooth that). The memory allocated per chunk
# stays flat, below the size of one chunk (the chunk itself is read in place,
# not copied) and far below the size of the data.

fig, (ax_acc, ax_mem) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
ax_acc.plot(seen, accuracy, marker=".")
ax_acc.set(xlabel="training rows seen", ylabel="held-out accuracy", title="Learning curve")
ax_mem.plot(np.arange(1, len(peak) + 1), peak / MiB, marker=".", label="peak allocated per chunk")
ax_mem.axhline(CHUNK_ROWS * ROW_BYTES / MiB, color="C1", ls="--", label="one chunk")
ax_mem.axhline(DATA_MIB, color="C3", ls=":", label="whole dataset")
ax_mem.set(xlabel="chunk (first epoch)", ylabel="MiB", yscale="log", title="Memory")
# Below the axes: inside, the legend covered the per-chunk peaks.
ax_mem.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=3, fontsize="small")
OUTPUT.mkdir(parents=True, exist_ok=True)
fig.savefig(OUTPUT / "plot_out_of_core.png", dpi=100)
print(f"figure saved to {OUTPUT / 'plot_out_of_core.png'}")
