"""MNIST for the course: download once, verify, parse, cache.

Use :func:`load_mnist`::

    from backprop.data import load_mnist
    (x_train, t_train), (x_test, t_test) = load_mnist()

It needs the four original IDX files of the MNIST database (Yann LeCun, Corinna
Cortes, Christopher J.C. Burges; CC BY-SA 3.0), :data:`MNIST_FILES`, in the *data
folder*: the ``data_dir`` argument, else ``$BACKPROP_DATA``, else the per-user
cache folder ``pooch.os_cache("backprop")`` (``~/.cache/backprop`` on Linux).

A file already there with the right SHA-256 is used as it is, with no network
access (an offline classroom hands out the four files and points
``BACKPROP_DATA`` at them). Any other is fetched with pooch from the URLs in
:data:`MIRRORS`, in order, into a temporary file that replaces it only when its
checksum is right; a wrong file that no mirror can replace is deleted.

The parsed arrays are cached as ``mnist.npz`` (uint8) in the same folder, tagged
with the checksums they come from; a stale or unreadable cache is rebuilt. In a
read-only folder nothing is cached and every call parses the .gz files again.
Whatever goes wrong raises :class:`MNISTError`, whose message says how to fix it.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import re
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeAlias

import numpy as np
import pooch
import requests
from numpy.typing import NDArray

from .i18n import _

__all__ = [
    "CACHE_NAME",
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
#: Change this list, or pass ``mirrors=`` to :func:`load_mnist`, to use a local server.
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
#: Name of the cache of parsed arrays in the data folder.
CACHE_NAME = "mnist.npz"

_CACHE_FORMAT = "backprop-mnist-cache-v1"
_TIMEOUT = 30  # seconds, per HTTP request
_SCHEMES = ("http://", "https://", "ftp://", "sftp://", "doi:")  # what pooch downloads
_IMAGE_MAGIC, _LABEL_MAGIC = 2051, 2049  # IDX: unsigned bytes, 3 resp. 1 dimensions
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


def default_data_dir() -> Path:
    """``$BACKPROP_DATA`` if set and not empty, else ``pooch.os_cache("backprop")``."""
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env).expanduser() if env else Path(pooch.os_cache("backprop"))


def _resolve_dir(data_dir: StrPath | None) -> Path:
    folder = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    return folder.absolute()


def _checked_files(files: Mapping[str, str] | None) -> dict[str, str]:
    """Validate a ``{file name: sha256}`` table; return it with bare lower-case digests."""
    if files is None:
        return dict(MNIST_FILES)
    if set(files) != set(MNIST_FILES):
        raise ValueError(
            _("files must map exactly the names {names} to SHA-256 checksums, got {got}").format(
                names=sorted(MNIST_FILES), got=sorted(files)
            )
        )
    table = {name: str(files[name]).strip().lower().removeprefix("sha256:") for name in MNIST_FILES}
    for name, digest in table.items():
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError(
                _("checksum for {name} is not a SHA-256 hex digest: {digest!r}").format(
                    name=name, digest=files[name]
                )
            )
    return table


def _checked_mirrors(mirrors: Sequence[str] | str | None) -> list[str]:
    urls = [mirrors] if isinstance(mirrors, str) else list(MIRRORS if mirrors is None else mirrors)
    unknown = [url for url in urls if not str(url).startswith(_SCHEMES)]
    if unknown:
        raise ValueError(
            _("mirrors must be URLs starting with one of {schemes}, got {got}").format(
                schemes=_SCHEMES, got=unknown
            )
        )
    return [str(url) for url in urls]


def _discard(path: Path) -> bool:
    """Delete ``path`` if it is there; return whether it is gone."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        _log.warning("could not delete %s: %s", path, exc)
        return False
    return True


def _how_to_fix(folder: Path, table: Mapping[str, str], mirrors: Sequence[str]) -> str:
    source = _(" (for example from {url})").format(url=mirrors[0]) if mirrors else ""
    width = max(len(name) for name in table)
    listing = "\n".join(f"    {name:<{width}}  sha256 {digest}" for name, digest in table.items())
    return _(
        "How to fix: download the four files\n{listing}\n"
        "by hand{source}, put them in\n    {folder}\n"
        "and run again; or set the environment variable {env} to a folder "
        "that already holds them. Check a file with `sha256sum FILE`."
    ).format(listing=listing, source=source, folder=folder, env=ENV_VAR)


