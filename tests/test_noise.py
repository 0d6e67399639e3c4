"""Property tests for label-noise generation, noise records and confusion files."""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction

import numpy as np
import pytest

from fer_bench.classes import RAFDB_ORDER
from fer_bench.noise import (
    ASYM_MAP,
    NoiseRecord,
    flip_targets,
    inject_noise,
    largest_remainder,
    noise_record,
    read_confusion_csv,
    write_confusion_csv,
)
from fer_bench.registry import NOISE_MODELS, UnknownNameError

# RAF-DB basic train counts, in RAFDB_ORDER (imbalanced on purpose).
RAF_COUNTS = {"surprise": 1290, "fear": 281, "disgust": 717, "happiness": 4772,
              "sadness": 1982, "anger": 705, "neutral": 2524}
# FERPlus's order, restricted to the 7 basic classes.
FERPLUS7 = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear")


def raf_labels(scale: float = 1.0, seed: int = 123) -> np.ndarray:
    """RAF-DB-like clean labels in RAFDB_ORDER, shuffled so classes interleave."""
    counts = [max(1, int(RAF_COUNTS[c] * scale)) for c in RAFDB_ORDER]
    y = np.repeat(np.arange(len(RAFDB_ORDER), dtype=np.int64), counts)
    np.random.default_rng(seed).shuffle(y)
    return y


def balanced(n: int, c: int = 7, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, c, size=n).astype(np.int64)


# --- rates -------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["sym", "asym"])
@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_bernoulli_rate_within_sigma(model, rate):
    y = balanced(20_000)
    sigma = math.sqrt(rate * (1 - rate) / y.size)
    for seed in range(3):
        noisy, rec = inject_noise(y, RAFDB_ORDER, model, rate, seed)
        realised = float(np.mean(noisy != y))
        assert abs(realised - rate) < 4 * sigma
        assert rec.realised_rate == pytest.approx(realised)
        assert rec.n_flipped == int(np.sum(noisy != y))
        assert rec.mode == "bernoulli" and rec.rate == rate and rec.noise_seed == seed


def independent_largest_remainder(counts, total):
    n = sum(counts)
    quotas = [Fraction(total * k, n) for k in counts]
    base = [math.floor(q) for q in quotas]
    left = total - sum(base)
    by_rem = sorted(range(len(counts)), key=lambda i: quotas[i] - base[i], reverse=True)
    for i in by_rem[:left]:
        base[i] += 1
    return base


@pytest.mark.parametrize("model", ["sym", "asym"])
@pytest.mark.parametrize("rate", [0.1, 0.2, 0.3, 0.37])
def test_exact_mode_count_and_per_class_split(model, rate):
    y = raf_labels()
    noisy, rec = inject_noise(y, RAFDB_ORDER, model, rate, seed=7, exact=True)
    flipped = noisy != y
    assert flipped.sum() == round(rate * y.size) == rec.n_flipped
    counts = np.bincount(y, minlength=7)
    per_class = np.bincount(y[flipped], minlength=7)
    assert per_class.sum() == round(rate * y.size)
    # Proportional: every class within one flip of its exact quota...
    quota = rate * y.size * counts / y.size
    assert np.all(np.abs(per_class - quota) < 1)
    # ...and equal to an independent largest-remainder split (RAF counts have no ties here).
    assert per_class.tolist() == independent_largest_remainder(counts.tolist(), round(rate * y.size))
    assert rec.mode == "exact"


def test_largest_remainder_sums_and_ties():
    assert largest_remainder(np.array([1, 1, 1]), 2).tolist() == [1, 1, 0]
    assert largest_remainder(np.array([1, 1, 1]), 2, tie_order=np.array([2, 0, 1])).tolist() == [1, 0, 1]
    assert largest_remainder(np.array([5, 0, 3]), 8).tolist() == [5, 0, 3]
    rng = np.random.default_rng(0)
    for _ in range(50):
        counts = rng.integers(0, 50, size=rng.integers(1, 9))
        total = int(rng.integers(0, counts.sum() + 1))
        q = largest_remainder(counts, total)
        assert q.sum() == total and np.all(q <= counts) and np.all(q >= 0)
    with pytest.raises(ValueError):
        largest_remainder(np.array([2, 2]), 5)


