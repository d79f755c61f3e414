"""The paper's claims judged on the converged CPU grid (full tier).

The 200-step CPU grid (:mod:`blindspot.checks.table1`, the ``diagnostics.grid_*`` claims)
shows the blow-up, but its models are still learning quickly; these claims state the same
results, and the paper's perplexity and inference-time tables, on the converged tier
(``blindspot experiment table1 --tier converged``: the seven conditions plus the
inter-loop-norm fix, 2,000 steps, three seeds; see :mod:`blindspot.experiments.table1`) and
on its checkpoints' diagnostics (``results/diagnostics-converged/<condition>/``). The two
tiers are different statements and both stay registered.

Every judge is a pure function of a summary or of a grid of diagnostic tables, reused from
:mod:`blindspot.checks.table1` and :mod:`blindspot.checks.diagnostics` where one fits, so tests
feed them synthetic inputs that must pass and must fail (``tests/test_converged.py``). Every
threshold is fixed here, before the converged runs, with its reason beside it. A missing
summary or table skips with the command that writes it.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from blindspot.checks import diagnostics as D
from blindspot.checks import table1 as T
from blindspot.claims import Outcome, Skip, claim

TIER = "converged"
TRAIN = "blindspot experiment table1 --tier converged --workers 2"
TABLES_DIR = "diagnostics-converged"
DIAGNOSE = ("blindspot diagnose results/table1-converged/checkpoints "
            "--out results/diagnostics-converged")
"""The one command that writes the converged grid's diagnostic tables, which the
``diagnostics.converged_*`` claims read."""

PEAK_RETAINED = 0.5  # after its early peak, the blind model keeps at least half of it: the
# committed 1,000-step arm (results/sensitivity-cpu, long-norm) kept 77 %; below one half the
# blow-up would be a transient of early training rather than where training leaves the scale
# (the blow-up claim itself, ≥ 10x every control at the end, is T.blowup)
BLIND = T.NORMALIZED  # per-loop + RMSNorm readout without inter-loop norm: the blind spot


def _fix_key() -> str:
    from blindspot.experiments.table1 import FIX

    return FIX


def after_peak(summary: dict[str, Any]) -> Outcome:
    """Where ‖H_K‖ of per-loop + RMSNorm readout ends against its early peak: per seed, the
    last logged training-batch ‖H_K‖ over the largest one logged (both on training batches,
    so like for like); the mean over seeds must be ≥ :data:`PEAK_RETAINED`."""
    (c,) = T._need(summary, (BLIND,)).values()
    rows = [r for r in c["seeds"] if r.get("peak_scale_K")]
    if not rows:
        raise Skip("the summary records no training-batch ‖H_K‖ peak (written before the "
                   "converged tier; rerun `" + TRAIN + "`)")
    kept = [r["last_train_scale_K"] / r["peak_scale_K"] for r in rows]
    mean = statistics.fmean(kept)
    ok = mean >= PEAK_RETAINED
    parts = ", ".join(f"seed {r['seed']}: peak {r['peak_scale_K']:.4g} at step "
                      f"{r['peak_step']} -> {r['last_train_scale_K']:.4g} at step "
                      f"{r['steps']} ({k:.0%})" for r, k in zip(rows, kept, strict=True))
    return Outcome(ok, ("" if ok else "refuted: ") + f"{BLIND} training-batch ‖H_K‖: {parts}; "
                   f"mean kept {mean:.0%}, needs ≥ {PEAK_RETAINED:.0%}; {T._n(summary)}")


def inter_loop_norm_fix(summary: dict[str, Any]) -> Outcome:
    """The paper's fix against the blind model: its final ‖H_K‖ stays within
    ``table1.NEAR_INITIAL_FACTOR`` (10x) of its initial value and at least
    ``table1.BLOWUP_FACTOR`` (10x) below the blind model's, and its final-loop
    perplexity is no worse than the blind model's (≤ its mean + 2 standard errors of the
    difference, the rule of :func:`~blindspot.checks.table1.perplexity`)."""
    fix = _fix_key()
    c = T._need(summary, (BLIND, fix))
    f, b = c[fix], c[BLIND]
    growth = f["scale_K"]["mean"] / f["initial_scale_K"]["mean"]
    below = b["scale_K"]["mean"] / f["scale_K"]["mean"]
    margin = T.SE_MULTIPLIER * math.hypot(T._se(f["ppl_K"]), T._se(b["ppl_K"]))
    ok = (growth <= T.NEAR_INITIAL_FACTOR and below >= T.BLOWUP_FACTOR
          and f["ppl_K"]["mean"] <= b["ppl_K"]["mean"] + margin)
    return Outcome(ok, ("" if ok else "refuted: ") + f"‖H_K‖ with inter-loop norm "
                   f"{f['initial_scale_K']['mean']:.3g} -> {f['scale_K']['mean']:.3g} "
                   f"(x{growth:.2f}, needs ≤ {T.NEAR_INITIAL_FACTOR:g}), {below:.1f}x below "
                   f"{BLIND}'s {b['scale_K']['mean']:.3g} (needs ≥ {T.BLOWUP_FACTOR:g}x); "
                   f"final-loop ppl {f['ppl_K']['mean']:.3f} ± {f['ppl_K']['std']:.3f} vs "
                   f"{b['ppl_K']['mean']:.3f} ± {b['ppl_K']['std']:.3f} (needs ≤ "
                   f"{b['ppl_K']['mean'] + margin:.3f}, + {T.SE_MULTIPLIER:g} SE); "
                   f"{T._n(summary)}")


def converged_runs(summary: dict[str, Any]) -> Outcome:
    """Every run of the summary meets the convergence criterion recorded in it (a run whose
    curve cannot judge it counts as not met)."""
    conv = summary.get("convergence")
    if conv is None:
        raise Skip("the summary records no convergence criterion (not a converged-tier "
                   "summary)")
    per_run = conv["per_run"]
    if not per_run:
        raise Skip(f"no finished run yet ({T._n(summary)}): `{TRAIN}`")
    failed = {k: v for k, v in per_run.items() if not v["met"]}
    ok = not failed
    worst = max(per_run, key=lambda k: -math.inf if per_run[k]["improvement"] is None
                else per_run[k]["improvement"])
    w = per_run[worst]["improvement"]
    not_met = ", ".join(f"{k} {v['improvement']:.2%}" if v["improvement"] is not None
                        else f"{k} (no curve)" for k, v in failed.items())
    return Outcome(ok, ("" if ok else "refuted: ") + f"{len(per_run) - len(failed)}/"
                   f"{len(per_run)} runs of {conv['steps']} steps at lr {conv['lr']:g} met "
                   f"the criterion (improvement over the last fifth < "
                   f"{conv['tolerance']:.0%}); largest improvement "
                   + (f"{w:.2%} ({worst})" if w is not None else "n/a")
                   + (f"; not met: {not_met}" if failed else "") + f"; {T._n(summary)}")


def _load() -> dict[str, Any]:
    return T.load(TIER)


_TEST = "tests/test_converged.py::test_table_claims_pass_and_fail_on_synthetic_summaries"


@claim("table1.converged.converged",
       "Every run of the converged CPU grid (eight conditions, three seeds, 2,000 steps at lr "
       "2e-3) meets the convergence criterion: its final-loop validation CE improves by less "
       "than 1 % over the last fifth of training.",
       source="package",
       paper_ref="the paper's models are trained out (4 epochs); this tier's premise",
       tier="full", test="tests/test_converged.py::test_convergence_claim_reads_every_run",
       experiment="table1", certificate="blindspot.checks.converged.converged_runs")
def _converged() -> Outcome:
    return converged_runs(_load())


@claim("table1.converged.learns",
       "Every condition of the converged grid, the inter-loop-norm fix included, survives its "
       "lr and learns: its mean final-loop CE is at least 0.3 nats below the unigram entropy.",
       source="package",
       paper_ref="Table 1 (every condition is a trained language model)", tier="full",
       test=_TEST, experiment="table1", certificate="blindspot.checks.table1.learns")
def _learns() -> Outcome:
    return T.learns(_load())


@claim("table1.converged.scale_control_perplexity",
       "On the converged CPU grid, the scale-controlled per-loop variants (raw readout, norm "
       "penalty) reach lower or equal final-loop perplexity than per-loop + RMSNorm readout "
       "(within 2 standard errors of seed noise).",
       source="paper",
       paper_ref="claim 7, Table 1", tier="full", test=_TEST, experiment="table1",
       certificate="blindspot.checks.table1.perplexity")
def _perplexity() -> Outcome:
    return T.perplexity(_load())


@claim("table1.converged.scale_blowup",
       "On the converged CPU grid, per-loop CE through an RMSNorm readout, without inter-loop "
       "norm, ends with ‖H_K‖ at least 10x that of every scale-visible control.",
       source="paper",
       paper_ref="claims 3-5, Table 1", tier="full", test=_TEST, experiment="table1",
       certificate="blindspot.checks.table1.blowup")
def _blowup() -> Outcome:
    return T.blowup(_load())


@claim("table1.converged.blowup_after_peak",
       "After the early peak of ‖H_K‖ that the 200-step runs show, per-loop + RMSNorm readout "
       "keeps at least half of it to the end of converged training: the blow-up is where "
       "training leaves the scale, not a transient.",
       source="package",
       paper_ref="claims 4-5 (the scale drifts unchecked); Figure 1", tier="full",
       test=_TEST, experiment="table1", certificate="blindspot.checks.converged.after_peak")
def _after_peak() -> Outcome:
    return after_peak(_load())


@claim("table1.converged.inter_loop_norm_fix",
       "The paper's fix, per-loop + RMSNorm readout with inter-loop normalization, keeps ‖H_K‖ "
       "bounded (within 10x of its initial value and at least 10x below the same model "
       "without it) at a final-loop perplexity no worse than per-loop + RMSNorm readout "
       "(within 2 standard errors).",
       source="paper",
       paper_ref="the paper's recommendation (inter-loop normalization)", tier="full",
       test=_TEST, experiment="table1",
       certificate="blindspot.checks.converged.inter_loop_norm_fix")
def _fix() -> Outcome:
    return inter_loop_norm_fix(_load())


# ------------------------------------------------------------------------------ diagnostics


def grid(conditions, tables) -> dict[str, dict]:
    """The converged grid's committed tables of ``conditions`` (Skip naming the commands)."""
    return {c: D.grid_tables(c, TABLES_DIR, tables, TRAIN, DIAGNOSE) for c in conditions}


