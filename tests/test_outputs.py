"""Output files: atomic, links followed but never dangling, inputs never overwritten, a full
disk and Ctrl-C reported in one line."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time

import pytest

from phylo.errors import InputError
from phylo.outputs import OutputError, atomic_open, refuse_inputs, write_text

from .conftest import DATA, cli_command

RUN1 = str(DATA / "example.run1.t")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "model.json"
    r = subprocess.run(cli_command("sbn", "fit", RUN1, "-o", path, "-q"), capture_output=True)
    assert r.returncode == 0, r.stderr
    return str(path)


def run(*args, **kw):
    return subprocess.run(cli_command(*args), capture_output=True, text=True, **kw)


def test_a_symbolic_link_is_followed_and_stays(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    write_text(str(link), "new\n")
    assert link.is_symlink() and target.read_text() == "new\n"


def test_a_dangling_link_is_refused(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "elsewhere" / "x.txt")
    with pytest.raises(InputError, match="which does not exist"):
        write_text(str(link), "x")
    assert not (tmp_path / "elsewhere").exists()


def test_an_input_is_never_overwritten(tmp_path, model):
    r = run("sbn", "top", model, "-k", "2", "-o", model)
    assert r.returncode == 2 and "refusing to overwrite it" in r.stderr
    assert '"format": "phylo-sbn-model"' in open(model).read()
    copy = tmp_path / "run.t"
    copy.write_bytes(open(RUN1, "rb").read())
    r = run("sbn", "fit", str(copy), "-o", str(copy), "-q")
    assert r.returncode == 2 and "the output is the input" in r.stderr
    assert copy.read_bytes() == open(RUN1, "rb").read()
    with pytest.raises(InputError):
        refuse_inputs(str(copy), [str(tmp_path / "." / "run.t")])


def test_temporary_files_of_killed_runs_are_cleaned_up(tmp_path):
    out = tmp_path / "out.txt"
    host = __import__("socket").gethostname().replace(".", "_")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.txt.{host}.{dead.pid}.abcdefgh.tmp"
    live = tmp_path / f".out.txt.{host}.{os.getpid()}.abcdefgh.tmp"
    other = tmp_path / f".other.txt.{host}.{dead.pid}.abcdefgh.tmp"
    for p in (stale, live, other):
        p.write_text("half")
    write_text(str(out), "done\n")
    assert not stale.exists()  # its process is gone
    assert live.exists() and other.exists()  # a running writer's, another output's
    assert out.read_text() == "done\n"


def test_a_full_disk_is_one_line_and_the_old_file_stays(tmp_path, model):
    with open("/dev/full", "w") as full:  # standard output on a full device
        r = subprocess.run(cli_command("sbn", "summary", RUN1), stdout=full, stderr=subprocess.PIPE,
                           text=True)  # fmt: skip
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "no space left" in r.stderr and "Traceback" not in r.stderr
    out = tmp_path / "draws.nwk"
    out.write_text("old\n")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    args = cli_command("sbn", "sample", model, "-n", "100000", "--seed", "1", "-o", out)
    r = subprocess.run(args, capture_output=True, text=True, preexec_fn=limit)
    assert r.returncode == 2 and "file-size limit" in r.stderr and "Traceback" not in r.stderr
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["draws.nwk"]  # no temporary file left


def test_a_full_disk_inside_the_library_is_an_output_error(tmp_path):
    import errno

    with pytest.raises(OutputError, match="no space left"):
        with atomic_open(str(tmp_path / "x.txt")) as fh:
            fh.write("a")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def _sigint_as_at_a_terminal():
    # a job started in the background of a non-interactive shell (nohup, `&`) inherits SIGINT
    # ignored, and Python then leaves it ignored: give the child the disposition an
    # interactive shell gives a foreground command
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_exits_with_130(model):
    proc = subprocess.Popen(
        cli_command("sbn", "sample", model, "-n", "100000000", "--seed", "1", "-o", os.devnull),
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_as_at_a_terminal,
    )
    try:
        time.sleep(3.0)  # past start-up, into the drawing
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # a failed test leaves no process drawing trees
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err


def test_a_device_is_written_to_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    write_text(str(fifo), "through the pipe\n")
    assert reader.communicate(timeout=10)[0] == "through the pipe\n"
    assert fifo.is_fifo()  # still a pipe, not a regular file renamed over it
    write_text(os.devnull, "nothing\n")
    assert not os.path.isfile(os.devnull)
