"""One run on several processes (torchrun, gloo on the CPU): every method completes, the ranks agree,
a killed rank resumes exactly, and one process under torchrun is a plain run."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

import fer_bench.engine.run as engine
from fer_bench.cli import main as cli
from fer_bench.engine.launch import torchrun_command, without_nproc
from fer_bench.engine.spec import RunSpec, resolve
from fer_bench.registry import list_methods

from .conftest import tiny_spec, torch_threads

# Trains the given runs in turn on every rank. Each rank dumps its per-sample memories after every epoch; with KILL=epoch,step the rank KILL_RANK
# SIGKILLs itself just before that training step (0-based), so the kill lands at the same place.
_DRIVER = """
import json, os, signal, sys
import torch
import fer_bench.engine.run as engine
specs = [engine.RunSpec(**s) for s in json.loads(sys.argv[1])]
dump, rank = sys.argv[2], int(os.environ["RANK"])
kill = [int(x) for x in os.environ.get("KILL", "").split(",") if x]
real_epoch = engine.train_one_epoch
def train_one_epoch(method, *args, **kwargs):
    epoch = args[4]
    if kill and epoch == kill[0] and rank == int(os.environ.get("KILL_RANK", "1")):
        real_step, calls = method.training_step, []
        def training_step(batch):
            calls.append(1)
            if len(calls) > kill[1]:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_step(batch)
        method.training_step = training_step
    row = real_epoch(method, *args, **kwargs)
    name = f"{current[0]}-rank{rank}-epoch{epoch}.pt"
    torch.save([t.cpu() for t in method.shared_rows()], os.path.join(dump, name))
    return row
engine.train_one_epoch = train_one_epoch
current = [None]
for spec in specs:  # one launch for several runs: starting processes is what costs here
    current[0] = spec.method
    engine.main(spec)
"""

# Per-sample memories change from the first epoch on: SCN and RUL relabel, LA-Net's memory moves.
OVERRIDES = {"scn": {"relabel_epoch": 1}, "rul": {"relabel": True, "relabel_epoch": 1}}
TIMING = {"train_seconds", "images_per_s", "torch_threads"}
# Every method registered when the tests are collected: a plugin another test registers later in this
# process does not exist in the launched ones.
METHODS = list_methods()


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


def torchrun(specs: list[RunSpec], nproc: int, dump: Path, **env: str) -> subprocess.CompletedProcess:
    dump.mkdir(parents=True, exist_ok=True)
    driver = dump / "driver.py"
    driver.write_text(_DRIVER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           str(driver), json.dumps([asdict(s) for s in specs]), str(dump)]
    return subprocess.run(cmd, env=_env(**env), capture_output=True, text=True, timeout=300)


def metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def spec_for(method: str, root: Path, out: Path, processes: int = 1) -> RunSpec:
    """The spec as launched; ``processes`` names the run directory the ranks write (the engine sets it)."""
    return tiny_spec(root, out, method=method, noise="sym", rate=0.3, overrides=OVERRIDES.get(method, {}),
                     processes=processes)


@pytest.fixture(scope="module")
def two_process_runs(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every registered method trained once by 2 processes (one launch); the runs root and the ranks' dumps."""
    base = tmp_path_factory.mktemp("ddp")
    done = torchrun([spec_for(m, tiny_synth, base / "runs") for m in METHODS], 2, base / "dump")
    assert done.returncode == 0, done.stderr[-3000:]
    return base


@pytest.mark.parametrize("method", METHODS)
def test_two_processes_train_one_run_and_agree(method: str, two_process_runs: Path, tiny_synth: Path,
                                               tmp_path: Path) -> None:
    spec = spec_for(method, tiny_synth, two_process_runs / "runs")
    run_dir = resolve(replace(spec, processes=2)).run_dir
    method_dirs = [p for p in run_dir.parents[1].iterdir() if p.name.startswith(method)]
    assert len(method_dirs) == 1 and [p.name for p in method_dirs[0].iterdir()] == ["seed0"]
    # two processes give other numbers than one: the run is named apart, never pooled with one-process seeds
    assert run_dir.parent.name.endswith("+processes=2")
    assert json.loads((run_dir / "config.json").read_text())["processes"] == 2
    result = json.loads((run_dir / "result.json").read_text())
    assert not list(run_dir.glob("*.tmp*"))
    env = json.loads((run_dir / "env.json").read_text())
    assert env["distributed"] == {"world_size": 2, "backend": "gloo", "sync_bn": False}
    single = engine.main(replace(spec, out=str(tmp_path)))
    assert set(result) == set(single)
    assert result["epochs"] == 2 and len(metrics(run_dir)) == 2
    # the per-sample memories are the same on both ranks after every epoch
    for epoch in range(2):
        rows = [torch.load(two_process_runs / "dump" / f"{method}-rank{r}-epoch{epoch}.pt") for r in range(2)]
        assert len(rows[0]) == len(rows[1]) >= 1
        for a, b in zip(*rows):
            assert torch.equal(a, b)
    if method == "lanet":  # its memory has left the one-hot labels, so the agreement says something
        memory = next(t for t in rows[0] if t.dim() == 2)  # (N, C): the one 2-D shared row
        assert (memory.max(1).values < 1).any()