_DTEST = "tests/test_converged.py::test_diagnostics_claims_pass_and_fail_on_synthetic_tables"


@claim("diagnostics.converged_radial_share",
       "On the converged CPU grid, the per-loop CE gradient has no radial component through an "
       "RMSNorm readout (float32 round-off, matching the ε-leak closed form) and a clearly "
       "non-zero one through a raw readout; final-only norm is raw at loops < K, blind at K.",
       source="paper",
       paper_ref="Table 3 (radial-gradient diagnostic); Claims 2-3", tier="full",
       test=_DTEST, experiment="table1",
       certificate="blindspot.checks.diagnostics.radial_share_verdict")
def _radial() -> Outcome:
    return D.radial_share_verdict(grid(D.GRID_CONDITIONS, ("radial_gradient",)))


@claim("diagnostics.converged_lemma2",
       "In the converged RMSNorm-readout models without scale control (run to 2K loops), every "
       "update satisfies the Lemma 2 identity to round-off, the scale grows by an about "
       "constant radial increment, and the angular step matches ‖Δ⊥‖/s_k within Lemma 2's "
       "bound.",
       source="paper",
       paper_ref="Claim 8 (Lemma 2); Table 12", tier="full", test=_DTEST, experiment="table1",
       certificate="blindspot.checks.diagnostics.lemma2_verdict")
