"""Tests for backprop.data: MNIST download, checksum checks, IDX parsing and the cache.

Every download goes to small HTTP servers on 127.0.0.1 started here; the
module-level MIRRORS list is pointed at a dead port for every test, so nothing
can reach the internet. The last tests read a copy of the original MNIST files
(``$BACKPROP_MNIST_DIR`` or ``<repo>/../shared/mnist``) and are skipped when
that folder is missing.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import backprop.data as data
import numpy as np
import pytest
from backprop.data import MNISTError, default_data_dir, fetch_mnist_files, load_mnist

NAMES = list(data.MNIST_FILES)
TRAIN_IMG, TRAIN_LBL, TEST_IMG, TEST_LBL = NAMES
N_TRAIN, N_TEST = 20, 10


# --------------------------------------------------------------------------
# Synthetic MNIST-like files
# --------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """Uncompressed IDX: big-endian magic, one uint32 per dimension, then the bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if magic is None:
        magic = 0x0800 | array.ndim
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()


def gz(raw: bytes) -> bytes:
    return gzip.compress(raw, mtime=0)


def sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def make_dataset(shift: int = 0) -> SimpleNamespace:
    """20 train / 10 test images of 28x28 with known pixels (all of 0..255 occur) and labels."""
    arrays = {
        "x_train": ((np.arange(N_TRAIN * 784) * 7 + 3 + shift) % 256).reshape(N_TRAIN, 28, 28),
        "t_train": (np.arange(N_TRAIN) + shift) % 10,
        "x_test": ((np.arange(N_TEST * 784) * 11 + 5 + shift) % 256).reshape(N_TEST, 28, 28),
        "t_test": (np.arange(N_TEST) * 3 + shift) % 10,
    }
    arrays = {k: v.astype(np.uint8) for k, v in arrays.items()}
    blobs = {
        TRAIN_IMG: gz(idx_bytes(arrays["x_train"])),
        TRAIN_LBL: gz(idx_bytes(arrays["t_train"])),
        TEST_IMG: gz(idx_bytes(arrays["x_test"])),
        TEST_LBL: gz(idx_bytes(arrays["t_test"])),
    }
    return SimpleNamespace(
        arrays=arrays, blobs=blobs, hashes={n: sha256(b) for n, b in blobs.items()}
    )


def with_blob(ds: SimpleNamespace, name: str, blob: bytes) -> SimpleNamespace:
    """A copy of ``ds`` where file ``name`` holds ``blob`` and the checksum table agrees."""
    blobs = {**ds.blobs, name: blob}
    return SimpleNamespace(
        arrays=ds.arrays, blobs=blobs, hashes={n: sha256(b) for n, b in blobs.items()}
    )


