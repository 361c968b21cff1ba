"""Shared fixtures: where the real MNIST files are, and float64 random data; the Hypothesis
profile every property test runs with."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import MNIST_FILES, REPO, shared_mnist_dir  # noqa: F401  (REPO: for tests)
from hypothesis import settings


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    """A writable data folder holding copies of the real MNIST files (never the shared one)."""
    src = shared_mnist_dir()
    if src is None:
        pytest.skip(
            "the real MNIST files are not here: set BACKPROP_MNIST_DIR to a folder "
            "holding the four .gz files, or put them in ../shared/mnist"
        )
    dst = tmp_path_factory.mktemp("mnist")
    for f in MNIST_FILES:
        shutil.copyfile(src / f, dst / f)
    return dst


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="module", autouse=True)
def _no_event_loop_left_running():
    """A test module that leaves an asyncio loop running in this thread (an open
    ``sync_playwright()`` in a session fixture does) breaks every later synchronous API built
    on asyncio, Playwright's and nbclient's: fail that module here, when it is done."""
    import asyncio

    yield
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    asyncio.events._set_running_loop(None)
    pytest.fail(f"this module left an asyncio event loop running in the main thread: {loop!r}")


# Hypothesis: 25 examples a test unless the test says otherwise (@settings), and no time
# limit per example (a numerical gradient of a larger layer can take a while). Loaded here,
# so every module gets it whichever modules a run collects.
settings.register_profile("course", max_examples=25, deadline=None)
settings.load_profile("course")