# --- where flips go --------------------------------------------------------------------------

def skewed_confusion(c: int = 7, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.integers(1, 40, size=(c, c)).astype(float)
    m[np.diag_indices(c)] = 900  # a real confusion matrix is diagonal-heavy
    return m


@pytest.mark.parametrize("model", ["sym", "asym", "confusion"])
def test_flips_never_land_on_true_class(model):
    # Exact mode fixes the number of chosen samples, so any flip that landed on
    # its true class would show up as a shortfall of changed labels.
    y = raf_labels()
    for seed in range(3):
        noisy, rec = inject_noise(y, RAFDB_ORDER, model, 0.4, seed, exact=True,
                                  confusion=skewed_confusion())
        assert int(np.sum(noisy != y)) == round(0.4 * y.size)
        assert np.all(np.diag(rec.transition_matrix) < 1.0)


def test_sym_targets_uniform_over_other_classes():
    c = 7
    y = balanced(60_000, c)
    noisy, _ = inject_noise(y, RAFDB_ORDER, "sym", 0.5, seed=11)
    for i in range(c):
        got = np.bincount(noisy[(y == i) & (noisy != y)], minlength=c)
        assert got[i] == 0
        others = np.delete(got, i)
        expected = others.sum() / (c - 1)
        chi2 = float(np.sum((others - expected) ** 2 / expected))
        assert chi2 < 25.0  # df = 5; P(chi2 > 25) ~ 1e-4


def test_asym_targets_are_the_mapped_class():
    y = raf_labels()
    noisy, rec = inject_noise(y, RAFDB_ORDER, "asym", 0.3, seed=2)
    names = np.array(RAFDB_ORDER)
    flipped = noisy != y
    assert flipped.any()
    mapped = np.array([ASYM_MAP[n] for n in names[y[flipped]]])
    assert np.array_equal(names[noisy[flipped]], mapped)
    # LA-Net's map, spot-checked by name.
    f = np.array(rec.flip_targets)
    assert f[RAFDB_ORDER.index("happiness"), RAFDB_ORDER.index("neutral")] == 1.0
    assert f[RAFDB_ORDER.index("surprise"), RAFDB_ORDER.index("anger")] == 1.0


def test_confusion_targets_follow_off_diagonal():
    m = skewed_confusion()
    y = balanced(80_000)
    noisy, rec = inject_noise(y, RAFDB_ORDER, "confusion", 0.5, seed=4, confusion=m)
    for i in range(7):
        got = np.bincount(noisy[(y == i) & (noisy != y)], minlength=7).astype(float)
        off = m[i].copy()
        off[i] = 0
        assert got[i] == 0
        assert np.allclose(got / got.sum(), off / off.sum(), atol=0.02)


def test_confusion_model_errors():
    with pytest.raises(ValueError, match="needs a confusion matrix"):
        flip_targets("confusion", RAFDB_ORDER)
    m = skewed_confusion()
    m[RAFDB_ORDER.index("fear")] = 0
    m[RAFDB_ORDER.index("fear"), RAFDB_ORDER.index("fear")] = 10
    with pytest.raises(ValueError, match="fear"):
        flip_targets("confusion", RAFDB_ORDER, m)
    with pytest.raises(ValueError, match="shape"):
        flip_targets("confusion", RAFDB_ORDER, np.ones((6, 6)))


def test_asym_target_missing_from_dataset_is_named():
    with pytest.raises(ValueError, match="disgust"):
        flip_targets("asym", ("anger", "happiness", "neutral", "sadness"))


# --- class order ----------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["asym", "sym"])
@pytest.mark.parametrize("exact", [False, True])
def test_same_flips_by_name_in_any_class_order(model, exact):
    names_raf = np.array(RAFDB_ORDER)
    names_fp = np.array(FERPLUS7)
    y_raf = raf_labels(scale=0.5)
    by_name = names_raf[y_raf]
    y_fp = np.array([FERPLUS7.index(n) for n in by_name], dtype=np.int64)
    z_raf, rec_raf = inject_noise(y_raf, RAFDB_ORDER, model, 0.3, seed=9, exact=exact)
    z_fp, rec_fp = inject_noise(y_fp, FERPLUS7, model, 0.3, seed=9, exact=exact)
    assert np.array_equal(names_raf[z_raf], names_fp[z_fp])
    assert rec_raf.per_class_rate == pytest.approx(rec_fp.per_class_rate)


# --- seeds and copies -----------------------------------------------------------------------

def test_deterministic_per_seed_and_seeds_differ():
    y = raf_labels(scale=0.3)
    for exact in (False, True):
        a, ra = inject_noise(y, RAFDB_ORDER, "sym", 0.2, seed=3, exact=exact)
        b, rb = inject_noise(y, RAFDB_ORDER, "sym", 0.2, seed=3, exact=exact)
        c, _ = inject_noise(y, RAFDB_ORDER, "sym", 0.2, seed=4, exact=exact)
        assert np.array_equal(a, b) and ra.to_dict() == rb.to_dict()
        assert not np.array_equal(a, c)


def test_noise_seed_independent_of_global_and_torch_seeds():
    torch = pytest.importorskip("torch")
    y = raf_labels(scale=0.3)
    np.random.seed(1)
    torch.manual_seed(1)
    a, _ = inject_noise(y, RAFDB_ORDER, "sym", 0.2, seed=0)
    np.random.seed(12345)
    torch.manual_seed(999)
    state = np.random.get_state()
    t_state = torch.random.get_rng_state()
    b, _ = inject_noise(y, RAFDB_ORDER, "sym", 0.2, seed=0)
    c, _ = inject_noise(y, RAFDB_ORDER, "sym", 0.2, seed=1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # ...and it leaves the training RNGs where they were.
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]
    assert torch.equal(torch.random.get_rng_state(), t_state)


def test_input_untouched_and_output_is_a_copy():
    y = raf_labels(scale=0.3)
    y.flags.writeable = False  # any in-place write would raise
    before = y.copy()
    noisy, _ = inject_noise(y, RAFDB_ORDER, "asym", 0.3, seed=0)
    assert np.array_equal(y, before)
    assert not np.shares_memory(noisy, y)
    assert noisy.dtype == np.int64
    # No chaining: every changed label is exactly one asym step from its CLEAN label.
    names = np.array(RAFDB_ORDER)
    ch = noisy != y
    assert all(ASYM_MAP[a] == b for a, b in zip(names[y[ch]], names[noisy[ch]]))


# --- no-noise cases and argument errors --------------------------------------------------

@pytest.mark.parametrize("model,rate", [("sym", 0.0), ("asym", 0.0), ("none", 0.0), ("none", 0.4)])
@pytest.mark.parametrize("exact", [False, True])
def test_rate_zero_and_none_leave_labels_unchanged(model, rate, exact):
    y = raf_labels(scale=0.2)
    noisy, rec = inject_noise(y, RAFDB_ORDER, model, rate, seed=0, exact=exact)
    assert np.array_equal(noisy, y)
    assert rec.n_flipped == 0 and rec.realised_rate == 0.0
    assert all(v == 0.0 for v in rec.per_class_rate.values())
    assert np.array_equal(rec.transition_matrix, np.eye(7))
    assert "no flips" in rec.summary()


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan")])
def test_rate_outside_range_raises_with_value(rate):
    with pytest.raises(ValueError, match=re.escape(f"noise rate {rate!r} is outside [0, 1)")):
        inject_noise(raf_labels(scale=0.1), RAFDB_ORDER, "sym", rate, seed=0)


def test_bad_seed_and_labels_raise():
    y = raf_labels(scale=0.1)
    with pytest.raises(ValueError, match="seed"):
        inject_noise(y, RAFDB_ORDER, "sym", 0.1, seed=None)
    with pytest.raises(ValueError, match="0..6"):
        inject_noise(np.array([0, 7]), RAFDB_ORDER, "sym", 0.1, seed=0)


def test_unknown_model_lists_known_ones():
    with pytest.raises(UnknownNameError) as err:
        inject_noise(raf_labels(scale=0.1), RAFDB_ORDER, "pairflip-typo", 0.1, seed=0)
    msg = str(err.value)
    assert "pairflip-typo" in msg
    for known in ("asym", "confusion", "none", "sym"):
        assert known in msg


# --- records ----------------------------------------------------------------------------------

def test_transition_rows_sum_to_one_and_empty_class_is_identity():
    y = raf_labels(scale=0.2)
    y[y == RAFDB_ORDER.index("fear")] = RAFDB_ORDER.index("surprise")  # fear now absent
    noisy, rec = inject_noise(y, RAFDB_ORDER, "sym", 0.3, seed=1)
    t = rec.transition_matrix
    assert np.allclose(t.sum(axis=1), 1.0)
    fear = RAFDB_ORDER.index("fear")
    assert np.array_equal(t[fear], np.eye(7)[fear])
    assert rec.class_counts["fear"] == 0 and rec.per_class_rate["fear"] == 0.0
    # Off-diagonal of the realised matrix = per-class flip rate.
    assert np.allclose(1 - np.diag(t), [rec.per_class_rate[c] for c in RAFDB_ORDER])


def test_noise_record_by_hand_for_a_label_file():
    names = ("surprise", "fear", "happiness")
    clean = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    noisy = np.array([0, 1, 1, 2, 2, 2, 2, 1])
    rec = noise_record(clean, noisy, names, model="eac-noise01", rate=None, mode="file",
                       noise_seed=None, source="EmoLabel/noise01.txt")
    assert rec.n == 8 and rec.n_flipped == 3 and rec.realised_rate == 3 / 8
    assert rec.per_class_rate == {"surprise": 0.5, "fear": 0.5, "happiness": 0.25}
    # Label "fear": 3 carriers, 2 wrong (from surprise and happiness); "happiness": 4, 1 wrong.
    assert rec.per_label_noise == pytest.approx({"surprise": 0.0, "fear": 2 / 3, "happiness": 1 / 4})
    assert rec.transition == [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.25, 0.75]]
    assert rec.flip_targets is None and rec.source == "EmoLabel/noise01.txt"
    assert "unknown" in rec.summary()
    with pytest.raises(ValueError, match="mode"):
        noise_record(clean, noisy, names, model="x", rate=None, mode="bogus", noise_seed=None)


