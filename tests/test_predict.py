"""``blindspot predict``: the regime of every kind of configuration, the prediction's shape,
and the command line's answers to good and bad input."""

import json
import subprocess
import sys

import pytest

from blindspot.experiments.predict import predict_config, regime
from blindspot.toy.growth_law import GrowthLaw
from blindspot.train.config import load_config

A_LAW = GrowthLaw(kappa=0.2, q_d=-0.3, q_dd=0.1, q_K=-0.25, q_L=0.2, q_lr=0.3, word_factor=1.3,
                  rho=0.7, r_d=0.2, r_lr=0.1,
                  nu=0.25, mu=0.4, rate=3000.0, log_sd=0.1, domain={"d": [64, 512], "K": [2, 8],
                                                            "L": [1, 8], "lr": [3e-4, 2e-3],
                                                            "tau": [0, 4]})


@pytest.mark.parametrize("preset,sets,want", [
    ("cpu-per_loop-norm", [], "self_logit"),
    ("cpu-per_loop-raw", [], "scale_visible"),
    ("cpu-per_loop-penalty", [], "scale_visible"),
    ("cpu-per_loop-final_only_norm", [], "scale_visible"),
    ("cpu-terminal-norm", [], "outside"),
    ("cpu-per_loop-norm", ["model.inter_loop_norm=true"], "scale_removed"),
    ("cpu-per_loop-norm", ["model.tie_embeddings=false"], "floor"),
    ("cpu-per_loop-norm", ["model.norm=layernorm"], "outside"),
])
def test_regime_of_each_kind_of_config(preset, sets, want):
    assert regime(load_config(preset, sets))[0] == want


def test_prediction_of_the_cpu_preset_rises_and_grows_along_the_loops():
    cfg = load_config("cpu-per_loop-norm")
    p = predict_config(cfg, A_LAW, steps=[1, 50, 200], s0=[16.0, 16.5, 17.5, 19.0])
    assert p["regime"] == "self_logit" and p["outside_domain"] == []
    first = [row[0] for row in p["scale"]]
    assert first[0] < first[1] <= first[2] * 1.001  # the rise, then the plateau
    final = p["scale_final"]
    assert all(b > a for a, b in zip(final, final[1:], strict=False))  # linear in k, ρ > 0
    assert p["uncertainty_factor"] == pytest.approx(1.1052, rel=1e-4)  # exp(0.1)


def test_a_config_outside_the_fitted_domain_is_flagged():
    cfg = load_config("44m-per_loop-norm", ["steps=100808"])
    p = predict_config(cfg, A_LAW, steps=[100808], s0=[33.0, 36.0, 40.0, 47.0])
    assert any("tau" in x for x in p["outside_domain"])
    assert p["scale_final"][-1] > 1000  # d = 512, σ_E = 1: thousands


def test_command_line_prints_and_writes_json(tmp_path):
    out = tmp_path / "p.json"
    proc = subprocess.run([sys.executable, "-m", "blindspot.cli", "predict", "cpu-per_loop-norm",
                           "--set", "model.num_loops=6", "--json", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "regime self_logit" in proc.stdout and "inside the fitted domain" in proc.stdout
    assert len(json.loads(out.read_text())["scale_final"]) == 6


def test_command_line_rejects_a_wrong_key_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "blindspot.cli", "predict", "cpu-per_loop-norm",
                           "--set", "model.no_such_key=1"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and len(proc.stderr.strip().splitlines()) == 1
