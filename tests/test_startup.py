"""What the command line answers without importing torch: help, listings of registered names,
and values refused before any work (benchmarks/startup.py times them)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fer_bench.registry import DATASETS, METHODS, NOISE_MODELS, Registry

PROBE = ("import sys\nfrom fer_bench.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
         "    print('exit', e.code)\nprint('torch' in sys.modules or 'pandas' in sys.modules)")


@pytest.mark.parametrize("registry", [METHODS, NOISE_MODELS, DATASETS], ids=lambda r: r.kind)
def test_built_ins_read_from_source_list_as_imported(registry: Registry) -> None:
    fresh = Registry(registry.kind, "fer_bench.no_such_entry_point_group", registry._builtins)
    static = fresh.listing()
    assert not fresh._discovered  # nothing was imported to list them
    # (other tests may have loaded plugins into the registry)
    assert static == [(e.name, e.description, e.source) for e in registry.entries() if e.source == "built-in"]


@pytest.mark.parametrize("args, expected", [
    (["methods", "list"], "lanet "),
    (["run", "--noise", "sym", "--rate", "1.0"], "noise rate 1.0 is outside [0, 1)"),
    (["run", "--seed", "-1"], "--seed -1: seeds are integers from 0"),
    (["--help"], "Usage:"),
])
def test_answered_without_importing_torch_or_pandas(args: list[str], expected: str) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True)
    assert expected in done.stdout + done.stderr, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False", done.stdout
