"""The CPU thread policy: how many threads a run computes with, and how OpenMP's threads wait.

Torch from PyPI runs its CPU operators on GNU OpenMP (libgomp), whose threads
spin at every barrier for a while before they sleep. On an otherwise idle
machine that is the fastest way to run the many small parallel regions of a
training step. When another process keeps a core busy it is a collapse: each
region waits for the thread that shares its core with the competitor, while
the others spin away their time slices (a 2-core machine with one busy
competitor trained ten times slower with 2 threads than with 1).
``OMP_WAIT_POLICY=PASSIVE`` makes that fair but halves the idle speed, since
every region then has to wake its threads.

So the policy leaves libgomp's waiting as it is (no ``OMP_WAIT_POLICY`` or
``GOMP_SPINCOUNT`` is set: spinning is fastest while the cores are free) and
instead sizes the thread team to the cores that *are* free:

* ``auto`` (the default): a :class:`Governor`, ticked once per training step,
  measures every second or so how much CPU time other processes took on this
  process's cores (``/proc/stat`` less this process's own CPU time) and sets
  ``torch.set_num_threads`` to the cores they leave free (a core busy less
  than :data:`SLACK` of the time counts as free), between 1 and the count
  torch started with (its default: the physical cores). With one thread there are no barriers to wait at, so a busy
  competitor costs a run its fair share and no more; when the competitor
  stops, the threads come back. The batched augmentation's worker pool is
  sized from ``torch.get_num_threads()`` per batch, so it follows.
* ``auto:N``: the same, between 1 and N threads (what a sweep gives each of
  its ``--jobs`` children: ``cores // jobs``).
* ``N``: exactly N threads, never changed.
* ``off``: nothing is set or changed (torch's and OpenMP's own defaults).

The mode comes from ``FER_BENCH_THREADS``; a user's own ``OMP_NUM_THREADS``,
``MKL_NUM_THREADS`` or ``torch.set_num_threads`` counts as ``N`` and is never overridden, and the
wait-policy variables (``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``) are left as
they are. Because OpenMP reads its environment once, when torch loads it,
:func:`apply_environment` runs when the ``fer_bench`` package is imported
(before anything in it imports torch; it imports nothing heavy itself), which
covers the ``fer-bench`` command, ``python -m`` entry points, sweep children
and the Python API. What was decided, and why, is :func:`record`, which goes
into every run's ``env.json``; each epoch's ``metrics.csv`` row has the mean
thread count it trained with.

Reproducibility: on a CPU the thread count changes float summation order, so a
run whose thread count adapted to a busy machine is not bit-identical to one
on an idle machine. ``FER_BENCH_THREADS=N`` pins the count for runs that must
be repeated bit for bit.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, MutableMapping, Optional

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

ENV = "FER_BENCH_THREADS"
# Which OpenMP variables fer-bench itself put into the environment, as NAME=VALUE pairs, so
# that a child process that inherits them does not take them for the user's own.
MARKER = "FER_BENCH_OMP_SET"
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
USER_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # torch's intra-op count reads both
INTERVAL_S = 1.0  # how often the governor measures the load (at a step boundary)
SLACK = 0.25      # a core that other processes use less than this fraction of counts as free


class ThreadPolicyError(ValueError):
    """A malformed ``FER_BENCH_THREADS``."""


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parse(value: Optional[str]) -> tuple[str, Optional[int]]:
    """``FER_BENCH_THREADS`` as ``(mode, n)``: ``auto``/``auto:N``, ``N`` (``fixed``) or ``off``."""
    text = (value or "auto").strip().lower()
    if text in ("auto", "off"):
        return text, None
    mode, number = ("auto", text[5:]) if text.startswith("auto:") else ("fixed", text)
    if not number.isdigit() or int(number) < 1:
        raise ThreadPolicyError(f"{ENV}={value!r}: expected auto, auto:N, N (a thread count >= 1) or off")
    return mode, int(number)


def _ours(environ: Mapping[str, str]) -> dict[str, str]:
    pairs = (p.partition("=") for p in environ.get(MARKER, "").split(",") if p)
    return {name: val for name, _, val in pairs}


def user_value(name: str, environ: Mapping[str, str] = os.environ) -> Optional[str]:
    """The value of an environment variable if the user set it (not fer-bench on their behalf)."""
    value = environ.get(name)
    if value is None or _ours(environ).get(name) == value:
        return None
    return value


def torch_default_threads(environ: Mapping[str, str] = os.environ) -> int:
    """The intra-op thread count torch starts with: ``MKL_NUM_THREADS``, else ``OMP_NUM_THREADS``,
    else the physical cores (as ATen's ``intraop_default_num_threads`` decides it)."""
    for name in ("MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        number = _thread_count(environ.get(name))
        if number:
            return number
    cores = {p.read_text().strip() for p in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology/core_cpus_list")}
    return len(cores) or os.cpu_count() or 1


def _thread_count(value: Optional[str]) -> Optional[int]:
    try:
        return max(1, int((value or "").split(",")[0]))
    except ValueError:
        return None  # OpenMP ignores what it cannot read, and so does the policy


def plan(environ: Mapping[str, str] = os.environ, cores: Optional[int] = None) -> dict[str, Any]:
    """What the policy decides for a process with this environment (pure; see the module docstring).

    Returns ``mode`` (auto | fixed | off), ``max_threads`` (the cap, or the fixed count),
    ``source`` (what decided it) and ``set_env`` (variables to put into the environment
    before torch starts).
    """
    cores = cores or usable_cores()
    mode, n = parse(environ.get(ENV))
    if mode == "off":
        return {"mode": "off", "max_threads": None, "source": f"{ENV}=off", "set_env": {}}
    for name in USER_THREAD_VARIABLES:
        value = user_value(name, environ)
        if value is not None:
            return {"mode": "fixed", "max_threads": _thread_count(value), "source": name, "set_env": {}}
    if n is None:
        return {"mode": "auto", "max_threads": cores, "source": "default", "set_env": {}}
    cap = n if mode == "fixed" else min(n, cores)
    # Into the environment before torch starts, so its default (and every OpenMP team) has that size.
    return {"mode": mode, "max_threads": cap, "source": ENV, "set_env": {"OMP_NUM_THREADS": str(cap)}}


_STATE: dict[str, Any] = {}  # this process's decision, made once


def apply_environment() -> dict[str, Any]:
    """Put the policy's OpenMP settings into this process's environment, once; cheap (no torch).

    Called when ``fer_bench`` is imported. When torch was imported first, the
    variables can no longer reach OpenMP; the governor then sets the thread
    count through torch instead, and the record says so.
    """
    if not _STATE:
        _STATE.update(apply_to(os.environ, torch_loaded="torch" in sys.modules))
    return _STATE


def apply_to(environ: MutableMapping[str, str], torch_loaded: bool) -> dict[str, Any]:
    """:func:`plan` for ``environ``, with its variables put into it (marked as fer-bench's) unless
    torch is already loaded."""
    decided = plan(environ)
    if decided["set_env"] and not torch_loaded:
        ours = _ours(environ)
        ours.update(decided["set_env"])
        environ.update(decided["set_env"])
        environ[MARKER] = ",".join(f"{k}={v}" for k, v in sorted(ours.items()))
    return dict(decided, applied_before_torch=not torch_loaded)


def child_environment(environ: Mapping[str, str], share: int) -> dict[str, str]:
    """The environment of a child process (a sweep's run) that gets ``share`` of the cores.

    A user's own thread count (or ``FER_BENCH_THREADS=N``) passes through
    untouched; otherwise the child adapts between 1 and ``share`` threads
    (under ``off`` it gets exactly ``share``, through ``OMP_NUM_THREADS``).
    """
    env = dict(environ)
    if plan(env)["mode"] == "fixed":
        return env
    for name, value in _ours(env).items():  # the child decides afresh
        if env.get(name) == value:
            del env[name]
    env.pop(MARKER, None)
    if parse(env.get(ENV))[0] == "off":
        env["OMP_NUM_THREADS"] = str(share)
    else:
        env[ENV] = f"auto:{share}"
    return env


def openmp_runtime() -> Optional[str]:
    """The OpenMP library this process has loaded (libgomp, libiomp5, libomp), from ``/proc/self/maps``."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for name in ("libgomp", "libiomp5", "libomp"):
        for line in maps.splitlines():
            if f"/{name}" in line:
                return line.split()[-1].rsplit("/", 1)[-1]
    return None


# --- measuring the load -----------------------------------------------------------

def busy_seconds(cpus: Optional[set[int]] = None) -> Optional[float]:
    """CPU seconds spent busy on ``cpus`` (default: this process's) since boot, all processes; None
    where ``/proc/stat`` does not exist."""
    cpus = cpus if cpus is not None else (os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None)
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    ticks = 0
    for line in lines:
        head, _, rest = line.partition(" ")
        if not head.startswith("cpu") or head == "cpu" or (cpus is not None and int(head[3:]) not in cpus):
            continue
        # user nice system idle iowait irq softirq steal [guest guest_nice]: guest is inside user already;
        # steal is time the hypervisor gave to someone else, as good as another process's.
        v = [int(x) for x in rest.split()]
        ticks += v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


class Governor:
    """Keeps torch's thread count at the cores other processes leave free (see the module docstring).

    ``tick()`` is called once per training step; at most every ``interval``
    seconds it reads the load and may call ``torch.set_num_threads``. If
    anything else changes torch's thread count, the governor stops adapting.
    ``clock``, ``busy`` and ``own`` are injectable for tests.
    """

    def __init__(self, mode: str, max_threads: Optional[int], cores: Optional[int] = None,
                 interval: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic,
                 busy: Callable[[], Optional[float]] = busy_seconds,
                 own: Callable[[], float] = time.process_time) -> None:
        import torch

        self.cores = cores or usable_cores()
        self.mode, self.interval = mode, interval
        self._clock, self._busy, self._own = clock, busy, own
        self.stopped: Optional[str] = None
        current = torch.get_num_threads()
        if mode != "off" and max_threads is not None and current != max_threads:
            if current != torch_default_threads():
                # The user gave torch a count directly (Python API): it wins, and stays.
                self.mode, self.stopped = "fixed", "torch.set_num_threads"
            elif mode == "fixed" or current > max_threads:
                # The policy's OMP_NUM_THREADS came too late (torch was imported before fer_bench).
                torch.set_num_threads(max_threads)
        self.threads = torch.get_num_threads()
        self.max_threads = self.threads  # auto: torch's starting count is the ceiling (physical cores)
        self.changes = 0
        self.others: Optional[float] = None  # cores' worth of CPU other processes used, last window
        self._sum = self._n = 0
        self._mark = self._sample()

    def _sample(self) -> Optional[tuple[float, float, float]]:
        busy = self._busy()
        return None if busy is None else (self._clock(), busy, self._own())

    def target(self, others: float) -> int:
        """Threads for a window in which other processes used ``others`` cores' worth of CPU."""
        free = math.floor(self.cores - others + SLACK)
        return max(1, min(self.max_threads, free))

    def tick(self) -> None:
        """Once per step: count the step; every ``interval`` seconds, adapt to the load."""
        import torch

        if self.mode != "auto":  # the count is someone else's to change: record what it is
            self.threads = torch.get_num_threads()
        self._sum += self.threads
        self._n += 1
        if self.mode != "auto" or self._mark is None or self._clock() - self._mark[0] < self.interval:
            return

        if torch.get_num_threads() != self.threads:  # someone else took over
            self.mode, self.stopped = "fixed", "torch.set_num_threads"
            self.threads = torch.get_num_threads()
            return
        now = self._sample()
        if now is None:
            return
        wall = now[0] - self._mark[0]
        self.others = max(0.0, ((now[1] - self._mark[1]) - (now[2] - self._mark[2])) / wall)
        self._mark = now
        want = self.target(self.others)
        if want != self.threads:
            torch.set_num_threads(want)
            self.threads = want
            self.changes += 1

    def take_mean(self) -> float:
        """The mean thread count over the steps since the last call (an epoch's)."""
        mean = self._sum / self._n if self._n else float(self.threads)
        self._sum = self._n = 0
        return mean


_GOVERNOR: list[Governor] = []


def governor() -> Governor:
    """This process's governor, made on first use from the policy decided at import."""
    if not _GOVERNOR:
        state = apply_environment()
        _GOVERNOR.append(Governor(state["mode"], state["max_threads"]))
    return _GOVERNOR[0]


def record() -> dict[str, Any]:
    """The policy as ``env.json`` records it: mode, why, the thread counts and the OpenMP settings."""
    state, g = apply_environment(), governor()
    return {
        "mode": g.mode, "source": g.stopped or state["source"], "max_threads": g.max_threads,
        "torch_threads": g.threads, "changes": g.changes, "usable_cores": usable_cores(),
        "applied_before_torch": state["applied_before_torch"], "set_by_fer_bench": _ours(os.environ),
        "environment": {name: os.environ.get(name) for name in (*USER_THREAD_VARIABLES, *WAIT_VARIABLES)},
        "openmp_runtime": openmp_runtime(), "interval_s": INTERVAL_S, "slack": SLACK,
    }


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with exactly ``n`` torch threads, then restore the count it had."""
    import torch  # here, not at the top: this module runs before torch is loaded (see the docstring)

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --- a pool of single-threaded workers ---------------------------------------------

_POOLS: dict[int, "ThreadPoolExecutor"] = {}
_POOLS_LOCK = threading.Lock()


def _drop_pools() -> None:  # a forked child has none of the parent's threads (nor their lock)
    global _POOLS_LOCK
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_pools)


def _single_threaded() -> None:
    """Worker set-up: this thread's torch ops run on one thread (no OpenMP team of its own)."""
    import torch

    torch.get_num_threads()  # torch's lazy per-thread set-up first, so it cannot undo the next line later
    torch.set_num_threads(1)


def single_threaded_pool(threads: int) -> "ThreadPoolExecutor":
    """This process's pool of ``threads`` worker threads whose torch ops each run on one thread.

    The batched augmentation shares a batch's chunks among them: no OpenMP
    barrier per op, which stalls badly when another process keeps a core busy.
    ``torch.set_num_threads(1)`` in a worker sets that thread's own OpenMP and
    MKL thread counts, but also torch's process-wide default; every worker is
    made to start (and set itself up) before the pool is first used, and then
    the calling thread's count is put back, so nothing else sees the change.
    """
    import torch
    from concurrent.futures import ThreadPoolExecutor

    with _POOLS_LOCK:
        pool = _POOLS.get(threads)
        if pool is None:
            before = torch.get_num_threads()
            ready = threading.Barrier(threads + 1)
            pool = ThreadPoolExecutor(threads, thread_name_prefix="fer-bench-worker",
                                      initializer=_single_threaded)
            for _ in range(threads):
                pool.submit(ready.wait)
            ready.wait()
            torch.set_num_threads(before)
            _POOLS[threads] = pool
        return pool
