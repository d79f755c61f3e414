"""The converged tier of the table1 experiment: its plan, its convergence criterion, its claims
on synthetic summaries and tables that must pass and must fail, and a rehearsal of the whole
path (train tiny, summarize, diagnose, judge) that the next real run will take."""

import json
import math
import shutil

import pytest

from blindspot.checks import converged as C
from blindspot.checks import diagnostics as D
from blindspot.checks import table1 as T
from blindspot.claims import Skip
from blindspot.diagnostics import Table
from blindspot.experiments import table1 as E
from blindspot.train.config import CONDITIONS


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BLINDSPOT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


# ------------------------------------------------------------------------------ the plan


def test_converged_plan_is_the_cpu_model_with_the_fix_and_fits_the_budget():
    runs = E.plan_runs("converged")
    assert len(runs) == 8 * 3 and [k for k, s, _ in runs[:8]] == list(E.CONVERGED_CONDITIONS)
    assert [s for _, s, _ in runs] == [0] * 8 + [1] * 8 + [2] * 8  # seed-major
    cfgs = {k: c for k, s, c in runs if s == 0}
    for key, cfg in cfgs.items():
        assert (cfg.steps, cfg.eval_every, cfg.lr, cfg.model.d_model, cfg.model.num_loops,
                cfg.lr_schedule, cfg.model.dropout) == (2000, 100, 2e-3, 128, 4, "constant", 0.1)
        assert cfg.model.inter_loop_norm == (key == E.FIX)
    fix, blind = cfgs[E.FIX], cfgs["per_loop-norm"]
    assert (fix.supervision, fix.model.readout, fix.norm_penalty) == \
        (blind.supervision, blind.model.readout, blind.norm_penalty)
    # the tier's budget: 90 min wall clock on 2 cores with --workers 2
    plan = E.converged_plan(workers=2)
    assert plan["expected_wall_s"] <= 90 * 60 and plan["runs"] == 24
    with pytest.raises(ValueError, match="unknown condition"):
        E.plan_runs("cpu", conditions=(E.FIX,))  # the fix is the converged tier's only


def test_convergence_criterion_on_a_curve():
    steps = list(range(0, 2001, 100))
    # CE falling 0.5 % between step 1600 and 2000: met; 2 %: not met
    flat = [3.0 - 0.1 * math.log1p(s) for s in steps]
    flat[-1] = flat[16] * (1 - 0.005)
    out = E.convergence(steps, flat)
    assert (out["ref_step"], out["met"]) == (1600, True)
    assert out["improvement"] == pytest.approx(0.005)
    steep = list(flat)
    steep[-1] = flat[16] * (1 - 0.02)
    assert E.convergence(steps, steep)["met"] is False
    # a CE that rises over the last fifth (overfitting) has stopped improving: met
    assert E.convergence(steps, [*flat[:-1], flat[16] * 1.01])["met"] is True
    # the 200-step grid's curve (step 0 and the end only) cannot judge it
    assert E.convergence([0, 200], [5.0, 2.7])["met"] is None
    with pytest.raises(ValueError, match="one CE per step"):
        E.convergence([0, 1], [1.0])


# ------------------------------------------------------------------------------ table claims


