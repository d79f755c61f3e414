"""How often is the scale monitor wrong? Its verdict on a labelled set of training runs.

Each run is labelled **before** looking at the monitor, from how the model and its loss are
built and from how its state moved:

- **blind spot** (the monitor should warn) when every loss reads the state through a norm
  (per-loop cross-entropy through an RMSNorm or LayerNorm readout, no norm penalty, no raw
  readout), the loop body hands the scale on to the next loop (a pre-norm residual loop: no
  inter-loop norm, not post-norm), there are at least two loops, and some loop's mean ‖H_k‖
  rose to at least twice its first measured value during the run;
- **no blind spot** otherwise, with the reason.

The runs: our own ``LoopedLM`` (the claim ``control.monitor_verdict``'s tiny model: RMSNorm
readout, raw readout, norm penalty, inter-loop norm, one loop), the Huginn-style model of
``examples/control_foreign_model.py`` with each of its trained controls, and Hugging Face's
ALBERT in post-LN and pre-LN form (``examples/albert.py``). For comparison, the verdict of the
rule the monitor used before (warn when ‖H_K‖/‖H_1‖ rose by 20 % over the last four blind
measurements) is recomputed from the same records.

    python examples/monitor_labels.py [--out runs/monitor-labels]

writes ``OUT/monitor_labels.json`` (one row per run, the false positives and negatives of both
rules, and a run card; atomically). The book's page "Fix it in your own model" shows the
committed ``results/control-cpu/monitor_labels.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from blindspot.checks.control import monitored_run
from blindspot.control import BlindSpotWarning
from blindspot.provenance import atomic_write_json, run_card

HERE = Path(__file__).resolve().parent
OURS_STEPS, OURS_EVERY = 40, 5
FOREIGN_STEPS, FOREIGN_EVERY = 200, 25
LABEL_GROWTH = 2.0  # "the state grew": some loop's ‖H_k‖ reached twice its first value
OLD_WINDOW, OLD_MIN_GROWTH = 4, 0.2  # the rule before: four measurements, ratio +20 %


def example(name: str):
    """An example file beside this one, imported from its path (examples/ is no package)."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def grew(records: list[dict]) -> float:
    """The largest rise of any loop's mean ‖H_k‖ over its first measured value."""
    first = records[0]["scale_mean"]
    return max(r["scale_mean"][k] / first[k] for r in records for k in range(len(first)))


def ratio_rule(records: list[dict]) -> int | None:
    """The step at which the previous rule would have warned: over the last four
    measurements, all blind, ‖H_K‖ grew and ‖H_K‖/‖H_1‖ rose by at least 20 % along the
    least-squares fit; None when it never would have."""
    for i in range(OLD_WINDOW - 1, len(records)):
        recent = records[i - OLD_WINDOW + 1:i + 1]
        steps = [r["step"] for r in recent]
        rate = np.polyfit(steps, [math.log(r["scale_mean"][-1]) for r in recent], 1)[0]
        rise = np.polyfit(steps, [math.log(r["loop_ratio"]) for r in recent], 1)[0] \
            * (steps[-1] - steps[0])
        blind = all(max(r["radial_share"]) <= r["blind_threshold"] for r in recent)
        if blind and rate > 0 and rise >= math.log1p(OLD_MIN_GROWTH):
            return recent[-1]["step"]
    return None


def row(model: str, control: str, records: list[dict], fired_at: int | None, *,
        scale_blind: bool, carries: bool, why_not: str | None) -> dict:
    """One labelled run. ``scale_blind``: no loss sees the scale (by construction);
    ``carries``: the loop body hands the scale on (by construction); ``why_not``: the reason
    it has no blind spot when the construction already says so."""
    growth = grew(records)
    loops = records[0]["loops"]
    label = scale_blind and carries and loops >= 2 and growth >= LABEL_GROWTH
    if why_not is None and not label:
        why_not = "the state did not double" if growth < LABEL_GROWTH else "one loop"
    return {"model": model, "control": control, "label": label,
            "why": "blind, carried and grown" if label else why_not,
            "warned": fired_at is not None, "warning_step": fired_at,
            "old_rule_warned": ratio_rule(records) is not None,
            "old_rule_step": ratio_rule(records),
            "loops": loops, "steps": records[-1]["step"], "measurements": len(records),
            "state_growth": growth,
            "max_radial_share": max(max(r["radial_share"]) for r in records),
            "max_carry": max((max(r["carry"]) for r in records if r["carry"]), default=None),
            "loop_ratio": [records[0]["loop_ratio"], records[-1]["loop_ratio"]],
            "scale_K": [records[0]["scale_mean"][-1], records[-1]["scale_mean"][-1]]}


