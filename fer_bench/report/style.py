"""How every figure and table shows a method and a noise setting: one name, one colour, one order.

Tables and figures ask this module, so LA-Net is "LA-Net" and the same colour
in every figure, whichever other methods share it, and symmetric noise comes
before asymmetric everywhere. Colours are seaborn's colour-blind palette: the
paper's five methods have fixed ones, any other method (a plugin) a colour
derived from its name, so it too keeps its colour between figures.
"""

from __future__ import annotations

import zlib
from typing import Any, Iterable

import seaborn as sns

from ..runs.identity import FILE_PREFIX, number_text, split_imbalance

METHOD_TITLES = {"baseline": "Baseline", "scn": "SCN", "rul": "RUL", "eac": "EAC", "lanet": "LA-Net", "nla": "NLA", "coteaching": "Co-teaching", "elr": "ELR", "dividemix": "DivideMix"}
NOISE_TITLES = {"sym": "Symmetric", "asym": "Asymmetric", "annotator": "Annotator"}
_PALETTE = sns.color_palette("colorblind", 10)
_FIXED = {m: _PALETTE[i] for m, i in zip(METHOD_TITLES, (7, 1, 2, 4, 0))}  # grey, orange, green, purple, blue
_OTHERS = [c for i, c in enumerate(_PALETTE) if i not in (7, 1, 2, 4, 0)]
# variants of one method share its colour and differ in dashes
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1))]


def method_of(variant: str) -> str:
    return variant.split("+", 1)[0]


def method_title(variant: str, leave_out: Iterable[str] = ()) -> str:
    """``LA-Net+alpha=0.5`` for ``lanet+alpha=0.5``; the name parts in ``leave_out`` are left out."""
    method, *rest = variant.split("+")
    return "+".join([METHOD_TITLES.get(method, method), *[p for p in rest if p not in set(leave_out)]])


def shared_profile(variants: Iterable[str]) -> set[str]:
    """``{"profile=p"}`` when every variant names the same non-default profile, else empty: a table whose
    caption names the profile can leave it out of every row (``Baseline``, not ``Baseline+profile=cpu-face``)."""
    parts = [{p for p in v.split("+")[1:] if p.startswith("profile=")} for v in variants]
    return parts[0] if parts and len(parts[0]) == 1 and all(p == parts[0] for p in parts) else set()


def profile_name(said: Iterable[str]) -> str:
    """``cpu-face`` for ``{"profile=cpu-face"}`` (what :func:`shared_profile` found), ``""`` for none."""
    return ", ".join(sorted(p.removeprefix("profile=") for p in said))


def method_color(variant: str) -> Any:
    """The colour of a variant's method, the same in every figure."""
    method = method_of(variant)
    return _FIXED.get(method) or _OTHERS[zlib.crc32(method.encode()) % len(_OTHERS)]


def variant_order(names: list[str]) -> list[str]:
    """The paper's method order, then other methods by name; a method's variants after it."""
    rank = {m: i for i, m in enumerate(METHOD_TITLES)}
    return sorted(names, key=lambda v: (rank.get(method_of(v), len(rank)), method_of(v), "+" in v, v))


def setting_key(noise: str, rate: float, setting: str = "") -> tuple[Any, ...]:
    """Sort key of a noise setting: clean, symmetric, asymmetric, other noise models, label files;
    rates ascending; at one noise setting the full training set, then long-tailed subsets by their ratio."""
    rank = {n: i for i, n in enumerate(["none", *NOISE_TITLES])}
    base = noise.removesuffix("-exact")
    _, rho, _ = split_imbalance(setting)
    return noise == "file", rank.get(base, len(rank)), base, noise, rate, rho is not None, rho or 0.0, setting


def noise_title(noise: str) -> str:
    """``Symmetric``, ``Asymmetric (exact)``, or a plugin model's own name."""
    base, exact = noise.removesuffix("-exact"), noise.endswith("-exact")
    return f"{NOISE_TITLES.get(base, base)}{' (exact)' if exact else ''}"


def block_title(noise: str, rate: float, setting: str = "") -> str:
    """``clean``, ``Symmetric 30%``, ``label file noise01 (realised 10.0%)``; on a long-tailed training subset
    followed by its ratio, ``Symmetric 30%, ρ = 10`` (and its seed where the setting names it)."""
    setting, rho, seed = split_imbalance(setting)
    subset = "" if rho is None else f", ρ = {number_text(rho)}" + ("" if seed is None else f" (subset seed {seed})")
    if noise == "none":
        return "clean" + subset
    if noise == "file":
        return f"label file {setting.removeprefix(FILE_PREFIX)} (realised {rate:.1%})" + subset
    return f"{noise_title(noise)} {rate:.0%}" + subset
