"""Reading tree samples and representing topologies.

>>> from phylo.trees import read_trees
>>> sample = read_trees(["run1.t", "run2.t"])            # doctest: +SKIP
>>> sample.n_topologies, sample.asdsf()                   # doctest: +SKIP
"""

from .newick import parse_newick, write_newick
from .sample import RunInfo, TreeSample, parse_burnin, read_trees
from .splits import SplitTable, asdsf, split_table
from .taxa import Taxa
from .tree import Tree

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
]
