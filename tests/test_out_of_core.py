"""Out-of-core training: ``partial_fit`` chunk by chunk over a memmap larger than memory needs.

A 200 MiB float64 dataset is written to disk chunk by chunk, then streamed
through ``partial_fit`` in chunks of at most 10 MiB. The test checks that

- the process's own allocations stay near one chunk (tracemalloc, which sees
  every numpy buffer), and its anonymous resident memory does not grow by the
  size of the data (Linux ``RssAnon``: the memmap's page cache is file-backed
  and shared, so it is not counted there);
- the model is the one an in-memory ``partial_fit`` over the same chunks in
  the same order produces: identical weights, hence identical accuracy.

The meter is shown able to fail: loading the same data into memory is measured
the same way and must register the full 200 MiB.
"""

import gc
import os
import tracemalloc

import numpy as np
import pytest

from sksoftmax import SoftmaxRegressor

MiB = 2**20
N_FEATURES = 100
N_CLASSES = 5
DATA_BYTES = 200 * MiB
CHUNK_ROWS = 12_800  # 12_800 rows * 100 features * 8 bytes = 9.77 MiB
N_ROWS = DATA_BYTES // (N_FEATURES * 8)  # 262_144 rows
MEMORY_BUDGET = 100 * MiB


def _centers():
    return np.random.default_rng(0).normal(scale=0.35, size=(N_CLASSES, N_FEATURES))


def _make_chunk(index, n_rows, centers):
    """Rows of a Gaussian-blobs problem; chunk ``index`` always gives the same rows."""
    rng = np.random.default_rng([1, index])
    y = rng.integers(N_CLASSES, size=n_rows)
    X = centers[y] + rng.standard_normal((n_rows, N_FEATURES))
    return X, y


def _chunks(n_rows):
    return [(start, min(start + CHUNK_ROWS, n_rows)) for start in range(0, n_rows, CHUNK_ROWS)]


def _write_dataset(directory):
    """Write X (float64) and y (int64) as .npy memmaps, one chunk at a time."""
    centers = _centers()
    X_path, y_path = directory / "X.npy", directory / "y.npy"
    X = np.lib.format.open_memmap(X_path, mode="w+", dtype=np.float64, shape=(N_ROWS, N_FEATURES))
    y = np.lib.format.open_memmap(y_path, mode="w+", dtype=np.int64, shape=(N_ROWS,))
    for i, (start, stop) in enumerate(_chunks(N_ROWS)):
        X[start:stop], y[start:stop] = _make_chunk(i, stop - start, centers)
    X.flush()
    y.flush()
    del X, y
    return X_path, y_path


def _rss_anon():
    """Anonymous resident memory of this process in bytes (Linux), else None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _stream_fit(model, X, y, classes, on_chunk=None):
    for start, stop in _chunks(len(y)):
        model.partial_fit(X[start:stop], y[start:stop], classes=classes)
        if on_chunk is not None:
            on_chunk()
    return model


@pytest.fixture
def dataset(tmp_path):
    X_path, y_path = _write_dataset(tmp_path)
    yield X_path, y_path
    for path in (X_path, y_path):
        path.unlink(missing_ok=True)


def test_memmap_stream_keeps_memory_near_one_chunk(dataset):
    X_path, y_path = dataset
    assert os.path.getsize(X_path) >= DATA_BYTES
    assert CHUNK_ROWS * N_FEATURES * 8 <= 10 * MiB
    classes = np.arange(N_CLASSES)
    X_test, y_test = _make_chunk(10_000, 5_000, _centers())

    X_mm = np.load(X_path, mmap_mode="r")
    y_mm = np.load(y_path, mmap_mode="r")
    streamed = SoftmaxRegressor(random_state=0)

    gc.collect()
    rss_start = _rss_anon()
    rss_peak = rss_start
    tracemalloc.start()
    try:
        start_traced, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()

        def sample_rss():
            nonlocal rss_peak
            if rss_start is not None:
                rss_peak = max(rss_peak, _rss_anon())

        _stream_fit(streamed, X_mm, y_mm, classes, on_chunk=sample_rss)
        _, peak_traced = tracemalloc.get_traced_memory()
        stream_growth = peak_traced - start_traced

        # The same meter, applied to loading everything into memory, must see it.
        tracemalloc.reset_peak()
        start_traced, _ = tracemalloc.get_traced_memory()
        X_mem, y_mem = np.array(X_mm), np.array(y_mm)
        _, peak_traced = tracemalloc.get_traced_memory()
        load_growth = peak_traced - start_traced
    finally:
        tracemalloc.stop()
    del X_mm, y_mm

    assert stream_growth < MEMORY_BUDGET, f"streaming allocated {stream_growth / MiB:.1f} MiB"
    assert load_growth >= DATA_BYTES, f"loading registered only {load_growth / MiB:.1f} MiB"
    if rss_start is not None:
        rss_growth = rss_peak - rss_start
        assert rss_growth < MEMORY_BUDGET, f"RssAnon grew by {rss_growth / MiB:.1f} MiB"

    in_memory = _stream_fit(SoftmaxRegressor(random_state=0), X_mem, y_mem, classes)
    np.testing.assert_array_equal(streamed.coef_, in_memory.coef_)
    np.testing.assert_array_equal(streamed.intercept_, in_memory.intercept_)
    assert streamed.t_ == in_memory.t_ == N_ROWS
    assert streamed.n_iter_ == len(_chunks(N_ROWS))

    streamed_accuracy = streamed.score(X_test, y_test)
    assert streamed_accuracy == in_memory.score(X_test, y_test)
    # The problem is learnable but not trivial: well above chance, below perfect.
    assert 0.8 < streamed_accuracy < 1.0