def test_killed_rank_resumes_to_the_uninterrupted_numbers(two_process_runs: Path, tiny_synth: Path,
                                                          tmp_path: Path) -> None:
    spec = spec_for("scn", tiny_synth, tmp_path / "runs")
    killed = torchrun([spec], 2, tmp_path / "dump", KILL="1,1", KILL_RANK="1")
    assert killed.returncode != 0
    run_dir = resolve(replace(spec, processes=2)).run_dir
    assert (run_dir / "checkpoint.pt").is_file() and not (run_dir / "result.json").exists()
    resumed = torchrun([spec], 2, tmp_path / "dump")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from epoch 1" in resumed.stderr
    whole = resolve(spec_for("scn", tiny_synth, two_process_runs / "runs", processes=2)).run_dir
    assert metrics(run_dir) == metrics(whole)


def test_one_process_under_torchrun_is_a_plain_run(tiny_synth: Path, tmp_path: Path) -> None:
    args = ["run", "--method", "scn", "--root", str(tiny_synth), "--noise", "sym", "--rate", "0.3", "--quiet",
            "--set", "epochs=2", "--set", "image_size=32", "--set", "batch_size=32", "--set", "relabel_epoch=1"]
    launched = subprocess.run([sys.executable, "-m", "fer_bench", *args, "--out", str(tmp_path / "one"),
                               "--nproc", "1"], env=_env(), capture_output=True, text=True)
    assert launched.returncode == 0, launched.stderr[-2000:]
    with torch_threads(1):  # as the launched process runs (OMP_NUM_THREADS=1)
        plain = engine.main(spec_for("scn", tiny_synth, tmp_path / "plain"))
    one = next((tmp_path / "one").rglob("metrics.csv")).parent
    assert metrics(Path(plain["run_dir"])) == metrics(one)


