"""MNIST for the course: download once, verify, parse, cache.

Use :func:`load_mnist`::

    from backprop.data import load_mnist
    (x_train, t_train), (x_test, t_test) = load_mnist()

The first call needs the four original IDX files of the MNIST database
(Yann LeCun, Corinna Cortes, Christopher J.C. Burges; CC BY-SA 3.0)::

    train-images-idx3-ubyte.gz   train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz    t10k-labels-idx1-ubyte.gz

They are looked for in the *data folder*, which is, in this order:

1. the ``data_dir`` argument,
2. the environment variable ``BACKPROP_DATA``,
3. a per-user cache folder (``pooch.os_cache("backprop")``, e.g.
   ``~/.cache/backprop`` on Linux).

Files already in the folder are checked against their SHA-256 checksums
(:data:`MNIST_FILES`) and used as they are, without any network access; this
is how offline classrooms work: hand out the four files and point
``BACKPROP_DATA`` at them. Missing files are downloaded with pooch, trying each
URL in :data:`MIRRORS` in turn. A download is written to a temporary file and
only moved into place when its checksum is right, so the data folder never
holds a partial or wrong file; an existing file with a wrong checksum is
deleted and downloaded again.

The parsed pixels and labels are then cached as ``mnist.npz`` (uint8,
uncompressed) in the data folder, or in the per-user cache folder if the data
folder cannot be written. The cache is written atomically and records the
checksums it was built from; a cache that is stale (other checksums) or
unreadable is rebuilt, never trusted. Later calls read only the cache, which
takes a fraction of a second.

Everything that can go wrong while obtaining or reading the data (no network,
wrong checksum on every mirror, truncated or malformed file) raises
:class:`MNISTError`, whose message says what failed and how to fix it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import re
import struct
import tempfile
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ENV_VAR",
    "MIRRORS",
    "MNIST_FILES",
    "MNISTError",
    "default_data_dir",
    "fetch_mnist_files",
    "load_mnist",
]

StrPath: TypeAlias = "str | os.PathLike[str]"

#: Base URLs tried in turn for each missing file (the file name is appended).
#: Change this list, or pass ``mirrors=`` to :func:`load_mnist`, to use a local
#: server.
MIRRORS: list[str] = [
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]

#: The four original files and the SHA-256 checksums of their .gz bytes.
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

#: Environment variable naming the data folder.
ENV_VAR = "BACKPROP_DATA"

CACHE_NAME = "mnist.npz"
_CACHE_FORMAT = "backprop-mnist-cache-v1"
_TIMEOUT = 30  # seconds, per HTTP request
_IMAGE_MAGIC = 2051
_LABEL_MAGIC = 2049
_ROWS = _COLS = 28
_MAX_IDX_BYTES = 1 << 28  # refuse headers that promise absurd amounts of data

# (array name in the cache, file name, expected IDX magic number)
_PARTS: tuple[tuple[str, str, int], ...] = (
    ("x_train", "train-images-idx3-ubyte.gz", _IMAGE_MAGIC),
    ("t_train", "train-labels-idx1-ubyte.gz", _LABEL_MAGIC),
    ("x_test", "t10k-images-idx3-ubyte.gz", _IMAGE_MAGIC),
    ("t_test", "t10k-labels-idx1-ubyte.gz", _LABEL_MAGIC),
)

_log = logging.getLogger(__name__)


class MNISTError(RuntimeError):
    """The MNIST files could not be obtained or read; the message says how to fix it."""


class _IDXFormatError(ValueError):
    """A file is not a well-formed gzip-compressed IDX file."""


# --------------------------------------------------------------------------
# Folders and checksums
# --------------------------------------------------------------------------


def _user_cache_dir() -> Path:
    import pooch

    return Path(pooch.os_cache("backprop"))


def default_data_dir() -> Path:
    """Return the data folder used when ``data_dir`` is not given.

    That is ``$BACKPROP_DATA`` if the variable is set and not empty, otherwise
    the per-user cache folder ``pooch.os_cache("backprop")``.
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    return _user_cache_dir()


