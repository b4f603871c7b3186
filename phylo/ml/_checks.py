"""Small input checks shared by the ``phylo.ml`` modules.

Every check raises :class:`phylo.errors.InputError` with a message that names the argument and
says what was expected, so that a caller's mistake never surfaces as a numpy traceback deep
inside a computation.
"""

from __future__ import annotations

import numpy as np

from phylo.errors import InputError


def as_float_array(
    value, name: str, ndim: int | None = None, allow_neg_inf: bool = False, allow_nan: bool = False
) -> np.ndarray:
    """Convert to a float64 array, checking dimension and finiteness.

    Parameters
    ----------
    value
        Anything :func:`numpy.asarray` accepts.
    name
        Argument name used in error messages.
    ndim
        Required number of dimensions, or ``None`` for any.
    allow_neg_inf
        Whether ``-inf`` entries are allowed (log-probabilities of impossible outcomes).
    allow_nan
        Whether NaN entries are allowed.
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected an array of numbers ({exc})") from None
    if ndim is not None and arr.ndim != ndim:
        raise InputError(f"{name}: expected a {ndim}-dimensional array, got shape {arr.shape}")
    if not allow_nan and np.isnan(arr).any():
        raise InputError(f"{name}: contains NaN")
    if np.isposinf(arr).any():
        raise InputError(f"{name}: contains +inf")
    if not allow_neg_inf and np.isneginf(arr).any():
        raise InputError(f"{name}: contains -inf")
    return arr


def positive_scalar(value, name: str) -> float:
    """A finite, strictly positive float."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a positive number, got {value!r}") from None
    if not np.isfinite(out) or out <= 0.0:
        raise InputError(f"{name}: expected a positive number, got {value!r}")
    return out


def positive_int(value, name: str) -> int:
    """A strictly positive integer."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name}: expected a positive integer, got {value!r}")
    if value < 1:
        raise InputError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def generator(rng, name: str = "rng") -> np.random.Generator:
    """Insist on an explicit :class:`numpy.random.Generator`."""
    if not isinstance(rng, np.random.Generator):
        raise InputError(
            f"{name}: expected a numpy.random.Generator "
            f"(e.g. numpy.random.default_rng(seed)), got {type(rng).__name__}"
        )
    return rng


def log1mexp(x):
    r"""Compute :math:`\log(1 - e^{x})` for :math:`x \le 0` without cancellation.

    Uses :math:`\log(-\mathrm{expm1}(x))` for :math:`x > -\log 2` and
    :math:`\mathrm{log1p}(-e^{x})` otherwise (Mächler 2012).  ``log1mexp(0) = -inf``.
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(
            x > -0.6931471805599453,
            np.log(-np.expm1(np.minimum(x, 0.0))),
            np.log1p(-np.exp(np.minimum(x, 0.0))),
        )