def test_batch_that_does_not_divide_is_refused(tiny_synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    res = CliRunner().invoke(cli, ["run", "--root", str(tiny_synth), "--set", "batch_size=30", "--nproc", "4",
                                   "--out", str(out)])
    assert res.exit_code == 2
    assert "batch_size 30 does not divide among 4 processes" in res.output
    assert not out.exists()


def test_torchrun_command_keeps_the_arguments() -> None:
    argv = ["run", "--method", "lanet", "--nproc", "2", "--set", "epochs=1", "--nproc=3"]
    assert without_nproc(argv) == ["run", "--method", "lanet", "--set", "epochs=1"]
    cmd = torchrun_command(2, argv)
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    assert cmd[5:] == ["-m", "fer_bench", "run", "--method", "lanet", "--set", "epochs=1"]



def test_sweep_gives_each_run_several_processes(tiny_synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    args = ["sweep", "--methods", "baseline", "--rates", "0.2", "--seeds", "0", "--root", str(tiny_synth),
            "--out", str(out), "--nproc", "2", "--quiet", "--set", "epochs=1", "--set", "image_size=32",
            "--set", "batch_size=32"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "1 runs: 1 trained now" in res.output
    run_dir = next(out.rglob("result.json")).parent
    assert json.loads((run_dir / "env.json").read_text())["distributed"]["world_size"] == 2
    assert "2 processes" in (run_dir / "log.txt").read_text()
    assert run_dir.parent.name == "baseline+batch_size=32+epochs=1+image_size=32+processes=2"
    again = CliRunner().invoke(cli, [*args, "--dry-run"])  # the sweep looks for it where the ranks wrote it
    assert again.exit_code == 0 and "1 runs, 1 finished" in again.output, again.output
    bad = CliRunner().invoke(cli, [*args, "--nproc", "3"])
    assert bad.exit_code == 2 and "does not divide among 3 processes" in bad.output


def test_sweep_slots_and_commands_for_several_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    from fer_bench.sweep import local

    assert local.child_command("{}", 1)[1:] == ["-m", "fer_bench.sweep.worker", "{}"]
    assert local.child_command("{}", 2)[1:6] == ["-m", "torch.distributed.run", "--standalone",
                                                  "--nproc-per-node=2", "-m"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 5)
    assert local.slots("auto", None, 1, nproc=2) == ["0,1", "2,3"]
    assert local.slots("auto", None, 2, nproc=4) == ["0,1,2,3", "0,1,2,3"]
    with pytest.raises(ValueError, match="--nproc 8"):
        local.slots("auto", None, 1, nproc=8)


def test_slurm_sweep_asks_for_a_task_and_gpu_per_process(tiny_synth: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    submitit = pytest.importorskip("submitit")
    from fer_bench.sweep import slurm

    seen: dict[str, Any] = {}

    class FakeExecutor:
        def __init__(self, folder: Any, cluster: Any = None) -> None:
            seen["cluster"] = cluster

        def update_parameters(self, **params: Any) -> None:
            seen["params"] = params

        def map_array(self, task: Any, args: list[str]) -> list[Any]:
            seen["task"], seen["args"] = task, args
            return []

    monkeypatch.setattr(submitit, "AutoExecutor", FakeExecutor)
    spec = spec_for("baseline", tiny_synth, tmp_path / "runs")
    slurm.submit([spec], {"slurm_partition": "gpu"}, nproc=4)
    assert seen["params"]["tasks_per_node"] == 4 and seen["params"]["gpus_per_node"] == 4
    assert seen["params"]["slurm_partition"] == "gpu" and seen["task"].nproc == 4
    slurm.submit([spec], {"gpus_per_node": 8}, nproc=4)  # a --slurm key still wins
    assert seen["params"]["gpus_per_node"] == 8
    slurm.submit([spec], {})
    assert "tasks_per_node" not in seen["params"] and seen["task"].nproc == 1
    # each task of a multi-process job becomes a rank: submitit's Slurm variables to torch.distributed's
    exported: list[bool] = []
    class FakeEnvironment:
        def export(self, set_cuda_visible_devices: bool = True) -> None:
            exported.append(set_cuda_visible_devices)

    monkeypatch.setattr(submitit.helpers, "TorchDistributedEnvironment", FakeEnvironment)
    monkeypatch.setattr(slurm, "execute", lambda spec: 0)
    assert slurm.RunTask(nproc=2)(seen["args"][0]).status == "done" and exported == [False]


# LA-Net's one-device emulation of the published 2-GPU launch (shards=2) against two real ranks on the same
# batches. Batch norm runs on its running statistics in both (eval mode): the emulation normalises over the
# whole batch, as SyncBatchNorm does across GPUs, and torch's SyncBatchNorm is GPU-only, so on the CPU the
# comparison is of LA-Net's batch-level logic (LDE, positives, keys, queue, memory) and DDP's gradients.
_LANET_RANKS = """
import json, sys
import torch
from fer_bench.engine import distributed
from fer_bench.engine.loop import TrainingStep
from fer_bench.methods.base import Batch
from tests.test_lanet import make_batch, make_method

world = distributed.init("cpu")
def build(world):
    method = make_method()
    method.ctx.recipe["batch_size"] = 16
    method.ctx.world = world
    return method
one = build(distributed.SINGLE)
one.hp.shards = 2
ranks = build(world)
one.model.eval(), ranks.model.eval()
step = distributed.wrap(TrainingStep(ranks), world)
optimisers = [torch.optim.SGD(m.model.parameters(), lr=1e-3) for m in (one, ranks)]
losses = {"one": [], "ranks": []}
for seed in range(3):
    batch = make_batch(one, b=16, seed=seed)
    mine = slice(world.rank, None, world.size)  # the official sampler's indices[rank::world]
    shard = Batch(**{k: v[mine] if isinstance(v, torch.Tensor) and v.dim() else v for k, v in vars(batch).items()})
    for method, b, opt, key in ((one, batch, optimisers[0], "one"), (ranks, shard, optimisers[1], "ranks")):
        out = step(b)[1] if method is ranks else method.training_step(b)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        if method is ranks:
            distributed.sync_rows(world, ranks.shared_rows(), b.indices)
            losses[key].append(float(distributed.sum_over_ranks(world, out.loss.detach())[0]) / world.size)
        else:
            losses[key].append(float(out.loss))
memory = (one.memory.table - ranks.memory.table).abs().max().item()
params = max((a - b).abs().max().item() for a, b in zip(one.model.parameters(), ranks.model.parameters()))
if world.rank == 0:
    json.dump({**losses, "memory": memory, "params": params}, open(sys.argv[1], "w"))
# The DDP wrapper holds the process group: left to the interpreter's teardown, it takes gloo's worker
# threads down there, and that can abort the process (SIGABRT) after all the work is done.
del step
distributed.barrier(world)
distributed.shutdown()
"""


def test_lanet_two_ranks_match_the_two_shard_emulation(tmp_path: Path) -> None:
    driver, out = tmp_path / "lanet_ranks.py", tmp_path / "out.json"
    driver.write_text(_LANET_RANKS)
    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(driver), str(out)], env=_env(PYTHONPATH=root), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    res = json.loads(out.read_text())
    print(res)
    assert len(res["one"]) == 3
    # float32 sums in another order (the gathered batch is rank-major, the shards interleaved)
    assert res["ranks"] == pytest.approx(res["one"], rel=1e-5, abs=1e-6)
    assert res["memory"] < 1e-6 and res["params"] < 1e-5


def test_a_locked_run_stops_every_rank(tiny_synth: Path, tmp_path: Path) -> None:
    from fer_bench.runs import run_lock

    spec = spec_for("baseline", tiny_synth, tmp_path / "runs", processes=2)
    with run_lock(resolve(spec).run_dir):  # another process is training it
        busy = torchrun([spec], 2, tmp_path / "dump")
    assert busy.returncode != 0
    assert busy.stderr.count("is being run by another process") >= 2  # raised on both ranks, none waits
    assert not (resolve(spec).run_dir / "config.json").exists()
