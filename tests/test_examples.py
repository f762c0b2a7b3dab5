"""Every examples/plot_*.py runs in quick mode, headless, and writes its figures.

The examples run in-process with runpy (as ``__main__``, the way ``python
file.py`` runs them, without paying for a new interpreter each); one of them
also runs as a real subprocess. plot_fashion_mnist.py reads a tiny fake
Fashion-MNIST from IDX files, through SKSOFTMAX_FASHION_MNIST_IDX, while
OpenML is unreachable.
"""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "data"))
import fashion_mnist_fixture as fake  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FIGURES = {
    "plot_iris.py": ["iris.png"],
    "plot_fashion_mnist.py": [
        "fashion_mnist_weights.png",
        "fashion_mnist_curves.png",
        "fashion_mnist_confusion.png",
    ],
    "plot_grid_search.py": ["grid_search.png"],
    "plot_multinomial_vs_ovr.py": ["multinomial_vs_ovr.png"],
    "plot_elastic_net_path.py": ["elastic_net_path.png", "elastic_net_weights.png"],
    "plot_out_of_core.py": ["plot_out_of_core.png"],
    "plot_dask.py": ["plot_dask.png"],
}
# Examples that need an optional extra, by the module they import.
NEEDS = {"plot_dask.py": "dask_ml"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("plot_*.py")) == sorted(FIGURES)
    readme = (EXAMPLES / "README.txt").read_text()
    for example in FIGURES:
        assert f"``{example}``" in readme, example


def test_the_examples_extra_covers_every_example():
    """plot_dask.py needs Dask: the examples extra pulls in the dask one."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    pyproject = tomllib.loads((EXAMPLES.parent / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    assert "sksoftmax[dask]" in extras["examples"]
    assert any(req.startswith("matplotlib") for req in extras["examples"])


def test_fashion_mnist_offline_names_every_way_to_supply_the_data(
    example_env, monkeypatch, tmp_path
):
    """Offline, without the IDX variable: a message, not a traceback about idx_folder=."""
    monkeypatch.delenv("SKSOFTMAX_FASHION_MNIST_IDX")
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr("time.sleep", lambda seconds: None)  # fetch_openml's retries
    with pytest.warns(UserWarning, match="network error"):  # fetch_openml's retries
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_path(str(EXAMPLES / "plot_fashion_mnist.py"), run_name="__main__")
    message = str(exit_info.value)
    for way in ("SKSOFTMAX_FASHION_MNIST_IDX", "SCIKIT_LEARN_DATA", "t10k-labels-idx1-ubyte.gz"):
        assert way in message
    assert "idx_folder" not in message


@pytest.fixture
def example_env(monkeypatch, tmp_path):
    """Quick mode, figures into tmp_path/out, fake Fashion-MNIST, no network."""
    out = tmp_path / "out"
    idx = tmp_path / "idx"
    fake.write_idx_folder(idx, n_train=300, n_test=100)
    fake.serve_no_network(monkeypatch)
    env = {
        "SKSOFTMAX_EXAMPLES_QUICK": "1",
        "SKSOFTMAX_EXAMPLES_OUTPUT": str(out),
        "SKSOFTMAX_FASHION_MNIST_IDX": str(idx),
        "MPLBACKEND": "Agg",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield out, env
    plt.close("all")


def check_figures(out, example):
    for name in FIGURES[example]:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 5_000, name


@pytest.mark.parametrize("example", sorted(FIGURES))
def test_example_runs_in_quick_mode(example_env, example, capsys):
    if example in NEEDS:
        pytest.importorskip(NEEDS[example])
    out, _ = example_env
    runpy.run_path(str(EXAMPLES / example), run_name="__main__")
    check_figures(out, example)
    assert "saved to" in capsys.readouterr().out


def test_example_runs_as_a_script(example_env):
    out, env = example_env
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "plot_iris.py")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout
    check_figures(out, "plot_iris.py")
