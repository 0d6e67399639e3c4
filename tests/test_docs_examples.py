"""Every shell and Python example of README.md and of the documentation site (docs/) runs.

One test per page. Its fenced blocks run in order, in one sandbox directory of their own (the page's
working directory), so a later block sees what an earlier one made. How a block is treated:

* **A file.** A block whose first line is ``# NAME.EXT`` (``# my_method.py``, ``# run.yaml``) is
  written into the sandbox as NAME.EXT, without that line, and not run.
* **```python**: executed in this process, in the sandbox, with the sandbox on ``sys.path``.
* **```bash**: each command in order (``\\``-continued lines joined, ``#`` comments dropped):

  - ``fer-bench ...`` and ``python -m fer_bench ...`` are **executed** in this process through click,
    with the tiny settings below. A ``sweep`` gets ``--dry-run`` (its runs would train in child
    processes, beyond the tiny settings' reach; the dry run still resolves and checks every run). A
    command followed by ``|| ...`` must fail (exit status not 0); what follows ``||`` or ``|`` is not
    run; ``VAR=value`` prefixes are applied.
  - ``pip install -e ".[a,b]"`` is **checked**: the extras exist in pyproject.toml.
  - ``pytest`` is checked to be the test command CI runs (``.ci/run``); ``mkdocs build --strict`` is
    what ``tests/test_docs_site.py`` runs.
  - ``torchrun ... -m fer_bench ARGS``: ARGS are checked as in check mode (below).
  - anything else (``ls``, ``printf``, ``echo``) runs in bash, in the sandbox.

* A block after ``<!-- example: check: REASON -->`` is **only checked**, never run: every
  ``fer-bench`` command in it is parsed by click (the command and every option must exist, each value of
  the option's type, every named method, dataset and noise model registered), and ``bash SCRIPT`` must
  name a script of the repository. REASON says why it cannot run here: a real dataset, a GPU, a
  cluster, or minutes to hours of training.
* Any other block (``text``, ``toml``, ``yaml`` without a file line) is output or data.

The tiny settings, so the executed examples take seconds: the data root holds a tiny synthfer (96
training and 40 test images at 32 px); the ``cpu``, ``cpu-face`` and ``cpu-face-56`` profiles train 2 epochs at 32 px,
batch 32 (patched in this process, so run directories keep the names the documentation shows);
``results/runs`` starts with a few tiny finished runs, so report commands have runs to read; and
``results/synthfer`` is a copy of the committed benchmark records, which the tutorial's tables and
figures read.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import click
import pytest
from click.testing import CliRunner

from .conftest import TINY_RECIPE

REPO = Path(__file__).resolve().parent.parent
PAGES = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").rglob("*.md")
                              if "_generated" not in p.parts)]
EXAMPLE_LANGS = ("bash", "sh", "shell", "python")
CHECK = re.compile(r"<!--\s*example:\s*check:\s*(?P<reason>.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
FILE_LINE = re.compile(r"^#\s+(?P<name>[\w.-]+\.\w+)\s*$")
TINY_PROFILE = {"epochs": 2, "image_size": TINY_RECIPE["image_size"], "batch_size": TINY_RECIPE["batch_size"]}
# The tiny finished runs every sandbox starts with: (method, noise, rate, seed).
SEEDED_RUNS = [("baseline", "sym", 0.3, 0), ("baseline", "sym", 0.3, 1), ("lanet", "sym", 0.3, 0)]


@dataclass
class Block:
    page: str
    line: int
    lang: str
    body: str
    check_only: Optional[str] = None  # the reason, for a block that is only checked

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: str) -> list[Block]:
    """The fenced blocks of a page, each with whether a ``<!-- example: check -->`` comment precedes it."""
    text = (REPO / page).read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip().splitlines()
        reason = CHECK.fullmatch(before[-1].strip()) if before else None
        body = "\n".join(line[len(match.group("indent")):] for line in match.group("body").splitlines())
        found.append(Block(page, text.count("\n", 0, match.start()) + 1, match.group("lang"), body,
                           reason.group("reason") if reason else None))
    return found


def commands(body: str) -> Iterator[str]:
    """The logical lines of a shell block: continuations joined, blank and comment lines dropped."""
    for line in body.replace("\\\n", " ").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            yield line.strip()


@dataclass
class Segment:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    before: str = ""  # the operator that joins it to the previous segment: "", "&&", "||", "|", ";"
    after: str = ""


def segments(line: str) -> list[Segment]:
    """A command line cut at ``&&``, ``||``, ``|`` and ``;``, each part with its ``VAR=value`` prefixes."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    out: list[Segment] = [Segment([])]
    for token in lexer:
        if token in ("&&", "||", "|", ";"):
            out[-1].after = token
            out.append(Segment([], before=token))
        elif not out[-1].argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", token):
            key, value = token.split("=", 1)
            out[-1].env[key] = value
        else:
            out[-1].argv.append(token)
    return [s for s in out if s.argv]


