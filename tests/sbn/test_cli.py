"""The sbn fit / prob / kl / sample / top commands, and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from phylo.cli.sbn import main
from phylo.sbn import fit, kl_to_reference, load_model
from phylo.tables import parse_table
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
    # tables hold 15 significant digits
    np.testing.assert_allclose([float(x[2]) for x in rows[1:]], want, rtol=1e-14, atol=0)
    r = run("prob", model_path, TRPROBS, "--unique")
    rows = table(r.stdout)
    assert rows[0] == ["topology", "frequency", "log_prob", "newick"]
    nwk = rows[1][3]
    assert float(rows[1][2]) == pytest.approx(model.log_prob(nwk)[0], rel=1e-14, abs=0)


def test_kl(model_path):
    model = load_model(str(model_path))
    r = run("kl", model_path, "--reference", TRPROBS)
    assert r.exit_code == 0, r.output
    rows = table(r.stdout)
    assert rows[0] == [
        "kl",
        "reference_topologies",
        "reference_mass_in_model_support",
        "model_mass_on_reference",
    ]
    want = kl_to_reference(model, read_trees([TRPROBS]))
    assert float(rows[1][0]) == pytest.approx(want.value, rel=1e-14, abs=0)  # 15 digits
    assert int(rows[1][1]) == want.reference_topologies == read_trees([TRPROBS]).n_topologies
    assert float(rows[1][2]) == pytest.approx(want.reference_mass_in_support, rel=1e-14)
    assert float(rows[1][3]) == pytest.approx(want.model_mass_on_reference, rel=1e-14)
    # several reference files are pooled; positional files are more references
    r2 = run("kl", model_path, "--reference", TRPROBS, TRPROBS)
    assert float(table(r2.stdout)[1][0]) == pytest.approx(want.value, rel=1e-12)


def test_kl_of_a_sample_from_its_own_frequencies_is_zero(tmp_path):
    path = tmp_path / "srf.json"
    assert run("fit", RUN1, RUN2, "-m", "srf", "-o", path, "-q").exit_code == 0
    r = run("kl", path, "--reference", RUN1, RUN2, "-q")
    assert r.exit_code == 0, r.output
    kl, topologies, in_support, on_reference = table(r.stdout)[1]
    assert float(kl) == pytest.approx(0.0, abs=1e-15)
    assert int(topologies) == read_trees([RUN1, RUN2]).n_topologies
    assert float(in_support) == pytest.approx(1.0, abs=1e-15)
    assert float(on_reference) == pytest.approx(1.0, abs=1e-15)
    # trees of run 2 that run 1 never visited lie outside the support of run 1's frequencies
    assert run("fit", RUN1, "-m", "srf", "-o", path, "-q").exit_code == 0
    r = run("kl", path, "--reference", RUN2, "-q")
    kl, _, in_support, on_reference = table(r.stdout)[1]
    assert float(in_support) < 1 and float(on_reference) < 1 and float(kl) > 0


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
    comments, columns, rows = parse_table(r.stdout)
    assert columns == ["log_prob", "newick"] and "# seed: 5" in comments
    assert [row["newick"] for row in rows] == lines[:5]  # the same draws
    for row in rows:
        assert float(row["log_prob"]) == pytest.approx(model.log_prob(row["newick"])[0], rel=1e-12)


def test_sample_draws_in_blocks_as_in_one_call(model_path):
    """Drawing in blocks (bounded memory) gives the trees one call gives."""
    from phylo.sbn.sampling import draw_newick

    model = load_model(str(model_path))
    one = list(draw_newick(model, 50, 3, block=50))
    blocks = list(draw_newick(model, 50, 3, block=7))
    assert one == blocks
    parents, logp = model.sample(50, np.random.default_rng(3))
    assert [lp for lp, _ in one] == list(logp)


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
