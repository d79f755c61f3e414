"""``blindspot predict PRESET [--set key=value ...]``: the growth law's prediction of every
loop's ‖H_k‖ over training for any configuration, before anyone trains it.

:func:`predict_config` takes a :class:`~blindspot.train.config.TrainConfig` and returns the
prediction: its regime, per-loop ‖H_k‖ at a few steps up to ``cfg.steps``, the uncertainty
band (the law's leave-one-arm-out rms log error, as a factor), and what of the config lies
outside the ranges the law was fitted on. The law and its constants: :mod:`blindspot.toy.growth_law`
(:data:`blindspot.experiments.growth_law.LAW`, fitted on the study's first phase).

Regimes: ``self_logit`` (the law applies), ``scale_visible`` (a raw readout, a norm penalty
or terminal supervision without a normalized readout: a loss sees the scale, which stays in
the tens in the CPU grid; the law says nothing more), ``scale_removed`` (an inter-loop norm:
bounded by construction), ``floor`` (an untied readout or embeddings too small for the
self-logit to matter: the law does not predict the size).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import numpy as np

from blindspot.train.config import TrainConfig


def regime(cfg: TrainConfig) -> tuple[str, str]:
    """(regime, why) of ``cfg`` (see the module doc)."""
    m = cfg.model
    if m.inter_loop_norm:
        return "scale_removed", "an inter-loop norm removes the scale from the loop"
    if m.readout != "norm" or cfg.norm_penalty > 0:
        return "scale_visible", (f"readout {m.readout!r}, norm penalty {cfg.norm_penalty:g}: a "
                                 "loss sees the scale")
    if cfg.supervision != "per_loop":
        return "outside", ("terminal supervision: the law was fitted on per-loop CE only "
                           "(the CPU grid's terminal + RMSNorm runs also blow up)")
    if cfg.lr_schedule != "constant":
        return "outside", "the law's clock was fitted on constant learning rates only"
    if not m.tie_embeddings:
        return "floor", "an untied readout does not decode the state as the current token"
    if m.norm != "rmsnorm":
        return "outside", "the law was fitted with RMSNorm only"
    return "self_logit", "per-loop CE through a tied RMSNorm readout, no inter-loop norm"


def initial_scales(cfg: TrainConfig, batch: int = 4) -> list[float]:
    """Mean ‖H_k‖ per loop of the seeded model at init on random tokens (no corpus needed:
    at init the scale depends on the embeddings' statistics, not on the text)."""
    import torch

    from blindspot.train.checkpoint import build_model

    torch.manual_seed(cfg.seed)
    model = build_model(cfg).eval()
    g = torch.Generator().manual_seed(cfg.seed)
    idx = torch.randint(0, cfg.model.vocab_size, (batch, cfg.data.seq_len), generator=g)
    with torch.no_grad():
        out = model(idx, logits="none")
    return [h.norm(dim=-1).mean().item() for h in out.states]


def predict_config(cfg: TrainConfig, law=None, steps: list[int] | None = None,
                   s0: list[float] | None = None) -> dict[str, Any]:
    """The prediction for ``cfg`` (see the module doc). ``steps``: where (default 8 steps,
    log-spaced up to ``cfg.steps``); ``s0``: the per-loop ‖H_k‖ at init (computed from the
    seeded model when None)."""
    from blindspot.experiments.growth_law import LAW
    from blindspot.experiments.scale_prediction import embed_std
    from blindspot.experiments.sensitivity import lr_per_step
    from blindspot.toy.scale_growth import cumulative_lr

    law = LAW if law is None else law
    m = cfg.model
    kind, why = regime(cfg)
    if steps is None:
        steps = sorted({int(round(x)) for x in np.geomspace(1, cfg.steps, 8)})
    tau_all = cumulative_lr(lr_per_step(cfg))
    tau = tau_all[steps]
    word = cfg.data.tokenizer == "word"
    out: dict[str, Any] = {
        "config": cfg.name, "regime": kind, "why": why, "steps": steps,
        "tau": tau.tolist(), "d_model": m.d_model, "num_loops": m.num_loops,
        "n_layers": m.n_layers, "vocab": cfg.data.tokenizer, "embed_std": embed_std(cfg),
        "uncertainty_factor": math.exp(max(law.cv_log_sd, law.log_sd)),
        "outside_domain": law.domain_issues(d=m.d_model, K=m.num_loops, L=m.n_layers,
                                            lr=cfg.lr, tau=float(tau_all[-1]))}
    if kind != "self_logit":
        return out
    s0 = initial_scales(cfg) if s0 is None else s0
    pred = law.loop_scales(tau, s0[0], m.d_model, m.num_loops, m.n_layers, embed_std(cfg),
                           1.0, word, cfg.lr)
    out.update({"s0": s0, "scale": pred["scale"].tolist(),
                "scale_final": pred["scale"][-1].tolist(),
                "scale_K": pred["scale"][:, -1].tolist(),
                "plateau_first": pred.params["plateau_first"],
                "tau_plateau": float(pred["tau_plateau"])})
    return out


def format_prediction(p: dict[str, Any]) -> str:
    lines = [f"{p['config']}: regime {p['regime']} ({p['why']})"]
    if p["regime"] != "self_logit":
        return "\n".join(lines)
    f = p["uncertainty_factor"]
    lines.append(f"d {p['d_model']}, K {p['num_loops']}, L {p['n_layers']}, vocabulary "
                 f"{p['vocab']}, sigma_E {p['embed_std']:g}; ‖H_k‖ at init "
                 + "/".join(f"{x:.1f}" for x in p["s0"])
                 + f"; uncertainty x{f:.2f} either way")
    lines.append("step       tau      ‖H_k‖ per loop (k = 1..K)")
    for step, tau, row in zip(p["steps"], p["tau"], p["scale"], strict=True):
        lines.append(f"{step:>7,}  {tau:8.4f}  " + "  ".join(f"{x:>9,.0f}" for x in row))
    if p["outside_domain"]:
        lines.append("outside the fitted domain (an extrapolation): "
                     + "; ".join(p["outside_domain"]))
    else:
        lines.append("inside the fitted domain")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from blindspot.train.config import ConfigError, load_config

    p = argparse.ArgumentParser(prog="blindspot predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("preset", help="preset name (e.g. cpu-per_loop-norm, 44m-per_loop-norm) or "
                   "a YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="config override (repeatable)")
    p.add_argument("--json", help="also write the prediction to this JSON file")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.preset, args.overrides)
        pred = predict_config(cfg)
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_prediction(pred))
    if args.json:
        from blindspot.provenance import atomic_write_json

        atomic_write_json(args.json, pred)
    return 0


if __name__ == "__main__":
    sys.exit(main())

