"""The documentation builds with warnings as errors, gallery included.

A copy of docs/ is built, so that nothing is written into the source tree and
no earlier build's gallery is reused. It runs the examples in quick mode
(SKSOFTMAX_EXAMPLES_QUICK=1, a few seconds each); the full build is what
``python -m sphinx -W -b html docs docs/_build/html`` does. Skipped when the
docs extra is not installed.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("numpydoc")
pytest.importorskip("sphinx_gallery")
pytest.importorskip("skl2onnx")  # the API reference documents sksoftmax.onnx
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    "index",
    "getting_started",
    "user_guide/index",
    "user_guide/model",
    "user_guide/step_size",
    "user_guide/scaling_out",
    "user_guide/performance",
    "persistence",
    "api",
    "generated/sksoftmax.SoftmaxRegressor",
    "generated/sksoftmax.datasets.load_fashion_mnist",
    "generated/sksoftmax.onnx.register",
    "auto_examples/index",
    "changelog",
]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("plot_*.py"))
NOT_RUN = {"plot_dask", "plot_fashion_mnist"}  # need a cluster / the network


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    # A copy of docs/ without earlier builds: sphinx-gallery writes its pages
    # into the source folder and skips examples it ran before.
    source = tmp_path_factory.mktemp("source") / "docs"
    shutil.copytree(
        ROOT / "docs",
        source,
        ignore=shutil.ignore_patterns("_build", "auto_examples", "generated", "sg_*.rst"),
    )
    out = tmp_path_factory.mktemp("html")
    doctrees = tmp_path_factory.mktemp("doctrees")
    env = {
        **os.environ,
        "SKSOFTMAX_EXAMPLES_QUICK": "1",
        "SKSOFTMAX_EXAMPLES_OUTPUT": str(tmp_path_factory.mktemp("figures")),
        "MPLBACKEND": "Agg",
    }
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", "-d", str(doctrees)]
        + [str(source), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    return out


def test_every_page_is_built(html):
    for page in PAGES:
        assert (html / f"{page}.html").is_file(), page


def test_api_reference_comes_from_the_docstrings(html):
    page = (html / "generated/sksoftmax.SoftmaxRegressor.html").read_text()
    for text in ("partial_fit", "predict_proba", "learning_rate", "loss_curve_", "get_params"):
        assert text in page
    assert "set_fit_request" not in page  # scikit-learn's generated setters are left out


@pytest.mark.parametrize("example", EXAMPLES)
def test_gallery_pages(html, example):
    page = " ".join((html / f"auto_examples/{example}.html").read_text().split())
    # sphx_glr_<example>_001.png, ...: the figures it drew (not its thumbnail).
    figures = list((html / "_images").glob(f"sphx_glr_{example}_[0-9]*.png"))
    if example in NOT_RUN:
        assert not figures
        assert "documentation build does not run it" in page
    else:
        assert figures, f"{example} has no rendered figure"