def _lemma2() -> Outcome:
    return D.lemma2_verdict(grid(D.BLIND_SPOT, ("lemma2",)))


@claim("diagnostics.converged_clamp",
       "In the converged RMSNorm-readout models without scale control, freezing each token's "
       "scale at its loop-1 value (removing at least x1.5 of growth) changes the loop-K "
       "perplexity by at most 10 %.",
       source="paper",
       paper_ref="Table 4 (radial clamp)", tier="full", test=_DTEST, experiment="table1",
       certificate="blindspot.checks.diagnostics.clamp_verdict")
def _clamp() -> Outcome:
    return D.clamp_verdict(grid(D.BLIND_SPOT, ("radial_clamp",)))


@claim("diagnostics.converged_variable_depth",
       "Dense supervision makes every depth usable on the converged grid: each per-loop model's "
       "loop-1 exit is within 2x of its loop-K perplexity, each terminal model's loop-1 exit "
       "is worse than every per-loop one's (Pareto fronts reported).",
       source="paper",
       paper_ref="Table 5 (variable depth K = 1..4); Figure 4 (Pareto frontier)", tier="full",
       test=_DTEST, experiment="table1",
       certificate="blindspot.checks.diagnostics.depth_verdict")
def _depth() -> Outcome:
    return D.depth_verdict(grid(D.GRID_CONDITIONS, ("early_exit",)))


