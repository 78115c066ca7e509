"""Fitted scikit-learn objects inside a model bundle, as uint8 arrays in skops' format (`sklearn_to_array`,
`sklearn_from_array`): skops rebuilds them without pickle, and every type the bytes name is checked against the
plugin's fixed allow-list before anything is constructed. A service of its own (it brings skops and scikit-learn):
only a plugin that keeps scikit-learn objects in its bundle requires it (ecg_transfer)."""
from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

from cardio import CardioError, pip_install

#: Plain data that scikit-learn objects are made of and that runs no code when rebuilt; allowed in every
#: skops array besides the types the plugin trusts.
DATA_TYPES = frozenset(
    [f"builtins.{t}" for t in ("dict", "list", "tuple", "str", "int", "float", "bool", "slice", "NoneType")]
    + ["numpy.ndarray", "numpy.dtype"] + [f"numpy.{np.dtype(c).type.__name__}" for c in "?bBhHiIlLqQefd"])


def sklearn_to_array(obj: Any) -> np.ndarray:
    """A fitted scikit-learn object (a Pipeline, an estimator) as a uint8 array for ModelState.tensors:
    skops' zip format, deflated (a forest's tree arrays shrink about tenfold)."""
    import zipfile

    skops_io = _skops()
    return np.frombuffer(skops_io.dumps(obj, compression=zipfile.ZIP_DEFLATED), dtype=np.uint8).copy()


def sklearn_from_array(array: Any, trusted: Sequence[str], what: str = "a scikit-learn object") -> Any:
    """The object `sklearn_to_array` wrote, rebuilt by skops only when every type its bytes name is in
    `trusted` (fully qualified names, a fixed list in the plugin's code) or is plain data (DATA_TYPES).

    Anything else is refused with one line naming the types, before any of them is imported or built:
    skops alone would also accept every scikit-learn estimator it trusts by default.
    """
    skops_io = _skops()
    if isinstance(trusted, str):
        raise TypeError("trusted must be a sequence of type names, not one string")
    data = _uint8_bytes(array, what)
    outside = sorted(_types_named(data, what) - DATA_TYPES - set(trusted))
    if outside:
        raise CardioError(f"{what} holds type(s) outside the plugin's allow-list, refused without loading: "
                          f"{', '.join(outside)}")
    try:
        return skops_io.loads(data, trusted=sorted(DATA_TYPES | set(trusted)))
    except Exception as e:  # a damaged or inconsistent file: skops raises many kinds
        raise CardioError(f"{what} could not be rebuilt by skops ({type(e).__name__}: "
                          f"{' '.join(str(e).split())[:160]})") from None


def _skops() -> Any:
    """skops.io, imported when a bundle's array is written or read (it imports scikit-learn); without it one line
    naming the install."""
    try:
        import skops.io
    except ImportError:
        raise CardioError("scikit-learn objects in a model bundle need skops, which is not installed: "
                          f"{pip_install('cardio-crt-sklearn')}") from None
    return skops.io


def _uint8_bytes(array: Any, what: str) -> bytes:
    value = array.numpy() if hasattr(array, "numpy") else np.asarray(array)  # a torch tensor from the bundle
    if value.dtype != np.uint8 or value.ndim != 1:
        raise CardioError(f"{what} is not a skops byte array (dtype {value.dtype}, shape {tuple(value.shape)})")
    return value.tobytes()


def _types_named(data: bytes, what: str) -> set[str]:
    """Every module.class in the skops schema (and module.class.method of a bound method): what skops would
    import and build."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            schema = json.loads(z.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise CardioError(f"{what} is not a readable skops file (damaged, or not written by cardio)") from None
    named, stack = set(), [schema]
    while stack:  # a loop, not recursion: a deep crafted schema cannot exhaust the stack
        node = stack.pop()
        if isinstance(node, dict):
            if "__module__" in node and "__class__" in node:
                named.add(f"{node['__module__']}.{node['__class__']}")
                if node.get("__loader__") == "MethodNode" and isinstance(node.get("content"), dict):
                    named.add(f"{node['__module__']}.{node['__class__']}.{node['content'].get('func')}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return named