def write_files(folder: Path, blobs: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in blobs.items():
        (folder / name).write_bytes(blob)


def listing(folder: Path) -> list[str]:
    """Every entry in ``folder``, hidden ones included."""
    return sorted(os.listdir(folder)) if folder.exists() else []


def boom(*args, **kwargs):
    raise AssertionError("must not be called")


# --------------------------------------------------------------------------
# Fixtures: local HTTP servers, a dead port, isolation
# --------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass


@pytest.fixture
def serve(tmp_path_factory):
    """``serve(blobs)`` starts an HTTP server on 127.0.0.1 for those files.

    With ``cut=True`` every transfer of a file stops halfway, as when a connection drops.

    Returns an object with ``url`` (base URL) and ``requests`` (file names asked for).
    """
    running = []

    def start(blobs: dict[str, bytes], cut: bool = False) -> SimpleNamespace:
        root = tmp_path_factory.mktemp("www")
        write_files(root, blobs)
        requested: list[str] = []

        class Handler(_QuietHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                requested.append(name)
                if not cut or name not in blobs:
                    return super().do_GET()
                # cut=True: announce the whole file, send half of it, hang up.
                self.send_response(200)
                self.send_header("Content-Length", str(len(blobs[name])))
                self.end_headers()
                self.wfile.write(blobs[name][: len(blobs[name]) // 2])
                self.close_connection = True

        httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(Handler, directory=str(root))
        )
        thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        running.append((httpd, thread))
        return SimpleNamespace(
            url=f"http://127.0.0.1:{httpd.server_address[1]}/", requests=requested
        )

    yield start
    for httpd, thread in running:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def dead_url():
    """A URL on a port that is bound but not listening: connections are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    sock.close()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path, dead_url):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    # A test that forgets mirrors= still cannot reach the internet.
    monkeypatch.setattr(data, "MIRRORS", [dead_url])


@pytest.fixture
def ds():
    return make_dataset()


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "data"


def assert_matches(result, ds, normalize=True, flatten=True, one_hot=False):
    (x_train, t_train), (x_test, t_test) = result
    for x, t, split in ((x_train, t_train, "train"), (x_test, t_test, "test")):
        pixels = ds.arrays[f"x_{split}"].astype(np.float32)
        labels = ds.arrays[f"t_{split}"]
        n = len(labels)
        expected = pixels / np.float32(255) if normalize else pixels
        expected = expected.reshape(n, 784) if flatten else expected.reshape(n, 1, 28, 28)
        assert x.dtype == np.float32
        assert x.shape == expected.shape
        np.testing.assert_array_equal(x, expected)
        if one_hot:
            assert t.dtype == np.float32 and t.shape == (n, 10)
            np.testing.assert_array_equal(t.argmax(axis=1), labels)
            np.testing.assert_array_equal(t.sum(axis=1), np.ones(n, np.float32))
            assert set(np.unique(t)) == {0.0, 1.0}
        else:
            assert t.dtype == np.int64 and t.shape == (n,)
            np.testing.assert_array_equal(t, labels)


# --------------------------------------------------------------------------
# Download and load
# --------------------------------------------------------------------------


def test_download_then_load(serve, ds, folder):
    server = serve(ds.blobs)
    result = load_mnist(data_dir=folder, mirrors=[server.url], files=ds.hashes)
    assert_matches(result, ds)
    (x_train, _), _ = result
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert sorted(server.requests) == sorted(NAMES)
    # The four files, the cache, and nothing else (no temporary files).
    assert listing(folder) == sorted([*NAMES, data.CACHE_NAME])
    for name in NAMES:
        assert sha256((folder / name).read_bytes()) == ds.hashes[name]


@pytest.mark.slow
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("flatten", [True, False])
@pytest.mark.parametrize("one_hot", [False, True])
def test_output_variants(serve, ds, folder, normalize, flatten, one_hot):
    server = serve(ds.blobs)
    kwargs = dict(data_dir=folder, mirrors=[server.url], files=ds.hashes)
    # First call: built from the .gz files (positional flags, as in the book).
    result = load_mnist(normalize, flatten, one_hot, **kwargs)
    assert_matches(result, ds, normalize, flatten, one_hot)
    # Second call: from the cache.
    result = load_mnist(normalize=normalize, flatten=flatten, one_hot_label=one_hot, **kwargs)
    assert_matches(result, ds, normalize, flatten, one_hot)


def test_module_mirror_list_is_used(serve, ds, folder, monkeypatch):
    server = serve(ds.blobs)
    monkeypatch.setattr(
        data, "MIRRORS", [server.url.rstrip("/")]
    )  # works without the trailing slash too
    assert_matches(load_mnist(data_dir=folder, files=ds.hashes), ds)
    assert sorted(server.requests) == sorted(NAMES)


def test_fetch_mnist_files_returns_paths(serve, ds, folder):
    server = serve(ds.blobs)
    paths = fetch_mnist_files(folder, mirrors=[server.url], files=ds.hashes)
    assert paths == {name: folder.absolute() / name for name in NAMES}
    assert listing(folder) == sorted(NAMES)


@pytest.mark.parametrize("bad_kind", ["wrong bytes", "404", "nothing listening", "cut"])
def test_bad_first_mirror_falls_through_to_next(serve, ds, folder, dead_url, bad_kind):
    if bad_kind == "wrong bytes":
        bad = serve({name: b"these are not the bytes you are looking for" for name in NAMES})
        bad_url = bad.url
    elif bad_kind == "404":
        bad = serve({})
        bad_url = bad.url
    elif bad_kind == "cut":
        bad = serve(ds.blobs, cut=True)
        bad_url = bad.url
    else:
        bad, bad_url = None, dead_url
    good = serve(ds.blobs)
    result = load_mnist(data_dir=folder, mirrors=[bad_url, good.url], files=ds.hashes)
    assert_matches(result, ds)
    if bad is not None:
        assert sorted(bad.requests) == sorted(NAMES)  # each file was tried there first
    assert sorted(good.requests) == sorted(NAMES)
    assert listing(folder) == sorted([*NAMES, data.CACHE_NAME])


def test_all_mirrors_bad(serve, ds, folder, dead_url):
    wrong = serve({name: b"wrong bytes" for name in NAMES})
    empty = serve({})  # every file is a 404
    cut = serve(ds.blobs, cut=True)
    mirrors = [wrong.url, empty.url, dead_url, cut.url]
    with pytest.raises(MNISTError) as info:
        load_mnist(data_dir=folder, mirrors=mirrors, files=ds.hashes)
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    for mirror in mirrors:
        assert mirror + TRAIN_IMG in message  # every mirror tried, named with the file
    assert "checksum mismatch" in message
    assert "HTTP error 404" in message
    assert "could not connect (Connection refused)" in message
    assert f"{cut.url}{TRAIN_IMG}: transfer broken off" in message
    assert "by hand" in message and str(folder.absolute()) in message and "BACKPROP_DATA" in message
    for name in NAMES:  # the fix names all four files
        assert name in message
    assert listing(folder) == []  # no partial, wrong or temporary file left behind


def test_offline_error_says_how_to_fix(ds, folder, dead_url):
    with pytest.raises(MNISTError) as info:
        load_mnist(data_dir=folder, mirrors=[dead_url], files=ds.hashes)
    message = str(info.value)
    assert f"{dead_url}{TRAIN_IMG}: could not connect (Connection refused)" in message
    assert "download the four files" in message
    assert str(folder.absolute()) in message and "BACKPROP_DATA" in message
    for name, digest in ds.hashes.items():
        assert name in message and digest in message
    assert listing(folder) == []


def test_no_mirrors_at_all(ds, folder):
    with pytest.raises(MNISTError, match="no mirrors given"):
        load_mnist(data_dir=folder, mirrors=[], files=ds.hashes)


def test_silent_server_times_out(ds, folder, monkeypatch):
    # Listening (the kernel completes the handshake) but never answering.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        monkeypatch.setattr(data, "_TIMEOUT", 0.2)
        with pytest.raises(MNISTError) as info:
            fetch_mnist_files(folder, mirrors=[url], files=ds.hashes)
    assert f"{url}{TRAIN_IMG}: timed out after 0.2 s" in str(info.value)
    assert listing(folder) == []


def test_mirrors_must_be_urls_pooch_can_fetch(ds, folder):
    for mirrors in (["file:///srv/mnist/"], ["/srv/mnist"], "ftp:/wrong"):
        with pytest.raises(ValueError, match="mirrors must be URLs"):
            load_mnist(data_dir=folder, mirrors=mirrors, files=ds.hashes)
    assert listing(folder) == []


# --------------------------------------------------------------------------
# Files already in the folder
# --------------------------------------------------------------------------


def test_prepopulated_folder_needs_no_network(ds, folder, dead_url):
    write_files(folder, ds.blobs)
    assert_matches(load_mnist(data_dir=folder, mirrors=[dead_url], files=ds.hashes), ds)
    assert listing(folder) == sorted([*NAMES, data.CACHE_NAME])


def test_env_var_names_the_folder(ds, folder, dead_url, monkeypatch):
    write_files(folder, ds.blobs)
    monkeypatch.setenv(data.ENV_VAR, str(folder))
    assert default_data_dir() == folder
    assert_matches(load_mnist(mirrors=[dead_url], files=ds.hashes), ds)
    assert (folder / data.CACHE_NAME).is_file()


def test_default_folder_is_the_user_cache(tmp_path, monkeypatch):
    assert default_data_dir() == tmp_path / "user-cache" / "backprop"
    monkeypatch.setenv(data.ENV_VAR, "")  # empty means unset
    assert default_data_dir() == tmp_path / "user-cache" / "backprop"


def test_wrong_local_file_is_replaced(serve, ds, folder):
    write_files(folder, {**ds.blobs, TEST_LBL: b"corrupted copy"})
    server = serve(ds.blobs)
    assert_matches(load_mnist(data_dir=folder, mirrors=[server.url], files=ds.hashes), ds)
    assert server.requests == [TEST_LBL]  # only the bad file was downloaded again
    assert sha256((folder / TEST_LBL).read_bytes()) == ds.hashes[TEST_LBL]


def test_wrong_local_file_is_removed_when_offline(ds, folder, dead_url):
    write_files(folder, {**ds.blobs, TEST_LBL: b"corrupted copy"})
    with pytest.raises(MNISTError) as info:
        load_mnist(data_dir=folder, mirrors=[dead_url], files=ds.hashes)
    message = str(info.value)
    assert TEST_LBL in message and "it was deleted" in message
    assert listing(folder) == sorted(set(NAMES) - {TEST_LBL})


# --------------------------------------------------------------------------
# Damaged files (their checksums are in the table, so only parsing can catch them)
# --------------------------------------------------------------------------


def _damaged_cases():
    base = make_dataset()
    images = idx_bytes(base.arrays["x_train"])
    labels = idx_bytes(base.arrays["t_train"])
    good = base.blobs[TRAIN_IMG]
    wrong_magic = gz(idx_bytes(base.arrays["t_train"], magic=2050))
    few_labels = gz(idx_bytes(base.arrays["t_train"][:-1]))
    # case: (file, its bytes, expected text in the error, whether the file is deleted)
    return {
        "truncated gzip": (TRAIN_IMG, good[: len(good) // 2], "gzip data are truncated", True),
        "not gzip": (TRAIN_IMG, images, "not a readable gzip file", True),
        "wrong magic": (TRAIN_LBL, wrong_magic, "magic number is 2050, expected 2049", True),
        "labels file for images": (
            TRAIN_IMG,
            gz(labels),
            "magic number is 2049, expected 2051",
            True,
        ),
        "data shorter than header": (
            TRAIN_IMG,
            gz(images[:-100]),
            "promises 15680 data bytes",
            True,
        ),
        "data longer than header": (TRAIN_IMG, gz(images + b"\x00" * 7), "holds 15687", True),
        "header cut short": (TEST_LBL, gz(labels[:6]), "inside the IDX header", True),
        "label count differs": (TRAIN_LBL, few_labels, "20 images but 19 labels", False),
        "label out of range": (
            TEST_LBL,
            gz(idx_bytes(np.full(N_TEST, 12))),
            "labels go up to 12",
            False,
        ),
    }


DAMAGED = _damaged_cases()


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_file_gives_clear_error_and_no_poison(serve, ds, folder, case):
    name, blob, reason, deleted = DAMAGED[case]
    bad = with_blob(ds, name, blob)
    server = serve(bad.blobs)
    with pytest.raises(MNISTError) as info:
        load_mnist(data_dir=folder, mirrors=[server.url], files=bad.hashes)
    message = str(info.value)
    assert reason in message
    assert "BACKPROP_DATA" in message
    if deleted:  # a file that cannot be parsed is named and removed
        assert name in message and "It was deleted" in message
        assert listing(folder) == sorted(set(NAMES) - {name})
    else:  # each file is valid on its own: kept, but no cache
        assert listing(folder) == sorted(NAMES)

    # Nothing poisoned: with the right files and checksums the same folder loads.
    good = serve(ds.blobs)
    assert_matches(load_mnist(data_dir=folder, mirrors=[good.url], files=ds.hashes), ds)
    assert listing(folder) == sorted([*NAMES, data.CACHE_NAME])


def test_idx_parser_reads_header_shape(ds, tmp_path):
    write_files(tmp_path, ds.blobs)
    images = data._read_idx(tmp_path / TRAIN_IMG, 2051)
    labels = data._read_idx(tmp_path / TRAIN_LBL, 2049)
    assert images.dtype == np.uint8 and images.shape == (N_TRAIN, 28, 28)
    assert labels.dtype == np.uint8 and labels.shape == (N_TRAIN,)
    np.testing.assert_array_equal(images, ds.arrays["x_train"])
    np.testing.assert_array_equal(labels, ds.arrays["t_train"])


# --------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------


def test_second_call_uses_cache_only(serve, ds, folder, monkeypatch):
    server = serve(ds.blobs)
    first = load_mnist(data_dir=folder, mirrors=[server.url], files=ds.hashes)
    first[0][0][:] = -1.0  # the caller owns the returned arrays
    assert len(server.requests) == 4
    monkeypatch.setattr(data, "_read_idx", boom)
    monkeypatch.setattr(data.pooch, "file_hash", boom)
    monkeypatch.setattr(data, "fetch_mnist_files", boom)
    assert_matches(load_mnist(data_dir=folder, mirrors=[server.url], files=ds.hashes), ds)
    assert len(server.requests) == 4


def test_stale_cache_is_rebuilt(serve, ds, folder, monkeypatch):
    # Cache built for dataset A; then the folder gets dataset B (other checksums).
    server = serve(ds.blobs)
    load_mnist(data_dir=folder, mirrors=[server.url], files=ds.hashes)
    other = make_dataset(shift=1)
    write_files(folder, other.blobs)
    assert_matches(load_mnist(data_dir=folder, mirrors=[server.url], files=other.hashes), other)
    # The cache now belongs to B: B loads without parsing.
    monkeypatch.setattr(data, "_read_idx", boom)
    assert_matches(load_mnist(data_dir=folder, files=other.hashes), other)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped byte", "empty"])
def test_corrupt_cache_is_rebuilt(ds, folder, damage, monkeypatch):
    write_files(folder, ds.blobs)
    load_mnist(data_dir=folder, files=ds.hashes)
    cache = folder / data.CACHE_NAME
    raw = bytearray(cache.read_bytes())
    if damage == "garbage":
        raw = bytearray(b"not a zip file at all" * 10)
    elif damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "flipped byte":
        raw[len(raw) // 2] ^= 0xFF  # inside the pixel data; the zip CRC catches it
    else:
        raw = bytearray()
    cache.write_bytes(bytes(raw))
    assert_matches(load_mnist(data_dir=folder, files=ds.hashes), ds)
    monkeypatch.setattr(data, "_read_idx", boom)  # and the rebuilt cache is sound
    assert_matches(load_mnist(data_dir=folder, files=ds.hashes), ds)
    assert listing(folder) == sorted([*NAMES, data.CACHE_NAME])


def test_read_only_folder_loads_without_cache(ds, folder, monkeypatch, caplog):
    write_files(folder, ds.blobs)

    def refuse(directory, key, arrays):
        raise PermissionError(13, "Permission denied", str(directory))

    monkeypatch.setattr(data, "_write_cache", refuse)
    for _ in range(2):  # the second load parses again, from the same files
        with caplog.at_level("INFO", logger="backprop.data"):
            assert_matches(load_mnist(data_dir=folder, files=ds.hashes), ds)
        assert "MNIST not cached" in caplog.text and "Permission denied" in caplog.text
        caplog.clear()
    assert listing(folder) == sorted(NAMES)
    assert listing(Path(data.pooch.os_cache("backprop"))) == []  # no second cache folder


def test_failed_cache_write_leaves_no_temporary_file(ds, folder, monkeypatch):
    write_files(folder, ds.blobs)
    arrays = dict(ds.arrays)

    def fail_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data.os, "replace", fail_replace)
    with pytest.raises(OSError, match="No space"):
        data._write_cache(folder, "key", arrays)
    assert listing(folder) == sorted(NAMES)


def test_files_table_is_validated(folder):
    with pytest.raises(ValueError, match="exactly the names"):
        load_mnist(data_dir=folder, files={TRAIN_IMG: "0" * 64})
    with pytest.raises(ValueError, match="not a SHA-256"):
        load_mnist(data_dir=folder, files={name: "abc" for name in NAMES})
    # "sha256:" prefixes and upper case are accepted
    table = data._checked_files({n: "sha256:" + d.upper() for n, d in data.MNIST_FILES.items()})
    assert table == data.MNIST_FILES


# --------------------------------------------------------------------------
# The real MNIST files
# --------------------------------------------------------------------------

REAL_DIR = Path(
    os.environ.get("BACKPROP_MNIST_DIR") or Path(__file__).resolve().parents[2] / "shared" / "mnist"
)
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

needs_real = pytest.mark.skipif(
    not all((REAL_DIR / name).is_file() for name in NAMES),
    reason=f"the four MNIST .gz files are not in {REAL_DIR} (set BACKPROP_MNIST_DIR)",
)


def copy_real(dst: Path) -> Path:
    """Copy the original files (their folder is read-only for us) into ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        shutil.copyfile(REAL_DIR / name, dst / name)
    return dst


@pytest.mark.slow
@needs_real
def test_real_mnist(tmp_path, dead_url):
    folder = copy_real(tmp_path / "mnist")
    start = time.perf_counter()
    (x_train, t_train), (x_test, t_test) = load_mnist(data_dir=folder, mirrors=[dead_url])
    first = time.perf_counter() - start
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert t_train.shape == (60000,) and t_test.shape == (10000,) and t_train.dtype == np.int64
    assert np.bincount(t_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(t_test, minlength=10).tolist() == TEST_COUNTS
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert float(x_train.mean(dtype=np.float64)) == pytest.approx(0.1307, abs=1e-4)
    assert float(x_test.mean(dtype=np.float64)) * 255 == pytest.approx(33.791, abs=1e-3)
    del x_train, x_test

    start = time.perf_counter()
    (x_train, t_train), _ = load_mnist(data_dir=folder, mirrors=[dead_url])
    second = time.perf_counter() - start
    assert float(x_train.mean(dtype=np.float64)) == pytest.approx(0.1307, abs=1e-4)
    print(
        f"\nreal MNIST: first load (verify + parse + cache) {first:.3f} s, cached load {second:.3f} s"
    )
    assert second < 1.0
    assert listing(folder) == sorted([*NAMES, data.CACHE_NAME])


@needs_real
@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/proc/self/status").is_file(), reason="needs Linux /proc for peak RSS"
)
def test_real_mnist_peak_memory(tmp_path):
    """A fresh process loading MNIST (both from the .gz files and from the cache) stays under 400 MB."""
    folder = copy_real(tmp_path / "mnist")
    # VmHWM is the peak RSS of this process image; ru_maxrss would also count
    # the memory of the (large) pytest process the child was started from.
    script = textwrap.dedent(
        """
        import sys
        from backprop.data import load_mnist
        (x_train, t_train), (x_test, t_test) = load_mnist(data_dir=sys.argv[1], mirrors=[])
        with open("/proc/self/status") as status:
            peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
        print(peak_kib // 1024)
        """
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "user-cache")}
    peaks = []
    for _ in ("parse", "cache"):
        done = subprocess.run(
            [sys.executable, "-c", script, str(folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        peaks.append(int(done.stdout.split()[-1]))
    print(f"\nreal MNIST peak RSS: first load {peaks[0]} MB, cached load {peaks[1]} MB")
    assert max(peaks) < 400
