"""SoftmaxRegressor on a real Dask cluster: dask-ml wrappers, searches and the joblib backend.

Every test here shares one ``distributed.LocalCluster`` of two single-threaded
worker processes on 127.0.0.1, closed by the fixture whatever happens. The
module is skipped when the ``dask`` extra (dask, distributed, dask-ml) is not
installed.
"""

import logging
import os
import signal
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers")
dask_ml_model_selection = pytest.importorskip("dask_ml.model_selection")

import cloudpickle  # noqa: E402  (a dependency of distributed)
import joblib  # noqa: E402
from scipy.stats import loguniform  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.utils.validation import check_is_fitted  # noqa: E402

from sksoftmax import SoftmaxRegressor  # noqa: E402

Incremental = dask_ml_wrappers.Incremental
HyperbandSearchCV = dask_ml_model_selection.HyperbandSearchCV
IncrementalSearchCV = dask_ml_model_selection.IncrementalSearchCV

# The workers unpickle the test-only estimator below by value, so they need not
# be able to import this file.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CHUNK = 500
SEARCH_SPACE = {"eta0": loguniform(1e-3, 0.3), "alpha": loguniform(1e-6, 1e-2)}


@pytest.fixture(scope="module")
def client():
    cluster = client = None
    try:
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # any free port: never clash with a running 8787
        )
        client = distributed.Client(cluster)
        client.wait_for_workers(2, timeout=60)
        yield client
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def _data(n_samples=3000, random_state=0):
    X, y = make_classification(
        n_samples=n_samples,
        n_features=20,
        n_informative=10,
        n_classes=3,
        class_sep=0.8,
        random_state=random_state,
    )
    return X, y


def _task_prefixes(client):
    return set(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes)))


def test_incremental_equals_in_process_partial_fit(client):
    X, y = _data()
    classes = np.unique(y)
    Xd, yd = da.from_array(X, chunks=(CHUNK, X.shape[1])), da.from_array(y, chunks=CHUNK)

    # shuffle_blocks=False: blocks in storage order, as the loop below takes them.
    inc = Incremental(SoftmaxRegressor(random_state=0), shuffle_blocks=False)
    before = _task_prefixes(client)
    inc.fit(Xd, yd, classes=classes)
    assert _task_prefixes(client) - before, "no task ran on the cluster"

    reference = SoftmaxRegressor(random_state=0)
    for start in range(0, len(y), CHUNK):
        reference.partial_fit(X[start : start + CHUNK], y[start : start + CHUNK], classes=classes)

    fitted = inc.estimator_
    assert fitted.t_ == reference.t_ == len(y)
    assert fitted.n_iter_ == reference.n_iter_ == len(y) // CHUNK
    np.testing.assert_allclose(fitted.coef_, reference.coef_, rtol=1e-10, atol=1e-12)

    # predict / predict_proba stay lazy, one task per block.
    y_pred = inc.predict(Xd)
    proba = inc.predict_proba(Xd)
    assert isinstance(y_pred, da.Array) and isinstance(proba, da.Array)
    assert y_pred.chunks == yd.chunks
    assert proba.chunks == (yd.chunks[0], (len(classes),))
    np.testing.assert_array_equal(y_pred.compute(), reference.predict(X))
    np.testing.assert_allclose(proba.compute(), reference.predict_proba(X), rtol=1e-10)
    assert inc.score(Xd, yd) == pytest.approx(reference.score(X, y))


def test_hyperband_search_over_eta0_and_alpha(client):
    X, y = _data()
    Xd, yd = da.from_array(X, chunks=(CHUNK, X.shape[1])), da.from_array(y, chunks=CHUNK)
    search = HyperbandSearchCV(
        SoftmaxRegressor(random_state=0), SEARCH_SPACE, max_iter=9, random_state=0
    )
    search.fit(Xd, yd, classes=np.unique(y))

    assert set(search.best_params_) == {"eta0", "alpha"}
    best = search.best_estimator_
    check_is_fitted(best)
    assert best.eta0 == search.best_params_["eta0"] and best.alpha == search.best_params_["alpha"]
    assert len(search.cv_results_["params"]) == search.metadata_["n_models"] > 1
    assert search.best_score_ > 0.6  # three classes: chance is 1/3
    y_pred = search.predict(Xd)
    assert isinstance(y_pred, da.Array)
    np.testing.assert_array_equal(y_pred.compute(), best.predict(X))