def fer_bench_args(argv: list[str]) -> Optional[list[str]]:
    """The fer-bench arguments of a command line that runs fer-bench, else None."""
    if argv[0] == "fer-bench":
        return argv[1:]
    if argv[:3] in (["python", "-m", "fer_bench"], ["python3", "-m", "fer_bench"]):
        return argv[3:]
    if argv[0] == "torchrun" and "-m" in argv:
        at = argv.index("-m")
        return argv[at + 2:] if argv[at + 1] == "fer_bench" else None
    return None


def check_command(args: list[str], where: str) -> None:
    """Parse a fer-bench command line as click would run it, without running it: the command and every
    option must exist, and each value be of the option's type; named methods, datasets and noise models
    must be registered."""
    from fer_bench.cli import main
    from fer_bench.registry import DATASETS, METHODS, NOISE_MODELS

    command: click.Command = main
    ctx = main.make_context("fer-bench", list(args))
    while isinstance(command, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        assert rest, f"{where}: fer-bench {shlex.join(args)} names no command"
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None, f"{where}: fer-bench has no command {name!r}"
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    registries = {"method": METHODS, "methods": METHODS, "dataset": DATASETS, "datasets": DATASETS,
                  "noise": NOISE_MODELS, "noises": NOISE_MODELS}
    given = {p.name: p for p in command.params
             if ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE}
    for param, value in ctx.params.items():
        if param in registries and param in given and value and not isinstance(given[param].type, click.Choice):
            for name in (value,) if isinstance(value, str) else value:
                registries[param].get(name)  # an unknown name raises, naming the known ones


@pytest.fixture(scope="session")
def seeded_runs(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs root with the tiny finished runs every sandbox starts with (trained under the tiny profiles)."""
    from fer_bench.engine.recipe import PROFILES
    from fer_bench.engine.run import RunSpec, main

    out = tmp_path_factory.mktemp("docs-seeded") / "runs"
    with pytest.MonkeyPatch.context() as patch:
        for profile in ("cpu", "cpu-face", "cpu-face-56"):
            for key, value in TINY_PROFILE.items():
                patch.setitem(PROFILES[profile], key, value)
        for method, noise, rate, seed in SEEDED_RUNS:
            main(RunSpec(method=method, noise=noise, rate=rate, seed=seed, root=str(tiny_synth), out=str(out),
                         progress=False))
    return out


class Sandbox:
    """A page's working directory and what runs in it."""

    def __init__(self, page: str, root: Path, tiny_synth: Path, seeded_runs: Path) -> None:
        self.page, self.root = page, root
        (root / "data").mkdir(parents=True)
        shutil.copytree(tiny_synth, root / "data" / "synthfer")
        shutil.copytree(seeded_runs, root / "results" / "runs")
        if "results/synthfer" in (REPO / page).read_text():
            # What a clone has: a developer's checkpoints and locks are never committed, and are ~1 GB.
            shutil.copytree(REPO / "results" / "synthfer", root / "results" / "synthfer",
                            ignore=shutil.ignore_patterns("*.pdf", "checkpoint.pt", ".lock"))
        self.env = {"FER_BENCH_DATA": str(root / "data"), "FER_BENCH_RESULTS": "results",
                    "FER_BENCH_THREADS": "off", "MPLBACKEND": "Agg", "WANDB_MODE": "offline"}
        self.log: list[str] = []

    # --- running ---------------------------------------------------------------------------------------

    def fer_bench(self, args: list[str], env: dict[str, str], must_fail: bool, where: str) -> None:
        from fer_bench.cli import main

        if args[:1] == ["sweep"] and "--dry-run" not in args:
            args = [*args, "--dry-run"]
        self.fresh_process()
        started = time.perf_counter()
        result = CliRunner().invoke(main, args, env=env or None, catch_exceptions=True)
        self.log.append(f"$ fer-bench {shlex.join(args)}  ({time.perf_counter() - started:.1f} s)\n{result.output}")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"{where}: fer-bench {shlex.join(args)} raised\n{result.output}") from result.exception
        if must_fail:
            assert result.exit_code != 0, f"{where}: fer-bench {shlex.join(args)} should fail\n{result.output}"
        else:
            assert result.exit_code == 0, f"{where}: fer-bench {shlex.join(args)} exited {result.exit_code}\n{result.output}"

    def fresh_process(self) -> None:
        """What a new ``fer-bench`` process starts without: the plugins that earlier commands of the page
        registered, and their modules (each documented command runs in a process of its own)."""
        from fer_bench.registry import DATASETS, METHODS, NOISE_MODELS

        for registry in (METHODS, DATASETS, NOISE_MODELS):
            registry._entries = {k: e for k, e in registry._entries.items() if e.source == "built-in"}
        for name, module in list(sys.modules.items()):
            if Path(getattr(module, "__file__", None) or "/").parent == self.root:
                del sys.modules[name]

    def shell(self, line: str, must_fail: bool, where: str) -> None:
        done = subprocess.run(["bash", "-c", line], cwd=self.root, env={**os.environ, **self.env},
                              capture_output=True, text=True, timeout=120)
        self.log.append(f"$ {line}\n{done.stdout}{done.stderr}")
        if not must_fail:
            assert done.returncode == 0, f"{where}: `{line}` exited {done.returncode}\n{done.stdout}{done.stderr}"

    def python(self, block: Block) -> None:
        code = compile(block.body, block.where, "exec")
        exec(code, {"__name__": "__main__"})  # noqa: S102 (the documented example itself)

    # --- the checks that replace running -----------------------------------------------------------------

    @staticmethod
    def pip(argv: list[str], where: str) -> None:
        extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        for target in argv[2:]:
            match = re.fullmatch(r"(?:-e)?(?:\.|fer-bench)\[(?P<extras>[\w,-]+)\]", target)
            if match:
                missing = set(match.group("extras").split(",")) - set(extras)
                assert not missing, f"{where}: pip install names extras that pyproject.toml lacks: {missing}"

    @staticmethod
    def pytest_command(argv: list[str], where: str) -> None:
        ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
              if line.strip() and not line.lstrip().startswith("#")]
        assert shlex.join(argv) == ci[-1], f"{where}: the test command `{shlex.join(argv)}` is not CI's `{ci[-1]}`"

    @staticmethod
    def special(argv: list[str]) -> bool:
        return (fer_bench_args(argv) is not None or argv[0] in ("pip", "pytest", "mkdocs", "torchrun")
                or (argv[0] == "bash" and len(argv) > 1 and argv[1].endswith(".sh")))

    def run_segment(self, part: Segment, block: Block, where: str) -> None:
        argv, must_fail = part.argv, part.after == "||"
        args = fer_bench_args(argv)
        if argv[0] == "torchrun" or (args is not None and block.check_only):
            assert args is not None, f"{where}: torchrun does not run fer_bench"
            check_command(args, where)
        elif args is not None:
            self.fer_bench(args, part.env, must_fail, where)
        elif argv[0] == "pip":
            self.pip(argv, where)
        elif argv[0] == "pytest":
            self.pytest_command(argv, where)
        elif argv[0] == "mkdocs":
            assert argv[1:2] in (["build"], ["serve"]), f"{where}: not a mkdocs command the site uses"
        elif argv[0] == "bash":
            assert (REPO / argv[1]).is_file(), f"{where}: no script {argv[1]}"
            if not block.check_only:
                self.shell(" ".join([*(f"{k}={v}" for k, v in part.env.items()), shlex.join(argv)]), must_fail, where)
        elif not block.check_only:
            self.shell(shlex.join(argv), must_fail, where)

    # --- a block ----------------------------------------------------------------------------------------

    def run_block(self, block: Block) -> str:
        lines = block.body.splitlines()
        named = FILE_LINE.match(lines[0]) if lines else None
        if named:
            (self.root / named.group("name")).write_text("\n".join(lines[1:]) + "\n")
            return "file"
        if block.lang == "python":
            if block.check_only:
                compile(block.body, block.where, "exec")
                return "checked"
            self.python(block)
            return "ran"
        if block.lang not in ("bash", "sh", "shell"):
            return "output"
        for line in commands(block.body):
            where = f"{block.where}: {line}"
            parts = segments(line)
            if not any(self.special(p.argv) for p in parts):
                if not block.check_only:
                    self.shell(line, False, where)  # a plain shell line, run as written
                continue
            for part in parts:
                if part.before in ("||", "|"):
                    continue  # what runs after a failure or reads a pipe is not the example's point
                self.run_segment(part, block, where)
        return "checked" if block.check_only else "ran"