def test_minority_labels_are_swamped_and_recorded():
    y = raf_labels()
    _, rec = inject_noise(y, RAFDB_ORDER, "sym", 0.2, seed=0, exact=True)
    # Same flip rate per true class, but far more wrong labels among the "fear" labels.
    assert rec.per_class_rate["fear"] == pytest.approx(0.2, abs=0.01)
    assert rec.per_label_noise["fear"] > 0.5 > 0.1 > rec.per_label_noise["happiness"]


def test_record_json_round_trip():
    y = raf_labels(scale=0.2)
    _, rec = inject_noise(y, RAFDB_ORDER, "asym", 0.2, seed=5, exact=True)
    rec.label_file_sha256 = "ab" * 32
    text = json.dumps(rec.to_dict())
    back = NoiseRecord.from_dict(json.loads(text))
    assert back == rec
    assert NoiseRecord.from_json(rec.to_json()) == rec
    summary = rec.summary()
    assert "nominal rate 0.2000" in summary and "fear" in summary
    bad = rec.to_dict()
    del bad["transition"]
    with pytest.raises(ValueError, match="transition"):
        NoiseRecord.from_dict(bad)


# --- confusion files ---------------------------------------------------------------------

def test_confusion_csv_permuted_headers_and_aliases(tmp_path):
    # Rows in one order, columns in another, alias spellings, an extra class (contempt).
    cols = ["angry", "contempt", "neutral", "Happy", "sad", "surprise", "disgust", "fear"]
    rows = ["fear", "neutral", "happiness", "contempt", "sadness", "surprise", "anger", "disgust"]

    def value(r, c):  # a recognisable value per (true, predicted) pair
        order = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt")
        return 10 * order.index(r) + order.index(c)

    from fer_bench.classes import canonical_name
    text = "true\\pred," + ",".join(cols) + "\n"
    for r in rows:
        text += r + "," + ",".join(str(value(r, canonical_name(c))) for c in cols) + "\n"
    p = tmp_path / "conf.csv"
    p.write_text(text)
    m = read_confusion_csv(p, RAFDB_ORDER)
    assert m.shape == (7, 7)
    for i, r in enumerate(RAFDB_ORDER):
        for j, c in enumerate(RAFDB_ORDER):
            assert m[i, j] == value(r, c)
    # Round trip through the writer, in another order.
    q = tmp_path / "out.csv"
    write_confusion_csv(q, m, RAFDB_ORDER)
    m2 = read_confusion_csv(q, FERPLUS7)
    idx = [RAFDB_ORDER.index(n) for n in FERPLUS7]
    assert np.array_equal(m2, m[np.ix_(idx, idx)])


