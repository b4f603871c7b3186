"""Fuzzing the tree readers: damaged copies of real inputs must give a clean error or a
valid result, never a traceback, a hang or a crash.

Every reader has seeds (small real inputs: MrBayes ``.t`` and ``.trprobs``, BEAST 2
``.trees``, RevBayes tree traces with sampled ancestors, Newick bootstrap trees, the tables
``phylo`` writes, one Newick string) and is fed mutants of them: truncations, byte flips,
deleted, repeated and swapped pieces, inserted tokens (parentheses, commas, quotes,
comments, ``[&W]`` weights, huge and non-finite numbers, long labels, non-UTF-8 bytes, a
byte-order mark, deep nesting).  An outcome is ``ok`` (read; for samples read with
``lengths="stream"`` the split table with lengths is computed too), ``error`` (an
:class:`~phylo.errors.InputError` naming the file, one line) or ``other`` (anything else: a
bug).

The hypothesis tests in ``test_fuzz_readers.py`` use :func:`mutate` and :func:`outcome`; the
long run is this module as a script, in worker processes (a crash or a hang is counted,
not fatal), with numba's bounds checks on::

    python -m tests.trees.fuzzing --minutes 30 --seed 1
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
TESTDATA = ROOT / "tests" / "data"


def _lines(path: Path, n: int) -> str:
    return "\n".join(path.read_text().splitlines()[:n]) + "\n"


def seeds() -> dict[str, bytes]:
    """Small real inputs, one per reader and format."""
    t = DATA / "example.run1.t"
    beast = gzip.decompress((TESTDATA / "beast2" / "small.trees.gz").read_bytes()).decode()
    beast_lines = beast.splitlines()
    beast_small = "\n".join(beast_lines[:33] + ["End;"]) + "\n"
    trprobs = _lines(DATA / "example.trprobs", 30) + "end;\n"
    newick = "".join(
        ln.split("=", 1)[1].replace("[&U]", "").strip() + "\n"
        for ln in t.read_text().splitlines()[30:36]
    )
    return {
        "nexus": (_lines(t, 33) + "end;\n").encode(),
        "trprobs": trprobs.encode(),
        "beast": beast_small.encode(),
        "revbayes": _lines(TESTDATA / "revbayes" / "bears_FBD_all.trees", 4).encode(),
        "revbayes_old": _lines(TESTDATA / "revbayes" / "bears_tefbd_2018.trees", 3).encode(),
        "newick": newick.encode(),
        "credible_set": (
            b"0.5\t((A:0.1,B:0.2):0.3,C:0.1,D:0.2);\n0.25\t((A:0.1,C:0.2):0.3,B:0.1,D:0.2);\n"
        ),
        "table": (
            b"# phylo table\nrank\tprobability\tcumulative\tlog_prob\tnewick\n"
            b"1\t0.6\t0.6\t-0.51\t((A,B),(C,D),E);\n2\t0.4\t1.0\t-0.92\t((A,C),(B,D),E);\n"
        ),
        "string": b"((Homo_sapiens:0.1,'Pan troglodytes':0.2)0.95:0.05,Gorilla:0.3,Pongo:0.4);",
    }


#: What a reader is, for each seed.
READER = {
    "nexus": "trees",
    "trprobs": "trees",
    "beast": "trees",
    "revbayes": "trees",
    "revbayes_old": "trees",
    "newick": "trees",
    "credible_set": "list",
    "table": "list",
    "string": "newick",
}

TOKENS = [
    b"(",
    b")",
    b",",
    b";",
    b":",
    b"'",
    b"''",
    b"[",
    b"]",
    b"[&R]",
    b"[&U]",
    b"[&W 0]",
    b"[&W 1/0]",
    b"[&W -1]",
    b"[&index=3]",
    b"\t",
    b"\n",
    b"\r\n",
    b" ",
    b"_",
    b"=",
    b"tree ",
    b"end;",
    b"begin trees;",
    b"translate",
    b"Iteration",
    b"#NEXUS",
    b"1e308",
    b"1e999",
    b"-0",
    b"nan",
    b"inf",
    b"0.000000",
    b"99999999999999999999999",
    b"1.2345678901234567890123e-5",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xe9",
    b"\xe2\x80\x94",
    b"\x00",
    b"x" * 5000,
    b"(" * 300,
    b")" * 300,
    b"T01",
    b"Ursus_arctos",
    b"STATE_0",
    b"gen.100",
]


def mutate(data: bytes, rng: random.Random, n: int | None = None) -> bytes:
    """``data`` damaged ``n`` times (default 1 to 4) at random."""
    b = bytearray(data)
    for _ in range(n if n is not None else rng.randint(1, 4)):
        kind = rng.randrange(8)
        pos = rng.randint(0, len(b))
        if kind == 0:  # truncate
            del b[pos:]
        elif kind == 1 and b:  # flip a byte
            b[min(pos, len(b) - 1)] = rng.randrange(256)
        elif kind == 2:  # delete a piece
            del b[pos : pos + rng.randint(1, 200)]
        elif kind == 3:  # insert a token
            b[pos:pos] = rng.choice(TOKENS)
        elif kind == 4 and b:  # repeat a piece
            a = rng.randint(0, len(b) - 1)
            b[pos:pos] = b[a : a + rng.randint(1, 300)]
        elif kind == 5 and b:  # a character replaced by one that means something
            b[min(pos, len(b) - 1)] = rng.choice(b"(),;:[]'0123456789._ \t\n")
        elif kind == 6 and len(b) > 1:  # move a piece elsewhere
            a, c = sorted(rng.sample(range(len(b) + 1), 2))
            piece = bytes(b[a:c])
            del b[a:c]
            at = rng.randint(0, len(b))
            b[at:at] = piece
        else:  # a number made huge, tiny or not finite
            b[pos:pos] = rng.choice([b"1e-400", b"1e400", b"NaN", b"-inf", b"+.5", b"5."])
    return bytes(b)


def outcome(kind: str, data: bytes, rng: random.Random, folder: str) -> tuple[str, str]:
    """Read ``data`` as the reader of seed ``kind`` does, with random options; returns
    ``("ok" | "error" | "other", detail)``."""
    from phylo.errors import InputError

    reader = READER[kind]
    path = os.path.join(folder, f"input.{kind}") if reader != "newick" else "<string>"
    if reader != "newick":
        with open(path, "wb") as fh:
            fh.write(gzip.compress(data) if rng.random() < 0.1 else data)
    try:
        if reader == "trees":
            _read_trees(path, rng)
        elif reader == "list":
            from phylo.trees.listing import read_tree_list

            read_tree_list(path, rooted=rng.random() < 0.2)
        else:
            from phylo.trees import parse_newick

            text = data.decode("utf-8", "replace")
            parse_newick(text, rooted=rng.random() < 0.3, path=path)
    except InputError as exc:
        text = str(exc)
        if "\n" in text or exc.path != path:
            return "other", f"bad message (path {exc.path!r}): {text[:300]!r}"
        if len(text) > 2000:
            return "other", f"message of {len(text)} characters"
        return "error", exc.message.split(";")[0][:80]
    except Exception:  # noqa: BLE001 - every other exception is what we hunt
        return "other", traceback.format_exc(limit=6)
    return "ok", ""


def _read_trees(path: str, rng: random.Random) -> None:
    from phylo.trees import read_trees
    from phylo.trees.splits import split_table

    lengths = rng.choice([False, True, "stream"])
    sample = read_trees(
        path,
        burnin=rng.choice([None, 0, 0.25, 1, "10%"]),
        thin=rng.choice([1, 1, 2]),
        rooted=rng.random() < 0.3,
        lengths=lengths,
        extant_only=rng.random() < 0.1,
    )
    if lengths == "stream" or (lengths is True and sample.n_topologies < 2000):
        split_table(sample, include_trivial=True, values=True)
    sample.frequencies()


# -- the long run -------------------------------------------------------------------------


def _worker(seed: int, count: int, log: str) -> None:
    """Run ``count`` inputs, one JSON line per input (a 'start' line first, so that a crash
    or hang points at its input)."""
    rng = random.Random(seed)
    base = seeds()
    kinds = sorted(base)
    with tempfile.TemporaryDirectory() as folder, open(log, "a") as out:
        for i in range(count):
            kind = rng.choice(kinds)
            data = mutate(base[kind], rng)
            out.write(json.dumps({"start": i, "kind": kind}) + "\n")
            out.flush()
            result, detail = outcome(kind, data, rng, folder)
            record = {"i": i, "kind": kind, "result": result, "detail": detail}
            if result == "other":
                record["input"] = data.decode("latin-1")
            out.write(json.dumps(record) + "\n")
            out.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=2000, help="inputs per worker process")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds an input may take")
    ap.add_argument("--log", default=None, help="JSON lines of every outcome")
    ap.add_argument("--worker", nargs=3, metavar=("SEED", "COUNT", "LOG"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(int(args.worker[0]), int(args.worker[1]), args.worker[2])
        return
    log = args.log or os.path.join(tempfile.gettempdir(), f"phylo-fuzz-{args.seed}.jsonl")
    open(log, "w").close()
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1")
    env.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "phylo-fuzz-numba"))
    tallies: dict[str, dict[str, int]] = {}
    problems: list[dict] = []
    deadline = time.monotonic() + 60 * args.minutes
    batch = 0
    while time.monotonic() < deadline:
        part = f"{log}.{batch}"
        open(part, "w").close()
        cmd = [sys.executable, "-m", "tests.trees.fuzzing", "--worker"]
        cmd += [str(args.seed * 1_000_003 + batch), str(args.batch), part]
        proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env)
        last = time.monotonic()
        seen = 0
        status = None
        while True:
            try:
                status = proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                n = sum(1 for _ in open(part))
                if n != seen:
                    seen, last = n, time.monotonic()
                elif time.monotonic() - last > args.timeout:
                    proc.kill()
                    proc.wait()
                    status = "hang"
                    break
        records = [json.loads(x) for x in open(part)]
        done = {r["i"] for r in records if "result" in r}
        for r in records:
            if "result" in r:
                t = tallies.setdefault(r["kind"], {})
                t[r["result"]] = t.get(r["result"], 0) + 1
                if r["result"] == "other":
                    problems.append(r)
        started = [r for r in records if "start" in r and r["start"] not in done]
        if started and status != 0:
            r = started[-1]
            what = "hang" if status == "hang" else f"crash (status {status})"
            t = tallies.setdefault(r["kind"], {})
            t[what.split()[0]] = t.get(what.split()[0], 0) + 1
            problems.append({"kind": r["kind"], "result": what, "batch": batch, "i": r["start"]})
        with open(log, "a") as out, open(part) as src:
            out.write(src.read())
        os.unlink(part)
        batch += 1
    total = {k: sum(v.values()) for k, v in tallies.items()}
    print(f"inputs tried: {sum(total.values())} in {batch} worker processes (seed {args.seed})")
    print(f"{'reader':<14}{'inputs':>8}{'ok':>8}{'errors':>8}{'other':>7}{'crash':>7}{'hang':>6}")
    for k in sorted(tallies):
        t = tallies[k]
        print(
            f"{k:<14}{total[k]:>8}{t.get('ok', 0):>8}{t.get('error', 0):>8}"
            f"{t.get('other', 0):>7}{t.get('crash', 0):>7}{t.get('hang', 0):>6}"
        )
    for p in problems[:20]:
        print(json.dumps(p)[:2000])
    print(f"log: {log}")


if __name__ == "__main__":
    main()