def _summary(scales=None, ppl=None, n=3, std=0.1, peak=(900.0, 800.0), fix_scale=8.0,
             fix_ppl=10.0, met=(True,) * 24):
    """A synthetic converged summary: ``scales``/``ppl`` map condition -> mean final ‖H_K‖ /
    perplexity (defaults: a blow-up of per-loop + RMSNorm to 900, controls at 5);
    ``peak`` = (training-batch peak, last training-batch ‖H_K‖) of per-loop + RMSNorm."""
    scales = {"per_loop-norm": 900.0, "terminal-norm": 500.0, **(scales or {})}
    ppl = ppl or {}
    conds = {}
    for k in E.CONVERGED_CONDITIONS:
        s = fix_scale if k == E.FIX else scales.get(k, 5.0)
        p = fix_ppl if k == E.FIX else ppl.get(k, 10.0)
        seeds = [{"seed": i, "ppl_K": p, "scale_K": s, "ce_K": math.log(p), "steps": 2000,
                  "initial_scale_K": 2.0, "ppl": [p] * 4, "scale": [s] * 4,
                  "peak_scale_K": peak[0] if k == "per_loop-norm" else s, "peak_step": 40,
                  "last_train_scale_K": peak[1] if k == "per_loop-norm" else s}
                 for i in range(n)]
        conds[k] = {"condition": k, "scale_name": "cpu", "label": E.LABELS[k],
                    "scale_K": {"mean": s, "std": 0.0, "n": n},
                    "initial_scale_K": {"mean": 2.0, "std": 0.0, "n": n},
                    "ppl_K": {"mean": p, "std": std, "n": n},
                    "ce_K": {"mean": math.log(p), "std": 0.0, "n": n},
                    "ppl_per_loop": [p] * 4, "seeds": seeds}
    per_run = {f"{k}-seed{i}": {"improvement": 0.005 if m else 0.02, "met": m,
                                "ref_step": 1600, "step": 2000}
               for (k, i), m in zip([(k, i) for i in range(n) for k in E.CONVERGED_CONDITIONS],
                                    met, strict=False)}
    return {"experiment": "table1", "tier": "converged", "runs": 8 * n, "total_runs": 24,
            "conditions": conds, "seeds": list(range(n)), "unigram_entropy": 3.33,
            "recipe": "paper",
            "convergence": {"criterion": E.CONVERGENCE_CRITERION, "tolerance": 0.01,
                            "window": 0.2, "steps": 2000, "lr": 2e-3, "per_run": per_run,
                            "runs_met": sum(v["met"] for v in per_run.values()),
                            "runs_judged": len(per_run)}}


def test_table_claims_pass_and_fail_on_synthetic_summaries():
    good = _summary()
    for judge in (T.blowup, T.perplexity, T.learns, C.after_peak, C.inter_loop_norm_fix):
        out = judge(good)
        assert out.passed, (judge.__name__, out.evidence)
    # the reused table1 judges read the converged summary (eight conditions) the same way
    out = T.perplexity(_summary(ppl={"per_loop-norm": 10.0, "per_loop-raw": 10.2}))
    assert not out.passed and "per_loop-raw 10.200" in out.evidence
    assert not T.blowup(_summary(scales={"per_loop-penalty": 95.0})).passed  # 900/95 < 10
    # the blow-up collapses after its early peak: kept 40 % < 50 %
    out = C.after_peak(_summary(peak=(1000.0, 400.0)))
    assert not out.passed and "mean kept 40%" in out.evidence
    assert C.after_peak(_summary(peak=(1000.0, 510.0))).passed  # 51 % ≥ 50 %
    # the fix: bounded (≤ 10x its initial 2.0, ≥ 10x below 900) at a perplexity no worse
    assert not C.inter_loop_norm_fix(_summary(fix_scale=21.0)).passed  # 10.5x its init
    assert not C.inter_loop_norm_fix(_summary(scales={"per_loop-norm": 70.0})).passed
    # 2 SE of the difference, std 0.1 over n = 3: 2·√2·0.1/√3 ≈ 0.163
    assert C.inter_loop_norm_fix(_summary(fix_ppl=10.15)).passed
    out = C.inter_loop_norm_fix(_summary(fix_ppl=10.2))
    assert not out.passed and out.evidence.startswith("refuted: ")


def test_convergence_claim_reads_every_run():
    assert C.converged_runs(_summary()).passed
    one_late = _summary(met=(True,) * 23 + (False,))
    out = C.converged_runs(one_late)
    assert not out.passed and "23/24 runs" in out.evidence
    assert f"{E.FIX}-seed2 2.00%" in out.evidence
    unjudged = _summary()
    unjudged["convergence"]["per_run"]["terminal-raw-seed0"].update(improvement=None, met=None)
    assert not C.converged_runs(unjudged).passed  # no curve: not shown to converge
    cpu = _summary()
    del cpu["convergence"]
    with pytest.raises(Skip, match="no convergence criterion"):
        C.converged_runs(cpu)


