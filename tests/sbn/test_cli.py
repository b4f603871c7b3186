"""The sbn fit / prob / kl / sample / top commands, and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from phylo.cli.sbn import main

from phylo.sbn import fit, kl_to_model, load_model
from phylo.trees import parse_newick, read_trees

from ..conftest import DATA

RUN1 = str(DATA / "example.run1.t")
RUN2 = str(DATA / "example.run2.t")
TRPROBS = str(DATA / "example.trprobs")


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def table(text):
    lines = [x for x in text.splitlines() if x and not x.startswith("#")]
    return [x.split("\t") for x in lines]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("sbn") / "model.json"
    r = run("fit", RUN1, RUN2, "-o", path, "-q")
    assert r.exit_code == 0, r.output
    return path


def test_fit_writes_a_model_with_provenance(model_path):
    data = json.loads(model_path.read_text())
    assert data["format"] == "phylo-sbn-model" and data["method"] == "em-alpha"
    prov = data["provenance"]
    assert prov["parameters"]["method"] == "em-alpha" and prov["parameters"]["alpha"] == 1e-4
    assert [i["path"] for i in prov["inputs"]] == [RUN1, RUN2]
    assert all(len(i["sha256"]) == 64 for i in prov["inputs"])
    model = load_model(str(model_path))
    # the same as fitting in Python
    direct = fit(read_trees([RUN1, RUN2]), "em-alpha")
    assert np.array_equal(model.log_theta, direct.log_theta)


@pytest.mark.parametrize("method", ["srf", "ccd", "sa", "em"])
def test_fit_methods(tmp_path, method):
    path = tmp_path / "m.json"
    r = run("fit", TRPROBS, "--method", method, "-o", path)
    assert r.exit_code == 0, r.output
    assert method in r.stderr
    assert load_model(str(path)).method == method


def test_fit_rooted_sample(tmp_path):
    trees = tmp_path / "rooted.nwk"
    trees.write_text("((A,B),(C,(D,E)));\n(((A,B),C),(D,E));\n((A,B),(C,(D,E)));\n")
    path = tmp_path / "m.json"
    r = run("fit", trees, "--rooted", "--burnin", "0", "-o", path, "-q")
    assert r.exit_code == 0, r.output
    model = load_model(str(path))
    assert model.rooted
    p = model.prob(["((A,B),(C,(D,E)));", "(((A,B),C),(D,E));"])
    assert p == pytest.approx([2 / 3, 1 / 3])


def test_prob_per_tree_and_unique(model_path):
    model = load_model(str(model_path))
    r = run("prob", model_path, RUN1, "--burnin", "1990")
    assert r.exit_code == 0, r.output
    rows = table(r.stdout)
    assert rows[0] == ["file", "tree", "log_prob"]
    assert [int(x[1]) for x in rows[1:]] == list(range(1991, 2002))
    sample = read_trees([RUN1], burnin=1990)
    want = model.log_prob(sample)[sample.traces[0]]
    np.testing.assert_array_equal([float(x[2]) for x in rows[1:]], want)
    r = run("prob", model_path, TRPROBS, "--unique")
    rows = table(r.stdout)
    assert rows[0] == ["topology", "frequency", "log_prob", "newick"]
    nwk = rows[1][3]
    assert float(rows[1][2]) == model.log_prob(nwk)[0]


def test_kl(model_path):
    model = load_model(str(model_path))
    r = run("kl", model_path, "--reference", TRPROBS)
    assert r.exit_code == 0, r.output
    rows = table(r.stdout)
    assert rows[0][0] == "kl"
    want = kl_to_model(model, read_trees([TRPROBS]))
    assert float(rows[1][0]) == want
    # several reference files are pooled; positional files are more references
    r2 = run("kl", model_path, "--reference", TRPROBS, TRPROBS)
    assert float(table(r2.stdout)[1][0]) == pytest.approx(want, rel=1e-12)


def test_sample_same_seed_same_output(model_path):
    a = run("sample", model_path, "-n", 20, "--seed", 5).stdout
    b = run("sample", model_path, "-n", 20, "--seed", 5).stdout
    c = run("sample", model_path, "-n", 20, "--seed", 6).stdout
    assert a == b and a != c
    lines = a.splitlines()
    assert len(lines) == 20
    model = load_model(str(model_path))
    trees = [parse_newick(x, taxa=model.taxa) for x in lines]
    assert np.all(np.isfinite(model.log_prob(trees)))
    r = run("sample", model_path, "-n", 5, "--seed", 5, "--log-prob")
    for line in r.stdout.splitlines():
        lp, nwk = line.split("\t")
        assert float(lp) == pytest.approx(model.log_prob(nwk)[0], rel=1e-12)


def test_top(model_path):
    model = load_model(str(model_path))
    r = run("top", model_path, "-k", 4, "--entropy")
    assert r.exit_code == 0, r.output
    rows = table(r.stdout)
    assert rows[0] == ["rank", "probability", "cumulative", "log_prob", "newick"]
    best = model.top(4)
    got = [float(x[1]) for x in rows[1:]]
    np.testing.assert_allclose(got, np.exp(best.log_prob), rtol=1e-12)
    assert got == sorted(got, reverse=True)
    assert model.prob(rows[1][4])[0] == pytest.approx(got[0], rel=1e-12)
    assert "# entropy:" in r.stdout


def _one_error_line(r):
    assert r.exit_code == 2, r.output
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in r.output
    return lines[0]


def test_trees_with_other_taxa(model_path, tmp_path):
    other = tmp_path / "other.nwk"
    other.write_text("((T01,T02),(T03,Homo_sapiens),T05);\n")
    line = _one_error_line(run("prob", model_path, other))
    assert "Homo_sapiens" in line and "model" in line
    line = _one_error_line(run("kl", model_path, "--reference", other))
    assert "Homo_sapiens" in line


@pytest.mark.parametrize("content", ["{", "[1, 2]", '{"format": "something-else"}', ""])
def test_corrupted_model(tmp_path, content):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    line = _one_error_line(run("prob", bad, TRPROBS))
    assert "bad.json" in line


def test_model_file_missing(tmp_path):
    line = _one_error_line(run("top", tmp_path / "nope.json"))
    assert "nope.json" in line


def test_unknown_method():
    r = run("fit", TRPROBS, "--method", "magic")
    assert r.exit_code == 2 and "magic" in r.output


def test_unknown_method_in_python():
    from phylo.errors import InputError

    with pytest.raises(InputError, match="magic"):
        fit(read_trees([TRPROBS]), "magic")
