"""Training recipes: the engine's defaults, the two protocols and the scale profiles.

A run's recipe is resolved in layers, later ones winning:

1. :data:`DEFAULTS`, the engine's defaults, and the dataset's own (``val_split``,
   see :func:`fer_bench.datasets.contract.default_val_split`);
2. the protocol: ``official`` takes the method's own published recipe
   (``Method.recipe``), ``unified`` takes :data:`UNIFIED`, the same for every method.
   An official recipe may also set the method's own hyper-parameters where the
   official code differs from the suite's default (LA-Net's ``shards`` and
   ``heatmap_peak``); under ``unified`` those keep the method's defaults;
3. the profile, by scale: ``paper`` (ResNet-18 at 224 px, the default on real
   datasets) changes nothing, ``cpu`` shrinks network, input and schedule so
   a run finishes in minutes on two cores, from scratch; ``cpu-face`` is the
   papers' setting on that budget: the same, fine-tuning the backbone pretrained on
   synthfer identities (``pretrained: synthfer-id``, :mod:`fer_bench.pretrain`);
   ``cpu-face-56`` (the default on the synthetic dataset) is ``cpu-face`` at the scale
   the methods' mechanisms need (56 px, finer feature and heatmap grids, time constants
   mapped to its schedule); method hyper-parameters are untouched;
4. the user's ``--set key=value`` overrides, then the run's own values for a hyper-parameter whose
   default is taken from the run (``HParam(None, default_from="noise_rate")``: the nominal noise
   rate, :func:`fer_bench.methods.hparams.run_defaults`), when the run's values are given;
5. what the pretrained weights imply (:mod:`fer_bench.models.pretrained`):
   ``pretrained_kind: auto`` becomes the checkpoint's kind, ``normalize: auto``
   that kind's input statistics, and weights that fix the backbone's layout
   (EAC's VGGFace2 ResNet-50) set ``arch``/``width``/``stem``, or are an error
   when ``--set`` asked for another layout. The resolved values are what the
   run config records.

A ``--set`` key is either a recipe key or one of the method's hyper-parameters (never both:
registration refuses a method whose hyper-parameter is named like a recipe key, see
:func:`fer_bench.methods.hparams.check_method`); anything else is an error that lists both. A
hyper-parameter's value is converted and checked by its declaration
(:class:`fer_bench.methods.hparams.HParam`: type, range or choices).
"""

from __future__ import annotations

import ast
from typing import Any, Iterable, Mapping, Optional

from ..errors import excerpt
from ..models.pretrained import CHECKPOINT_KINDS, NORMALISATIONS, SYNTHFER_ID, checkpoint_kind
from .timescale import MODES, Mapped, Schedule, map_constants, map_value
from ..models.resnet import CPU_BACKBONE

DEFAULTS: dict[str, Any] = {
    "arch": "resnet18",
    "width": 64,
    "stem": "imagenet",
    "last_stride": 2,             # stride of the backbone's last stage (1: twice the final map's side)
    "heatmap_stride": 4,          # input pixels per landmark-heatmap cell, for a method that learns heatmaps
    "image_size": 224,
    "pretrained": "none",
    "pretrained_kind": "auto",    # auto (from the source's name) | none | imagenet | msceleb | vggface2
    "normalize": "auto",          # auto (the kind's) | imagenet | msceleb: input mean/std
    "epochs": 60,
    "batch_size": 64,
    "optimizer": "adam",          # adam | adamw | sgd
    "lr": 2e-4,
    "weight_decay": 1e-4,
    "momentum": 0.9,              # sgd only
    "schedule": "exponential",    # constant | exponential | step | cosine | linear | delayed_linear
    "gamma": 0.9,                 # exponential and step decay factor
    "milestones": [],             # step: epochs at which lr is multiplied by gamma
    "warmup_epochs": 0,
    "sampler": "random",          # random | balanced | progressive (engine/samplers.py)
    "aug_flip": 0.5,
    "aug_crop_scale": [1.0, 1.0],
    "aug_crop_ratio": [0.75, 1.3333333333333333],
    "aug_brightness": 0.0,
    "aug_contrast": 0.0,
    "aug_saturation": 0.0,
    "aug_erase": 0.5,
    "aug_erase_scale": [0.02, 0.25],
    "aug_noise": 0.0,             # probability of additive Gaussian noise on the uint8 image (SCN/RUL/EAC)
    "aug_noise_var": 30.0,        # its variance on the 0-255 scale
    "aug_flip_or_noise": False,   # true: one draw picks flip (aug_flip), noise (aug_noise) or neither
    "eval_batch_size": 256,
    "val_split": 0.0,             # noisy-validation fraction held out (datasets/split.py); the dataset sets its own
    "time_constants": "mapped",   # mapped | fixed: a method's momenta and epoch points follow the schedule
}