def test_confusion_csv_errors(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text(",neutral,happiness\nneutral,5,1\nhappiness,2,x7\n")
    with pytest.raises(ValueError, match=r"line 3, column 3 \(happiness\).*'x7'"):
        read_confusion_csv(p, ("neutral", "happiness"))
    p.write_text(",neutral,happiness\nneutral,5,1\nhappiness,2,7\n")
    with pytest.raises(ValueError, match="sadness"):
        read_confusion_csv(p, ("neutral", "happiness", "sadness"))
    p.write_text(",neutral,hapiness\nneutral,5,1\nhappiness,2,7\n")
    with pytest.raises(ValueError, match="hapiness"):
        read_confusion_csv(p, ("neutral", "happiness"))
    p.write_text(",neutral,happiness\nneutral,5,-1\nhappiness,2,7\n")
    with pytest.raises(ValueError, match="line 2, column 3"):
        read_confusion_csv(p, ("neutral", "happiness"))


def test_asym_from_confusion_csv_picks_largest_off_diagonal(tmp_path):
    # A map deliberately unlike LA-Net's: each class's runner-up is the "next" one in FERPlus order.
    m = np.full((7, 7), 3.0)
    np.fill_diagonal(m, 100.0)
    for i in range(7):
        m[i, (i + 1) % 7] = 20.0
    p = tmp_path / "conf.csv"
    write_confusion_csv(p, m, FERPLUS7)
    conf = read_confusion_csv(p, RAFDB_ORDER)
    f = flip_targets("asym", RAFDB_ORDER, conf)
    for i, name in enumerate(RAFDB_ORDER):
        expect = FERPLUS7[(FERPLUS7.index(name) + 1) % 7]
        assert RAFDB_ORDER[int(np.argmax(f[i]))] == expect and f[i].sum() == 1.0
    y = raf_labels(scale=0.2)
    noisy, _ = inject_noise(y, RAFDB_ORDER, "asym", 0.3, seed=0, confusion=conf)
    ch = noisy != y
    assert np.array_equal(noisy[ch], np.argmax(f, axis=1)[y[ch]])


# --- plugins -------------------------------------------------------------------------------

@pytest.fixture
def plugin_model():
    names = []

    def register(name, fn):
        NOISE_MODELS.register(name, fn)
        names.append(name)

    yield register
    for name in names:
        NOISE_MODELS._entries.pop(name, None)  # the registry has no public unregister


def test_plugin_noise_model_usable_by_name(plugin_model):
    def next_class(class_names, confusion=None):
        """Pair flip: class i -> class i+1 (mod C), in the dataset's order."""
        c = len(class_names)
        return np.roll(np.eye(c), 1, axis=1)

    plugin_model("test-pairflip", next_class)
    assert "test-pairflip" in NOISE_MODELS
    y = raf_labels(scale=0.2)
    noisy, rec = inject_noise(y, RAFDB_ORDER, "test-pairflip", 0.25, seed=0, exact=True)
    ch = noisy != y
    assert ch.sum() == round(0.25 * y.size)
    assert np.array_equal(noisy[ch], (y[ch] + 1) % 7)
    assert rec.model == "test-pairflip"


def test_plugin_with_mass_on_true_class_is_rejected(plugin_model):
    plugin_model("test-dividemix", lambda names, confusion=None: np.full((len(names),) * 2, 1 / len(names)))
    with pytest.raises(ValueError, match="true class"):
        inject_noise(raf_labels(scale=0.1), RAFDB_ORDER, "test-dividemix", 0.2, seed=0)
    plugin_model("test-columns", lambda names, confusion=None: np.triu(np.ones((7, 7)), 1) / 6)
    with pytest.raises(ValueError, match="sum to 1"):
        flip_targets("test-columns", RAFDB_ORDER)
