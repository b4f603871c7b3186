"""Task execution: seeds keyed by task, process pools, shards, resumable tables, Dask."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.execution import (
    ResultStore,
    merge_tables,
    parse_shard,
    read_table,
    run_into,
    run_tasks,
    select_shard,
    task_rng,
)

from .conftest import ROOT

COLUMNS = ("item", "method", "replicate", "value", "seconds")
KEYS = [(i, m, r) for i in range(5) for m in ("a", "bb") for r in range(3)]


def toy_setup(offset):
    return {"offset": offset}


def toy_task(ctx, key):
    """A task whose result depends only on its key and the seed: draws from its stream."""
    rng = task_rng(ctx.get("seed", 7), key)
    return {
        "item": key[0],
        "method": key[1],
        "replicate": key[2],
        "value": float(rng.normal() + ctx["offset"]),
        "seconds": 0.0,
    }


def slow_task(ctx, key):
    time.sleep(ctx.get("sleep", 0.05))
    return toy_task(ctx, key)


def slow_setup(offset, sleep):
    return {"offset": offset, "sleep": sleep}


def values(rows):
    return {(r["item"], r["method"], r["replicate"]): r["value"] for r in rows}


def test_task_streams_depend_on_seed_and_key_only():
    a = task_rng(1, (3, "ss", 0)).random(5)
    assert np.array_equal(a, task_rng(1, (3, "ss", 0)).random(5))
    assert not np.array_equal(a, task_rng(1, (3, "ss", 1)).random(5))
    assert not np.array_equal(a, task_rng(2, (3, "ss", 0)).random(5))
    assert not np.array_equal(
        task_rng(1, (1, "ab")).random(3), task_rng(1, (1, "a", "b")).random(3)
    )


def test_results_do_not_depend_on_jobs_or_order():
    one = dict(run_tasks(KEYS, toy_task, toy_setup, (1.0,), jobs=1))
    two = dict(run_tasks(list(reversed(KEYS)), toy_task, toy_setup, (1.0,), jobs=2))
    assert one == two and len(one) == len(KEYS)


def test_shards_partition_the_tasks():
    parts = [select_shard(KEYS, (i, 4)) for i in range(1, 5)]
    flat = [k for p in parts for k in p]
    assert sorted(flat) == sorted(KEYS) and len(flat) == len(set(flat))
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
    assert parse_shard("2/5") == (2, 5)
    for bad in ("0/5", "6/5", "x", "1/0"):
        with pytest.raises(InputError):
            parse_shard(bad)


def test_store_resumes_and_detects_half_written_lines(tmp_path):
    path = str(tmp_path / "r.tsv")
    store = ResultStore(path, COLUMNS, 3, header=["# test"], identity=["seed=7"])
    n = run_into(store, KEYS[:10], toy_task, toy_setup, (0.0,))
    assert n == 10
    # damage: chop the last line in half and corrupt a value in another
    with open(path) as fh:
        lines = fh.read().splitlines(keepends=True)
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
    lines[5] = lines[5][:10] + "9" + lines[5][11:]  # one digit changed: checksum fails
    with open(path, "w") as fh:
        fh.write("".join(lines))
    store = ResultStore(path, COLUMNS, 3, header=["# test"], identity=["seed=7"])
    assert store.dropped == 2 and len(store.rows) == 8
    n = run_into(store, KEYS, toy_task, toy_setup, (0.0,))
    assert n == len(KEYS) - 8
    _, cols, rows = read_table(path)
    clean = str(tmp_path / "clean.tsv")
    run_into(ResultStore(clean, COLUMNS, 3, identity=["seed=7"]), KEYS, toy_task, toy_setup, (0.0,))
    assert values(rows) == values(read_table(clean)[2])


def test_store_refuses_a_different_run(tmp_path):
    path = str(tmp_path / "r.tsv")
    run_into(
        ResultStore(path, COLUMNS, 3, identity=["seed=7", "methods=a,bb"]),
        KEYS[:2],
        toy_task,
        toy_setup,
        (0.0,),
    )
    with pytest.raises(InputError, match="seed differ"):
        ResultStore(path, COLUMNS, 3, identity=["seed=8", "methods=a,bb"])


def test_shards_merge_into_the_single_run(tmp_path):
    single = str(tmp_path / "all.tsv")
    run_into(
        ResultStore(single, COLUMNS, 3, identity=["seed=7"]), KEYS, toy_task, toy_setup, (0.5,)
    )
    shards = []
    for i in range(1, 4):
        p = str(tmp_path / f"shard{i}.tsv")
        run_into(
            ResultStore(p, COLUMNS, 3, identity=["seed=7"]),
            select_shard(KEYS, (i, 3)),
            toy_task,
            toy_setup,
            (0.5,),
        )
        shards.append(p)
    _, cols, merged = merge_tables(shards, 3, ignore=["seconds"])
    _, _, rows = read_table(single)
    assert merged == rows
    other = str(tmp_path / "other.tsv")
    run_into(
        ResultStore(other, COLUMNS, 3, identity=["seed=8"]), KEYS[:1], toy_task, toy_setup, (0.5,)
    )
    with pytest.raises(InputError, match="different run"):
        merge_tables(shards + [other], 3)


KILL_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from phylo.execution import ResultStore, run_into
from tests.test_execution import KEYS, COLUMNS, slow_task, slow_setup
store = ResultStore({path!r}, COLUMNS, 3, identity=["seed=7"])
run_into(store, KEYS, slow_task, slow_setup, (0.25, {sleep}), jobs={jobs})
"""


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigkill_and_rerun_gives_the_same_table(tmp_path, jobs):
    path = str(tmp_path / "r.tsv")
    script = KILL_SCRIPT.format(root=str(ROOT), path=path, sleep=0.1, jobs=jobs)
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until some rows are on disk, then kill -9
        if os.path.exists(path) and open(path).read().count("\n") >= 8:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with ResultStore(path, COLUMNS, 3, identity=["seed=7"]) as partial:
        done_before = len(partial.rows)
    assert 0 < done_before < len(KEYS)
    fast = KILL_SCRIPT.format(root=str(ROOT), path=path, sleep=0.0, jobs=1)
    subprocess.run([sys.executable, "-c", fast], check=True)
    _, _, rows = read_table(path)
    clean = str(tmp_path / "clean.tsv")
    run_into(
        ResultStore(clean, COLUMNS, 3, identity=["seed=7"]), KEYS, toy_task, toy_setup, (0.25,)
    )
    assert values(rows) == values(read_table(clean)[2])