# The keys only the delayed_linear schedule reads, with their defaults. A recipe holds them only under that
# schedule (:func:`fit_schedule_keys`), so that no other run's config, nor its hash, changes with them.
DELAYED_LINEAR: dict[str, Any] = {"decay_start": 1, "decay_beta1": None}
# Recipe keys that are schedule points, mapped to a run's schedule like a method's time constants
# (:mod:`fer_bench.engine.timescale`), unless given with --set.
RECIPE_UNITS: dict[str, str] = {"decay_start": "epoch"}

# One line of help per recipe key, for `fer-bench methods show` (a test checks that every key has one).
RECIPE_HELP: dict[str, str] = {
    "arch": "backbone architecture (resnet18, resnet34, resnet50, resnet50_caffe)",
    "width": "the backbone's base width (64: the standard ResNet)",
    "stem": "the backbone's stem: imagenet (7x7 conv and max-pool) or small (3x3 conv, for small images)",
    "last_stride": "stride of the backbone's last stage: 2 (standard) or 1 (a final map twice as wide)",
    "heatmap_stride": "input pixels per landmark-heatmap cell, for a method that learns heatmaps (4: a quarter)",
    "image_size": "side of the training and test images, in pixels",
    "pretrained": "backbone weights: a checkpoint file, imagenet, synthfer-id or none",
    "pretrained_kind": "what the weights are: auto (from their name), none, imagenet, msceleb, vggface2, ...",
    "normalize": "input mean/std: auto (the weights' kind's), imagenet, msceleb or nla (NLA's)",
    "epochs": "training epochs",
    "batch_size": "training batch size (the global batch when several processes train a run)",
    "optimizer": "adam, adamw or sgd",
    "lr": "learning rate (a parameter group's lr_scale multiplies it)",
    "weight_decay": "the optimiser's weight decay",
    "momentum": "SGD momentum (sgd only)",
    "schedule": "learning-rate schedule: constant, exponential, step, cosine, linear (to 0 per iteration) or "
                "delayed_linear (constant, then per epoch towards 0 from decay_start)",
    "decay_start": "delayed_linear: the first (1-based) epoch of the decay [unit: epoch]",
    "decay_beta1": "delayed_linear: Adam's beta1 from decay_start on (null: unchanged)",
    "gamma": "the exponential and step schedules' decay factor",
    "milestones": "step schedule: the epochs at which the lr is multiplied by gamma",
    "warmup_epochs": "epochs of linear lr warm-up",
    "sampler": "epoch sampler: random, balanced or progressive",
    "aug_flip": "probability of a horizontal flip",
    "aug_crop_scale": "random-resized crop: [low, high] area fraction ([1, 1]: no crop)",
    "aug_crop_ratio": "random-resized crop: [low, high] aspect ratio",
    "aug_brightness": "colour jitter: brightness strength",
    "aug_contrast": "colour jitter: contrast strength",
    "aug_saturation": "colour jitter: saturation strength",
    "aug_erase": "probability of random erasing",
    "aug_erase_scale": "random erasing: [low, high] area fraction",
    "aug_noise": "probability of additive Gaussian noise on the uint8 image (SCN/RUL/EAC)",
    "aug_noise_var": "the Gaussian noise's variance on the 0-255 scale",
    "aug_flip_or_noise": "true: one draw picks a flip (aug_flip), noise (aug_noise) or neither",
    "eval_batch_size": "batch size of evaluation",
    "val_split": "fraction of the noisy training labels held out for validation (the dataset sets its own)",
    "time_constants": "mapped: a method's momenta and epoch points follow the run's schedule; fixed: as declared",
}

