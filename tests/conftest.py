"""Shared fixtures: where the real MNIST files are, and float64 random data."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def shared_mnist_dir() -> Path | None:
    """The folder with the four original MNIST .gz files, or None.

    BACKPROP_MNIST_DIR wins; else ../shared/mnist beside the repository.
    """
    candidates = [os.environ.get("BACKPROP_MNIST_DIR"), REPO.parent / "shared" / "mnist"]
    for c in candidates:
        if c and all((Path(c) / f).is_file() for f in MNIST_FILES):
            return Path(c)
    return None


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    """A writable data folder holding copies of the real MNIST files (never the shared one)."""
    src = shared_mnist_dir()
    if src is None:
        pytest.skip("the real MNIST files are not here: set BACKPROP_MNIST_DIR to a folder "
                    "holding the four .gz files, or put them in ../shared/mnist")
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
