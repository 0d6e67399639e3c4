"""Sweeps: many runs from one command, each run in a process of its own.

:mod:`.plan` expands methods x datasets x noise x rates x seeds (x a
hyper-parameter grid) into :class:`~fer_bench.engine.spec.RunSpec` objects;
:mod:`.worker` runs one spec in a child process under the run directory's
lock, logging into the run directory; :mod:`.local` drives a pool of such
children on this machine (CPU threads or GPUs, several runs per GPU);
:mod:`.slurm` submits the same specs as a submitit job array. A run's
``result.json`` is its done marker, so a sweep started again skips what is
finished and resumes what was interrupted.
"""