UNIFIED: dict[str, Any] = {
    "optimizer": "adam", "lr": 2e-4, "weight_decay": 1e-4, "schedule": "exponential",
    "gamma": 0.9, "epochs": 60, "batch_size": 64, "aug_flip": 0.5, "aug_erase": 0.5,
}

# The cpu profile was calibrated on synthfer (8,000 training images, two cores):
# clean labels reach ~90% and 30% symmetric noise costs ~19 points at the last
# epoch, because the network memorises the flipped labels (train accuracy on the
# noisy labels passes 85%). Random-resized crops, erasing or colour jitter at
# this capacity prevent the memorisation altogether, which would hide exactly
# the effect noise-robust methods exist to fix; so those are off. Each method's
# own flip and Gaussian-noise rule (the peers' light per-image augmentation:
# flip-or-noise for SCN/RUL, an unflipped noisy first view for EAC) is kept.
PROFILES: dict[str, dict[str, Any]] = {
    "paper": {},
    "cpu": {
        **CPU_BACKBONE, "image_size": 48,
        "pretrained": "none", "epochs": 15, "batch_size": 64,
        "optimizer": "adam", "lr": 2e-3, "weight_decay": 1e-4,
        "schedule": "cosine", "warmup_epochs": 0,
        "aug_crop_scale": [1.0, 1.0], "aug_erase": 0.0,
        "aug_brightness": 0.0, "aug_contrast": 0.0, "aug_saturation": 0.0,
        # Measured and benchmarked with the official constants on this fifth of a schedule; kept so, so that
        # the profile and its committed runs stay what they were (see engine/timescale.py).
        "time_constants": "fixed",
    },
}
# The papers' setting on the CPU, fine-tuning from a face-pretrained backbone: the cpu profile's
# network, input and schedule, starting from the backbone pretrained on synthfer identities
# (fer-bench pretrain; the papers' MS-Celeb step). Nothing else changes: the peers fine-tune with the
# recipes they also report from-scratch numbers with (SCN's ablations, EAC's author in EAC #10), so
# starting from face-pretrained weights implies no other lr or schedule.
PROFILES["cpu-face"] = {**PROFILES["cpu"], "pretrained": SYNTHFER_ID}
# cpu-face at the scale the methods' mechanisms need, chosen by results/synthfer/protocol/CRITERIA.md
# (results/synthfer/protocol/README.md has the search): 56 px with the last stage at stride 1, so that EAC's
# class activation maps are 7x7 as at the official 224 px; LA-Net's heatmaps at stride 2, 28x28 cells, so
# that an expression moves a landmark by about a cell; every method's time constants mapped to the 15
# epochs (engine/timescale.py). The same network and synthfer-id weights: the strides change no parameter.
# About twice cpu-face's time per run on two cores.
PROFILES["cpu-face-56"] = {**PROFILES["cpu-face"], "image_size": 56, "last_stride": 1, "heatmap_stride": 2,
                           "time_constants": "mapped"}

PROTOCOLS = ("official", "unified")


def recipe_keys() -> set[str]:
    """Every key the engine's recipe has, whatever the protocol and profile: the names a method's
    hyper-parameters may not take (``--set`` would set the recipe's)."""
    return set(DEFAULTS) | set(UNIFIED) | set(DELAYED_LINEAR) | {k for p in PROFILES.values() for k in p}


class RecipeError(ValueError):
    """An unknown protocol, profile or ``--set`` key, or a value of the wrong type."""


