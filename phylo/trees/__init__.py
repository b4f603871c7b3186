"""Reading tree samples and representing topologies.

>>> from phylo.trees import read_trees
>>> sample = read_trees(["run1.t", "run2.t"])            # doctest: +SKIP
>>> sample.n_topologies, sample.asdsf()                   # doctest: +SKIP
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
