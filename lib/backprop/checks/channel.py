"""What a check collected, as plain data that can leave the learner's kernel safely.

Under grading, the learner's code runs in a kernel the grader does not trust, so what it
returns travels to the grader as JSON: arrays as base64 of their raw bytes, exceptions as
their type, message and place. Decoding builds nothing but numbers, strings, lists, dicts,
numeric numpy arrays and the two small records below; it never unpickles, never calls
anything the data names, and refuses oversized or malformed input with :class:`ChannelError`.

    >>> decode(encode({"dx": np.ones(3), "note": "ok"}))["dx"]
    array([1., 1., 1.])
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..i18n import N_, _

MAX_BYTES = 64 * 1024 * 1024  # one record, encoded
MAX_DEPTH = 32
_KINDS = "biuf"  # bool, int, unsigned, float: the only array kinds kept


class ChannelError(ValueError):
    """A record that cannot be read: malformed, too large, or of a kind never sent."""


@dataclass(frozen=True)
class Raised:
    """The learner's code raised: exception type, message and where in the learner's cells."""

    type: str
    message: str
    where: str = ""  # e.g. "Cell In[7], line 12, in backward"
    line: str = ""  # that line of source

    def __str__(self) -> str:
        text = f"{self.type}: {self.message}" if self.message else self.type
        if self.where:
            place = _("at {where}").format(where=self.where)
            text += "\n    " + place + (f": {self.line}" if self.line else "")
        return text


@dataclass(frozen=True)
class Opaque:
    """A value that is not numbers (an object, a function, ...): only its type name is kept."""

    type: str

    def __repr__(self) -> str:
        return f"<{self.type}>"


def snapshot(value: Any, _depth: int = 0) -> Any:
    """A copy of value made of plain data, taken now (later changes to value do not show).

    Runs in the learner's kernel on what the learner's code returned: arrays are copied,
    numbers and strings kept, tuples become lists; anything else is converted with
    ``np.asarray`` if that gives numbers, or kept as :class:`Opaque`.
    """
    if _depth > MAX_DEPTH:
        return Opaque("too deeply nested")
    if value is None or isinstance(value, (bool, str, Raised, Opaque)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, np.generic):
        return value.item() if value.dtype.kind in _KINDS else Opaque(type(value).__name__)
    if isinstance(value, np.ndarray):
        return (
            np.array(value, copy=True)
            if value.dtype.kind in _KINDS
            else Opaque(f"ndarray of {value.dtype}")
        )
    if isinstance(value, (list, tuple)):
        return [snapshot(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): snapshot(v, _depth + 1) for k, v in value.items()}
    try:
        arr = np.asarray(value)
    except Exception:
        return Opaque(type(value).__name__)
    if arr.dtype.kind in _KINDS:
        return np.array(arr, copy=True)
    return Opaque(type(value).__name__)


def as_floats(value: Any) -> np.ndarray | None:
    """A decoded value as a float64 array, or None if it is not numbers (verify's side:
    what the kernel sent may be anything)."""
    if value is None or isinstance(value, (str, dict, Raised, Opaque)):
        return None
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def as_number(value: Any) -> float | None:
    """A decoded value as one float, or None if it is not exactly one number (a list, a
    bool, text, an exception the learner's code raised)."""
    if isinstance(value, (bool, list)):
        return None
    arr = as_floats(value)
    return float(arr) if arr is not None and arr.size == 1 else None


def _to_json(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise ChannelError(_("nested too deeply"))
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.ndarray):
        arr = value if value.flags.c_contiguous else value.copy(order="C")
        return {
            "__array__": [
                arr.dtype.str,
                list(arr.shape),
                base64.b64encode(arr.tobytes()).decode("ascii"),
            ]
        }
    if isinstance(value, Raised):
        return {"__raised__": [value.type, value.message, value.where, value.line]}
    if isinstance(value, Opaque):
        return {"__opaque__": value.type}
    if isinstance(value, (list, tuple)):
        return [_to_json(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v, depth + 1) for k, v in value.items()}
    return _to_json(snapshot(value), depth + 1)


def encode(value: Any) -> str:
    """JSON text for value (as :func:`snapshot` sees it)."""
    return json.dumps(_to_json(value), allow_nan=False, separators=(",", ":"))


def _str(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise ChannelError(_("{what} is not a string").format(what=_(what)))
    return v[:10_000]


def _from_json(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise ChannelError(_("nested too deeply"))
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_from_json(v, depth + 1) for v in value]
    if not isinstance(value, dict):
        raise ChannelError(_("unexpected {type}").format(type=type(value).__name__))
    if len(value) == 1:
        ((key, body),) = value.items()
        if key == "__array__":
            return _array(body)
        if key == "__float__":
            if body not in ("nan", "inf", "-inf"):
                raise ChannelError(_("bad float"))
            return float(body)
        if key == "__raised__":
            if not isinstance(body, list) or len(body) != 4:
                raise ChannelError(_("bad exception record"))
            return Raised(*(_str(b, N_("exception field")) for b in body))
        if key == "__opaque__":
            return Opaque(_str(body, N_("type name")))
    return {_str(k, N_("key")): _from_json(v, depth + 1) for k, v in value.items()}


def _array(body: Any) -> np.ndarray:
    if not (
        isinstance(body, list)
        and len(body) == 3
        and isinstance(body[0], str)
        and isinstance(body[1], list)
        and isinstance(body[2], str)
    ):
        raise ChannelError(_("bad array record"))
    try:
        dtype = np.dtype(body[0])
    except TypeError as exc:
        raise ChannelError(_("bad dtype {dtype}").format(dtype=repr(body[0]))) from exc
    if dtype.kind not in _KINDS or dtype.hasobject or dtype.fields:
        raise ChannelError(_("array of kind {kind} is never sent").format(kind=repr(dtype.kind)))
    shape = body[1]
    if len(shape) > 32 or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise ChannelError(_("bad array shape"))
    raw = base64.b64decode(body[2].encode("ascii"), validate=True)
    if len(raw) != dtype.itemsize * math.prod(shape):
        raise ChannelError(_("array size does not match its shape"))
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def decode(text: str | bytes) -> Any:
    """The value encoded in text; :class:`ChannelError` if it is not a record we send."""
    if len(text) > MAX_BYTES:
        raise ChannelError(_("record larger than {size} bytes").format(size=MAX_BYTES))
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ChannelError(_("not JSON: {error}").format(error=exc)) from exc
    try:
        return _from_json(raw)
    except (ValueError, TypeError, RecursionError) as exc:
        if isinstance(exc, ChannelError):
            raise
        raise ChannelError(str(exc)) from exc
