"""The README/book example runs: a foreign Huginn-style model (plain torch layers, unknown to
the package) diagnosed through ``LoopAdapter.from_modules``."""

import json
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "diagnose_foreign_model.py"


@pytest.mark.slow
def test_example_diagnoses_a_foreign_model(load, tmp_path, capsys):
    tables = load(EXAMPLE).main(["--steps", "2", "--out", str(tmp_path)])
    assert f"wrote 8 tables to {tmp_path}/" in capsys.readouterr().out
    assert {p.stem for p in tmp_path.glob("*.json")} == set(tables)
    lemma2 = json.loads((tmp_path / "lemma2.json").read_text())
    assert len(lemma2["rows"]) == 8  # 2K loops: K = 4 trained, 4 extrapolated
    # the coda starts with a LayerNorm: scale invariant, so this model is blind to its scale
    # too (float32 round-off ~1e-6 plus an ε-leak ~ ε/ms(h) ~ 1e-5; 1e-3 is far above both
    # and far below a scale-visible readout's O(0.1))
    assert max(tables["radial_gradient"].column("radial_share")) < 1e-3


def test_example_names_a_missing_submodule(load):
    import torch

    from blindspot.diagnostics import LoopAdapter

    mod = load(EXAMPLE)
    torch.manual_seed(0)
    model = mod.MyLoopedModel()
    with pytest.raises(ValueError, match=r"no submodule 'recurrent'.*prelude, prelude\.tok"):
        LoopAdapter.from_modules(model, prelude="prelude", body="recurrent", head="coda",
                                 num_loops=4)