def test_incremental_search(client):
    X, y = _data(n_samples=2000)
    Xd, yd = da.from_array(X, chunks=(CHUNK, X.shape[1])), da.from_array(y, chunks=CHUNK)
    search = IncrementalSearchCV(
        SoftmaxRegressor(random_state=0),
        SEARCH_SPACE,
        n_initial_parameters=4,
        max_iter=4,
        decay_rate=None,  # the default is deprecated in dask-ml (FutureWarning)
        random_state=0,
    )
    search.fit(Xd, yd, classes=np.unique(y))
    check_is_fitted(search.best_estimator_)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_score_ > 0.6


def test_grid_search_with_dask_joblib_backend_matches_n_jobs_1(client):
    X, y = _data(n_samples=600)
    estimator = SoftmaxRegressor(max_iter=20, tol=None, random_state=0)
    grid = {"eta0": [0.003, 0.03, 0.3], "alpha": [1e-5, 1e-2]}

    serial = GridSearchCV(estimator, grid, cv=3, n_jobs=1).fit(X, y)
    before = _task_prefixes(client)
    with joblib.parallel_backend("dask"):
        parallel = GridSearchCV(estimator, grid, cv=3, n_jobs=-1).fit(X, y)
    assert _task_prefixes(client) - before, "no task ran on the cluster"

    assert parallel.best_params_ == serial.best_params_
    np.testing.assert_allclose(
        parallel.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
    np.testing.assert_allclose(parallel.best_estimator_.coef_, serial.best_estimator_.coef_)


class _KillsItsWorkerOnce(SoftmaxRegressor):
    """Kills the worker process that trains it, once per search, mid-search.

    The first ``partial_fit`` of a model already trained twice creates
    ``kill_marker`` (atomically, so exactly one call wins) and SIGKILLs its own
    process; every later call, including Dask's recomputation of the lost one,
    trains normally.
    """

    def partial_fit(self, X, y, classes=None, sample_weight=None, kill_marker=None):
        if kill_marker is not None and getattr(self, "n_iter_", 0) >= 2:
            try:
                fd = os.open(kill_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return super().partial_fit(X, y, classes=classes, sample_weight=sample_weight)


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(f"{record.name} - {record.levelname} - {record.getMessage()}")


def test_search_survives_a_killed_worker(client, tmp_path):
    X, y = _data()
    Xd, yd = da.from_array(X, chunks=(CHUNK, X.shape[1])), da.from_array(y, chunks=CHUNK)
    marker = tmp_path / "killed-worker-pid"
    worker_pids = set(client.run(os.getpid).values())

    handler = _ListHandler()
    distributed_logger = logging.getLogger("distributed")
    distributed_logger.addHandler(handler)
    try:
        search = HyperbandSearchCV(
            _KillsItsWorkerOnce(random_state=0), SEARCH_SPACE, max_iter=9, random_state=0
        )
        search.fit(Xd, yd, classes=np.unique(y), kill_marker=str(marker))
        # The nanny restarts the killed worker; leave the cluster as we found it.
        client.wait_for_workers(2, timeout=60)
    finally:
        distributed_logger.removeHandler(handler)

    killed_pid = int(marker.read_text())
    assert killed_pid in worker_pids
    assert killed_pid not in set(client.run(os.getpid).values())

    # The search finished and reports a usable result: the one an undisturbed
    # search finds, since Dask recomputed the lost models from their history.
    check_is_fitted(search.best_estimator_)
    undisturbed = HyperbandSearchCV(
        SoftmaxRegressor(random_state=0), SEARCH_SPACE, max_iter=9, random_state=0
    ).fit(Xd, yd, classes=np.unique(y))
    assert search.best_params_ == undisturbed.best_params_
    assert search.best_score_ == undisturbed.best_score_
    np.testing.assert_allclose(search.best_estimator_.coef_, undisturbed.best_estimator_.coef_)
    assert len(search.cv_results_["params"]) == search.metadata_["n_models"] > 1

    # What the user sees: warnings from the scheduler and the nanny, no error.
    log = "\n".join(handler.messages)
    print(log)
    assert "Removing worker" in log or "Restarting worker" in log, log