def test_claims_skip_with_the_command_that_writes_their_results(tmp_path, monkeypatch):
    from blindspot.checks import load_all

    monkeypatch.setenv("BLINDSPOT_RESULTS", str(tmp_path))
    claims = {k: v for k, v in load_all().items() if ".converged" in k}
    assert len(claims) == 14 and all(c.tier == "full" for c in claims.values())
    for cid, c in claims.items():
        # the longer runs' claims first need their registered prediction
        want = ("table1-long-predict" if ".long_" in cid
                else "blindspot experiment table1 --tier converged")
        with pytest.raises(Skip, match=want) as e:
            c.check()
        if cid.startswith("diagnostics."):
            assert C.DIAGNOSE in str(e.value)


# ------------------------------------------------------------------------------ diagnostics


def _exits(ppl, K=4):
    rows = [{"loop": k, "ppl": p, "ce": math.log(p), "rel_ppl": p / ppl[K - 1],
             "beyond_trained_depth": k > K, "pareto": k == 1 or p < min(ppl[:k - 1])}
            for k, p in enumerate(ppl, start=1)]
    return Table.from_rows(rows, "early_exit")


def _halting(avg_loops, rel_ppl, K=4):
    return Table.from_rows([{"policy": "margin", "threshold": 1.0, "target_rel_ppl": 1.01,
                             "val_avg_loops": avg_loops, "val_rel_ppl": rel_ppl,
                             "test_avg_loops": avg_loops, "test_rel_ppl": rel_ppl,
                             "max_loops": K}], "halting")


def _scale(median, p99, top):
    return Table.from_rows([{"loop": 4, "scale_mean": median, "carried_scale_mean": median,
                             "token_median": median, "token_p99": p99, "token_max": top}],
                           "scale")


def test_diagnostics_claims_pass_and_fail_on_synthetic_tables():
    per_loop = [15.0, 14.0, 14.5, 15.0, 16.0, 17.0, 18.0, 19.0]
    terminal = [3e4, 40.0, 16.0, 14.0, 15.0, 16.0, 17.0, 18.0]
    grid = {c: {"early_exit": _exits(per_loop if c in D.PER_LOOP else terminal)}
            for c in D.GRID_CONDITIONS}
    out = D.depth_verdict(grid)
    assert out.passed and "per_loop-norm {1, 2}" in out.evidence
    grid["per_loop-raw"] = {"early_exit": _exits([31.0, 20.0, 16.0, 15.0])}  # 2.07x > 2
    out = D.depth_verdict(grid)
    assert not out.passed and "worst per_loop-raw 2.07" in out.evidence

    halt = {c: {"halting": _halting(2.0, 1.015)} for c in D.PER_LOOP}
    assert D.halting_verdict(halt).passed  # 2 of 4 loops at ppl x1.015 ≤ 1.01 + 0.01
    halt["per_loop-penalty"] = {"halting": _halting(2.0, 1.03)}  # above target + slack
    assert not D.halting_verdict(halt).passed
    halt["per_loop-penalty"] = {"halting": _halting(3.6, 1.0)}  # saves 0.4 < 0.5 loops
    assert not D.halting_verdict(halt).passed

    blind = ("per_loop-norm", "terminal-norm")
    norms = {"per_loop-norm": {"scale": _scale(900.0, 1000.0, 1100.0)},
             "terminal-norm": {"scale": _scale(500.0, 560.0, 600.0)},
             **{c: {"scale": _scale(8.0, 11.0, 12.0)} for c in T.SCALE_VISIBLE}}
    assert D.token_norms_verdict(norms, blind, T.SCALE_VISIBLE).passed
    tail = {**norms, "terminal-norm": {"scale": _scale(500.0, 800.0, 900.0)}}  # p99 1.6x
    out = D.token_norms_verdict(tail, blind, T.SCALE_VISIBLE)
    assert not out.passed and "p99 800 (x1.60)" in out.evidence
    close = {**norms, "per_loop-penalty": {"scale": _scale(95.0, 100.0, 110.0)}}  # 9.5x
    assert not D.token_norms_verdict(close, blind, T.SCALE_VISIBLE).passed


