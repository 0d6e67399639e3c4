"""The package's import structure: no import cycle, and ``fer_bench.runs`` a leaf that needs no torch.

A cycle between modules works only in the order that happens to be imported first, so every module
is imported first, in an interpreter whose ``fer_bench`` modules are all forgotten before each one
(third-party packages such as torch stay loaded: they cannot hide a cycle of ours).
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import fer_bench

PACKAGE = Path(fer_bench.__file__).resolve().parent


def _modules() -> list[str]:
    names = ["fer_bench"]
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="fer_bench."):
        names.append(info.name)
    return sorted(names)


_EACH_FIRST = """
import importlib, json, sys, traceback
failed = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "fer_bench" or m.startswith("fer_bench.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps(failed))
"""


def test_every_module_imports_first_in_a_fresh_package() -> None:
    names = _modules()
    assert "fer_bench.engine.run" in names and "fer_bench.runs.record" in names
    done = subprocess.run([sys.executable, "-c", _EACH_FIRST, json.dumps(names)], capture_output=True, text=True,
                          cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    failed = json.loads(done.stdout.strip().splitlines()[-1])
    assert failed == {}, "\n".join(f"{name}:\n{trace}" for name, trace in failed.items())


def test_the_runs_package_is_a_leaf_without_torch() -> None:
    runs = [n for n in _modules() if n == "fer_bench.runs" or n.startswith("fer_bench.runs.")]
    assert {"fer_bench.runs.identity", "fer_bench.runs.directory", "fer_bench.runs.record",
            "fer_bench.runs.lock"} <= set(runs)
    code = ("import importlib, json, sys\n"
            f"for name in {runs!r}: importlib.import_module(name)\n"
            "ours = sorted(m for m in sys.modules if m.startswith('fer_bench.'))\n"
            "print(json.dumps({'torch': 'torch' in sys.modules, 'ours': ours}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert not seen["torch"], "importing fer_bench.runs loaded torch"
    # a leaf: besides itself, only the torch-free thread policy that `import fer_bench` applies
    assert [m for m in seen["ours"] if not m.startswith("fer_bench.runs")] == ["fer_bench.threads"], seen["ours"]
