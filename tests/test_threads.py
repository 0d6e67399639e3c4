"""The CPU thread policy (fer_bench/threads.py) and ``fer-bench bench --contention``."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import torch
from click.testing import CliRunner

import fer_bench.engine.run as engine
from fer_bench import threads
from fer_bench.cli import main
from fer_bench.engine.environment import environment_record
from fer_bench.sweep import local

from .conftest import tiny_spec

REPO = Path(__file__).resolve().parent.parent
CLEAN = {k: v for k, v in os.environ.items()
         if k not in (threads.ENV, threads.MARKER, *threads.USER_THREAD_VARIABLES, *threads.WAIT_VARIABLES)}


@pytest.fixture
def torch_threads() -> Iterator[None]:
    """Whatever a test does to torch's thread count is undone."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("env, mode, cap, source, set_env", [
    ({}, "auto", 4, "default", {}),
    ({"FER_BENCH_THREADS": "auto"}, "auto", 4, "default", {}),
    ({"FER_BENCH_THREADS": "auto:2"}, "auto", 2, "FER_BENCH_THREADS", {"OMP_NUM_THREADS": "2"}),
    ({"FER_BENCH_THREADS": "auto:9"}, "auto", 4, "FER_BENCH_THREADS", {"OMP_NUM_THREADS": "4"}),
    ({"FER_BENCH_THREADS": "3"}, "fixed", 3, "FER_BENCH_THREADS", {"OMP_NUM_THREADS": "3"}),
    ({"FER_BENCH_THREADS": "off"}, "off", None, "FER_BENCH_THREADS=off", {}),
    # the user's own settings win, and nothing is put into the environment
    ({"OMP_NUM_THREADS": "1"}, "fixed", 1, "OMP_NUM_THREADS", {}),
    ({"MKL_NUM_THREADS": "2", "FER_BENCH_THREADS": "auto:3"}, "fixed", 2, "MKL_NUM_THREADS", {}),
    ({"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "1000"}, "auto", 4, "default", {}),
    # a value fer-bench itself set (inherited by a child) is not the user's
    ({"FER_BENCH_THREADS": "auto:1", "OMP_NUM_THREADS": "1", threads.MARKER: "OMP_NUM_THREADS=1"},
     "auto", 1, "FER_BENCH_THREADS", {"OMP_NUM_THREADS": "1"}),
])
def test_plan(env: dict, mode: str, cap, source: str, set_env: dict) -> None:
    decided = threads.plan(env, cores=4)
    assert (decided["mode"], decided["max_threads"], decided["source"], decided["set_env"]) == \
        (mode, cap, source, set_env)


@pytest.mark.parametrize("value", ["0", "-1", "two", "auto:", "auto:0", "auto:x", "1.5"])
def test_a_malformed_setting_is_refused_by_name(value: str) -> None:
    with pytest.raises(threads.ThreadPolicyError, match=f"FER_BENCH_THREADS='{value}'"):
        threads.plan({"FER_BENCH_THREADS": value})