def test_dask_local_cluster_gives_the_same_results():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        got = dict(
            run_tasks(
                KEYS,
                toy_task,
                toy_setup,
                (1.0,),
                executor="dask",
                scheduler=cluster.scheduler_address,
                token="t1",
            )
        )
    assert got == dict(run_tasks(KEYS, toy_task, toy_setup, (1.0,)))


def _comparison(seed=7, keys=KEYS):
    from phylo.execution import Comparison

    return Comparison(
        COLUMNS,
        3,
        list(keys),
        toy_task,
        toy_setup,
        (0.5,),
        [f"seed={seed}"],
        {"software": "t", "version": "0", "command": "test", "date": "today"},
    )


def test_a_second_writer_is_refused_while_the_first_holds_the_table(tmp_path):
    path = str(tmp_path / "t.tsv")
    first = ResultStore(path, COLUMNS, 3, identity=["seed=7"])
    first.append(toy_task({"offset": 0.0}, KEYS[0]))
    with pytest.raises(InputError, match="another run is writing this table"):
        ResultStore(path, COLUMNS, 3, identity=["seed=8"])
    with pytest.raises(InputError, match="another run is writing this table"):
        ResultStore(path, COLUMNS, 3, identity=["seed=7"])
    first.finish()
    # released: the same run resumes, another is refused by its identity
    with ResultStore(path, COLUMNS, 3, identity=["seed=7"]) as again:
        assert len(again.rows) == 1
    with pytest.raises(InputError, match="seed differ"):
        ResultStore(path, COLUMNS, 3, identity=["seed=8"])
    assert not any(p.name.endswith(".lock") for p in tmp_path.iterdir())


def test_concurrent_processes_on_one_table_never_mix_runs(tmp_path):
    """Two runs with other seeds started together on one new table: one is refused, and
    the table holds the other's rows only."""
    path = str(tmp_path / "t.tsv")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                KILL_SCRIPT.format(root=str(ROOT), path=path, sleep=0.02, jobs=1).replace(
                    "seed=7", f"seed={s}"
                ),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in (1, 2)
    ]
    codes = [p.wait(60) for p in procs]
    errors = [p.stderr.read() for p in procs]
    assert sorted(codes) == [0, 1]
    loser = codes.index(1)
    assert "another run is writing this table" in errors[loser]
    header, _, rows = read_table(path)
    assert f"# identity: seed={2 - loser}" in header
    assert len(rows) == len(KEYS)


def test_the_shard_is_part_of_a_runs_identity_and_merge_joins_shards(tmp_path):
    from phylo.execution import run_comparison

    one = str(tmp_path / "one.tsv")
    run_comparison(_comparison(), one, shard="1/3")
    with pytest.raises(InputError, match="shard differ"):
        run_comparison(_comparison(), one, shard="2/3")
    parts = [one]
    for i in (2, 3):
        parts.append(str(tmp_path / f"s{i}.tsv"))
        run_comparison(_comparison(), parts[-1], shard=(i, 3))
    whole = str(tmp_path / "whole.tsv")
    run_comparison(_comparison(), whole)
    header, _, merged = merge_tables(parts, 3, ignore=["seconds"])
    assert values(merged) == values(read_table(whole)[2])
    assert not any("shard" in ln for ln in header)
    header, _, partial = merge_tables(parts[:2], 3)
    assert any("shards 3/3 are missing" in ln for ln in header)
    assert len(partial) < len(KEYS)
    with pytest.raises(InputError, match="shard 1/3 is also in"):
        import shutil

        copy = str(tmp_path / "copy.tsv")
        shutil.copy(one, copy)
        merge_tables([one, copy], 3)


def test_choose_seed_resumes_the_seed_of_an_existing_table(tmp_path):
    from phylo.execution import choose_seed, run_comparison

    path = str(tmp_path / "t.tsv")
    assert choose_seed(5, path) == 5
    run_comparison(_comparison(seed=123), path)
    assert choose_seed(None, path) == 123
    assert choose_seed(9, path) == 9
    fresh = {choose_seed(None, str(tmp_path / "new.tsv")) for _ in range(3)}
    assert len(fresh) == 3


WORKER_SCRIPT = """
import os, sys, time
sys.path.insert(0, {root!r})
from phylo.execution import run_tasks
from tests.test_execution import KEYS, slow_task, slow_setup
for key, row in run_tasks(KEYS * 50, slow_task, slow_setup, (0.0, 0.5), jobs=2):
    pass
"""


def _children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is gone for our purposes
        return fh.read().split(") ")[1][0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_their_parent_is_killed(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT.format(root=str(ROOT))])
    deadline = time.time() + 60
    workers = []
    while time.time() < deadline:  # the two pool workers (and the resource tracker)
        workers = _children(proc.pid)
        if len(workers) >= 2:
            break
        time.sleep(0.1)
    assert len(workers) >= 2
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)
