"""Checkpoints: atomic, self-describing, and checked on load.

Two kinds share one format (a ``torch.save`` dict, loaded with ``weights_only=True``):

- ``resume``: model, optimizer, scheduler, per-rank RNG states, step and elapsed time; the
  trainer writes it every ``ckpt_every`` steps so a run killed with SIGKILL resumes to the
  same final state as an uninterrupted run (``tests/test_train.py::test_sigkill_resume_is_exact``).
- ``model``: float32 weights and the config only, for diagnostics
  (``results/table1-cpu/checkpoints/<condition>.pt``).

:func:`load_model` turns either kind into ``(model, train_config)``; a missing, corrupt or
foreign file, or one whose weights do not fit its config, raises :class:`CheckpointError`
saying which and what to do.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import torch

from blindspot.provenance import atomic_write_bytes
from blindspot.train.config import ConfigError, TrainConfig, flatten, from_dict, to_dict, upgrade

FORMAT = "blindspot-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, of another format, or does not fit its config."""


def build_model(cfg: TrainConfig) -> torch.nn.Module:
    """A fresh :class:`blindspot.nn.LoopedLM` for ``cfg.model`` (initialized from torch's RNG)."""
    from blindspot.nn import LoopedLM

    return LoopedLM(cfg.model)


def save(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **payload}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def save_model(path: str | os.PathLike, model: torch.nn.Module, cfg: TrainConfig,
               **extra: Any) -> Path:
    """A model-only checkpoint: float32 weights on CPU plus the config."""
    state = {k: v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.cpu()
             for k, v in model.state_dict().items()}
    return save(path, {"kind": "model", "config": to_dict(cfg), "model": state, **extra})


def read(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint dict, after checking that it is ours and of a version we read."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with "
                              f"`blindspot train PRESET` or check the path")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for damaged files
        raise CheckpointError(f"checkpoint {path} is unreadable ({_load_failure(e)}); it is "
                              f"corrupt or not a blindspot checkpoint: re-run training to "
                              f"rewrite it") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a blindspot checkpoint (no format={FORMAT!r} "
                              f"field); pass a file written by `blindspot train`")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {ckpt.get('version')}, this "
                              f"blindspot reads version {VERSION}; retrain or use a matching "
                              f"blindspot version")
    for key in ("config", "model"):
        if key not in ckpt:
            raise CheckpointError(f"{path} lacks the {key!r} entry; it is damaged, re-train")
    return ckpt


def _load_failure(e: Exception) -> str:
    """What torch.load found wrong, in one line, without torch's advice to load with
    weights_only=False: that runs code from the file, which a checkpoint never needs."""
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
    if found:
        return f"it holds a {found[1]} object, and a checkpoint holds only tensors and numbers"
    if "weights only load failed" in str(e).lower():
        return "not a torch file of tensors"
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {first.split('. ')[0][:200]}"


def config_of(ckpt: dict[str, Any], path: str | os.PathLike = "checkpoint") -> TrainConfig:
    try:
        return from_dict(TrainConfig, upgrade(ckpt["config"]))
    except ConfigError as e:
        raise CheckpointError(f"{path}: its config does not load in this blindspot version: "
                              f"{e}") from e


def load_model(path: str | os.PathLike) -> tuple[torch.nn.Module, TrainConfig]:
    """``(model, train_config)`` from a resume or model checkpoint; the model is in eval mode
    on CPU in float32."""
    ckpt = read(path)
    cfg = config_of(ckpt, path)
    model = build_model(cfg)
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: the weights do not fit the model its config describes "
                              f"({str(e)[:300]}); the file mixes configs, re-train it") from e
    model.eval()
    return model, cfg


def config_diff(a: TrainConfig, b: TrainConfig) -> list[str]:
    """``["lr: 0.001 != 0.002", ...]``: the keys where two configs differ (nested with dots)."""
    fa, fb = flatten(to_dict(a)), flatten(to_dict(b))
    return [f"{k}: {fa.get(k)!r} != {fb.get(k)!r}" for k in sorted(set(fa) | set(fb))
            if fa.get(k) != fb.get(k)]
