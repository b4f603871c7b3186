"""Nucleotide alignments: FASTA, NEXUS and PHYLIP readers, ambiguity codes, site patterns.

Every character becomes a set of the four nucleotides, stored as a 4-bit mask
(A = 1, C = 2, G = 4, T = 8).  IUPAC ambiguity codes are the obvious unions
(R = A|G, Y = C|T, ..., N = A|C|G|T); gaps and missing data are all four states,
so that a tip's partial likelihood vector is the indicator of its set,

.. math:: L_{\\text{tip}}(s) = [s \\in \\text{set}], \\qquad s \\in \\{A, C, G, T\\},

which is Felsenstein's (1981) treatment of ambiguity and missing data.  Identical
columns (site patterns) are merged and weighted by their counts, so the log-likelihood
is :math:`\\sum_p w_p \\log L_p` over patterns :math:`p`.

References
----------
Felsenstein J. 1981. Evolutionary trees from DNA sequences: a maximum likelihood
approach. J Mol Evol 17:368-376.
Maddison DR, Swofford DL, Maddison WP. 1997. NEXUS: an extensible file format for
systematic information. Syst Biol 46:590-621.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..trees.taxa import Taxa, check_same_taxa, normalise

__all__ = [
    "Alignment",
    "SitePatterns",
    "read_alignment",
    "read_fasta",
    "read_nexus",
    "read_phylip",
    "parse_alignment",
    "NUCLEOTIDES",
]

NUCLEOTIDES = "ACGT"

#: IUPAC nucleotide codes as 4-bit masks over (A, C, G, T).
IUPAC = {
    "A": 1,
    "C": 2,
    "G": 4,
    "T": 8,
    "U": 8,
    "R": 1 | 4,
    "Y": 2 | 8,
    "S": 2 | 4,
    "W": 1 | 8,
    "K": 4 | 8,
    "M": 1 | 2,
    "B": 2 | 4 | 8,
    "D": 1 | 4 | 8,
    "H": 1 | 2 | 8,
    "V": 1 | 2 | 4,
    "N": 15,
    "X": 15,
    "-": 15,
    "?": 15,
    ".": 15,
}
_CODE_TABLE = np.zeros(256, dtype=np.uint8)  # 0 marks an unknown character
for _ch, _m in IUPAC.items():
    _CODE_TABLE[ord(_ch)] = _m
    _CODE_TABLE[ord(_ch.lower())] = _m


@dataclass(frozen=True)
class SitePatterns:
    """Unique alignment columns with their counts.

    Attributes
    ----------
    codes : uint8 array (n_taxa, n_patterns)
        4-bit state sets of each pattern.
    weights : float64 array (n_patterns,)
        How many sites show each pattern; ``weights.sum() == n_sites``.
    site_pattern : int64 array (n_sites,)
        The pattern of each site, so per-site values are ``per_pattern[site_pattern]``.
    """

    codes: np.ndarray
    weights: np.ndarray
    site_pattern: np.ndarray

    @property
    def n_patterns(self) -> int:
        return int(self.codes.shape[1])

    def tip_partials(self) -> np.ndarray:
        """Tip partial likelihoods, float64 (n_taxa, 4, n_patterns): 1 for allowed states."""
        bits = np.array([1, 2, 4, 8], dtype=np.uint8)
        return ((self.codes[:, None, :] & bits[None, :, None]) != 0).astype(np.float64)


@dataclass(frozen=True)
class Alignment:
    """A nucleotide alignment: taxon names and one 4-bit state set per taxon and site.

    Attributes
    ----------
    taxa : tuple of str
        Taxon names in file order; row ``i`` of :attr:`codes` is taxon ``i``.  Names are
        matched to those of trees as trees match them (:attr:`keys`: ``Genus_species``,
        ``'Genus species'`` and a FASTA ``>Genus species`` are one taxon).
    codes : uint8 array (n_taxa, n_sites)
        State sets (A = 1, C = 2, G = 4, T = 8; 15 for N, gaps and missing data).
    path : str or None
        The file the alignment was read from, for error messages.
    """

    taxa: tuple
    codes: np.ndarray
    path: str | None = None
    _patterns: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self):
        keys = self.keys
        if len(set(keys)) != len(keys):
            dup = sorted({t for t, k in zip(self.taxa, keys) if keys.count(k) > 1})
            raise InputError(f"duplicate taxon name(s) in alignment: {', '.join(dup)}", self.path)
        if self.codes.ndim != 2 or self.codes.shape[0] != len(self.taxa):
            raise InputError("alignment needs one sequence per taxon", self.path)
        if len(self.taxa) < 2:
            raise InputError("an alignment needs at least two sequences", self.path)
        if self.codes.shape[1] == 0:
            raise InputError("the alignment has no sites", self.path)

    @property
    def n_taxa(self) -> int:
        return len(self.taxa)

    @property
    def keys(self) -> tuple[str, ...]:
        """The names as trees match them (:func:`phylo.trees.taxa.normalise`: ``_`` is a
        blank)."""
        return tuple(normalise(t, False) for t in self.taxa)

    @property
    def n_sites(self) -> int:
        return int(self.codes.shape[1])

    @classmethod
    def from_sequences(
        cls, names: Sequence[str], sequences: Sequence[str], path: str | None = None
    ) -> Alignment:
        """Build an alignment from names and equal-length strings of IUPAC characters."""
        names = [str(n) for n in names]
        if len(names) != len(sequences):
            raise InputError("as many names as sequences are needed", path)
        lengths = {len(s) for s in sequences}
        if len(lengths) > 1:
            first = len(sequences[0])
            for n, s in zip(names, sequences):
                if len(s) != first:
                    raise InputError(
                        f"sequences of unequal length: {names[0]!r} has {first} "
                        f"sites but {n!r} has {len(s)}",
                        path,
                    )
        rows = [_encode(s, n, path) for n, s in zip(names, sequences)]
        codes = np.vstack(rows) if rows else np.zeros((0, 0), np.uint8)
        return cls(tuple(names), codes, path)

    def sequences(self) -> list[str]:
        """The sequences as IUPAC strings (gaps and missing data written as ``N``)."""
        inv = {v: k for k, v in IUPAC.items() if k in "ACGTRYSWKMBDHVN"}
        return ["".join(inv[int(c)] for c in row) for row in self.codes]

    def patterns(self) -> SitePatterns:
        """The compressed site patterns (computed once, then cached)."""
        if not self._patterns:
            uniq, inverse, counts = np.unique(
                self.codes.T, axis=0, return_inverse=True, return_counts=True
            )
            self._patterns.append(
                SitePatterns(
                    np.ascontiguousarray(uniq.T),
                    counts.astype(np.float64),
                    inverse.reshape(-1).astype(np.int64),
                )
            )
        return self._patterns[0]

    def empirical_frequencies(self) -> np.ndarray:
        """Base frequencies counted over the alignment.

        An unambiguous character counts 1 for its base; an ambiguity code with k possible
        bases counts 1/k for each; fully missing characters (N, gaps) count nothing.
        """
        bits = np.array([1, 2, 4, 8], dtype=np.uint8)
        c = self.codes.reshape(-1)
        c = c[c != 15]
        ind = ((c[:, None] & bits[None, :]) != 0).astype(np.float64)
        if ind.shape[0] == 0:
            return np.full(4, 0.25)
        counts = (ind / ind.sum(axis=1, keepdims=True)).sum(axis=0)
        return counts / counts.sum()

    def take_taxa(self, names: Sequence[str] | Taxa) -> Alignment:
        """The alignment with its rows in the order of ``names``, under those names.

        ``names`` (a tree's :class:`~phylo.trees.taxa.Taxa`, or names) must hold the same
        taxa, matched by :attr:`keys`; otherwise an :class:`InputError` names the taxa on one
        side only, the alignment's file and the source of ``names`` (the tree file when the
        taxa were read from one).
        """
        taxa = names if isinstance(names, Taxa) else Taxa(list(names))
        check_same_taxa(taxa, self.taxa, taxa.source or "the tree", self.path or "the alignment")
        if taxa.names == self.taxa:
            return self
        index = {k: i for i, k in enumerate(self.keys)}
        order = [index[k] for k in taxa.keys]
        return Alignment(taxa.names, self.codes[order], self.path)

    def to_phylip(self) -> str:
        """Sequential relaxed PHYLIP text (names, one space, the whole sequence)."""
        lines = [f"{self.n_taxa} {self.n_sites}"]
        for name, seq in zip(self.taxa, self.sequences()):
            lines.append(f"{name} {seq}")
        return "\n".join(lines) + "\n"


def _encode(seq: str, name: str, path, line=None, locate=None) -> np.ndarray:
    """State codes of a sequence; an error naming the first character that is no state
    (``locate(site) -> (line, column)`` places it in the file, else ``line``)."""
    if not seq.isascii():  # no character beyond ASCII is a state (never a silent '?')
        bad = np.array([next(i for i, c in enumerate(seq) if ord(c) > 127)])
    else:
        codes = _CODE_TABLE[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]
        bad = np.flatnonzero(codes == 0)
    if bad.size:
        ch = seq[bad[0]]
        where, column = (line, None) if locate is None else locate(int(bad[0]))
        raise InputError(
            f"unknown character {ch!r} at site {bad[0] + 1} of sequence {name!r} "
            "(expected IUPAC nucleotide codes, '-', '?' or 'N')",
            path,
            where,
            column,
        )
    return codes


# ----------------------------------------------------------------------------------------
# Readers


def read_alignment(path: str, format: str | None = None) -> Alignment:
    """Read an alignment file, guessing the format from its first characters.

    Parameters
    ----------
    path
        A FASTA (``>name``), NEXUS (``#NEXUS``) or PHYLIP (``ntax nchar``) file.
    format
        ``"fasta"``, ``"nexus"`` or ``"phylip"`` to skip the guess.
    """
    from ..trees.files import read_text

    return parse_alignment(read_text(path), format=format, path=path)


def parse_alignment(text: str, format: str | None = None, path: str | None = None) -> Alignment:
    """Parse alignment text (see :func:`read_alignment`)."""
    if format is None:
        head = text.lstrip()
        if head.startswith(">"):
            format = "fasta"
        elif head[:6].upper() == "#NEXUS":
            format = "nexus"
        elif re.match(r"\d+\s+\d+", head):
            format = "phylip"
        else:
            raise InputError(
                "unrecognised alignment format (expected FASTA '>', '#NEXUS' or "
                "a PHYLIP 'ntax nchar' header)",
                path,
                1,
                1,
            )
    format = format.lower()
    if format == "fasta":
        return _parse_fasta(text, path)
    if format == "nexus":
        return _parse_nexus(text, path)
    if format == "phylip":
        return _parse_phylip(text, path)
    raise InputError(f"unknown alignment format {format!r}", path)


def read_fasta(path: str) -> Alignment:
    """Read a FASTA alignment (``>name`` lines, sequences over any number of lines)."""
    return read_alignment(path, "fasta")


def read_nexus(path: str) -> Alignment:
    """Read the DATA or CHARACTERS block of a NEXUS file (see :func:`parse_alignment`)."""
    return read_alignment(path, "nexus")


def read_phylip(path: str) -> Alignment:
    """Read a PHYLIP alignment: sequential or interleaved, relaxed or strict names."""
    return read_alignment(path, "phylip")


def _fasta_locator(pieces):
    """``site -> (line, column)`` for a sequence given as ``(line number, text)`` pieces."""

    def locate(site: int):
        for lineno, raw in pieces:
            cols = [i for i, c in enumerate(raw) if not c.isspace()]
            if site < len(cols):
                return lineno, cols[site] + 1
            site -= len(cols)
        return (pieces[-1][0] if pieces else None), None

    return locate


def _parse_fasta(text: str, path) -> Alignment:
    names, seqs, lines_of, pieces = [], [], [], []
    keys: set[str] = set()
    current = None
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith(";"):
            continue
        if s.startswith(">"):
            name = s[1:].strip()
            if not name:
                raise InputError("empty sequence name", path, lineno, 1)
            if normalise(name, False) in keys:
                raise InputError(f"duplicate taxon name {name!r}", path, lineno, 2)
            keys.add(normalise(name, False))
            names.append(name)
            seqs.append([])
            lines_of.append(lineno)
            pieces.append([])
            current = seqs[-1]
        else:
            if current is None:
                raise InputError("sequence data before the first '>name' line", path, lineno, 1)
            current.append("".join(s.split()))
            pieces[-1].append((lineno, line))
    if not names:
        raise InputError("no sequences found", path)
    joined = ["".join(p) for p in seqs]
    for n, s, ln, where in zip(names, joined, lines_of, pieces):
        if len(s) != len(joined[0]):
            raise InputError(
                f"sequences of unequal length: {names[0]!r} has {len(joined[0])} "
                f"sites but {n!r} has {len(s)}",
                path,
                ln,
            )
        _encode(s, n, path, ln, _fasta_locator(where))
    return Alignment.from_sequences(names, joined, path)


def _parse_phylip(text: str, path) -> Alignment:
    lines = [(i, ln.rstrip()) for i, ln in enumerate(text.splitlines(), 1)]
    lines = [(i, ln) for i, ln in lines if ln.strip()]
    if not lines:
        raise InputError("empty PHYLIP file", path)
    head = lines[0][1].split()
    try:
        ntax, nchar = int(head[0]), int(head[1])
    except (ValueError, IndexError):
        raise InputError("PHYLIP header must be 'ntax nchar'", path, lines[0][0], 1) from None
    body = lines[1:]
    errors = []
    for parser in (_phylip_sequential, _phylip_interleaved):
        for strict in (False, True):
            try:
                names, seqs = parser(body, ntax, nchar, strict, path)
                for n, s in zip(names, seqs):
                    _encode(s, n, path)
                return Alignment.from_sequences(names, seqs, path)
            except InputError as exc:
                errors.append(exc)
    # report the error of the plain relaxed sequential reading
    raise errors[0]


def _split_name(line: str, strict: bool, lineno: int, path):
    if strict:
        return line[:10].strip(), "".join(line[10:].split())
    parts = line.strip().split(None, 1)
    if len(parts) < 2:
        return parts[0], ""
    return parts[0], "".join(parts[1].split())


def _phylip_sequential(body, ntax, nchar, strict, path):
    names, seqs = [], []
    k = 0
    for _ in range(ntax):
        if k >= len(body):
            raise InputError(f"expected {ntax} sequences, found {len(names)}", path)
        lineno, line = body[k]
        name, seq = _split_name(line, strict, lineno, path)
        k += 1
        while len(seq) < nchar and k < len(body):
            seq += "".join(body[k][1].split())
            k += 1
        if len(seq) != nchar:
            raise InputError(
                f"sequence {name!r} has {len(seq)} sites, the header says {nchar}", path, lineno
            )
        names.append(name)
        seqs.append(seq)
    if k != len(body):
        raise InputError("text after the last sequence", path, body[k][0])
    return names, seqs


def _phylip_interleaved(body, ntax, nchar, strict, path):
    if len(body) < ntax:
        raise InputError(f"expected {ntax} sequences", path)
    names, seqs = [], []
    for lineno, line in body[:ntax]:
        name, seq = _split_name(line, strict, lineno, path)
        names.append(name)
        seqs.append([seq])
    rest = body[ntax:]
    if len(rest) % ntax:
        raise InputError(
            "interleaved blocks do not have one line per taxon", path, rest[-1][0] if rest else None
        )
    for j, (_, line) in enumerate(rest):
        seqs[j % ntax].append("".join(line.split()))
    joined = ["".join(s) for s in seqs]
    for n, s, (ln, _) in zip(names, joined, body):
        if len(s) != nchar:
            raise InputError(
                f"sequence {n!r} has {len(s)} sites, the header says {nchar}", path, ln
            )
    return names, joined


# ---------------------------------------------------------------------------- NEXUS


def _strip_comments(text: str, path) -> str:
    """Replace NEXUS comments ``[...]`` (nested) by spaces, keeping newlines and positions."""
    out = list(text)
    depth = 0
    quote = False
    start = None
    for i, ch in enumerate(text):
        if depth == 0 and ch == "'":
            quote = not quote
            continue
        if quote:
            continue
        if ch == "[":
            if depth == 0:
                start = i
            depth += 1
        if depth > 0:
            if ch != "\n":
                out[i] = " "
            if ch == "]":
                depth -= 1
    if depth:
        line = text.count("\n", 0, start) + 1
        raise InputError("unclosed comment '['", path, line)
    return "".join(out)


_TOKEN = re.compile(r"'(?:[^']|'')*'|[;=,]|[^\s;=,]+")


def _tokens(text: str):
    """(token, offset) pairs of NEXUS command text."""
    for m in _TOKEN.finditer(text):
        yield m.group(0), m.start()


def _parse_nexus(text: str, path) -> Alignment:
    clean = _strip_comments(text, path)

    def where(offset):
        line = clean.count("\n", 0, offset) + 1
        col = offset - (clean.rfind("\n", 0, offset) + 1) + 1
        return line, col

    toks = list(_tokens(clean))
    if not toks or toks[0][0].upper() != "#NEXUS":
        raise InputError("a NEXUS file starts with #NEXUS", path, 1, 1)
    i = 1
    block = None
    taxlabels = None
    fmt = {"MISSING": "?", "GAP": "-", "MATCHCHAR": None, "INTERLEAVE": False}
    ntax = nchar = None
    result = None
    while i < len(toks):
        tok, off = toks[i]
        up = tok.upper()
        if up == "BEGIN":
            block = toks[i + 1][0].upper() if i + 1 < len(toks) else None
            i += 3  # BEGIN name ;
            continue
        if up in ("END", "ENDBLOCK"):
            block = None
            i += 2
            continue
        # collect one command up to ';'
        j = i
        while j < len(toks) and toks[j][0] != ";":
            j += 1
        if j == len(toks):
            raise InputError(f"command {tok!r} is not closed by ';'", path, *where(off))
        cmd = toks[i:j]
        if block in ("DATA", "CHARACTERS"):
            if up == "DIMENSIONS":
                kv = _key_values(cmd[1:])
                if "NTAX" in kv:
                    ntax = _int_value(kv["NTAX"], "NTAX", path, where(off))
                if "NCHAR" in kv:
                    nchar = _int_value(kv["NCHAR"], "NCHAR", path, where(off))
            elif up == "FORMAT":
                kv = _key_values(cmd[1:])
                dt = kv.get("DATATYPE", "DNA").upper()
                if dt not in ("DNA", "RNA", "NUCLEOTIDE", "NUCLEOTIDES"):
                    raise InputError(
                        f"only DNA/RNA data can be read, not DATATYPE={dt}", path, *where(off)
                    )
                for key in ("MISSING", "GAP", "MATCHCHAR"):
                    if key in kv:
                        fmt[key] = kv[key].strip("'")
                if "INTERLEAVE" in kv:
                    fmt["INTERLEAVE"] = kv["INTERLEAVE"].upper() not in ("NO", "FALSE")
            elif up == "MATRIX":
                if nchar is None:
                    raise InputError("MATRIX before DIMENSIONS NCHAR=...", path, *where(off))
                end = toks[j][1]
                start = off + len(tok)
                result = _nexus_matrix(clean, start, end, ntax, nchar, fmt, path, where)
        elif block == "TAXA":
            if up == "DIMENSIONS":
                kv = _key_values(cmd[1:])
                if "NTAX" in kv and ntax is None:
                    ntax = _int_value(kv["NTAX"], "NTAX", path, where(off))
            elif up == "TAXLABELS":
                taxlabels = [_unquote(t) for t, _ in cmd[1:]]
        i = j + 1
    if result is None:
        raise InputError("no DATA or CHARACTERS block with a MATRIX found", path)
    names, seqs, lines = result
    if taxlabels is not None:
        check_same_taxa(taxlabels, names, "TAXLABELS", "the MATRIX", path=path)
    if ntax is not None and len(names) != ntax:
        raise InputError(f"NTAX={ntax} but the MATRIX has {len(names)} sequences", path)
    return Alignment.from_sequences(names, seqs, path)


def _key_values(cmd):
    kv = {}
    k = 0
    while k < len(cmd):
        key = cmd[k][0].upper()
        if k + 2 < len(cmd) + 1 and k + 1 < len(cmd) and cmd[k + 1][0] == "=":
            val = cmd[k + 2][0] if k + 2 < len(cmd) else ""
            kv[key] = val
            k += 3
        else:
            kv[key] = "YES"
            k += 1
    return kv


def _int_value(v, key, path, pos):
    try:
        return int(v)
    except ValueError:
        raise InputError(f"{key} must be an integer, not {v!r}", path, *pos) from None


def _unquote(tok: str) -> str:
    if len(tok) >= 2 and tok[0] == "'" and tok[-1] == "'":
        return tok[1:-1].replace("''", "'")
    return tok.replace("_", "_")


_ROW = re.compile(r"\s*('(?:[^']|'')*'|\S+)(.*)$")


def _nexus_matrix(clean, start, end, ntax, nchar, fmt, path, where):
    """Rows of a NEXUS MATRIX between offsets ``start`` and ``end`` (the closing ';')."""
    text = clean[start:end]
    first_line = clean.count("\n", 0, start) + 1
    missing, gap, match = fmt["MISSING"], fmt["GAP"], fmt["MATCHCHAR"]

    def states(seq, name, ln):
        # braces/parentheses hold polymorphic or uncertain sets, e.g. {AG}
        out = []
        k = 0
        while k < len(seq):
            ch = seq[k]
            if ch in "{(":
                close = "}" if ch == "{" else ")"
                e = seq.find(close, k)
                if e < 0:
                    raise InputError(f"unclosed {ch!r} in sequence {name!r}", path, ln)
                members = seq[k + 1 : e].replace(" ", "").replace(",", "").upper()
                mask = 0
                for m in members:
                    if m not in IUPAC:
                        raise InputError(f"unknown character {m!r} in sequence {name!r}", path, ln)
                    mask |= IUPAC[m]
                inv = {v: c for c, v in IUPAC.items() if c in "ACGTRYSWKMBDHVN"}
                out.append(inv[mask])
                k = e + 1
                continue
            if ch == missing or ch == gap:
                out.append("N")
            else:
                out.append(ch)
            k += 1
        return out

    names: list[str] = []
    seqs: dict[str, list[str]] = {}
    lines_of: dict[str, int] = {}
    raw_lines = text.split("\n")
    if fmt["INTERLEAVE"]:
        for k, line in enumerate(raw_lines):
            if not line.strip():
                continue
            ln = first_line + k
            m = _ROW.match(line)
            name = _unquote(m.group(1))
            key = normalise(name, False)
            chunk = "".join(m.group(2).split())
            if key not in seqs:
                names.append(name)
                seqs[key] = []
                lines_of[key] = ln
            seqs[key].extend(states(chunk, name, ln))
    else:
        # token stream: a name, then characters until NCHAR are read
        flat = []
        for k, line in enumerate(raw_lines):
            for m in re.finditer(r"'(?:[^']|'')*'|\S+", line):
                flat.append((m.group(0), first_line + k))
        t = 0
        while t < len(flat):
            tok, ln = flat[t]
            name = _unquote(tok)
            key = normalise(name, False)
            if key in seqs:
                raise InputError(f"duplicate taxon name {name!r} in MATRIX", path, ln)
            names.append(name)
            lines_of[key] = ln
            chars: list[str] = []
            t += 1
            while len(chars) < nchar and t < len(flat):
                chars.extend(states(flat[t][0], name, flat[t][1]))
                t += 1
            seqs[key] = chars
    out = []
    for name in names:
        key = normalise(name, False)
        chars = seqs[key]
        ln = lines_of[key]
        if match:
            ref = seqs[normalise(names[0], False)]
            chars = [ref[k] if (c == match and k < len(ref)) else c for k, c in enumerate(chars)]
        if len(chars) != nchar:
            raise InputError(f"sequence {name!r} has {len(chars)} sites, NCHAR={nchar}", path, ln)
        s = "".join(chars)
        _encode(s, name, path, ln)
        out.append(s)
    return names, out, lines_of


def _basename(path):
    return os.path.basename(path) if path else path