def ours(seed: int) -> list[dict]:
    """The tiny LoopedLM of the claim control.monitor_verdict, longer."""
    runs = [("RMSNorm readout", {"readout": "norm"}, True, True, None),
            ("raw readout", {"readout": "raw"}, False, True, "a loss sees the scale"),
            ("norm penalty", {"readout": "norm", "penalty": 0.01}, False, True,
             "a loss sees the scale"),
            ("inter-loop norm", {"readout": "norm", "model": {"inter_loop_norm": True}}, True,
             False, "the next loop receives N(H_k)"),
            ("one loop", {"readout": "norm", "model": {"num_loops": 1}}, True, True,
             "one loop: nothing to carry the scale to")]
    out = []
    for control, kw, blind, carries, why in runs:
        run = monitored_run(steps=OURS_STEPS, every=OURS_EVERY, seed=seed, **kw)
        out.append(row("ours (LoopedLM)", control, run["records"], run["fired_at"],
                       scale_blind=blind, carries=carries, why_not=why))
    return out


def foreign(seed: int) -> list[dict]:
    """The Huginn-style model of examples/control_foreign_model.py, each trained control."""
    ex = example("control_foreign_model")
    facts = {"none": (True, True, None),
             "norm_penalty": (False, True, "a loss sees the scale"),
             "raw_readout": (False, True, "a loss sees the scale"),
             "inter_loop_norm": (True, False, "the next loop receives N(H_k)")}
    out = []
    for control in ex.TRAINED:
        _, _, monitor = ex.train(control, FOREIGN_STEPS, seed, FOREIGN_EVERY, None)
        blind, carries, why = facts[control]
        out.append(row("foreign (Huginn-style)", control, monitor.records, monitor.fired_at,
                       scale_blind=blind, carries=carries, why_not=why))
    return out


def albert(seed: int) -> list[dict]:
    """Hugging Face's ALBERT in its own post-LN form and in pre-LN form."""
    ex = example("albert")
    out = []
    for form, carries, why in (("post_ln", False, "post-LN: the layer normalizes its output"),
                               ("pre_ln", True, None)):
        model, monitor = ex.train(form, ex.STEPS, ex.EVERY, seed)
        out.append(row("HF ALBERT", form.replace("_", "-"), monitor.records, monitor.fired_at,
                       scale_blind=True, carries=carries, why_not=why))
    return out


def counts(rows: list[dict], key: str) -> dict:
    return {"false_positives": sum(r[key] and not r["label"] for r in rows),
            "false_negatives": sum(r["label"] and not r[key] for r in rows),
            "true_positives": sum(r[key] and r["label"] for r in rows),
            "true_negatives": sum(not r[key] and not r["label"] for r in rows)}


def parser() -> argparse.ArgumentParser:
    """The command line; every path it writes defaults under runs/."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/monitor-labels", help="folder for monitor_labels.json")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    return p


def main(argv=None) -> dict:
    args = parser().parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    log = logging.getLogger("blindspot.control")
    level = log.level
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BlindSpotWarning)  # each run's verdict is its row
            log.setLevel(logging.ERROR)  # ... and so is its log record
            rows = ours(args.seed) + foreign(args.seed) + albert(args.seed)
    finally:
        torch.set_num_threads(threads)
        log.setLevel(level)
    wall = time.perf_counter() - t0
    albert_ex = example("albert")
    albert_steps, albert_every = albert_ex.STEPS, albert_ex.EVERY
    for r in rows:
        label = "blind spot" if r["label"] else "—"
        print(f"{r['model']:>24} {r['control']:>16}: label {label:>10}"
              f"  monitor {'warned at ' + str(r['warning_step']) if r['warned'] else 'silent':>14}"
              f"  state x{r['state_growth']:.2f}  carry {r['max_carry'] or 0:.2f}", flush=True)
    config = {"ours": {"steps": OURS_STEPS, "every": OURS_EVERY},
              "foreign": {"steps": FOREIGN_STEPS, "every": FOREIGN_EVERY},
              "albert": {"steps": albert_steps, "every": albert_every},
              "label_growth": LABEL_GROWTH,
              "old_rule": {"window": OLD_WINDOW, "min_growth": OLD_MIN_GROWTH},
              "threads": args.threads}
    result = {"rows": rows, "monitor": counts(rows, "warned"),
              "old_rule": counts(rows, "old_rule_warned"),
              "run_card": run_card(config=config, seed=args.seed, wall_time_s=wall)}
    out = Path(args.out) / "monitor_labels.json"
    atomic_write_json(out, result)
    print(f"monitor: {result['monitor']}\nold rule: {result['old_rule']}\nwrote {out} "
          f"({wall:.0f} s)")
    return result


if __name__ == "__main__":
    main()
