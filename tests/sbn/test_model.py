"""The fitted distribution: exact sampling, k best topologies, entropy, gradients, files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from phylo.errors import InputError
from phylo.sbn import fit, kl_divergence, load_model
from phylo.trees.topology import canonical

from . import brute
from .samples import all_newicks, random_training, sample_of


def _chi_square_p(model, nwk, parents, n_draws):
    probs = model.prob(nwk)
    keys = {p.tobytes(): i for i, p in enumerate(model.topologies(nwk))}
    counts = np.zeros(len(nwk))
    for row in parents:
        counts[keys[row.tobytes()]] += 1
    assert counts[probs == 0].sum() == 0
    expected = probs * n_draws
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    return stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue


@pytest.mark.parametrize(
    "n,rooted,method",
    [
        (5, False, "em-alpha"),
        (6, False, "sa"),
        (6, False, "ccd"),
        (5, True, "sa"),
        (6, False, "srf"),
    ],
)
def test_sampling_frequencies_match_log_prob(n, rooted, method):
    rng = np.random.default_rng(n)
    _, _, sample = random_training(n, 40, rng, rooted)
    model = fit(sample, method)
    _, nwk = all_newicks(n, rooted)
    draws = 20000
    parents, logp = model.sample(draws, np.random.default_rng(123))
    # returned log probabilities are the model's
    np.testing.assert_allclose(logp, model.log_prob(parents), rtol=1e-12)
    assert _chi_square_p(model, nwk, parents, draws) > 1e-3


def test_same_seed_same_sample():
    rng = np.random.default_rng(1)
    _, _, sample = random_training(7, 40, rng)
    model = fit(sample, "em-alpha")
    a = model.sample(50, np.random.default_rng(9))[0]
    b = model.sample(50, np.random.default_rng(9))[0]
    c = model.sample(50, np.random.default_rng(10))[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # draws are canonical topologies
    assert np.array_equal(canonical(a, 7, False), a)


def test_refitting_a_large_sample_recovers_a_known_sbn():
    n = 6
    pool, nwk = all_newicks(n)
    rng = np.random.default_rng(2024)
    # a known SBN with full support: SBN-SA of every topology with random weights
    truth = fit(sample_of(pool, rng.dirichlet(np.ones(len(pool))), n), "sa")
    p = truth.prob(nwk)
    kls = []
    for size in (200, 2000, 20000, 200000):
        parents, _ = truth.sample(size, np.random.default_rng(size))
        keys, counts = np.unique(parents, axis=0, return_counts=True)
        sample = sample_of_parents(truth, keys, counts)
        model = fit(sample, "em", tol=1e-9)
        kls.append(kl_divergence(p, model.prob(nwk)))
    assert kls[0] > kls[1] > kls[2] > kls[3]
    assert kls[3] < 2e-3


def sample_of_parents(model, parents, counts):
    from phylo.trees import TreeSample
    from phylo.trees.sample import RunInfo

    run = RunInfo("<draws>", int(counts.sum()), 0, 1, int(counts.sum()), False)
    return TreeSample(
        model.taxa,
        model.rooted,
        np.array(parents),
        counts[:, None].astype(float),
        [run],
        [np.arange(len(parents))],
    )


@pytest.mark.parametrize(
    "n,method,rooted",
    [
        (5, "em", False),
        (6, "sa", False),
        (6, "em-alpha", False),
        (7, "em", False),
        (7, "ccd", False),
        (6, "sa", True),
        (7, "srf", False),
    ],
)
def test_top_k_equals_exhaustive_enumeration(n, method, rooted):
    rng = np.random.default_rng(n * 7)
    _, _, sample = random_training(n, 80, rng, rooted)
    model = fit(sample, method)
    _, nwk = all_newicks(n, rooted)
    p = model.prob(nwk)
    order = np.argsort(-p, kind="stable")
    topo = model.topologies(nwk)
    for k in (1, 5, 25):
        best = model.top(k)
        k_eff = min(k, int((p > 0).sum()))
        assert len(best) == k_eff
        got = np.exp(best.log_prob)
        np.testing.assert_allclose(got, p[order[:k_eff]], rtol=1e-10)
        # same topologies, up to ties in probability
        want = {topo[i].tobytes(): p[i] for i in order[:k_eff]}
        for row, q in zip(best.parents, got):
            key = row.tobytes()
            assert key in want or np.isclose(q, p[order[k_eff - 1]], rtol=1e-10)
        # reported probabilities are those of the reported topologies
        np.testing.assert_allclose(model.prob(best.parents), got, rtol=1e-12)


def test_entropy_exact_and_monte_carlo():
    rng = np.random.default_rng(3)
    _, _, sample = random_training(6, 50, rng)
    model = fit(sample, "em-alpha")
    _, nwk = all_newicks(6)
    h = brute.entropy(model.prob(nwk))
    exact = model.entropy()
    assert exact.exact and exact.value == pytest.approx(h, rel=1e-12)
    mc = model.entropy(rng=np.random.default_rng(5), n_samples=20000, exact_limit=0)
    assert not mc.exact and mc.stderr > 0
    assert abs(mc.value - h) < 4 * mc.stderr


def test_entropy_rooted_by_dynamic_programming():
    rng = np.random.default_rng(8)
    _, _, sample = random_training(6, 60, rng, rooted=True)
    model = fit(sample, "em-alpha")
    _, nwk = all_newicks(6, rooted=True)
    ent = model.entropy()
    assert ent.exact and ent.value == pytest.approx(brute.entropy(model.prob(nwk)), rel=1e-12)


def test_gradient_of_log_prob_by_finite_differences():
    rng = np.random.default_rng(12)
    _, _, sample = random_training(6, 30, rng)
    model = fit(sample, "em-alpha")
    trees = model.topologies(sample)[:3]
    g = model.grad_log_prob(trees, wrt="logits")
    phi = model.log_theta.copy()
    eps = 1e-6
    for m in rng.choice(model.n_params, size=12, replace=False):
        up = phi.copy()
        up[m] += eps
        dn = phi.copy()
        dn[m] -= eps
        fd = model.with_logits(up).log_prob(trees) - model.with_logits(dn).log_prob(trees)
        np.testing.assert_allclose(g[:, m], fd / (2 * eps), atol=1e-6)
    # summed form and log_theta form
    np.testing.assert_allclose(model.grad_log_prob(trees, per_tree=False), g.sum(axis=0))
    c = model.grad_log_prob(trees, wrt="log_theta")
    assert np.allclose(c.sum(axis=1)[0], 5)  # n - 1 parameters per rooting


def test_rooting_param_ids_give_log_prob():
    rng = np.random.default_rng(13)
    _, _, sample = random_training(7, 30, rng)
    model = fit(sample, "em-alpha")
    _, nwk = all_newicks(7)
    ids = model.rooting_param_ids(nwk)
    lt = np.append(model.log_theta, -np.inf)
    per_rooting = lt[ids].sum(axis=2)
    with np.errstate(divide="ignore"):
        expected = np.log(np.exp(per_rooting).sum(axis=1))
    np.testing.assert_allclose(expected, model.log_prob(nwk), rtol=1e-12)
    assert ids.shape == (len(nwk), 11, 6)


@pytest.mark.parametrize(
    "method,rooted",
    [
        ("srf", False),
        ("ccd", False),
        ("sa", False),
        ("em", False),
        ("em-alpha", False),
        ("em-alpha", True),
        ("ccd", True),
    ],
)
def test_save_load_round_trip_is_exact(tmp_path, method, rooted):
    rng = np.random.default_rng(21)
    _, _, sample = random_training(7, 40, rng, rooted)
    model = fit(sample, method)
    model.provenance = {"software": "phylo", "command": "test"}
    path = tmp_path / "m.json"
    model.save(str(path))
    again = load_model(str(path))
    assert again.to_dict() == model.to_dict()
    _, nwk = all_newicks(7, rooted)
    assert np.array_equal(again.log_prob(nwk), model.log_prob(nwk))
    assert json.loads(path.read_text())["provenance"]["command"] == "test"


def _model_file(tmp_path):
    rng = np.random.default_rng(2)
    _, _, sample = random_training(5, 10, rng)
    model = fit(sample, "em-alpha")
    path = tmp_path / "m.json"
    model.save(str(path))
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(
    "damage",
    [
        "truncate",
        "not_json",
        "foreign",
        "bad_prob",
        "bad_index",
        "bad_clade",
        "missing_field",
        "version",
    ],
)
def test_corrupted_model_file_is_a_clear_error(tmp_path, damage):
    path, data = _model_file(tmp_path)
    text = path.read_text()
    if damage == "truncate":
        text = text[: len(text) // 2]
    elif damage == "not_json":
        text = "hello"
    elif damage == "foreign":
        text = json.dumps({"hello": 1})
    elif damage == "bad_prob":
        data["params"]["log_prob"][0] = -0.001
        text = json.dumps(data)
    elif damage == "bad_index":
        data["params"]["subsplit"][-1] = 10**6
        text = json.dumps(data)
    elif damage == "bad_clade":
        data["clades"][1] = "01x10"
        text = json.dumps(data)
    elif damage == "missing_field":
        del data["keys"]
        text = json.dumps(data)
    else:
        data["format_version"] = 99
        text = json.dumps(data)
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_model(str(path))
    assert str(path) in str(err.value)


def test_trees_with_other_taxa_are_a_clear_error():
    rng = np.random.default_rng(2)
    _, _, sample = random_training(5, 10, rng)
    model = fit(sample, "em-alpha")
    with pytest.raises(InputError, match="'t9'"):
        model.log_prob("((t0,t1),(t2,t3),t9);")
    # the same taxa in another order are fine
    a = model.log_prob("((t0,t1),(t2,t3),t4);")
    b = model.log_prob("((t3,t2),t4,(t1,t0));")
    assert a == b


def _cli_model_file(tmp_path, method="em-alpha"):
    """A model as `sbn fit` writes it (with its provenance), fitted to the example runs."""
    from click.testing import CliRunner

    from phylo.cli.sbn import main

    from ..conftest import DATA

    path = tmp_path / f"{method}.json"
    runs = [str(DATA / "example.run1.t"), str(DATA / "example.run2.t")]
    r = CliRunner().invoke(main, ["fit", *runs, "-m", method, "-o", str(path), "-q"])
    assert r.exit_code == 0, r.output
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(
    "damage, message",
    [
        ("duplicate_key", "parent key is listed twice"),
        ("pcsp_as_clade", "clade conditioning, but some parent keys name a parent subsplit"),
        ("clade_as_pcsp", "PCSP conditioning, but some parent keys lack a parent subsplit"),
        ("unrooted_as_rooted", "'rooted' is true but the model was fitted to unrooted trees"),
        ("duplicate_param", "listed twice"),
        ("float_index", "integers only"),
        ("deep_nesting", "nested too deeply"),
    ],
)
def test_structurally_wrong_model_files_are_refused(tmp_path, damage, message):
    """Files that once loaded and gave wrong answers with exit 0."""
    path, data = _cli_model_file(tmp_path, "ccd" if damage == "clade_as_pcsp" else "em-alpha")
    if damage == "duplicate_key":
        data["keys"][3] = list(data["keys"][2])
    elif damage == "pcsp_as_clade":
        data["conditioning"] = "clade"
    elif damage == "clade_as_pcsp":
        data["conditioning"] = "pcsp"
    elif damage == "unrooted_as_rooted":
        data["rooted"] = True
    elif damage == "duplicate_param":
        data["params"]["subsplit"][1] = data["params"]["subsplit"][0]
    elif damage == "float_index":
        data["params"]["key"][5] = 1.0
    text = json.dumps(data)
    if damage == "deep_nesting":
        text = "[" * 100_000 + "]" * 100_000
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        load_model(str(path))
    assert str(path) in str(err.value)


def test_a_large_model_loads_exactly(tmp_path):
    """Clades of 700 taxa (11 words) read back bit for bit through the vectorised loader."""
    n = 700
    rng = np.random.default_rng(5)
    names = [f"t{i}" for i in range(n)]
    newicks = []
    for _ in range(3):
        order = rng.permutation(names)
        nwk = order[0]
        for name in order[1:]:  # random caterpillars
            nwk = f"({nwk},{name})"
        newicks.append(nwk + ";")
    trees = tmp_path / "big.nwk"
    trees.write_text("\n".join(newicks) + "\n")
    from phylo.trees import read_trees

    model = fit(read_trees(str(trees), burnin=0), "sa")
    path = tmp_path / "big.json"
    model.save(str(path))
    again = load_model(str(path))
    assert np.array_equal(again.support.clades, model.support.clades)
    assert again.to_dict()["params"] == model.to_dict()["params"]
    assert np.allclose(again.log_prob(newicks), model.log_prob(newicks))


def test_group_logsumexp_against_a_loop():
    from phylo.sbn.model import logsumexp_groups

    rng = np.random.default_rng(0)
    for _ in range(100):
        sizes = rng.integers(0, 5, rng.integers(1, 30))
        off = np.concatenate([[0], np.cumsum(sizes)])
        v = rng.normal(size=off[-1]) * 50
        v[rng.random(off[-1]) < 0.3] = -np.inf
        want = []
        for g in range(len(sizes)):
            seg = v[off[g] : off[g + 1]]
            finite = seg[np.isfinite(seg)]
            want.append(np.log(np.sum(np.exp(finite))) if finite.size else -np.inf)
        assert np.allclose(logsumexp_groups(v, off), want, rtol=1e-13, atol=0)


@pytest.mark.parametrize("rooted", [False, True])
def test_top_and_entropy_of_a_deep_ladder_model(tmp_path, rooted):
    """Ladder-shaped trees of 600 taxa: the k-best derivations recurse once per level."""
    from phylo.trees import read_trees

    n = 600
    names = [f"t{i}" for i in range(n)]
    newicks = []
    for shift in (0, 1):  # two caterpillars that differ in their last cherry
        order = names[shift:] + names[:shift]
        nwk = f"({order[0]},{order[1]})"
        for name in order[2:]:
            nwk = f"({nwk},{name})"
        newicks.append(nwk + ";")
    path = tmp_path / "ladder.nwk"
    path.write_text("\n".join(newicks) + "\n" + newicks[0] + "\n")
    sample = read_trees(str(path), burnin=0, rooted=rooted)
    model = fit(sample, "sa")
    best = model.top(3)
    assert len(best) >= 2
    want = model.log_prob(best.parents)
    assert np.allclose(best.log_prob, want)
    assert best.log_prob[0] >= best.log_prob[1]
    assert np.isfinite(model.entropy(rng=np.random.default_rng(1)).value)
