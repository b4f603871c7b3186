"""Fuzzing the model reader: any damage to a model file is an InputError or a valid model."""

from __future__ import annotations

import copy
import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phylo.errors import InputError
from phylo.sbn import fit, load_model
from phylo.sbn.io import model_from_dict
from phylo.trees import read_trees

from ..conftest import DATA

SAMPLE = read_trees([str(DATA / "example.run1.t")], burnin=1900)
MODELS = {m: fit(SAMPLE, m).to_dict() for m in ("em-alpha", "ccd", "srf")}

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(obj, prefix=()):
    """Every place in a JSON document (lists sampled, so that big arrays do not dominate)."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i in sorted({0, len(obj) // 2, len(obj) - 1} & set(range(len(obj)))):
            yield from _paths(obj[i], prefix + (i,))


def _set(doc, path, value):
    if not path:
        return value
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(MODELS)), pick=st.integers(0, 10**9), value=JSON_VALUES,
       action=st.sampled_from(["replace", "delete", "duplicate"]))  # fmt: skip
def test_damaged_model_documents(kind, pick, value, action):
    doc = copy.deepcopy(MODELS[kind])
    paths = list(_paths(doc))
    path = paths[pick % len(paths)]
    if action == "replace":
        doc = _set(doc, path, value)
    elif path:
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        if action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, list):
            parent.insert(path[-1], copy.deepcopy(parent[path[-1]]))
    try:
        model = model_from_dict(doc, "fuzz.json")
    except InputError as err:
        assert "fuzz.json" in str(err)
        return
    # accepted: then it must be a distribution over the sample's topologies, or a model of
    # other taxa (a renamed taxon), which says so when asked about these trees
    try:
        p = np.exp(model.log_prob(SAMPLE))
    except InputError as err:
        assert "taxa differ" in str(err)
        return
    assert np.all(p >= 0) and p.sum() <= 1 + 1e-9


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, 10**9), junk=st.binary(max_size=20))
def test_damaged_model_files(tmp_path_factory, cut, junk):
    text = json.dumps(MODELS["em-alpha"]).encode()
    i = cut % len(text)
    path = tmp_path_factory.mktemp("fuzz") / "m.json"
    path.write_bytes(text[:i] + junk + text[i + len(junk) :])
    try:
        load_model(str(path))
    except InputError as err:
        assert str(path) in str(err)


def test_an_empty_taxon_name_is_refused():
    # found by the fuzzing above: a model whose first taxon was renamed '' was accepted
    for kind, data in MODELS.items():
        doc = copy.deepcopy(data)
        doc["taxa"][0] = " "
        try:
            model_from_dict(doc, "m.json")
        except InputError as err:
            assert "m.json" in str(err) and "empty" in str(err), kind
        else:
            raise AssertionError(f"{kind}: an empty taxon name was accepted")