def _resolve_dir(data_dir: StrPath | None) -> Path:
    folder = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    return folder.absolute()


def _checked_files(files: Mapping[str, str] | None) -> dict[str, str]:
    """Validate a ``{file name: sha256}`` table; return it with bare lower-case digests."""
    if files is None:
        return dict(MNIST_FILES)
    if set(files) != set(MNIST_FILES):
        raise ValueError(
            f"files must map exactly the names {sorted(MNIST_FILES)} to SHA-256 checksums, "
            f"got {sorted(files)}"
        )
    table = {}
    for name in MNIST_FILES:  # keep the canonical order
        digest = str(files[name]).strip().lower()
        digest = digest.removeprefix("sha256:")
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError(f"checksum for {name} is not a SHA-256 hex digest: {files[name]!r}")
        table[name] = digest
    return table


def _checked_mirrors(mirrors: Sequence[str] | str | None) -> list[str]:
    if mirrors is None:
        mirrors = MIRRORS
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    return [str(m) for m in mirrors]


def _url(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _discard(path: Path) -> bool:
    """Delete ``path`` if possible; return whether it is gone."""
    try:
        path.unlink()
    except FileNotFoundError:
        return True
    except OSError as exc:
        _log.warning("could not delete %s: %s", path, exc)
        return False
    return True


def _how_to_fix(folder: Path, table: Mapping[str, str], mirrors: Sequence[str]) -> str:
    source = f" (for example from {mirrors[0]})" if mirrors else ""
    width = max(len(name) for name in table)
    listing = "\n".join(f"    {name:<{width}}  sha256 {digest}" for name, digest in table.items())
    return (
        f"How to fix: download the four files\n{listing}\n"
        f"by hand{source}, put them in\n    {folder}\n"
        f"and run again; or set the environment variable {ENV_VAR} to a folder "
        f"that already holds them. Check a file with `sha256sum FILE`."
    )


def _describe_failure(exc: BaseException) -> str:
    """One line on why a download attempt failed."""
    text = str(exc)
    got = re.search(r"but got ([0-9a-fA-F]+)", text)
    if isinstance(exc, ValueError) and "hash" in text and got:
        return f"checksum mismatch (got sha256 {got.group(1)})"
    name = type(exc).__name__
    if name == "HTTPError":
        response = getattr(exc, "response", None)
        if response is not None:
            return f"HTTP error {response.status_code} {response.reason}"
    if "Timeout" in name:
        return f"timed out after {_TIMEOUT} s"
    if name in ("ConnectionError", "ProxyError", "SSLError"):
        errno_text = re.search(r"\[Errno -?\d+\][^'\")\]]*", text)
        detail = errno_text.group(0).strip() if errno_text else text[:200]
        return f"could not connect ({detail})"
    return f"{name}: {text[:300]}"


# --------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------


def fetch_mnist_files(
    data_dir: StrPath | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    files: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Make sure the four MNIST .gz files are in the data folder, with the right checksums.

    Parameters
    ----------
    data_dir : folder for the files; default :func:`default_data_dir`.
    mirrors : base URLs tried in turn for each missing file; default :data:`MIRRORS`.
    files : ``{file name: sha256}`` for the four files; default :data:`MNIST_FILES`.

    Returns
    -------
    dict mapping each file name to its absolute path.

    Files already present are hashed and kept when they match (no network
    access at all if all four match). A present file with a wrong checksum is
    deleted. A missing file is downloaded from the first mirror that delivers
    the right bytes; nothing is written under the final name unless the
    checksum matches.

    Raises
    ------
    MNISTError if the folder cannot be created or a file cannot be obtained
    from any mirror. Files that were complete and correct are kept.
    """
    folder = _resolve_dir(data_dir)
    table = _checked_files(files)
    urls = _checked_mirrors(mirrors)
    paths: dict[str, Path] = {}
    for name, digest in table.items():
        target = folder / name
        notes: list[str] = []
        if target.is_file():
            try:
                actual = _sha256(target)
            except OSError as exc:
                raise MNISTError(f"Cannot read the MNIST file {target}: {exc}") from exc
            if actual == digest:
                paths[name] = target
                continue
            gone = _discard(target)
            notes.append(
                f"The existing {target} had sha256 {actual}, expected {digest}; "
                + ("it was deleted." if gone else "it could NOT be deleted, please remove it.")
            )
        path, attempts = _download(name, digest, folder, urls)
        if path is None:
            tried = "\n".join(f"  - {url}: {why}" for url, why in attempts) or "  (no mirrors given)"
            raise MNISTError(
                f"Could not get the MNIST file {name} from any mirror.\n"
                f"Tried:\n{tried}\n"
                + "".join(note + "\n" for note in notes)
                + f"No incomplete or unverified file was kept in {folder}.\n"
                + _how_to_fix(folder, table, urls)
            )
        paths[name] = path
    return paths


def _download(
    name: str, digest: str, folder: Path, urls: Sequence[str]
) -> tuple[Path | None, list[tuple[str, str]]]:
    """Try each mirror for one file; return (path or None, [(url, why it failed)])."""
    attempts: list[tuple[str, str]] = []
    if not urls:
        return None, attempts
    import pooch

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MNISTError(
            f"Cannot create the MNIST data folder {folder}: {exc}.\n"
            f"Pass data_dir= or set {ENV_VAR} to a folder you can write to."
        ) from exc
    for base in urls:
        url = _url(base, name)
        downloader = None
        if url.startswith(("http://", "https://")):
            downloader = pooch.HTTPDownloader(progressbar=False, timeout=_TIMEOUT, chunk_size=1 << 16)
        try:
            # pooch streams into a temporary file in ``folder`` and moves it to
            # ``folder / name`` only if the checksum matches; else it deletes it.
            fetched = pooch.retrieve(
                url,
                known_hash=f"sha256:{digest}",
                fname=name,
                path=folder,
                downloader=downloader,
            )
        except Exception as exc:  # any failure: report it and try the next mirror
            attempts.append((url, _describe_failure(exc)))
            continue
        return Path(fetched), attempts
    return None, attempts


# --------------------------------------------------------------------------
# IDX parsing
# --------------------------------------------------------------------------


def _readinto_full(stream: gzip.GzipFile, buffer: memoryview) -> int:
    filled = 0
    while filled < len(buffer):
        n = stream.readinto(buffer[filled:])
        if not n:
            break
        filled += n
    return filled


def _read_idx(path: Path, expected_magic: int) -> NDArray[np.uint8]:
    """Read one gzip-compressed IDX file of unsigned bytes.

    Returns a uint8 array whose shape is given by the header: (count, rows,
    cols) for magic 2051 (images), (count,) for magic 2049 (labels).
    Raises _IDXFormatError if the gzip stream is damaged, the magic number is
    not ``expected_magic``, or the data length differs from the header.
    """
    kind = {_IMAGE_MAGIC: "images", _LABEL_MAGIC: "labels"}.get(expected_magic, "IDX data")
    try:
        with gzip.open(path, "rb") as stream:
            head = stream.read(4)
            if len(head) < 4:
                raise _IDXFormatError(f"the data end after {len(head)} bytes, inside the IDX header")
            (magic,) = struct.unpack(">I", head)
            if magic != expected_magic:
                raise _IDXFormatError(
                    f"IDX magic number is {magic}, expected {expected_magic} ({kind})"
                )
            ndim = magic & 0xFF
            raw = stream.read(4 * ndim)
            if len(raw) < 4 * ndim:
                raise _IDXFormatError("the data end inside the IDX header")
            dims = struct.unpack(f">{ndim}I", raw)
            size = int(np.prod(dims, dtype=np.int64))
            if size > _MAX_IDX_BYTES:
                raise _IDXFormatError(f"the IDX header promises an implausible shape {dims}")
            out = np.empty(dims, dtype=np.uint8)
            got = _readinto_full(stream, out.reshape(-1).data)
            if got < size:
                raise _IDXFormatError(
                    f"the IDX header promises {size} data bytes (shape {dims}) "
                    f"but the file holds only {got}"
                )
            if stream.read(1):
                raise _IDXFormatError(
                    f"the file holds more than the {size} data bytes its IDX header promises"
                )
    except EOFError as exc:
        raise _IDXFormatError(f"the gzip data are truncated ({exc})") from exc
    except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise _IDXFormatError(f"not a readable gzip file ({exc})") from exc
    return out


def _check_mnist_arrays(arrays: Mapping[str, np.ndarray]) -> None:
    """Raise ValueError unless the uint8 arrays have consistent MNIST shapes and labels 0..9."""
    for split in ("train", "test"):
        x, t = arrays[f"x_{split}"], arrays[f"t_{split}"]
        if x.dtype != np.uint8 or t.dtype != np.uint8:
            raise ValueError(f"{split}: expected uint8 data")
        if x.ndim != 3 or x.shape[1:] != (_ROWS, _COLS):
            raise ValueError(f"{split} images have shape {x.shape}, expected (N, {_ROWS}, {_COLS})")
        if t.shape != (x.shape[0],):
            raise ValueError(f"{split}: {x.shape[0]} images but {t.shape[0]} labels")
        if t.size and int(t.max()) > 9:
            raise ValueError(f"{split} labels go up to {int(t.max())}, expected 0..9")


def _parse_files(
    paths: Mapping[str, Path], folder: Path, table: Mapping[str, str], urls: Sequence[str]
) -> dict[str, NDArray[np.uint8]]:
    arrays: dict[str, NDArray[np.uint8]] = {}
    for key, name, magic in _PARTS:
        try:
            arrays[key] = _read_idx(paths[name], magic)
        except _IDXFormatError as exc:
            # The file matched the checksum table and still is not valid IDX,
            # so it is useless: remove it rather than leave it for next time.
            gone = _discard(paths[name])
            raise MNISTError(
                f"The MNIST file {paths[name]} is damaged: {exc}.\n"
                + ("It was deleted. " if gone else "It could NOT be deleted, please remove it. ")
                + "If you passed your own checksums, check them.\n"
                + _how_to_fix(folder, table, urls)
            ) from exc
    try:
        _check_mnist_arrays(arrays)
    except ValueError as exc:
        raise MNISTError(
            f"The MNIST files in {folder} do not fit together: {exc}.\n" + _how_to_fix(folder, table, urls)
        ) from exc
    return arrays


# --------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------


def _cache_key(table: Mapping[str, str]) -> str:
    return _CACHE_FORMAT + ";" + ";".join(f"{name}={digest}" for name, digest in table.items())


def _read_cache(path: Path, key: str) -> dict[str, NDArray[np.uint8]] | None:
    """Return the cached uint8 arrays if ``path`` is a sound cache built for ``key``.

    A cache that is stale or unreadable is deleted and None is returned.
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = {"key", *(part[0] for part in _PARTS)}
            if set(npz.files) != names or str(npz["key"][()]) != key:
                raise ValueError("cache built from other files")
            arrays = {part[0]: npz[part[0]] for part in _PARTS}  # zip CRCs are checked on read
        _check_mnist_arrays(arrays)
    except Exception as exc:  # stale, truncated, or otherwise unusable: rebuild it
        _log.info("ignoring MNIST cache %s: %s", path, exc)
        _discard(path)
        return None
    return arrays


def _write_cache(directory: Path, key: str, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``directory / CACHE_NAME`` atomically (temporary file, then os.replace)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".mnist-", suffix=".npz.part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            payload: dict[str, Any] = {"key": np.array(key), **arrays}
            np.savez(fh, **payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, 0o644)
        target = directory / CACHE_NAME
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return target


def _cache_dirs(folder: Path) -> Iterator[Path]:
    """The data folder, then the per-user cache folder (used if the data folder is read-only)."""
    yield folder
    try:
        user = _user_cache_dir().absolute()
    except Exception:  # no usable home folder: only the data folder then
        return
    if user != folder:
        yield user


def _store_cache(folder: Path, key: str, arrays: Mapping[str, np.ndarray]) -> None:
    errors = []
    for directory in _cache_dirs(folder):
        try:
            _write_cache(directory, key, arrays)
            return
        except OSError as exc:
            errors.append(f"{directory}: {exc}")
    warnings.warn(
        "Could not write the MNIST cache (" + "; ".join(errors) + "); "
        "every load will parse the .gz files again.",
        RuntimeWarning,
        stacklevel=3,
    )


# --------------------------------------------------------------------------
# Public loader
# --------------------------------------------------------------------------


def _images(u8: NDArray[np.uint8], normalize: bool, flatten: bool) -> NDArray[np.float32]:
    """uint8 (N, 28, 28) -> one new float32 array, (N, 784) or (N, 1, 28, 28)."""
    out = np.empty(u8.shape, dtype=np.float32)
    if normalize:
        np.divide(u8, np.float32(255.0), out=out, dtype=np.float32)
    else:
        out[...] = u8
    n = u8.shape[0]
    return out.reshape(n, -1) if flatten else out.reshape(n, 1, *u8.shape[1:])


def _labels(u8: NDArray[np.uint8], one_hot: bool) -> NDArray[np.int64] | NDArray[np.float32]:
    if not one_hot:
        return u8.astype(np.int64)
    out = np.zeros((u8.shape[0], 10), dtype=np.float32)
    out[np.arange(u8.shape[0]), u8] = 1.0
    return out


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    data_dir: StrPath | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    files: Mapping[str, str] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load MNIST as ``(x_train, t_train), (x_test, t_test)``.

    Parameters
    ----------
    normalize : if True, pixels are float32 in [0, 1] (divided by 255);
        if False, float32 in 0..255.
    flatten : if True, images have shape (N, 784); if False, (N, 1, 28, 28).
    one_hot_label : if True, labels are float32 one-hot rows of shape (N, 10);
        if False, int64 class indices 0..9 of shape (N,).
    data_dir : data folder; default ``$BACKPROP_DATA``, else
        ``pooch.os_cache("backprop")``.
    mirrors : base URLs to download missing files from; default :data:`MIRRORS`.
    files : ``{file name: sha256}`` for the four files; default :data:`MNIST_FILES`.

    Returns
    -------
    ``(x_train, t_train), (x_test, t_test)`` with N = 60000 for train and
    10000 for test. Every call returns new arrays that the caller may modify.

    The first call verifies (and if needed downloads) the .gz files, parses
    them and writes the ``mnist.npz`` cache; later calls only read the cache.
    Memory: the float32 images are made in a single pass from the uint8 data
    (about 220 MB for both splits together, plus 55 MB of uint8 while loading).

    Raises
    ------
    MNISTError if the files cannot be downloaded (the message lists every
    mirror tried and why it failed) or are damaged. No partial or corrupt file
    is left in the data folder.
    """
    folder = _resolve_dir(data_dir)
    table = _checked_files(files)
    key = _cache_key(table)

    arrays = None
    for directory in _cache_dirs(folder):
        arrays = _read_cache(directory / CACHE_NAME, key)
        if arrays is not None:
            break
    if arrays is None:
        urls = _checked_mirrors(mirrors)
        paths = fetch_mnist_files(folder, mirrors=urls, files=table)
        arrays = _parse_files(paths, folder, table, urls)
        _store_cache(folder, key, arrays)

    # Convert split by split, dropping each uint8 array as soon as it is used.
    x_train = _images(arrays.pop("x_train"), normalize, flatten)
    x_test = _images(arrays.pop("x_test"), normalize, flatten)
    t_train = _labels(arrays.pop("t_train"), one_hot_label)
    t_test = _labels(arrays.pop("t_test"), one_hot_label)
    return (x_train, t_train), (x_test, t_test)