@claim("diagnostics.converged_halting",
       "Calibrated halting saves compute in every converged per-loop model: some policy stops "
       "on average at least half a loop before K on held-out sequences at a perplexity within "
       "its target (1 % above full depth) + 1 %.",
       source="paper",
       paper_ref="Table 8 (calibrated halting)", tier="full", test=_DTEST,
       experiment="table1", certificate="blindspot.checks.diagnostics.halting_verdict")
def _halting() -> Outcome:
    return D.halting_verdict(grid(D.PER_LOOP, ("halting",)))


@claim("diagnostics.converged_token_norms",
       "In the converged RMSNorm-readout models without scale control, the blow-up moves the "
       "whole per-token distribution of ‖H_K‖ (p99 ≤ 1.5x and max ≤ 3x the median), and the "
       "per-loop model's median is at least 10x every scale-visible control's.",
       source="package",
       paper_ref="Table 10 (per-token ‖H_K‖: mean, median, p99, max)", tier="full",
       test=_DTEST, experiment="table1",
       certificate="blindspot.checks.diagnostics.token_norms_verdict")
def _token_norms() -> Outcome:
    blind = (BLIND, *[c for c in D.BLIND_SPOT if c != BLIND])
    return D.token_norms_verdict(grid((*blind, *T.SCALE_VISIBLE), ("scale",)), blind,
                                 T.SCALE_VISIBLE)


# ------------------------------------------------------------------------------ longer runs

LONG_CE_TOLERANCE = 0.15  # the projection of the CE at 3x the tier's length may be 15 % off:
# fitted to steps 300-667 of the 16 two-seed curves, the same fit missed step 2,000 (3x) by
# -14.4 % to +12.0 % (converged_long.backtest; recorded in the prediction file)
LONG_PPL_ALLOWANCE = 0.05  # one seed each: 2 x the seed-to-seed standard deviation of a
# difference of two single-seed perplexities, 2 x sqrt(2) x 1.84 % (1.84 %: the relative seed
# std of the final-loop perplexity of per-loop + RMSNorm and of + penalty on the 2,000-step
# grid, seeds 0 and 1)


def _long_names():
    from blindspot.experiments import converged_long as L

    return L


def long_projection(prediction: dict[str, Any], summary: dict[str, Any]) -> Outcome:
    """The registered projection against the long runs: per condition, the measured final-loop
    validation CE at the end within :data:`LONG_CE_TOLERANCE` of the projected one, and the
    convergence criterion met or not as projected."""
    steps = prediction["steps"]
    parts, ok = [], True
    for cond, p in prediction["runs"].items():
        entry = summary["conditions"].get(cond)
        row = next((r for r in (entry or {}).get("seeds", []) if r["seed"] ==
                    prediction["seed"] and r["steps"] == steps), None)
        if row is None:
            raise Skip(f"the long run {cond}-seed{prediction['seed']} ({steps:,} steps) is not "
                       f"finished: `{_long_names().LONG_TRAIN}`")
        ce = row["eval_ce_K"][-1]
        err = (ce - p["ce_K"]) / p["ce_K"]
        met = bool(row["convergence"]["met"])
        good = abs(err) <= LONG_CE_TOLERANCE and met == p["met"]
        ok &= good
        parts.append(f"{cond}: CE {ce:.3f} vs projected {p['ce_K']:.3f} ({err:+.1%}); last "
                     f"fifth {row['convergence']['improvement']:.2%} vs {p['improvement']:.2%}"
                     f" (criterion {'met' if met else 'not met'}, projected "
                     f"{'met' if p['met'] else 'not met'})")
    return Outcome(ok, ("" if ok else "refuted: ") + f"at step {steps:,}: " + "; ".join(parts)
                   + f"; CE within {LONG_CE_TOLERANCE:.0%} needed")


