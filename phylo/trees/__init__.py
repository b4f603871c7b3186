"""Reading tree samples and representing topologies: the one topology core.

>>> from phylo.trees import read_trees
>>> sample = read_trees(["run1.t", "run2.t"])            # doctest: +SKIP
>>> sample.n_topologies, sample.asdsf()                   # doctest: +SKIP

Modules, each importing only those listed before it (no import loops):

* ``_kernels``: numba kernels: the Newick scanner and parser, and ``canonicalise``, the one
  canonical form of a topology (with an edge map, so branch lengths follow);
* ``taxa``: taxon names, how labels match them (``_`` is a blank), ``check_same_taxa``;
* ``bitsets``: clades and splits as words of bits;
* ``topology``: ``canonical``, ``relabel``, ``permutation`` on parent arrays (typed wrappers
  of the kernel, used by every subpackage that builds or renames topologies);
* ``newick``: Newick text to and from arrays, and the parser's error messages;
* ``tree``: :class:`Tree` (renaming taxa and unrooting as array operations) and
  ``parse_newick``;
* ``files``, ``nexus``, ``reader``: streaming tree files (NEXUS, Newick, compressed);
* ``splits``: split frequencies and ASDSF; ``sample``: :class:`TreeSample` and
  ``read_trees``; ``summary``: the ``sbn summary`` report.
"""

from .newick import write_newick
from .sample import RunInfo, TreeSample, parse_burnin, read_trees
from .splits import SplitTable, asdsf, split_table
from .taxa import Taxa
from .topology import canonical, permutation, relabel
from .tree import Tree, parse_newick

__all__ = [
    "Taxa",
    "Tree",
    "TreeSample",
    "RunInfo",
    "SplitTable",
    "parse_newick",
    "write_newick",
    "read_trees",
    "parse_burnin",
    "split_table",
    "asdsf",
    "canonical",
    "relabel",
    "permutation",
]
