"""Where a command may write the files its ``--out`` names.

Every command that writes a file the user names (``export``, ``noise export``,
``table``, ``userstudy``, ``plot ...``, ``pretrain``, ``bench``) checks it here
first, before any work, so that a bad ``--out`` costs nothing and destroys
nothing:

* an existing directory, or a path below a file, cannot be written (the error
  would otherwise come after the work, with a temporary left behind);
* a run directory (one holding ``config.json``, the first record a run writes)
  holds only the run's records: a file written there replaces one
  (``checkpoint.pt``, ``result.json``) or stands where the run will write one;
* a dataset's directory holds only the dataset's files: an output there could
  replace its label file. The data root and the dataset roots the command
  reads are protected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Sequence

from .paths import data_root

RUN_MARKER = "config.json"


def check_out(out: Path | str, files: Optional[Sequence[Path | str]] = None,
              dataset_roots: Iterable[Optional[Path | str]] = (), what: str = "file") -> Path:
    """``out``, when the command may write ``files`` for it (default: ``out`` itself);
    otherwise a ``ValueError`` (exit code 2) naming the file and why.

    ``dataset_roots`` are the directories of the datasets the command reads (None
    entries are ignored); they are refused as places to write, as is the data root.
    ``what`` names the file in the message (``label file``).
    """
    out = Path(out)
    protected = [(data_root().resolve(), "the data root")]
    protected += [(Path(r).resolve(), "the dataset directory") for r in dataset_roots if r is not None]
    for file in files if files is not None else (out,):
        file = Path(file)
        name = f"--out {out}" if file == out else f"--out {out} ({file})"
        if file.is_dir():
            raise ValueError(f"{name} is a directory; give the {what}'s name")
        for parent in file.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise ValueError(f"{name}: {parent} is a file, not a directory")
                break
        # The directory, not the file, is resolved: an atomic write replaces a symlink, not its target.
        parent = file.parent.resolve()
        if (parent / RUN_MARKER).is_file():
            raise ValueError(f"{name} is inside the run directory {parent}, which holds only the run's "
                             f"records; write it elsewhere")
        target = parent / file.name
        for root, place in protected:
            if target == root or root in target.parents:
                raise ValueError(f"{name} is inside {place} {root}, where it could replace a dataset's files; "
                                 f"write it elsewhere")
    return out
