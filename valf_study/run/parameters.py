"""The parameters of one training run: names, defaults, checks and the run id.

A run of the study is one call of :func:`valf_study.run.train.train` (one execution of
``notebooks/train.ipynb``) with a flat dict of parameters. This module is the
single place that knows them: :data:`PARAMETERS` lists each with its default
(the paper's protocol, as the book's Method chapter states it) and its check;
:func:`resolve_parameters` fills defaults, rejects unknown names and invalid
values (naming the valid choices) and normalises what a loss does not use to
``None``, so that two spellings of one run resolve to the same dict and the
same :func:`run_id`.

Study files (:mod:`valf_study.studies`), the notebook's parameters cell and the sweep
all go through :func:`resolve_parameters`; the core (:mod:`valf_study.run.train`)
trusts what it returns. Importing this module loads no deep-learning backend.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re

from valf_study.data import dataset as datasets
from valf_study.data.synthetic.settings import DEFAULTS as SYNTHETIC_DEFAULTS
from valf_study.data.synthetic.settings import check_settings as check_synthetic_settings
from valf_study.run.backbones import BACKBONES
from valf_study.run.objective import LOSSES as LOSS_REGISTRY

__all__ = [
    "LOSSES",
    "PARAMETERS",
    "ParameterError",
    "check_class_lists",
    "check_parameter",
    "from_namespace",
    "method_label",
    "parameter_hash",
    "resolve_parameters",
    "run_id",
]

#: The losses a run can train with: the keys of :data:`valf_study.run.objective.LOSSES`.
LOSSES = tuple(LOSS_REGISTRY)
#: The data sets a run can read: the names of :func:`valf_study.data.dataset.registry`.
DATASETS = tuple(sorted(datasets.registry()))
SPLITS = ("official", "patient", "stratified", "cv", "kfold")
FOLDED_SPLITS = ("cv", "kfold")
PRIORS = ("uniform", "inverse_frequency")
SAMPLERS = ("none", "undersample", "oversample")
MAGNIFICATIONS = tuple(
    sorted({m for d in datasets.registry().values() for m in (d.magnifications or ())})
)

# Which loss uses which loss-specific parameter (from the registry); the others are None.
_USED_BY = {}
for _entry in LOSS_REGISTRY.values():
    for _name in _entry.parameters:
        _USED_BY.setdefault(_name, set()).add(_entry.name)

# Parameters only some data sets take (from the registry); the others record them as None.
_DATA_OPTIONS = {}
for _set in datasets.registry().values():
    for _name in _set.options:
        _DATA_OPTIONS.setdefault(_name, set()).add(_set.name)

#: The run parameters only some data sets take (a study file's data block sets them).
DATA_OPTIONS = tuple(sorted(_DATA_OPTIONS))

# Parameters that resolve_parameters sets to None where they do not apply.
_NULL_MEANS_DEFAULT = set(_USED_BY) - {"alpha"} | {
    "split_seed",
    "fold",
    "n_folds",
    "split_fractions",
    "magnification",
    "image_scale",
}
# Splits drawn at random (their seed applies).
_SEEDED_SPLITS = ("patient", "stratified", "cv", "kfold")


class ParameterError(ValueError):
    """A run parameter is unknown or has an invalid value."""


# ---------------------------------------------------------------------------
# Checks: each takes (value, name) and returns the normalised value or raises.
# ---------------------------------------------------------------------------


def _fail(name, value, expected):
    raise ParameterError(f"Parameter `{name}` must be {expected}, received {value!r}.")


def _number(value, name, expected):
    # PyYAML reads 1e-4 (no dot) as a string; accept numeric strings for numbers.
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            _fail(name, value, expected)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(name, value, expected)
    return value


def _float_check(low=None, high=None, low_open=False, optional=False):
    expected = "a number"
    if low is not None:
        expected += f" {'>' if low_open else '>='} {low}"
    if high is not None:
        expected += f" and <= {high}"
    if optional:
        expected += ", or null"

    def check(value, name):
        if value is None and optional:
            return None
        value = float(_number(value, name, expected))
        if low is not None and (value < low or (low_open and value == low)):
            _fail(name, value, expected)
        if high is not None and value > high:
            _fail(name, value, expected)
        return value

    return check


def _int_check(low=0, optional=False):
    expected = f"an integer >= {low}" + (", or null" if optional else "")

    def check(value, name):
        if value is None and optional:
            return None
        value = _number(value, name, expected)
        if float(value) != int(value) or value < low:
            _fail(name, value, expected)
        return int(value)

    return check


def _split_seed(value, name):
    if value == "seed":  # the run's seed, resolved once the seed is known
        return value
    return _int_check()(value, name)


def _choice(*choices):
    def check(value, name):
        if value not in choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ParameterError(
                f"Parameter `{name}` must be one of {list(choices)}, received {value!r}.{hint}"
            )
        return value

    return check


def _bool(value, name):
    if not isinstance(value, bool):
        _fail(name, value, "true or false")
    return value


def _text(pattern=r".+", expected="a non-empty string"):
    def check(value, name):
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            _fail(name, value, expected)
        return value

    return check


def _backbone(value, name):
    return _choice(*sorted(BACKBONES))(value, name)


def _weights(value, name):
    if value in (None, "none", "None"):
        return None
    return _choice("imagenet")(value, name)


def _positive_list(value, name, expected):
    if not isinstance(value, (list, tuple)) or not value:
        _fail(name, value, expected)
    out = [float(_number(v, name, expected)) for v in value]
    if any(v <= 0 for v in out):
        _fail(name, value, expected)
    return out


def _alpha(value, name):
    expected = "null, a number > 0, or a list of one number > 0 per class"
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return _positive_list(value, name, expected)
    value = float(_number(value, name, expected))
    if value <= 0:
        _fail(name, value, expected)
    return value


def _prior(value, name):
    expected = f"one of {list(PRIORS)} or a list of one weight > 0 per class"
    if isinstance(value, str):
        return _choice(*PRIORS)(value, name)
    return _positive_list(value, name, expected)


def _optional_text(value, name):
    if value is None:
        return None
    return _text()(value, name)


def _group_rule(value, name):
    if value is None:
        return None
    value = _text()(value, name)
    try:
        pattern = re.compile(value)
    except re.error as error:
        _fail(name, value, f"a regular expression ({error})")
    if pattern.groups > 1:
        _fail(name, value, "a regular expression with at most one group")
    return value


def _image_size(value, name):
    expected = "null or [height, width], two integers >= 8"
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        _fail(name, value, expected)
    size = [_number(v, name, expected) for v in value]
    if any(float(v) != int(v) or v < 8 for v in size):
        _fail(name, value, expected)
    return [int(v) for v in size]


def _fractions(value, name):
    expected = "three shares (train, val, test), each > 0, summing to 1"
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        _fail(name, value, expected)
    shares = [float(_number(v, name, expected)) for v in value]
    if any(v <= 0 for v in shares) or abs(sum(shares) - 1) > 1e-9:
        _fail(name, value, expected)
    return shares


def _cdb_tau(value, name):
    if value == "dynamic":
        return value
    if isinstance(value, str):
        _fail(name, value, "a number > 0 or 'dynamic'")
    return _float_check(0, low_open=True)(value, name)


def _beta(value, name):
    value = float(_number(value, name, "a number in [0, 1)"))
    if not 0 <= value < 1:
        _fail(name, value, "a number in [0, 1)")
    return value


def _jit(value, name):
    if value not in ("auto", True, False):
        _fail(name, value, '"auto", true or false')
    return value


def _synthetic(value, name):
    if value is None:
        return None
    if not isinstance(value, dict):
        _fail(name, value, f"null or a mapping with keys {sorted(SYNTHETIC_DEFAULTS)}")
    unknown = sorted(set(value) - set(SYNTHETIC_DEFAULTS))
    if unknown:
        raise ParameterError(
            f"Parameter `{name}` has unknown keys {unknown}; valid keys are "
            f"{sorted(SYNTHETIC_DEFAULTS)}."
        )
    try:
        return check_synthetic_settings(**{**SYNTHETIC_DEFAULTS, **value})
    except ValueError as error:
        raise ParameterError(f"Parameter `{name}`: {error}") from None


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------


class _Parameter:
    __slots__ = ("added", "check", "default", "doc", "hashed", "name")

    def __init__(self, name, default, check, doc, hashed=True, added=False):
        self.name, self.default, self.check, self.doc = name, default, check, doc
        self.hashed, self.added = hashed, added


def _p(name, default, check, doc, hashed=True, added=False):
    """A parameter; ``added``: introduced after runs were recorded, so left out of the run id
    where it does not apply (None), and every run recorded before it keeps its id."""
    return name, _Parameter(name, default, check, doc, hashed, added)


#: Every run parameter: name -> default, check, whether it enters the run id, and meaning.
PARAMETERS = dict(
    [
        # Where the run's files go (not part of the run's identity).
        _p("runs_root", "runs", _text(), "folder of all run directories", hashed=False),
        _p("cache_dir", ".cache", _text(), "folder of the decoded-image cache", hashed=False),
        _p("keep_weights", True, _bool, "keep best.weights.h5 in the run directory", hashed=False),
        # The cell of the study.
        _p("backbone", "SmallCNN", _backbone, "network (valf_study.run.backbones.BACKBONES)"),
        _p("weights", None, _weights, "'imagenet' or null (random initialisation)"),
        _p("loss", "VALF", _choice(*LOSSES), "training loss"),
        _p(
            "magnification",
            "20x",
            _choice(*MAGNIFICATIONS),
            "magnification (LungHist700 and its stand-in; null for a data set without them)",
        ),
        _p("seed", 0, _int_check(), "seed of initialisation, order and augmentation"),
        # Data.
        _p(
            "dataset",
            "synthetic",
            _choice(*DATASETS),
            "a data set of valf_study.data.sets: 'lunghist700' (the release), 'synthetic' "
            "(the generated stand-in), 'folder' (your own images, one folder per class), ...",
        ),
        _p(
            "data_root",
            "data/synthetic",
            _text(),
            "release root (the folder with data.csv), or the folder of class folders",
        ),
        _p(
            "synthetic",
            dict(SYNTHETIC_DEFAULTS),
            _synthetic,
            "generator settings of the synthetic set (null for lunghist700)",
        ),
        _p(
            "split",
            "official",
            _choice(*SPLITS),
            "'official': LungHist700's patient split, or a folder's split file; 'patient': "
            "a seeded split by patient; 'stratified': a seeded split stratified by class and "
            "grouped (a folder's default without a split file); 'cv': folds of the training "
            "split (for choosing a parameter); 'kfold': cross-validation over every image",
        ),
        _p(
            "split_csv",
            None,
            _optional_text,
            "folder data set: CSV with path and split and/or group (null: none)",
        ),
        _p(
            "group_rule",
            None,
            _group_rule,
            "folder data set: regular expression naming an image's group in its path",
        ),
        _p(
            "split_fractions",
            [0.7, 0.15, 0.15],
            _fractions,
            "shares of train, val and test of the 'patient' and 'stratified' splits",
        ),
        _p(
            "split_seed",
            0,
            _split_seed,
            "seed of the seeded splits and of the folds; 'seed': the run's seed, so that the "
            "folds of a cross-validation change with it (resolved and recorded as a number)",
        ),
        _p("fold", 0, _int_check(), "the held-out fold with split='cv' or 'kfold'"),
        _p("n_folds", 5, _int_check(2), "folds with split='cv' or 'kfold'"),
        _p("sampler", "none", _choice(*SAMPLERS), "training-set resampling baseline"),
        _p(
            "imbalance_ratio",
            None,
            _float_check(1, optional=True),
            "long-tailed subsampling of the training set to this max/min ratio (null: none)",
        ),
        # Input.
        _p(
            "image_scale",
            0.25,
            _float_check(0, 1, low_open=True),
            "network input is (1200 r) x (1600 r), unless image_size is given",
        ),
        _p("image_size", None, _image_size, "network input [height, width] (null: image_scale)"),
        _p("augment", True, _bool, "apply the paper's training augmentation"),
        _p(
            "fast_augmentation",
            False,
            _bool,
            "resize first, then augment (valf_study.data.augment)",
        ),
        # Optimisation (the paper's protocol: book/method.md, section "Protocol").
        _p("learning_rate", 1e-4, _float_check(0, low_open=True), "Adam learning rate"),
        _p("batch_size", 4, _int_check(1), "batch size"),
        _p("epochs", 100, _int_check(1), "maximum number of epochs"),
        _p("early_stopping_patience", 25, _int_check(1), "EarlyStopping(val_loss) patience"),
        _p("reduce_lr_patience", 10, _int_check(1), "ReduceLROnPlateau(val_loss) patience"),
        _p("reduce_lr_factor", 0.1, _float_check(0, 1, low_open=True), "ReduceLROnPlateau factor"),
        _p("min_lr", 1e-7, _float_check(0), "ReduceLROnPlateau lower bound"),
        _p("deterministic", False, _bool, "TensorFlow op determinism (slower)"),
        _p("jit_compile", "auto", _jit, "XLA: 'auto' (GPU only), true or false"),
        _p(
            "dtype_policy",
            "float32",
            _choice("float32", "mixed_float16", "mixed_bfloat16"),
            "Keras dtype policy of the model; the softmax head and the losses stay float32",
        ),
        # Losses.
        _p("gamma", 2.0, _float_check(0), "focusing parameter (FL, CB, CEFL, CEFL2, DWFL, VALF)"),
        _p("alpha", None, _alpha, "FL balance factor: null, a number or one per class"),
        _p("cb_beta", 0.999, _float_check(0, 1, low_open=True), "CB: beta of the effective number"),
        _p("prior", "uniform", _prior, "DWFL/VALF initial weights"),
        _p("warmup_epochs", 10, _int_check(), "VALF: epochs before the first update"),
        _p("rate", 0.01, _float_check(0, low_open=True), "VALF: update rate r (eq. 7)"),
        _p("dwfl_smoothing", 0.1, _float_check(0, low_open=True), "DWFL: smoothing s"),
        _p(
            "cdb_tau",
            "dynamic",
            _cdb_tau,
            "CDB: exponent tau of the class difficulty, a number > 0 or 'dynamic'",
            added=True,
        ),
        _p("drw_beta", 0.9999, _beta, "DRW: beta of the effective number", added=True),
    ]
)


def resolve_parameters(params=None, **overrides):
    """Fill defaults, check every value and normalise; return a new dict.

    Parameters
    ----------
    params : mapping, optional
        Some or all of :data:`PARAMETERS`.
    **overrides
        More parameters, taking precedence.

    Returns
    -------
    dict
        Every parameter, in :data:`PARAMETERS` order. Loss-specific parameters
        the loss does not use are ``None``; ``synthetic`` is ``None`` for
        LungHist700.

    Raises
    ------
    ParameterError
        An unknown name (with the closest valid one), an invalid value (with
        the valid choices), or values that contradict each other.

    Examples
    --------
    >>> p = resolve_parameters(loss="CCE", learning_rate="1e-5")
    >>> p["learning_rate"], p["gamma"]
    (1e-05, None)
    >>> resolve_parameters(p) == p  # idempotent
    True
    >>> resolve_parameters(los="CCE")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    valf_study.run.parameters.ParameterError: Unknown parameter `los` (did you mean `loss`?)...
    """
    given = {**(params or {}), **overrides}
    _check_names(given)
    resolved = {
        name: check_parameter(name, given.get(name, spec.default))
        for name, spec in PARAMETERS.items()
    }
    return _normalise(resolved, given)


def _check_names(names):
    unknown = [name for name in names if name not in PARAMETERS]
    if unknown:
        details = []
        for name in unknown:
            close = difflib.get_close_matches(str(name), list(PARAMETERS), n=1)
            details.append(f"`{name}`" + (f" (did you mean `{close[0]}`?)" if close else ""))
        raise ParameterError(
            f"Unknown parameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(details)}. Valid parameters: "
            f"{', '.join(PARAMETERS)}."
        )


def check_parameter(name, value):
    """Check one parameter's value on its own (not against the others); return it normalised.

    Examples
    --------
    >>> check_parameter("learning_rate", "1e-5")
    1e-05
    >>> check_parameter("magnification", "20X")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    valf_study.run.parameters.ParameterError: Parameter `magnification` must be one of ...
    """
    _check_names([name])
    spec = PARAMETERS[name]
    if value is None and name in _NULL_MEANS_DEFAULT:
        # What resolve_parameters itself sets to null where unused: resolving a resolved
        # dict again must give the same dict.
        value = spec.default
    return spec.check(value, name)


def _normalise(p, given):
    loss = p["loss"]
    for name, users in _USED_BY.items():
        if loss not in users:
            p[name] = None
    data_set = datasets.get(p["dataset"])
    _normalise_data(p, given, data_set)
    _normalise_split(p, data_set)
    if p["image_size"] is not None:
        p["image_scale"] = None
    if p["backbone"] == "SmallCNN" and p["weights"] is not None:
        raise ParameterError(
            "Backbone 'SmallCNN' has no pretrained weights; set `weights` to null."
        )
    known = data_set.known_class_names(p)
    if known is not None:
        check_class_lists(p, known)
    return p


def _normalise_data(p, given, data_set):
    """The parameters that concern the data set: its own options, its magnifications, and
    whatever the data set itself checks (its splits, its defaults)."""
    for name, owners in _DATA_OPTIONS.items():
        if name in data_set.options:
            continue
        if given.get(name) not in (None, PARAMETERS[name].default):
            raise ParameterError(
                f"Parameter `{name}` applies only to dataset {' or '.join(sorted(owners))}, "
                f"not {p['dataset']!r}; leave it out (or set it to null)."
            )
        p[name] = None
    if data_set.magnifications is None:
        if given.get("magnification") is not None:
            raise ParameterError(
                f"Parameter `magnification` does not apply to dataset {p['dataset']!r}, which "
                "has no magnifications; leave it out."
            )
        p["magnification"] = None
    elif p["magnification"] not in data_set.magnifications:
        raise ParameterError(
            f"Parameter `magnification` must be one of {list(data_set.magnifications)} for "
            f"dataset {p['dataset']!r}, received {p['magnification']!r}."
        )
    try:
        data_set.normalise(p, given)
    except datasets.ParameterProblem as problem:
        raise ParameterError(str(problem)) from None


def _normalise_split(p, data_set):
    if p["split"] in FOLDED_SPLITS:
        if p["fold"] >= p["n_folds"]:
            raise ParameterError(
                f"Parameter `fold` must be below `n_folds` ({p['n_folds']}), received {p['fold']}."
            )
    else:
        if p["fold"] != 0:
            raise ParameterError(
                "Parameter `fold` applies only to split='cv' or 'kfold'; "
                f"received fold={p['fold']} with split={p['split']!r}."
            )
        p["n_folds"] = None
        p["fold"] = None
    if p["split"] not in _SEEDED_SPLITS:
        p["split_seed"] = None
    elif p["split_seed"] == "seed":
        p["split_seed"] = p["seed"]
    if not data_set.shares_split(p):
        p["split_fractions"] = None


def check_class_lists(params, class_names):
    """Check that a per-class ``alpha`` or ``prior`` lists one value per class.

    Examples
    --------
    >>> check_class_lists({"alpha": [1.0, 2.0], "prior": "uniform"}, ["a", "b", "c"])
    Traceback (most recent call last):
    ...
    valf_study.run.parameters.ParameterError: Parameter `alpha` must list one value per class (a, b, c), received [1.0, 2.0].
    """  # noqa: E501
    for name in ("alpha", "prior"):
        value = params.get(name)
        if isinstance(value, list) and len(value) != len(class_names):
            raise ParameterError(
                f"Parameter `{name}` must list one value per class "
                f"({', '.join(class_names)}), received {value!r}."
            )


def parameter_hash(params):
    """SHA-1 of the parameters that define a run (not where its files go), as hex.

    A parameter added after runs were recorded enters only where it applies (not None), so
    the runs recorded before it keep their ids."""
    identity = {
        name: params[name]
        for name, spec in PARAMETERS.items()
        if spec.hashed and not (spec.added and params[name] is None)
    }
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()


def method_label(params):
    """How a run's training method is named in tables and figures: the loss, and for VALF the
    rate of eq. 7, whose two readings (r = 0.01 on fractions, r = 1 the percentage reading)
    are different methods.

    Examples
    --------
    >>> method_label(resolve_parameters(loss="VALF", rate=1.0)), method_label({"loss": "FL"})
    ('VALF (r=1)', 'FL')
    """
    return LOSS_REGISTRY[params["loss"]].method(params)


def run_id(params):
    """The run's directory name: readable head, then a hash of its resolved parameters.

    Examples
    --------
    >>> run_id(resolve_parameters(loss="FL", seed=1))[:22]
    'FL-SmallCNN-20x-seed1-'
    >>> run_id(resolve_parameters(loss="FL")) == run_id(resolve_parameters(loss="FL", rate=5))
    True
    """
    magnification = f"{params['magnification']}-" if params.get("magnification") else ""
    return (
        f"{params['loss']}-{params['backbone']}-{magnification}"
        f"seed{params['seed']}-{parameter_hash(params)[:10]}"
    )


def from_namespace(namespace, names_before):
    """The run parameters of a notebook: the names its parameters cells defined.

    ``names_before`` is the set of global names before the parameters cell;
    every name defined since (by the parameters cell and papermill's injected
    cell) must be a run parameter.

    Examples
    --------
    >>> before = {"valf"}
    >>> from_namespace({"valf": 0, "loss": "CCE", "seed": 3}, before)["seed"]
    3
    """
    new = {
        name: value
        for name, value in namespace.items()
        if name not in names_before and not name.startswith("_")
    }
    return resolve_parameters(new)