def test_converged_diagnostics_claims_read_their_own_folder(tmp_path, monkeypatch):
    """Fed the committed 200-step tables under the converged folder's name, the converged
    claims give the 200-step grid claims' verdicts and evidence (radial share PASS, Lemma 2
    and clamp FAIL on those tables): same judges, another folder."""
    from blindspot.figures import results_root

    committed = results_root() / D.GRID_TABLES_DIR
    want = {"radial": D.grid_radial_share(), "lemma2": D.grid_lemma2(),
            "clamp": D.grid_clamp()}
    shutil.copytree(committed, tmp_path / C.TABLES_DIR)
    monkeypatch.setenv("BLINDSPOT_RESULTS", str(tmp_path))
    got = {"radial": C._radial(), "lemma2": C._lemma2(), "clamp": C._clamp()}
    assert got == want and want["radial"].passed and not want["clamp"].passed
    for check in (C._depth, C._halting, C._token_norms):
        assert check().evidence  # every table they read is there: judged, not skipped


# ------------------------------------------------------------------------------ rehearsal


def test_converged_tier_rehearses_the_whole_path(tmp_path, monkeypatch):
    """Train the converged tier tiny (the real command with --rehearse), diagnose its
    checkpoints with the real command, and let every converged claim judge the result: the
    next real run takes exactly this path."""
    from blindspot.checks import load_all
    from blindspot.cli import main as blindspot
    from blindspot.experiments.cli import main

    results = tmp_path / "results"
    monkeypatch.setenv("BLINDSPOT_RESULTS", str(results))
    monkeypatch.chdir(tmp_path)
    out = results / "table1-converged"
    assert main(["table1", "--tier", "converged", "--rehearse", "--seeds", "0", "1",
                 "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["tier"] == "converged" and s["complete"] and s["runs"] == 16
    assert list(E.ordered(s))[-1]["condition"] == E.FIX
    conv = s["convergence"]
    assert conv["steps"] == 10 and conv["runs_judged"] == 16 and len(conv["per_run"]) == 16
    assert s["run_card"]["convergence"] == conv and s["run_card"]["wall_time_s"] > 0
    run = s["conditions"][E.FIX]["seeds"][0]
    assert run["eval_steps"] == [0, 2, 4, 6, 8, 10] and len(run["eval_ce_K"]) == 6
    assert run["convergence"] == E.convergence(run["eval_steps"], run["eval_ce_K"])
    assert run["convergence"]["met"] is not None and run["peak_scale_K"] >= \
        run["last_train_scale_K"]
    assert "Convergence criterion" in (out / "table.md").read_text()
    assert sorted(p.stem for p in (out / "checkpoints").glob("*.pt")) == \
        sorted(E.CONVERGED_CONDITIONS)
    assert blindspot(["diagnose", str(out / "checkpoints"), "--out",
                      str(results / C.TABLES_DIR), "--quiet", "--no-figure"]) == 0
    for cid, c in load_all().items():
        # the longer runs' claims read their own folder (tests/test_converged_long.py)
        if ".converged" in cid and ".long_" not in cid:
            assert c.check().evidence, cid  # judged (pass or fail), not skipped
    assert set(s["conditions"]) == set(CONDITIONS) | {E.FIX}


def test_sessions_sum_the_wall_clock_of_a_grid_trained_in_two_goes():
    cards = [  # two workers, two runs each, then a resume an hour later
        {"created_utc": "2026-12-05T10:05:00Z", "wall_time_s": 300.0},
        {"created_utc": "2026-12-05T10:05:30Z", "wall_time_s": 330.0},
        {"created_utc": "2026-12-05T10:10:10Z", "wall_time_s": 280.0},
        {"created_utc": "2026-12-05T10:10:40Z", "wall_time_s": 300.0},
        {"created_utc": "2026-12-05T11:30:00Z", "wall_time_s": 600.0},
    ]
    out = E.sessions(cards)
    assert [s["runs"] for s in out["sessions"]] == [4, 1]
    first = out["sessions"][0]
    assert (first["start_utc"], first["end_utc"]) == ("2026-12-05T10:00:00Z",
                                                      "2026-12-05T10:10:40Z")
    assert out["wall_time_s"] == pytest.approx(640.0 + 600.0)
    # one session when the gap allowed is longer than the idle hour
    assert len(E.sessions(cards, gap_s=7200)["sessions"]) == 1