def test_the_cli_refuses_a_malformed_setting_with_exit_code_2(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("FER_BENCH_THREADS", "many")
    monkeypatch.setattr(threads, "_STATE", {})
    res = CliRunner().invoke(main, ["methods", "list"])
    assert res.exit_code == 2 and "FER_BENCH_THREADS='many'" in res.output


def test_apply_to_marks_its_own_variables_and_leaves_the_users() -> None:
    env = {"FER_BENCH_THREADS": "auto:1", "OMP_WAIT_POLICY": "ACTIVE"}
    state = threads.apply_to(env, torch_loaded=False)
    assert env["OMP_NUM_THREADS"] == "1" and env[threads.MARKER] == "OMP_NUM_THREADS=1"
    assert env["OMP_WAIT_POLICY"] == "ACTIVE" and state["applied_before_torch"]
    assert threads.user_value("OMP_NUM_THREADS", env) is None
    # too late for OpenMP: the environment is left alone and the record says so
    env = {"FER_BENCH_THREADS": "2"}
    assert not threads.apply_to(env, torch_loaded=True)["applied_before_torch"] and env == {"FER_BENCH_THREADS": "2"}
    # the user's count is never touched
    env = {"OMP_NUM_THREADS": "3"}
    threads.apply_to(env, torch_loaded=False)
    assert env == {"OMP_NUM_THREADS": "3"}


def test_sweep_children_adapt_within_their_share_unless_the_user_fixed_the_count() -> None:
    parent = dict(CLEAN)
    threads.apply_to(parent, torch_loaded=False)
    env = threads.child_environment(parent, 2)
    assert env["FER_BENCH_THREADS"] == "auto:2" and "OMP_NUM_THREADS" not in env
    # a parent that is itself capped hands its children their own cap, not its marked variables
    parent = dict(CLEAN, FER_BENCH_THREADS="auto:1")
    threads.apply_to(parent, torch_loaded=False)
    env = threads.child_environment(parent, 3)
    assert env["FER_BENCH_THREADS"] == "auto:3" and "OMP_NUM_THREADS" not in env and threads.MARKER not in env
    assert threads.plan(env, cores=4)["max_threads"] == 3
    # the user's own settings pass through
    for user in ({"OMP_NUM_THREADS": "2"}, {"FER_BENCH_THREADS": "2"}):
        assert threads.child_environment(dict(CLEAN, **user), 1) == dict(CLEAN, **user)
    # off: exactly the share, as before the policy existed
    env = threads.child_environment(dict(CLEAN, FER_BENCH_THREADS="off"), 1)
    assert env["OMP_NUM_THREADS"] == "1" and env["FER_BENCH_THREADS"] == "off"


class FakeLoad:
    """A clock and /proc/stat-like counters: ``advance(seconds, others, own)`` cores' worth busy."""

    def __init__(self) -> None:
        self.t = self.busy = self.own = 0.0

    def advance(self, seconds: float, others: float, own: float) -> None:
        self.t += seconds
        self.busy += (others + own) * seconds
        self.own += own * seconds


def _governor(load: FakeLoad, mode: str = "auto", max_threads: int = 2) -> threads.Governor:
    return threads.Governor(mode, max_threads, cores=2, interval=1.0, clock=lambda: load.t,
                            busy=lambda: load.busy, own=lambda: load.own)


def test_the_governor_gives_way_to_a_busy_competitor_and_takes_the_cores_back(torch_threads: None) -> None:
    torch.set_num_threads(2)
    load = FakeLoad()
    gov = _governor(load)
    assert gov.mode == "auto" and gov.threads == 2
    load.advance(0.5, others=1.0, own=1.0)
    gov.tick()  # within the interval: nothing measured yet
    assert gov.threads == 2 and torch.get_num_threads() == 2
    load.advance(0.6, others=0.7, own=1.3)
    gov.tick()
    assert gov.threads == 1 and torch.get_num_threads() == 1 and gov.others == pytest.approx(0.84, abs=0.01)
    load.advance(1.0, others=1.0, own=1.0)
    gov.tick()
    assert gov.threads == 1  # the competitor still runs: it has its core
    load.advance(1.0, others=0.1, own=1.0)  # a little background noise is no competitor
    gov.tick()
    assert gov.threads == 2 and torch.get_num_threads() == 2 and gov.changes == 2
    assert gov.take_mean() == pytest.approx((2 + 2 + 1 + 1) / 4) and gov.take_mean() == 2  # per step, as it ran


def test_the_governor_stays_out_of_a_users_choice(torch_threads: None) -> None:
    load = FakeLoad()
    torch.set_num_threads(2)
    for mode, cap in (("fixed", 2), ("off", None)):
        gov = _governor(load, mode, cap)
        load.advance(2.0, others=2.0, own=0.0)
        gov.tick()
        assert gov.threads == 2 and torch.get_num_threads() == 2 and gov.mode == mode
    # torch.set_num_threads(k) before the run, k neither the policy's cap nor torch's default
    torch.set_num_threads(7)
    gov = _governor(load)
    assert gov.mode == "fixed" and gov.stopped == "torch.set_num_threads"
    load.advance(2.0, others=2.0, own=0.0)
    gov.tick()
    assert torch.get_num_threads() == 7
    # ... or during it: the governor stops adapting
    torch.set_num_threads(2)
    gov = _governor(load)
    torch.set_num_threads(1)
    load.advance(2.0, others=0.0, own=1.0)
    gov.tick()
    assert gov.mode == "fixed" and torch.get_num_threads() == 1


def test_busy_seconds_reads_this_machines_counters() -> None:
    if not Path("/proc/stat").exists():
        pytest.skip("no /proc/stat")
    first = threads.busy_seconds()
    sum(i * i for i in range(200_000))
    assert first is not None and threads.busy_seconds() >= first > 0
    assert threads.busy_seconds(set()) == 0


def _fresh(code: str, **env: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], env=dict(CLEAN, PYTHONPATH=str(REPO), **env),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_policy_is_in_the_environment_before_torch_loads() -> None:
    # importing fer_bench loads no torch, and whatever imports torch through fer_bench gets the policy
    assert _fresh("import sys, os, fer_bench; print('torch' in sys.modules, os.environ['OMP_NUM_THREADS'])",
                  FER_BENCH_THREADS="auto:1") == "False 1"
    code = ("import fer_bench.engine.run, torch; from fer_bench import threads; r = threads.record(); "
            "print(torch.get_num_threads(), r['mode'], r['applied_before_torch'], r['set_by_fer_bench'])")
    assert _fresh(code, FER_BENCH_THREADS="1") == "1 fixed True {'OMP_NUM_THREADS': '1'}"
    # torch first (Python API): the governor applies the count through torch, and says it came late
    code = ("import torch; import fer_bench.engine.run; from fer_bench import threads; "
            "r = threads.record(); print(torch.get_num_threads(), r['mode'], r['applied_before_torch'])")
    assert _fresh(code, FER_BENCH_THREADS="auto:1") == "1 auto False"
    # the user's own settings reach OpenMP untouched
    code = "import os, fer_bench; print(os.environ['OMP_NUM_THREADS'], os.environ['GOMP_SPINCOUNT'])"
    assert _fresh(code, OMP_NUM_THREADS="2", GOMP_SPINCOUNT="77", FER_BENCH_THREADS="auto:1") == "2 77"


def test_a_run_records_the_policy_in_env_json_and_its_threads_per_epoch(tiny_synth: Path, tmp_path: Path) -> None:
    res = engine.main(tiny_spec(tiny_synth, tmp_path))
    run_dir = Path(res["run_dir"])
    policy = json.loads((run_dir / "env.json").read_text())["thread_policy"]
    assert policy == environment_record(torch.device("cpu"))["thread_policy"] | {
        "torch_threads": policy["torch_threads"], "changes": policy["changes"]}
    assert policy["mode"] in ("auto", "fixed", "off") and policy["usable_cores"] >= 1
    assert set(policy["environment"]) == {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert all(1 <= float(r["torch_threads"]) <= torch.get_num_threads() for r in rows)


def test_bench_contention_measures_idle_and_contended_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "contention.json"
    res = CliRunner().invoke(main, [
        "bench", "--contention", "1", "--competitor", "torch", "--methods", "baseline", "--profile", "cpu",
        "--n-train", "32", "--size", "32", "--batch", "16", "--steps", "2", "--warmup", "1", "--device", "cpu",
        "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    record = json.loads(out.read_text())
    assert [(r["round"], r["method"], r["competitors"]) for r in record["rows"]] == [(0, "baseline", 0),
                                                                                    (0, "baseline", 1)]
    assert all(r["images_per_s"] > 0 and r["torch_threads"] >= 1 for r in record["rows"])
    summary = record["summary"]["baseline"]
    assert summary["ratio"] == pytest.approx(summary["contended_images_per_s"] / summary["idle_images_per_s"])
    assert record["thread_policy"]["openmp_runtime"] and record["settings"]["competitor"] == "torch"
    assert "with 1 busy competitor" in res.output and "thread policy:" in res.output


def test_bench_contention_refuses_bad_options(tmp_path: Path) -> None:
    base = ["bench", "--device", "cpu", "--methods", "baseline", "--out", str(tmp_path / "x.json")]
    for extra, says in ((["--contention", "0"], "--contention"), (["--contention", "1", "--repeat", "0"], "--repeat"),
                        (["--contention", "1", "--pipeline-only"], "--pipeline-only")):
        res = CliRunner().invoke(main, base + extra)
        assert res.exit_code == 2 and says in res.output, res.output
    assert not (tmp_path / "x.json").exists()


def test_the_recorded_count_follows_torch_when_the_policy_does_not_adapt() -> None:
    # A governor made while torch had one thread must not keep reporting one after the count
    # was changed (the contract test trains on two threads in a process that began with one).
    import torch

    from fer_bench.threads import Governor

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        gov = Governor("off", None)
        torch.set_num_threads(2)
        gov.tick()
        assert gov.take_mean() == 2.0
    finally:
        torch.set_num_threads(before)