@pytest.fixture
def registries_restored() -> Iterator[None]:
    """A page's plugins register into the global registries: start each page without other tests'
    plugins, and restore the registries and modules afterwards."""
    from fer_bench.registry import DATASETS, METHODS, NOISE_MODELS

    for registry in (METHODS, DATASETS, NOISE_MODELS):
        registry.names()  # discover the built-ins first
    saved = {id(r): dict(r._entries) for r in (METHODS, DATASETS, NOISE_MODELS)}
    modules = set(sys.modules)
    for registry in (METHODS, DATASETS, NOISE_MODELS):
        registry._entries = {k: e for k, e in registry._entries.items() if e.source == "built-in"}
    try:
        yield
    finally:
        for registry in (METHODS, DATASETS, NOISE_MODELS):
            registry._entries = saved[id(registry)]
        for name in set(sys.modules) - modules:
            if Path(getattr(sys.modules[name], "__file__", None) or "/").parent.name == "sandbox":
                sys.modules.pop(name, None)  # a page's plugin module, from its sandbox


def _pages_with_examples() -> list[str]:
    return [page for page in PAGES if any(b.lang in EXAMPLE_LANGS for b in blocks(page))]


@pytest.mark.parametrize("page", _pages_with_examples())
def test_every_example_of_the_page_runs(page: str, tiny_synth: Path, seeded_runs: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, registries_restored: None) -> None:
    from fer_bench.engine.recipe import PROFILES

    found = blocks(page)
    sandbox = Sandbox(page, tmp_path / "sandbox", tiny_synth, seeded_runs)
    for profile in ("cpu", "cpu-face", "cpu-face-56"):
        for key, value in TINY_PROFILE.items():
            monkeypatch.setitem(PROFILES[profile], key, value)
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(sandbox.root)
    monkeypatch.syspath_prepend(str(sandbox.root))
    outcomes = [sandbox.run_block(block) for block in found]
    print("\n".join(sandbox.log))  # what ran, with its output and time (pytest -s shows it)
    assert outcomes.count("ran") + outcomes.count("checked") > 0


def test_check_only_blocks_say_why() -> None:
    for page in PAGES:
        for block in blocks(page):
            if block.check_only is not None:
                assert len(block.check_only) > 10, f"{block.where}: a check-only example must say why it cannot run"


def test_the_check_mode_catches_an_option_that_drifted() -> None:
    check_command(["run", "--method", "lanet", "--noise", "asym", "--rate", "0.2"], "here")
    with pytest.raises(click.NoSuchOption):
        check_command(["run", "--method", "lanet", "--noise-rate", "0.2"], "here")
    with pytest.raises(click.BadParameter):
        check_command(["run", "--rate", "twenty"], "here")
    with pytest.raises(KeyError):
        check_command(["run", "--method", "no-such-method"], "here")
    with pytest.raises(click.UsageError):
        check_command(["no-such-command"], "here")