def long_perplexity(summary: dict[str, Any], steps: int) -> Outcome:
    """The paper's perplexity claim on the long runs: per-loop + raw readout and + norm
    penalty reach a mean final-loop perplexity (over the seeds trained) ≤ per-loop + RMSNorm's
    x (1 + :data:`LONG_PPL_ALLOWANCE`). The allowance was fixed for one seed; with two it is
    looser than two standard deviations of the mean, which the evidence's per-seed values
    let a reader see."""
    c = T._need(summary, (BLIND, *T.PER_LOOP_CONTROLLED))
    for k in (BLIND, *T.PER_LOOP_CONTROLLED):
        if c[k]["steps"] != steps:
            raise Skip(f"{k} was trained {c[k]['steps']:,} steps, not {steps:,}: "
                       f"`{_long_names().LONG_TRAIN}`")
    ref = c[BLIND]["ppl_K"]["mean"]
    bound = ref * (1 + LONG_PPL_ALLOWANCE)
    ok = all(c[k]["ppl_K"]["mean"] <= bound for k in T.PER_LOOP_CONTROLLED)
    def seeds(k: str) -> str:
        return "/".join(f"{r['ppl_K']:.3f}" for r in c[k]["seeds"])

    parts = ", ".join(f"{k} {c[k]['ppl_K']['mean']:.3f} (seeds {seeds(k)})"
                      for k in T.PER_LOOP_CONTROLLED)
    return Outcome(ok, ("" if ok else "refuted: ") + f"after {steps:,} steps, mean over seeds "
                   f"{', '.join(str(r['seed']) for r in c[BLIND]['seeds'])}: {parts} vs "
                   f"{BLIND} {ref:.3f} (seeds {seeds(BLIND)}; needs ≤ {bound:.3f}, + "
                   f"{LONG_PPL_ALLOWANCE:.0%}); {T._n(summary)}")


def _long_load() -> tuple[dict[str, Any], dict[str, Any]]:
    import json

    from blindspot.experiments.table1 import load_summary
    from blindspot.figures import results_root

    L = _long_names()
    folder = results_root() / L.LONG_OUT.removeprefix("results/")
    pred = folder / "prediction.json"
    if not pred.is_file():
        raise Skip(f"{L.LONG_OUT}/prediction.json is missing: `{L.PREDICT}` registers it")
    summary = folder / "summary.json"
    if not summary.is_file():
        raise Skip(f"{L.LONG_OUT}/summary.json is missing: `{L.LONG_TRAIN}`")
    return json.loads(pred.read_text()), load_summary(summary)


_LTEST = "tests/test_converged_long.py::"


@claim("table1.converged.long_projection",
       "Fitted to the converged tier's 2,000-step validation curves, CE(t) = a + b t^-c projects "
       "per-loop + RMSNorm, + raw readout and + norm penalty (seed 0) to 6,000 steps: each "
       "run's final-loop CE within 15 % of the projection, and the convergence criterion met "
       "or not as projected (not met by any of the three).",
       source="package", paper_ref="the paper's models are trained out (4 epochs)", tier="full",
       test=_LTEST + "test_prediction_and_projection_claim_pass_and_fail", experiment="table1",
       certificate="blindspot.checks.converged.long_projection")
def _long_projection() -> Outcome:
    return long_projection(*_long_load())


@claim("table1.converged.long_perplexity",
       "Trained three times as long (6,000 steps; seed 0, and seed 1 where trained), the "
       "scale-controlled per-loop variants (raw readout, norm penalty) reach a mean final-loop "
       "perplexity no worse than per-loop + RMSNorm readout (within 5 %, two single-seed "
       "standard deviations).",
       source="paper", paper_ref="claim 7, Table 1", tier="full",
       test=_LTEST + "test_long_perplexity_claim_pass_and_fail", experiment="table1",
       certificate="blindspot.checks.converged.long_perplexity")
def _long_perplexity() -> Outcome:
    pred, summary = _long_load()
    return long_perplexity(summary, pred["steps"])
