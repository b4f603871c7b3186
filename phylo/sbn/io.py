"""Model files: write a fitted distribution as JSON, read back either kind.

The format (one JSON object; see :mod:`phylo.sbn.distribution` for the common fields) is
``"format": "phylo-sbn-model"``, ``"format_version": 1``, and a ``"kind"``: ``"sbn"`` for a
subsplit Bayesian network or conditional clade distribution (:meth:`SBNModel.to_dict
<phylo.sbn.SBNModel.to_dict>`), ``"srf"`` for sample relative frequencies
(:meth:`SRFModel.to_dict <phylo.sbn.SRFModel.to_dict>`).  Reading checks every field, so a
corrupted or foreign file gives one :class:`~phylo.errors.InputError` naming the file.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ..errors import InputError
from .distribution import FORMAT, FORMAT_VERSION, TreeDistribution
from .model import SBNModel
from .srf import SRFModel

#: The model classes by the ``"kind"`` their files record.
KINDS: dict[str, type[TreeDistribution]] = {SBNModel.kind: SBNModel, SRFModel.kind: SRFModel}


def save_model(model: TreeDistribution, path: str) -> None:
    """Write a fitted model (either kind) as JSON, atomically; ``"-"`` is standard output
    (the same as ``model.save(path)``)."""
    model.save(path)


def load_model(path: str) -> TreeDistribution:
    """Read a model written by :func:`save_model` (``"-"``: standard input); an
    :class:`InputError` for anything that is not a valid model file."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        raise InputError(f"cannot read model file: {exc.strerror or exc}", path) from None
    except UnicodeDecodeError:
        raise InputError("not a model file (not UTF-8 text)", path) from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise InputError("not a model file: its JSON is nested too deeply", path) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not a model file: invalid JSON ({exc.msg})", path, exc.lineno, exc.colno
        ) from None
    return model_from_dict(data, path)


def model_from_dict(data: Any, path: str = "<model>") -> TreeDistribution:
    """The model of a parsed model file; ``path`` names it in errors."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f'not a phylo model file (no "format": "{FORMAT}")', path)
    if data.get("format_version") != FORMAT_VERSION:
        raise InputError(f"unsupported model format version {data.get('format_version')!r}", path)
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise InputError(f"unknown model kind {kind!r}", path)
    try:
        return KINDS[kind].from_dict(data)
    except InputError as exc:  # e.g. a Newick string inside the file: name the file
        raise InputError(f"corrupted model file: {exc.message}", path) from None
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InputError(f"corrupted model file: {what}", path) from None
