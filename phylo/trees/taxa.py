"""Taxon names, how labels are matched to them, and the lookup table the kernels use.

A label matches a taxon by its *normalised* form: an underscore is read as a blank
(``Homo_sapiens``, ``'Homo_sapiens'`` and ``'Homo sapiens'`` are the same taxon, as NEXUS
says of unquoted tokens; we extend it to quoted ones and to names given in Python, so that
a name means the same wherever it comes from), and in a quoted token a doubled quote stands
for one quote.  Names are shown as they were first written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import InputError
from ._kernels import hash_bytes


def normalise(token: str, quoted: bool) -> str:
    """The matching key of a label as written (without its quotes when ``quoted``)."""
    if quoted:
        token = token.replace("''", "'")
    return token.replace("_", " ")


def label_hash(key: str) -> int:
    """The 64-bit hash the kernels compute for a normalised label."""
    return int(hash_bytes(np.frombuffer(key.encode("utf-8"), dtype=np.uint8)))


def needs_quotes(name: str) -> bool:
    """Whether a taxon name must be quoted in Newick."""
    return any(c in name for c in " \t\r\n()[]':;,") or name == ""


def quote(name: str) -> str:
    """A taxon name as a Newick token."""
    if needs_quotes(name):
        return "'" + name.replace("'", "''") + "'"
    return name


class Taxa:
    """An ordered set of taxon names; taxon ``i`` is leaf ``i`` of every canonical tree.

    Parameters
    ----------
    names
        Display names, in taxon order.
    keys
        Normalised names (default: ``normalise(name, quoted=False)``).
    source
        Where the names were read (a file), for messages; not part of equality.
    """

    __slots__ = ("names", "keys", "source", "_index")

    def __init__(
        self, names: Sequence[str], keys: Sequence[str] | None = None, source: str | None = None
    ):
        names = tuple(names)
        if keys is None:
            keys = [normalise(n, False) for n in names]
        keys = tuple(keys)
        index: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k in index:
                raise InputError(f"taxon {names[i]!r} is listed twice", source)
            index[k] = i
        self.names = names
        self.keys = keys
        self.source = source
        self._index = index

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        return iter(self.names)

    def __getitem__(self, i):
        return self.names[i]

    def __eq__(self, other) -> bool:
        return isinstance(other, Taxa) and self.keys == other.keys

    def __repr__(self) -> str:
        return f"Taxa({list(self.names)!r})"

    def index(self, name: str, quoted: bool = False) -> int:
        """Index of a taxon given a label as written; ``-1`` when unknown."""
        return self._index.get(normalise(name, quoted), -1)

    def index_of_key(self, key: str) -> int:
        return self._index.get(key, -1)

    def same_set(self, other: Taxa) -> bool:
        return set(self.keys) == set(other.keys)

    def lookup_table(
        self, translate: Mapping[str, str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sorted hashes of every label that may appear in a tree, and their taxa.

        ``translate`` maps normalised translate keys to normalised taxon names (NEXUS
        ``translate``); names themselves are accepted too unless a translate key shadows
        them.
        """
        table: dict[int, int] = {}
        for i, k in enumerate(self.keys):
            table[label_hash(k)] = i
        if translate:
            for key, name in translate.items():
                i = self._index.get(name, -1)
                if i < 0:
                    raise InputError(f"translate table names unknown taxon {name!r}")
                table[label_hash(key)] = i
        hashes = np.array(sorted(table), dtype=np.uint64)
        taxa = np.array([table[h] for h in sorted(table)], dtype=np.int64)
        if len(set(label_hash(k) for k in self.keys)) != len(self.keys):  # pragma: no cover
            raise InputError("two taxon names have the same 64-bit hash; rename one")
        return hashes, taxa


def _named(taxa) -> dict[str, str]:
    """``{key: display name}`` of a :class:`Taxa` or of names as written (unquoted)."""
    if isinstance(taxa, Taxa):
        return dict(zip(taxa.keys, taxa.names))
    return {normalise(str(x), False): str(x) for x in taxa}


def _listed(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(repr(x) for x in names[:limit])
    return shown + (f" ... ({len(names) - limit} more)" if len(names) > limit else "")


def check_same_taxa(
    first,
    second,
    first_name: str | None = None,
    second_name: str | None = None,
    path: str | None = None,
    line: int | None = None,
    what: str = "taxa",
) -> None:
    """Raise :class:`~phylo.errors.InputError` unless two collections hold the same taxa.

    This is the one check of taxon sets in :mod:`phylo` (runs against runs, trees against a
    fitted model, an alignment against trees): names are matched by their normalised form
    (:func:`normalise`: ``Genus_species`` and ``'Genus species'`` are one taxon), and the
    message names the taxa found on one side only, and where each side came from::

        taxa differ between trees.nwk and aln.fasta: only in trees.nwk: 'x9'; only in
        aln.fasta: 't5'

    Parameters
    ----------
    first, second
        :class:`Taxa`, or sequences of names as written (unquoted).
    first_name, second_name
        Where each side came from: a file, or a phrase such as ``"the model"``.  Default:
        the :attr:`Taxa.source`, else ``"the first"`` and ``"the second"``.
    path, line
        Where to report the error (the file being read when the difference was found).
    what
        What is compared, e.g. ``"taxa of the translate table"``.
    """
    a, b = _named(first), _named(second)
    if a.keys() == b.keys():
        return
    first_name = first_name or getattr(first, "source", None) or "the first"
    second_name = second_name or getattr(second, "source", None) or "the second"
    only_a = [name for k, name in a.items() if k not in b]  # in each side's own order
    only_b = [name for k, name in b.items() if k not in a]
    parts = []
    if only_a:
        parts.append(f"only in {first_name}: {_listed(only_a)}")
    if only_b:
        parts.append(f"only in {second_name}: {_listed(only_b)}")
    raise InputError(
        f"{what} differ between {first_name} and {second_name}: " + "; ".join(parts), path, line
    )