def parse_value(text: str) -> Any:
    """``--set`` values: Python literals (numbers, booleans, lists); bare words stay strings."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_sets(items: Iterable[str], option: str = "--set") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise RecipeError(f"{option} expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = parse_value(value)
    return out


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check an override against its default's type (ints may stand for floats)."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise RecipeError(f"--set {key}={value!r}: expected true or false")
        return value
    if isinstance(default, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(default, int) and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(default, str) and isinstance(value, str):
        return value
    if type(default) is type(value):
        return value
    if isinstance(default, int) and isinstance(value, float):
        raise RecipeError(f"--set {key}={value!r}: expected a whole number like {default!r}")
    raise RecipeError(f"--set {key}={value!r}: expected a value like {default!r}")


# The range of each numeric recipe key, checked after the overrides so that a bad value stops
# the run before its directory exists. The upper bounds lie far beyond any published recipe: they
# refuse what can only be a slip (a missing minus sign in an exponent, an extra zero) before it
# asks for terabytes of memory or trains for ever.
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024
MAX_EPOCHS, MAX_BATCH = 10_000, 65_536
_RANGES: dict[str, tuple[float, float]] = {  # key: (lowest, highest)
    "epochs": (1, MAX_EPOCHS), "warmup_epochs": (0, MAX_EPOCHS), "decay_start": (1, MAX_EPOCHS),
    "batch_size": (1, MAX_BATCH), "eval_batch_size": (1, MAX_BATCH),
    "width": (1, 4096), "image_size": (MIN_IMAGE_SIZE, MAX_IMAGE_SIZE),
    "last_stride": (1, 2), "heatmap_stride": (1, 32),
    "lr": (0, 100), "weight_decay": (0, 10),
    "aug_brightness": (0, 10), "aug_contrast": (0, 10), "aug_saturation": (0, 10),
    "aug_noise_var": (0, 255 ** 2),  # a variance on the 0-255 scale
}
_PROBABILITY = ("aug_flip", "aug_erase", "aug_noise", "momentum")
_INTERVALS = {"aug_crop_scale": 1.0, "aug_erase_scale": 1.0, "aug_crop_ratio": 100.0}  # key: upper bound


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_ranges(recipe: dict[str, Any]) -> None:
    """A :class:`RecipeError` naming the first recipe value outside its range."""
    def bad(key: str, what: str) -> RecipeError:
        return RecipeError(f"--set {key}={recipe[key]!r}: {what}")

    for key, (low, high) in _RANGES.items():
        if key not in recipe:
            continue
        unit = " (pixels)" if key == "image_size" else ""
        if not recipe[key] >= low:  # (also true for NaN)
            raise bad(key, f"must be at least {low:g}{unit}")
        if not recipe[key] <= high:
            raise bad(key, f"must be at most {high:g}{unit}")
    for key in _PROBABILITY:
        if key in recipe and not 0 <= recipe[key] <= 1:
            raise bad(key, "must lie in [0, 1]")
    if "gamma" in recipe and not 0 < recipe["gamma"] <= 1:
        raise bad("gamma", "must lie in (0, 1] (the factor that decays the learning rate)")
    if "time_constants" in recipe and recipe["time_constants"] not in MODES:
        raise bad("time_constants", f"must be one of {', '.join(MODES)}")
    if "val_split" in recipe and not 0 <= recipe["val_split"] < 1:
        raise bad("val_split", "must lie in [0, 1) (the fraction of the noisy training labels held out)")
    if recipe.get("decay_beta1") is not None:
        if not (_number(recipe["decay_beta1"]) and 0 <= recipe["decay_beta1"] < 1):
            raise bad("decay_beta1", "must lie in [0, 1) (Adam's beta1), or be null")
        if recipe["optimizer"] not in ("adam", "adamw"):
            raise bad("decay_beta1", f"is Adam's beta1, and this run's optimizer is {recipe['optimizer']}")
    if "milestones" in recipe and not all(_number(m) and 1 <= m <= MAX_EPOCHS for m in recipe["milestones"]):
        raise bad("milestones", f"must be a list of epochs from 1 to {MAX_EPOCHS}")
    for key, upper in _INTERVALS.items():
        value = recipe.get(key)
        if value is not None and not (len(value) == 2 and all(map(_number, value))
                                      and 0 < value[0] <= value[1] <= upper):
            raise bad(key, f"must be [low, high] with 0 < low <= high <= {upper:g}")


def layered(
    method_recipe: dict[str, Any],
    method_hparams: dict[str, Any],
    protocol: str,
    profile: str,
    dataset_defaults: Optional[dict[str, Any]] = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(recipe, hparams)`` of layers 1-3 (defaults, protocol, profile), before any override and before
    the pretrained weights' implications (``pretrained_kind``/``normalize`` may still be ``auto``)."""
    from ..methods.hparams import declare, defaults

    if protocol not in PROTOCOLS:
        raise RecipeError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    if profile not in PROFILES:
        raise RecipeError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    specs = declare(method_hparams)
    taken = sorted(set(specs) & recipe_keys())
    if taken:
        raise RecipeError(f"hyper-parameter(s) {', '.join(taken)} have the names of recipe keys: rename them")
    recipe = {**DEFAULTS, **(dataset_defaults or {})}
    hparams = defaults(specs)
    for key, value in (method_recipe if protocol == "official" else UNIFIED).items():
        (hparams if key in specs else recipe)[key] = value
    recipe.update(PROFILES[profile])
    fit_schedule_keys(recipe)
    return recipe, hparams