def _innermost(exc: BaseException) -> BaseException:
    """The first exception of the chain that led to ``exc`` (a socket error, say)."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    return exc


def _describe_failure(exc: Exception) -> str:
    """One line on why one download attempt failed, from the type of what pooch raised."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return _("HTTP error {status} {reason}").format(
            status=exc.response.status_code, reason=exc.response.reason
        )
    if isinstance(exc, requests.Timeout):
        return _("timed out after {seconds} s").format(seconds=_TIMEOUT)
    if isinstance(exc, (requests.ConnectionError, ConnectionError)):
        cause = _innermost(exc)
        detail = cause.strerror if isinstance(cause, OSError) and cause.strerror else cause
        return _("could not connect ({detail})").format(detail=detail)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return _("transfer broken off ({detail})").format(detail=_innermost(exc))
    if isinstance(exc, ValueError):  # pooch.hashes.hash_matches: the download was deleted
        return _("checksum mismatch (the server sent other bytes)")
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def fetch_mnist_files(
    data_dir: StrPath | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    files: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Make sure the four .gz files are in the data folder with the right checksums.

    ``data_dir``, ``mirrors`` and ``files`` are as for :func:`load_mnist`. Returns
    ``{file name: absolute path}``. A file already right is kept without network
    access; any other is downloaded from the first mirror that delivers the right
    bytes. Raises MNISTError if the folder cannot be created or a file cannot be
    had from any mirror (a wrong file is then deleted, right ones are kept).
    """
    folder = _resolve_dir(data_dir)
    table = _checked_files(files)
    urls = _checked_mirrors(mirrors)
    return {name: _fetch_one(name, folder, table, urls) for name in table}


def _fetch_one(name: str, folder: Path, table: Mapping[str, str], urls: Sequence[str]) -> Path:
    """The path of file ``name`` in ``folder``, downloaded unless it is already right."""
    target = folder / name
    try:
        actual = pooch.file_hash(str(target)) if target.is_file() else None
    except OSError as exc:
        raise MNISTError(
            _("Cannot read the MNIST file {path}: {error}").format(path=target, error=exc)
        ) from exc
    if actual == table[name]:
        return target
    if urls:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MNISTError(
                _(
                    "Cannot create the MNIST data folder {folder}: {error}.\n"
                    "Pass data_dir= or set {env} to a folder you can write to."
                ).format(folder=folder, error=exc, env=ENV_VAR)
            ) from exc
    tried = []
    for base in urls:
        pup = pooch.create(path=folder, base_url=base, registry={name: f"sha256:{table[name]}"})
        url = pup.get_url(name)
        downloader = None  # pooch picks one for FTP, SFTP and DOI
        if url.startswith(("http://", "https://")):
            downloader = pooch.HTTPDownloader(
                progressbar=True, timeout=_TIMEOUT, chunk_size=1 << 16
            )
        try:  # replaces a wrong file only once the new one has the right checksum
            return Path(pup.fetch(name, downloader=downloader, progressbar=True))
        except Exception as exc:  # noqa: BLE001 - whatever failed, try the next mirror
            tried.append(f"  - {url}: {_describe_failure(exc)}")
    note = ""
    if actual is not None:  # the wrong file pooch did not replace
        note = _("The existing {path} had sha256 {actual}, expected {expected}; ").format(
            path=target, actual=actual, expected=table[name]
        ) + (
            _("it was deleted.\n")
            if _discard(target)
            else _("it could NOT be deleted, remove it.\n")
        )
    raise MNISTError(
        _("Could not get the MNIST file {name} from any mirror.\n").format(name=name)
        + _("Tried:\n")
        + ("\n".join(tried) or _("  (no mirrors given)"))
        + "\n"
        + note
        + _("No incomplete or unverified file was kept in {folder}.\n").format(folder=folder)
        + _how_to_fix(folder, table, urls)
    )


def _read_idx(path: Path, expected_magic: int) -> NDArray[np.uint8]:
    """Read one gzip-compressed IDX file of unsigned bytes into a read-only uint8 array.

    Its shape is the header's: (count, rows, cols) for magic 2051 (images), (count,)
    for 2049 (labels). Raises _IDXFormatError if the gzip data are damaged, the magic
    number is not ``expected_magic`` or the data are not as long as the header says.
    """
    try:
        raw = gzip.decompress(path.read_bytes())
    except EOFError as exc:
        raise _IDXFormatError(_("the gzip data are truncated ({error})").format(error=exc)) from exc
    except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise _IDXFormatError(_("not a readable gzip file ({error})").format(error=exc)) from exc
    if len(raw) < 4:
        raise _IDXFormatError(
            _("the data end after {size} bytes, inside the IDX header").format(size=len(raw))
        )
    magic = int(np.frombuffer(raw, dtype=">u4", count=1)[0])
    if magic != expected_magic:
        kind = _("images") if expected_magic == _IMAGE_MAGIC else _("labels")
        raise _IDXFormatError(
            _("IDX magic number is {magic}, expected {expected} ({kind})").format(
                magic=magic, expected=expected_magic, kind=kind
            )
        )
    ndim = magic & 0xFF
    if len(raw) < 4 + 4 * ndim:
        raise _IDXFormatError(_("the data end inside the IDX header"))
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if pixels.size != np.prod(dims, dtype=np.int64):
        raise _IDXFormatError(
            _(
                "the IDX header promises {promised} data bytes (shape {shape}) "
                "but the file holds {size}"
            ).format(promised=np.prod(dims, dtype=np.int64), shape=dims, size=pixels.size)
        )
    return pixels.reshape(dims)


def _check_mnist_arrays(arrays: Mapping[str, np.ndarray]) -> None:
    """Raise ValueError unless the uint8 arrays have consistent MNIST shapes and labels 0..9."""
    for split in ("train", "test"):
        x, t = arrays[f"x_{split}"], arrays[f"t_{split}"]
        if x.dtype != np.uint8 or t.dtype != np.uint8:
            raise ValueError(_("{split}: expected uint8 data").format(split=split))
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(
                _("{split} images have shape {shape}, expected (N, 28, 28)").format(
                    split=split, shape=x.shape
                )
            )
        if t.shape != (x.shape[0],):
            raise ValueError(
                _("{split}: {images} images but {labels} labels").format(
                    split=split, images=x.shape[0], labels=t.shape[0]
                )
            )
        if t.size and int(t.max()) > 9:
            raise ValueError(
                _("{split} labels go up to {top}, expected 0..9").format(
                    split=split, top=int(t.max())
                )
            )


def _parse_files(
    paths: Mapping[str, Path], folder: Path, table: Mapping[str, str], urls: Sequence[str]
) -> dict[str, NDArray[np.uint8]]:
    arrays: dict[str, NDArray[np.uint8]] = {}
    for key, name, magic in _PARTS:
        try:
            arrays[key] = _read_idx(paths[name], magic)
        except _IDXFormatError as exc:
            # It matched the checksum table and still is not IDX: useless, so remove it.
            gone = _discard(paths[name])
            raise MNISTError(
                _("The MNIST file {path} is damaged: {error}.\n").format(
                    path=paths[name], error=exc
                )
                + (
                    _("It was deleted. ")
                    if gone
                    else _("It could NOT be deleted, please remove it. ")
                )
                + _("If you passed your own checksums, check them.\n")
                + _how_to_fix(folder, table, urls)
            ) from exc
    try:
        _check_mnist_arrays(arrays)
    except ValueError as exc:
        raise MNISTError(
            _("The MNIST files in {folder} do not fit together: {error}.\n").format(
                folder=folder, error=exc
            )
            + _how_to_fix(folder, table, urls)
        ) from exc
    return arrays


def _cache_key(table: Mapping[str, str]) -> str:
    return _CACHE_FORMAT + ";" + ";".join(f"{name}={digest}" for name, digest in table.items())


def _read_cache(path: Path, key: str) -> dict[str, NDArray[np.uint8]] | None:
    """The cached uint8 arrays if ``path`` is a sound cache built for ``key``, else None.

    A stale or unreadable cache is deleted (if the folder allows).
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if set(npz.files) != {"key", *(p[0] for p in _PARTS)} or str(npz["key"]) != key:
                raise ValueError("cache built from other files")
            arrays = {p[0]: npz[p[0]] for p in _PARTS}  # zip CRCs are checked on read
        _check_mnist_arrays(arrays)
    except Exception as exc:  # noqa: BLE001 - stale, truncated, unreadable: rebuild
        _log.info("ignoring MNIST cache %s: %s", path, exc)
        _discard(path)
        return None
    return arrays


def _write_cache(folder: Path, key: str, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``folder / CACHE_NAME`` atomically: a temporary file, then os.replace."""
    fd, tmp_name = tempfile.mkstemp(prefix=".mnist-", suffix=".npz.part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, key=np.array(key), **arrays)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, folder / CACHE_NAME)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return folder / CACHE_NAME


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
    data_dir : data folder; default :func:`default_data_dir`.
    mirrors : base URLs to download missing files from; default :data:`MIRRORS`.
    files : ``{file name: sha256}`` for the four files; default :data:`MNIST_FILES`.

    Returns
    -------
    ``(x_train, t_train), (x_test, t_test)`` with N = 60000 for train and
    10000 for test. Every call returns new arrays that the caller may modify.

    The first call verifies (and if needed downloads) the .gz files, parses them
    and writes the ``mnist.npz`` cache; later calls only read the cache. Memory:
    220 MB of float32 images for both splits, plus 55 MB of uint8 while loading.

    Raises
    ------
    MNISTError if the files cannot be downloaded (the message lists every mirror
    tried and why it failed) or are damaged; no partial or corrupt file is left.
    ValueError if ``files`` or ``mirrors`` are malformed.
    """
    folder = _resolve_dir(data_dir)
    table = _checked_files(files)
    urls = _checked_mirrors(mirrors)
    key = _cache_key(table)
    arrays = _read_cache(folder / CACHE_NAME, key)
    if arrays is None:
        paths = fetch_mnist_files(folder, mirrors=urls, files=table)
        arrays = _parse_files(paths, folder, table, urls)
        try:
            _write_cache(folder, key, arrays)
        except OSError as exc:  # a read-only folder works, only slower
            _log.info("MNIST not cached in %s (%s): every load parses the .gz files", folder, exc)
    # Convert split by split, dropping each uint8 array as soon as it is used.
    x_train = _images(arrays.pop("x_train"), normalize, flatten)
    x_test = _images(arrays.pop("x_test"), normalize, flatten)
    t_train = _labels(arrays.pop("t_train"), one_hot_label)
    t_test = _labels(arrays.pop("t_test"), one_hot_label)
    return (x_train, t_train), (x_test, t_test)
