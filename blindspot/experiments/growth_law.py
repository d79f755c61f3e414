"""Experiment ``growth-law``: what sets the size of the blow-up, along every axis between the
CPU tier and the paper's run, each arm predicted before it is trained.

Every arm is per-loop CE through an RMSNorm readout tied to the token embedding, without
inter-loop norm (the paper's blind condition), with the paper's init and optimizer recipe, on
the CPU preset (d_model 128, 2 layers x K = 4, 16 windows of 64 bytes of Shakespeare, lr 2e-3,
200 steps, dropout 0.1, bf16) with one thing changed, or, in the second phase, several:

- ``width``: d_model in {64, 256, 512} (128 is ``base``), heads d/32 (head width 32 as in
  the preset);
- ``loops``: K in {2, 8}; ``layers``: layers per loop L in {1, 4, 8};
- ``vocab``: the paper's regex word tokenizer (20,000 cap, minimum frequency 2) on the same
  text, instead of bytes;
- ``tokens``: 4x the tokens per step (windows of 128, batch 32), at the CPU lr for 200 steps
  and at the paper's 3e-4 for 600;
- ``length``: training length, as the cumulative learning rate tau = sum of the step lrs
  (0.4 for the CPU tier, about 30 for the paper's run): 5,000 steps at 3e-4 at d = 64,
  2,000 steps at 2e-3 at d = 64, 1,000 steps at 3e-4 at d = 128, and the longest d = 512 run
  the study's budget holds.

Not the paper's, and why: the explicit attention kernel (``model.attention_kernel=explicit``:
the same function as torch's SDPA, other dropout masks) because it trains about 1.15x faster
on this CPU in bf16; every run logs the training batch's per-loop ‖H_k‖ every 5 steps and
evaluates (32 validation windows) ten times, recording the mechanism of
:mod:`blindspot.train.mechanism` (the state's split along E[x_t] and P[t], the self-logit,
sigma_E, the readout gain, the radial increments, the per-token distribution of ‖H_K‖).

Protocol (the order is in git: a phase's predictions file is committed before its runs):

1. ``blindspot experiment growth-law-predict --phase 1`` writes
   ``results/growth-law/predictions-phase1.json``: the committed self-logit model
   (:mod:`blindspot.experiments.scale_prediction`, constants fitted on the sensitivity study's
   four calibration arms, not refitted) applied to every phase-1 run.
2. ``blindspot experiment growth-law --phase 1 --workers 2`` trains them into
   ``results/growth-law/per_run/`` and writes ``summary.json`` and ``table.md``.
3. The revised law (:mod:`blindspot.toy.growth_law`) is written from what phase 1 measures and
   its constants fitted on phase-1 runs only; ``--phase 2`` predicts and then trains new
   combinations that phase 1 did not run; the claims ``growth.*`` compare.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blindspot.experiments.grid import (
    RUN_LOGS,
    finished,
    format_scale,
    read_metrics,
    read_summary,
    spawn_workers,
    train_shard,
)
from blindspot.provenance import atomic_write_json, atomic_write_text, run_card
from blindspot.train.config import TrainConfig, load_config

OUT = "results/growth-law"
LOG_EVERY = 5
EVALS = 10  # evaluations (with the mechanism record) per run, besides the one at init
BASE = ("model.attention_kernel=explicit", f"log_every={LOG_EVERY}", "eval_windows=32")


def _width(d: int) -> tuple[str, ...]:
    return (f"model.d_model={d}", f"model.n_heads={d // 32}")


WORD_VOCAB = ("data.tokenizer=word", "data.vocab_size=20000", "data.min_freq=2",
              "model.vocab_size=20000")


@dataclass(frozen=True)
class Arm:
    """One configuration of the study: the CPU preset's per-loop + RMSNorm run with
    ``overrides``, trained once per seed."""

    name: str
    group: str
    phase: int
    overrides: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0, 1)
    factors: dict[str, Any] = field(default_factory=dict)

    def config(self, seed: int, extra: tuple[str, ...] = ()) -> TrainConfig:
        cfg = load_config("cpu-per_loop-norm", (*BASE, *self.overrides, f"seed={seed}", *extra))
        return dataclasses.replace(cfg, eval_every=max(cfg.steps // EVALS, 1))

    def runs(self, extra: tuple[str, ...] = ()) -> list[tuple[str, TrainConfig]]:
        return [(f"{self.name}-seed{s}", self.config(s, extra)) for s in self.seeds]


def _phase1() -> list[Arm]:
    arms = [Arm("base", "base", 1, factors={})]
    for d in (64, 256, 512):
        arms.append(Arm(f"d{d}", "width", 1, _width(d), (0, 1), {"d_model": d}))
    for K in (2, 8):
        arms.append(Arm(f"K{K}", "loops", 1, (f"model.num_loops={K}",), (0, 1),
                        {"num_loops": K}))
    for L in (1, 4, 8):
        arms.append(Arm(f"L{L}", "layers", 1, (f"model.n_layers={L}",),
                        (0, 1) if L < 8 else (0,), {"n_layers": L}))
    arms.append(Arm("word", "vocab", 1, WORD_VOCAB, (0, 1), {"tokenizer": "word"}))
    tokens4 = ("data.seq_len=128", "data.stride=64", "model.max_seq_len=128", "batch_size=32")
    arms.append(Arm("tokens4x", "tokens", 1, tokens4, (0,), {"tokens_per_step": 4096}))
    arms.append(Arm("tokens4x-lr3e-4", "tokens", 1, (*tokens4, "lr=3e-4", "steps=600"), (0,),
                    {"tokens_per_step": 4096, "lr": 3e-4, "steps": 600}))
    arms.append(Arm("long-d64-lr3e-4", "length", 1, (*_width(64), "lr=3e-4", "steps=5000"),
                    (0,), {"d_model": 64, "lr": 3e-4, "steps": 5000}))
    arms.append(Arm("long-d64", "length", 1, (*_width(64), "steps=2000"), (0,),
                    {"d_model": 64, "steps": 2000}))
    arms.append(Arm("long-lr3e-4", "length", 1, ("lr=3e-4", "steps=1000"), (0,),
                    {"lr": 3e-4, "steps": 1000}))
    arms.append(Arm("long-d512-lr3e-4", "length", 1, (*_width(512), "lr=3e-4", "steps=600"),
                    (0,), {"d_model": 512, "lr": 3e-4, "steps": 600}))
    return arms


def _phase2() -> list[Arm]:
    """New combinations of the phase-1 axes (and one width and one length phase 1 did not
    reach), each predicted by the law fitted on phase 1 only."""
    return [
        Arm("p2-d256-K8", "combined", 2, (*_width(256), "model.num_loops=8"), (0,),
            {"d_model": 256, "num_loops": 8}),
        Arm("p2-d64-K2-L8", "combined", 2, (*_width(64), "model.num_loops=2",
                                           "model.n_layers=8"), (0, 1),
            {"d_model": 64, "num_loops": 2, "n_layers": 8}),
        Arm("p2-d256-L1-word", "combined", 2, (*_width(256), "model.n_layers=1", *WORD_VOCAB),
            (0,), {"d_model": 256, "n_layers": 1, "tokenizer": "word"}),
        Arm("p2-d512-K2-L1", "combined", 2, (*_width(512), "model.num_loops=2",
                                            "model.n_layers=1"), (0,),
            {"d_model": 512, "num_loops": 2, "n_layers": 1}),
        Arm("p2-d384", "combined", 2, _width(384), (0,), {"d_model": 384}),
        Arm("p2-d64-K2-L1-long", "combined", 2, (*_width(64), "model.num_loops=2",
                                                "model.n_layers=1", "steps=3000"), (0,),
            {"d_model": 64, "num_loops": 2, "n_layers": 1, "steps": 3000}),
    ]


ARMS: dict[str, Arm] = {a.name: a for a in _phase1() + _phase2()}
"""Every arm by name, both phases."""


def phase_arms(phase: int) -> list[Arm]:
    arms = [a for a in ARMS.values() if a.phase == phase]
    if not arms:
        raise ValueError(f"growth-law has no phase {phase}; phases: "
                         f"{sorted({a.phase for a in ARMS.values()})}")
    return arms


def planned(phase: int, overrides: tuple[str, ...] = ()) -> list[tuple[str, Arm, TrainConfig]]:
    """(run name, arm, config) of every run of ``phase``, the cheap runs first."""
    runs = [(name, arm, cfg) for arm in phase_arms(phase) for name, cfg in arm.runs(overrides)]
    return sorted(runs, key=lambda r: _cost(r[2]))


def _cost(cfg: TrainConfig) -> float:
    """Relative cost of a run (FLOPs per step x steps, up to a constant), for ordering."""
    m = cfg.model
    body = m.n_layers * m.num_loops * 12 * m.d_model ** 2
    head = m.num_loops * m.d_model * m.vocab_size * 2
    return cfg.steps * cfg.batch_size * cfg.data.seq_len * (body + head)


# ----------------------------------------------------------------------------- predictions

def _law():
    from blindspot.toy.growth_law import GrowthLaw

    return GrowthLaw(
        kappa=0.20616691771786116, q_d=-0.15544565334200172, q_dd=0.1705748544681633,
        q_K=-0.27888311706383934, q_L=0.2827446337077105, q_lr=0.18093880803830653,
        word_factor=0.9344238836076597, rho=0.7333378768064666, r_d=0.2900118750298567,
        r_lr=0.35093802387481643, nu=0.28422321154637203, mu=0.8795789651604436,
        rate=5428.526588864593, log_sd=0.06064283830356076,
        domain={"d": [64, 256], "K": [2, 8], "L": [1, 8], "lr": [0.0003, 0.002],
                "tau": [0.0, 3.999999999999781]},
        cv_log_sd=0.10594589899926762)


LAW = _law()
"""The growth law fitted on phase 1 (by :func:`fit_law` of the committed
``results/growth-law/summary.json``), written out so that ``blindspot predict`` needs no result
file (``tests/test_growth_law_study.py`` checks that refitting reproduces it)."""



def predictions_path(phase: int, out: str | Path | None = None) -> Path:
    return Path(out or OUT) / f"predictions-phase{phase}.json"


def predict(phase: int, out: str | Path | None = None, overrides: tuple[str, ...] = (),
            log=print) -> dict[str, Any]:
    """Write the predictions of every run of ``phase`` (see the module doc)."""
    runs = planned(phase, overrides)
    if phase == 2:  # also the phase-1 runs the law was not fitted on (still training then)
        runs += [r for r in planned(1, overrides) if r[0] in FIT_EXCLUDES]
    result = _predict_self_logit(runs) if phase == 1 else _predict_revised(phase, runs, out)
    result["run_card"] = run_card(config={"phase": phase, "runs": sorted(result["runs"]),
                                          "overrides": list(overrides)}, seed=None)
    path = predictions_path(phase, out)
    atomic_write_json(path, result)
    for name, r in result["runs"].items():
        s0 = r['s0'][-1] if isinstance(r.get('s0'), list) else r.get('s0', float('nan'))
        log(f"[growth-law predict] {name}: {r['regime']}, ‖H_K‖ {s0:.1f} at init -> "
            f"{r['scale_K'][-1]:,.0f} at step {r['steps'][-1]:,}")
    log(f"[growth-law predict] wrote {path}")
    return result


def _predict_self_logit(runs) -> dict[str, Any]:
    """Phase 1: the committed self-logit model, as it stands, for every run."""
    from blindspot.experiments import scale_prediction as sp
    from blindspot.toy.scale_growth import SelfLogitFit

    committed = json.loads((Path(sp.OUT) / "predictions.json").read_text())
    f = committed["fitted"]
    fit = SelfLogitFit(f["tolerated_logit"], f["floor"], f["rate"], f["rms_log_error"],
                       f["n_points"])
    out = {}
    for name, _arm, cfg in runs:
        steps = sorted({*range(cfg.log_every, cfg.steps + 1, cfg.log_every), cfg.steps})
        out[name] = sp.target_prediction(fit, cfg, steps, "growth-law phase 1")
    return {"experiment": "growth-law", "phase": 1, "model": "self-logit (committed)",
            "fitted": f, "fitted_on": committed["fitted_on"], "runs": out}


FIT_MARGIN = 0.1
"""The fit reads only runs whose final-loop CE is at least this far (nats) below the unigram
entropy. Chosen after seeing phase 1: the two d = 512 runs at the CPU lr end at the unigram
level (margins -0.03 and +0.03 nats; their scale, x3 above the other widths' trend, is that of
an optimization that has not got going), while every other run learned by at least 0.26."""


def law_runs(summary: dict[str, Any], phase: int = 1,
             exclude: tuple[str, ...] = (), names: bool = False) -> list:
    """The runs of ``phase`` that learned by :data:`FIT_MARGIN`, less ``exclude``, in the
    form :func:`blindspot.toy.growth_law.fit_growth_law` reads (σ_E and the readout gain at
    init from each run's first evaluation); with ``names``, (run name, run) pairs."""
    import numpy as np

    from blindspot.toy.growth_law import Run

    out = []
    for name, r in summary["runs"].items():
        if r["phase"] != phase or name in exclude \
                or r["ce_K"] > r["unigram_entropy"] - FIT_MARGIN:
            continue
        m0 = r["evals"][0]["mechanism"]
        out.append(Run(r["d_model"], r["num_loops"], r["n_layers"], r["tokenizer"] == "word",
                       r["lr"], m0["embed_std"], m0["gain_mean"],
                       np.array([e["tau"] for e in r["evals"]]),
                       np.array([e["scale"] for e in r["evals"]]),
                       np.array(r["curve_tau"]), np.array([c[0] for c in r["curve_scale"]])))
        if names:
            out[-1] = (name, out[-1])
    return out


FIT_EXCLUDES = ("long-d512-lr3e-4-seed0",)
"""The phase-1 runs the committed law was not fitted on. The longest d = 512 run was still
training when the law was fitted and its phase-2 predictions written, so it is predicted with
them."""


def fit_law(summary: dict[str, Any]):
    """The growth law fitted on the phase-1 runs that learned (:func:`law_runs`), less
    :data:`FIT_EXCLUDES`, and nothing else."""
    from blindspot.toy.growth_law import cross_validated

    pairs = law_runs(summary, 1, FIT_EXCLUDES, names=True)
    return cross_validated([r for _, r in pairs], [arm_of(n) for n, _ in pairs])


def arm_of(run: str) -> str:
    """The arm of a run name ``<arm>-seed<n>``."""
    return run.rsplit("-seed", 1)[0]


def _predict_revised(phase: int, runs, out) -> dict[str, Any]:
    """Phase 2 (and later): the law fitted on phase 1, as committed in :data:`LAW`, for every
    run; the prediction is per loop (``scale_final``) and over the logged curve."""
    from blindspot.experiments.predict import predict_config

    if LAW is None:
        raise ValueError("the growth law has not been fitted yet: fit it on phase 1 first")
    preds = {}
    for name, _arm, cfg in runs:
        steps = sorted({*range(cfg.log_every, cfg.steps + 1, cfg.log_every), cfg.steps})
        p = predict_config(cfg, LAW, steps)
        preds[name] = {**p, "source": f"growth-law phase {phase}"}
    return {"experiment": "growth-law", "phase": phase, "model": "growth law (phase-1 fit)",
            "fitted": dict(LAW.__dict__), "runs": preds}


PAPER_RUNS = ("44m-per_loop-norm", "129m-per_loop-norm")


def predict_paper(out: str | Path | None = None, log=print) -> dict[str, Any]:
    """The law's predictions for the paper's full 44M and 129M per-loop + RMSNorm runs (the
    presets with the paper's recipe, on the paper's word vocabulary, for 4 epochs of
    WikiText-103: :func:`blindspot.experiments.table1.paper_run_steps`) and for the 44M run
    of the GPU tier's budget (:func:`blindspot.experiments.table1.gpu_plan`), with the per-token
    quantiles of ‖H_K‖ (the paper's Table 10) carried from the study's measured ratios to the
    mean. Written to ``predictions-paper.json``."""
    import numpy as np

    from blindspot.experiments.predict import predict_config
    from blindspot.experiments.table1 import gpu_plan, paper_run_steps
    from blindspot.train.config import load_config

    if LAW is None:
        raise ValueError("the growth law has not been fitted yet: fit it on phase 1 first")
    summary = load_summary(Path(out or OUT) / "summary.json")
    learned = [r for r in summary["runs"].values() if r["learns"] and r["phase"] == 1]
    ratios = {q: float(np.median([r["scale_K_tokens"][q] / r["scale_K_tokens"]["mean"]
                                  for r in learned])) for q in ("median", "p99", "max")}
    preds = {}
    budget = gpu_plan()["steps"]["44m"]
    for preset, steps in ((PAPER_RUNS[0], budget), *((p, None) for p in PAPER_RUNS)):
        cfg = load_config(preset)
        label = preset.split("-")[0] + ("-gpu-budget" if steps else "")
        steps = steps or paper_run_steps(cfg)
        cfg = load_config(preset, [f"steps={steps}"])
        p = predict_config(cfg, LAW, [cfg.log_every, steps // 100, steps // 10, steps])
        mean = p["scale_final"][-1]
        preds[label] = {**p, "scale_K_tokens": {
            "mean": mean, **{q: mean * f for q, f in ratios.items()}},
            "token_ratios_from": f"median over {len(learned)} learning phase-1 runs"}
    result = {"experiment": "growth-law", "phase": "paper", "model": "growth law (phase-1 fit)",
              "fitted": dict(LAW.__dict__), "runs": preds,
              "run_card": run_card(config={"presets": list(PAPER_RUNS)}, seed=None)}
    path = Path(out or OUT) / "predictions-paper.json"
    atomic_write_json(path, result)
    for name, p in preds.items():
        log(f"[growth-law predict] {name}: ‖H_k‖ after {p['steps'][-1]:,} steps (τ "
            f"{p['tau'][-1]:.1f}) " + "/".join(f"{x:,.0f}" for x in p["scale_final"])
            + f" (x{p['uncertainty_factor']:.2f}); outside the fitted domain: "
            + ("; ".join(p["outside_domain"]) or "nothing"))
    return result


def predict_cli(tier: str = "cpu", out: str | Path | None = None, *, phase: int | str = 1,
                overrides: tuple[str, ...] = (), seeds=None, conditions=None,
                rehearse: bool = False, log=print, **_training_options: Any) -> dict[str, Any]:
    """``blindspot experiment growth-law-predict --phase N``: :func:`predict` (or
    :func:`predict_paper` for ``--phase paper``); trains nothing."""
    if tier != "cpu" or seeds or conditions or rehearse:
        raise ValueError("growth-law-predict takes --phase, --out and --set only")
    if phase == "paper":
        return predict_paper(out, log)
    return predict(int(phase), out, overrides, log)


# ----------------------------------------------------------------------------- training


def run(tier: str = "cpu", out: str | Path | None = None, *, phase: int = 1,
        arms: tuple[str, ...] | None = None, overrides: tuple[str, ...] = (),
        scratch: str | Path = "runs", progress: bool = False, workers: int = 1,
        shard: tuple[int, int] | None = None, seeds=None, conditions=None,
        rehearse: bool = False, log=print) -> dict[str, Any]:
    """Train the runs of ``phase`` (only ``arms`` if given) and write the summary. Refuses to
    train a phase whose predictions file does not exist yet."""
    if tier != "cpu":
        raise ValueError(f"the growth-law study has a cpu tier only (got {tier!r})")
    if seeds or conditions or rehearse:
        raise ValueError("the growth-law study takes --phase, --arms and --set, not --seeds, "
                         "--conditions or --rehearse")
    out = Path(out or OUT)
    if not predictions_path(phase, out).is_file():
        raise ValueError(f"{predictions_path(phase, out)} is missing: predict first "
                         f"(`blindspot experiment growth-law-predict --phase {phase}`) and "
                         f"commit it before training")
    runs = planned(phase, overrides)
    if arms is not None:
        unknown = sorted(set(arms) - {a.name for a in phase_arms(phase)})
        if unknown:
            raise ValueError(f"unknown phase-{phase} arm(s) {unknown}; valid: "
                             f"{', '.join(a.name for a in phase_arms(phase))}")
        runs = [r for r in runs if r[1].name in arms]
    scratch = Path(scratch) / out.name
    t0 = time.perf_counter()
    if workers > 1:
        argv = ["growth-law", "--tier", tier, "--out", str(out), "--scratch",
                str(scratch.parent), "--phase", str(phase),
                *(["--arms", *arms] if arms else []),
                *[a for o in overrides for a in ("--set", o)]]
        spawn_workers(argv, workers, "growth-law", log)
    else:
        train_shard([(name, cfg) for name, _arm, cfg in runs], out, scratch, shard,
                    "growth-law", progress, log)
    if shard is None:
        walls = {}
        if (out / "summary.json").is_file():
            walls = load_summary(out / "summary.json").get("phase_wall_time_s", {})
        walls[str(phase)] = time.perf_counter() - t0
        summary = summarize(out, time.perf_counter() - t0, overrides, walls)
        atomic_write_json(out / "summary.json", summary)
        atomic_write_text(out / "table.md", format_table(summary) + "\n")
        log(format_table(summary))
        return summary
    return {}


def _entropy(cfg: TrainConfig, cache: dict) -> float:
    from blindspot.train.data import prepared_data, unigram_entropy

    key = (cfg.data.tokenizer, cfg.data.vocab_size, cfg.data.min_freq)
    if key not in cache:
        cache[key] = unigram_entropy(prepared_data(cfg).train)
    return cache[key]


def run_record(run_dir: Path, arm: Arm, cfg: TrainConfig, final: dict[str, Any],
               entropy: float) -> dict[str, Any]:
    """Everything the law and the claims read of one finished run."""
    from blindspot.experiments.sensitivity import lr_per_step
    from blindspot.toy.scale_growth import cumulative_lr

    recs = read_metrics(run_dir)
    tau = cumulative_lr(lr_per_step(cfg))
    train = [r for r in recs if r["kind"] == "train"]
    evals = [r for r in recs if r["kind"] == "eval"]
    m = cfg.model
    return {
        "arm": arm.name, "group": arm.group, "phase": arm.phase, "seed": cfg.seed,
        "factors": arm.factors, "d_model": m.d_model, "num_loops": m.num_loops,
        "n_layers": m.n_layers, "vocab_size": m.vocab_size, "tokenizer": cfg.data.tokenizer,
        "tokens_per_step": cfg.batch_size * cfg.data.seq_len, "lr": cfg.lr,
        "steps_total": cfg.steps, "tau_total": float(tau[-1]),
        "unigram_entropy": entropy, "ce_K": final["ce"][-1],
        "learns": final["ce"][-1] < entropy,
        "scale": final["scale"], "scale_K": final["scale_K"],
        "scale_K_tokens": final["mechanism"]["scale_K_tokens"],
        "initial_scale": evals[0]["scale"],
        "curve_steps": [r["step"] for r in train], "curve_tau": [float(tau[r["step"]])
                                                                  for r in train],
        "curve_scale": [r["scale"] for r in train],  # per loop, training batch
        "evals": [{"step": r["step"], "tau": float(tau[r["step"]]), "ce": r["ce"],
                   "scale": r["scale"], "mechanism": r["mechanism"]} for r in evals],
        "wall_time_s": final["run_card"]["wall_time_s"],
        "created_utc": final["run_card"]["created_utc"],
    }


def summarize(out: Path, session_s: float = 0.0, overrides: tuple[str, ...] = (),
              phase_wall: dict[str, float] | None = None) -> dict:
    """The summary of every finished run under ``out/per_run`` of any phase; ``phase_wall``:
    the wall time of each phase's training session (seconds, by phase)."""
    rows, cache = {}, {}
    for phase in sorted({a.phase for a in ARMS.values()}):
        for name, arm, cfg in planned(phase, overrides):
            final = finished(out / RUN_LOGS / name, cfg)
            if final is not None:
                rows[name] = run_record(out / RUN_LOGS / name, arm, cfg, final,
                                        _entropy(cfg, cache))
    return {"experiment": "growth-law", "tier": "cpu", "runs": rows,
            "train_time_s": sum(r["wall_time_s"] for r in rows.values()),
            "phase_wall_time_s": dict(phase_wall or {}),
            "run_card": run_card(config={"runs": sorted(rows), "overrides": list(overrides)},
                                 seed=None, wall_time_s=session_s)}


def format_table(summary: dict[str, Any]) -> str:
    rows = [f"Growth-law study (cpu tier, per-loop CE through a tied RMSNorm readout; "
            f"{len(summary['runs'])} runs, {summary['train_time_s'] / 60:.1f} min of training "
            f"summed over runs)", "",
            "| run | group | d | K | L | V | tokens/step | lr | steps | τ | ‖H_K‖ init | "
            "‖H_K‖ final | median | p99 | max | CE_K | entropy | learns | wall s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in summary["runs"].items():
        t = r["scale_K_tokens"]
        rows.append(
            f"| {name} | {r['group']} | {r['d_model']} | {r['num_loops']} | {r['n_layers']} | "
            f"{r['vocab_size']:,} | {r['tokens_per_step']:,} | {r['lr']:g} | "
            f"{r['steps_total']:,} | {r['tau_total']:.2f} | "
            f"{format_scale(r['initial_scale'][-1])} | {format_scale(r['scale_K'])} | "
            f"{format_scale(t['median'])} | {format_scale(t['p99'])} | "
            f"{format_scale(t['max'])} | {r['ce_K']:.3f} | {r['unigram_entropy']:.3f} | "
            f"{'yes' if r['learns'] else 'no'} | {r['wall_time_s']:.0f} |")
    return "\n".join(rows)


def load_summary(path: str | Path = f"{OUT}/summary.json") -> dict[str, Any]:
    return read_summary(path, "growth-law", "runs",
                        "blindspot experiment growth-law --phase 1 --workers 2")