def fit_schedule_keys(recipe: dict[str, Any], overrides: Iterable[str] = ()) -> None:
    """Give ``recipe`` the keys of its schedule, in place: :data:`DELAYED_LINEAR`'s (their defaults where
    missing) under ``delayed_linear``, none of them under any other schedule (a profile or protocol that
    replaces Co-teaching's schedule replaces its decay start too). One of them among ``overrides`` under
    another schedule is an error: nothing would read it."""
    if recipe["schedule"] == "delayed_linear":
        for key, value in DELAYED_LINEAR.items():
            recipe.setdefault(key, value)
        return
    given = sorted(set(overrides) & set(DELAYED_LINEAR))
    if given:
        raise RecipeError(f"--set {given[0]}: only the delayed_linear schedule reads it, and this run's schedule "
                          f"is {recipe['schedule']} (--set schedule=delayed_linear to use it)")
    for key in DELAYED_LINEAR:
        recipe.pop(key, None)


def resolve(
    method_recipe: dict[str, Any],
    method_hparams: dict[str, Any],
    protocol: str,
    profile: str,
    overrides: dict[str, Any],
    dataset_defaults: Optional[dict[str, Any]] = None,
    run_values: Optional[Mapping[str, Any]] = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(recipe, hparams)`` for a run (:func:`resolve_mapped` without the list of mapped constants)."""
    recipe, hparams, _ = resolve_mapped(method_recipe, method_hparams, protocol, profile, overrides, dataset_defaults,
                                        run_values)
    return recipe, hparams


def official_schedule(method_recipe: dict[str, Any]) -> Schedule:
    """The schedule a method's constants were tuned for: its official recipe's, else the engine's defaults."""
    return Schedule.of({**DEFAULTS, **method_recipe})


def resolve_mapped(
    method_recipe: dict[str, Any],
    method_hparams: dict[str, Any],
    protocol: str,
    profile: str,
    overrides: dict[str, Any],
    dataset_defaults: Optional[dict[str, Any]] = None,
    run_values: Optional[Mapping[str, Any]] = None,
) -> tuple[dict[str, Any], dict[str, Any], list[Mapped]]:
    """Return ``(recipe, hparams, mapped)`` for a run, with overrides applied and type-checked, and the
    method's time constants mapped to the run's schedule unless ``time_constants`` is ``fixed`` (``mapped``
    lists them, :mod:`fer_bench.methods.timescale`; a constant given in ``overrides`` is kept as given);
    ``dataset_defaults`` are the dataset's own recipe defaults (layer 1); ``run_values`` (names of
    :data:`~fer_bench.methods.hparams.RUN_VALUES`: the run's nominal noise rate) give the hyper-parameters
    whose default is taken from the run their value. Without ``run_values`` (a method's card, a report's
    defaults) those stay ``None``, the placeholder their declaration holds.

    ``method_hparams`` is a method's ``hparams``: declarations (:class:`~fer_bench.methods.hparams.HParam`)
    or plain default values; the returned ``hparams`` are plain values, each converted and checked by its
    declaration. A hyper-parameter named like a recipe key is an error (registration refuses such a method)."""
    from ..methods.hparams import declare, run_defaults, unresolved

    specs = declare(method_hparams)
    recipe, hparams = layered(method_recipe, method_hparams, protocol, profile, dataset_defaults)
    for key, value in overrides.items():
        if key in DELAYED_LINEAR:  # (fit_schedule_keys below refuses it under another schedule)
            recipe.setdefault(key, DELAYED_LINEAR[key])
        if key in recipe:
            recipe[key] = _coerce(key, value, DEFAULTS.get(key, recipe[key]))
        elif key in hparams:
            hparams[key] = _coerce_hparam(key, value, specs[key], hparams[key])
        else:
            known = sorted(recipe) + sorted(hparams)
            raise RecipeError(f"unknown --set key {key!r}; known: {', '.join(known)}")
    if run_values is not None:
        try:
            run_defaults(specs, hparams, run_values, set(overrides))
        except ValueError as exc:
            raise RecipeError(str(exc)) from None
    for key, value in hparams.items():  # what the protocol's recipe set (overrides are checked above)
        if unresolved(specs[key], value):  # taken from a run, which this resolution has not
            continue
        problem = specs[key].problem(value)
        if problem:
            raise RecipeError(f"the {protocol} recipe sets {key}={excerpt(value)}, which {problem}")
    fit_schedule_keys(recipe, overrides)
    _apply_checkpoint_kind(recipe, overrides)
    check_ranges(recipe)
    mapped: list[Mapped] = []
    if recipe["time_constants"] == "mapped":
        official, run = official_schedule(method_recipe), Schedule.of(recipe)
        mapped = map_constants(specs, hparams, official, run, set(overrides))
        for key, unit in RECIPE_UNITS.items():
            if key in recipe and key not in overrides:
                before, recipe[key] = recipe[key], map_value(recipe[key], unit, official, run)
                if recipe[key] != before:
                    mapped.append(Mapped(key, unit, before, recipe[key]))
    if recipe.get("decay_start", 1) > recipe["epochs"]:
        given = "--set " if "decay_start" in overrides else "the recipe's "
        raise RecipeError(f"{given}decay_start={recipe['decay_start']}: the lr decay would start after the last of "
                          f"{recipe['epochs']} epochs (give a decay_start up to {recipe['epochs']})")
    return recipe, hparams, mapped


def _coerce_hparam(key: str, value: Any, spec: Any, current: Any) -> Any:
    """A ``--set`` value of a hyper-parameter, converted and checked by its declaration; an undeclared one
    (a plain value in a plugin's ``hparams``) is checked against its current value's type, as a recipe key."""
    if not spec.declared:
        return _coerce(key, value, current)
    try:
        return spec.convert(value)
    except ValueError as exc:
        raise RecipeError(f"--set {key}={excerpt(value)}: {exc}") from None


def _apply_checkpoint_kind(recipe: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Layer 5: resolve ``pretrained_kind`` and ``normalize``, and the layout the weights fix."""
    if recipe["pretrained_kind"] == "auto":
        recipe["pretrained_kind"] = checkpoint_kind(recipe["pretrained"])
    kind = CHECKPOINT_KINDS.get(recipe["pretrained_kind"])
    if kind is None:
        raise RecipeError(f"--set pretrained_kind={recipe['pretrained_kind']!r}: known: auto, "
                          f"{', '.join(CHECKPOINT_KINDS)}")
    if recipe["normalize"] == "auto":
        recipe["normalize"] = kind.normalize
    if recipe["normalize"] not in NORMALISATIONS:
        raise RecipeError(f"--set normalize={recipe['normalize']!r}: known: auto, {', '.join(NORMALISATIONS)}")
    for key, needed in kind.layout.items():
        if key in overrides and overrides[key] != needed:
            raise RecipeError(f"{recipe['pretrained']} holds {recipe['pretrained_kind']} weights, which need "
                              f"{key}={needed}, not {overrides[key]}: use --set {key}={needed}, or train from "
                              f"scratch (--set pretrained=none, or a profile without pretrained weights such as cpu)")
        recipe[key] = needed
