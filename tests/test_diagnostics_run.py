"""The full diagnostic pass on foreign models and on LoopedLM: every table, determinism,
round trip through JSON, and clear errors on bad input."""

import json
import math

import pytest
import torch

from blindspot.diagnostics import LoopAdapter, ReadoutForm, adapter_for, record
from blindspot.diagnostics.run import diagnose, split_batch
from blindspot.diagnostics.table import read_table, write_tables
from blindspot.nn import LoopedLM, ModelConfig

EXPECTED = {"scale", "radial_gradient", "lemma2", "scale_sensitivity", "radial_clamp",
            "early_exit", "halting", "toy_prediction"}


def test_diagnose_a_huginn_style_model_and_round_trip(huginn_style, tokens, tmp_path):
    torch.manual_seed(0)
    model = huginn_style()
    model.train()
    tables = diagnose(model.adapter(), tokens(), extrapolate=5)
    assert model.training  # diagnose restores the mode it found
    assert set(tables) == EXPECTED
    assert [r["loop"] for r in tables["lemma2"].rows] == [1, 2, 3, 4, 5]
    assert tables["early_exit"].column("beyond_trained_depth") == [False] * 3 + [True] * 2
    assert all(r != r for r in tables["radial_gradient"].column("closed_form_share"))  # NaN:
    # the coda sits between state and head, so there is no closed form to compare with
    toy = tables["toy_prediction"].meta  # injection: ρ is not fixed by the architecture,
    assert toy["depth"]["rho_source"].startswith("chosen by the held-out loop")  # the data
    assert "no loop to hold out" in toy["early"]["refused"]  # choose it, from 3 loops or more
    paths = write_tables(tables, tmp_path, config={"model": "HuginnStyle"}, seed=0)
    assert {p.stem for p in paths} == EXPECTED
    obj = json.loads((tmp_path / "lemma2.json").read_text())
    assert "git_revision" in obj["run_card"] and obj["run_card"]["seed"] == 0
    back = read_table(tmp_path / "lemma2.json")
    assert back.columns == tables["lemma2"].columns and len(back.rows) == 5


def test_diagnose_looped_lm_is_deterministic_and_sees_the_blind_spot(tokens):
    cfg = ModelConfig(vocab_size=37, max_seq_len=16, d_model=32, n_heads=4, n_layers=2,
                      num_loops=3, norm_eps=0.0)
    results = []
    for _ in range(2):
        torch.manual_seed(1)
        model = LoopedLM(cfg)
        results.append({k: t.to_json() for k, t in diagnose(adapter_for(model), tokens()).items()})
    assert results[0] == results[1]  # a seed fixes a CPU run bit for bit
    radial = results[0]["radial_gradient"]["rows"]
    # float32: the measured share sits at the round-off floor, the closed form is exactly 0
    assert all(r["closed_form_share"] == 0.0 for r in radial)
    assert all(r["radial_share"] < 100 * r["round_off_floor"] for r in radial)


def test_diagnose_final_only_norm_uses_the_depth_k_readout(tol, tokens):
    cfg = ModelConfig(vocab_size=37, max_seq_len=16, d_model=32, n_heads=4, n_layers=1,
                      num_loops=2, readout="final_only_norm")
    torch.manual_seed(2)
    model = LoopedLM(cfg).eval()
    tk = tokens()
    tables = diagnose(adapter_for(model), tk, extrapolate=3)
    idx, y = split_batch(tk)
    with torch.no_grad():
        for k, row in enumerate(tables["early_exit"].rows, start=1):
            z = model(idx, num_loops=k, logits="last").logits[-1]  # exit at depth k
            ce = torch.nn.functional.cross_entropy(z.flatten(0, 1), y.flatten()).item()
            assert abs(row["ce"] - ce) <= tol.float32  # float32 CE, accumulated in float64 here


def test_bad_inputs_are_named(ouro_style, tokens, tmp_path):
    model = ouro_style()
    with pytest.raises(ValueError, match=r"\(B, T\+1\)"):
        diagnose(model.adapter(), torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, T\+1\)"):
        diagnose(model.adapter(), torch.zeros(4, 5))
    with pytest.raises(ValueError, match="extrapolate"):
        diagnose(model.adapter(), tokens(), extrapolate=2)
    with pytest.raises(FileNotFoundError, match="blindspot diagnose"):
        read_table(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_table(tmp_path / "bad.json")
    with pytest.raises(TypeError, match="LoopAdapter.from_modules"):
        adapter_for(model)


class Configurable(torch.nn.Module):
    """A foreign looped model with every option ``LoopAdapter.from_modules`` documents: the
    injection kind, the initial state, an inter-loop norm, and a coda (block + norm + head) or
    a bare RMSNorm head (whose readout form is then stated); ``layers`` is the
    ``foreign_layers`` fixture."""

    def __init__(self, layers, injection, initial_state, coda, inter_loop_norm, loops,
                 vocab=37, d=16, seq=16, heads=2):
        super().__init__()
        self.prelude = layers.Prelude(vocab, d, seq, heads)
        self.body = Body(injection, d, heads, layers.Block)
        self.between = torch.nn.RMSNorm(d, eps=1e-6) if inter_loop_norm else None
        self.head = layers.Coda(vocab, d, heads) if coda else torch.nn.Sequential(
            torch.nn.RMSNorm(d, eps=1e-6), torch.nn.Linear(d, vocab, bias=False))
        self.options = dict(injection=injection, initial_state=initial_state,
                            inter_loop_norm="between" if inter_loop_norm else None,
                            readout_form=None if coda else ReadoutForm("rmsnorm", 1e-6))
        self.loops = loops

    def forward(self, idx):  # the model's own loop, which the recorder must reproduce
        e = self.prelude(idx)
        h = e if self.options["initial_state"] == "prelude" else torch.zeros_like(e)
        for _ in range(self.loops):
            h = self.body.own(h, e)
            logits = self.head(h)  # the readout of H_k, before the inter-loop norm
            if self.between is not None:
                h = self.between(h)
        return logits

    def adapter(self):
        return LoopAdapter.from_modules(self, prelude="prelude", body="body", head="head",
                                        num_loops=self.loops, **self.options)


class Body(torch.nn.Module):
    """The loop body, called as ``from_modules`` calls it for each injection kind."""

    def __init__(self, injection, d, heads, block):
        super().__init__()
        self.injection = injection
        self.mix = torch.nn.Linear(2 * d if injection == "concat" else d, d, bias=False)
        self.block = block(d, heads)

    def forward(self, x, e=None):
        if self.injection == "call":
            return self.block(x + self.mix(e))
        return self.block(self.mix(x))  # x is the state, state + e, or [state, e]

    def own(self, h, e):
        return {"none": lambda: self(h), "add": lambda: self(h + e),
                "concat": lambda: self(torch.cat([h, e], dim=-1)),
                "call": lambda: self(h, e)}[self.injection]()


# Each injection kind meets each initial state; coda, inter-loop norm and K = 1 are spread
# over those cases so that every option value is driven through diagnose() at least twice.
OPTIONS = [  # (injection, initial_state, coda, inter_loop_norm, K)
    ("none", "prelude", False, False, 3), ("none", "zeros", True, True, 1),
    ("add", "prelude", True, False, 1), ("add", "zeros", False, True, 3),
    ("concat", "prelude", True, True, 3), ("concat", "zeros", False, False, 1),
    ("call", "prelude", False, True, 1), ("call", "zeros", True, False, 3),
]


@pytest.mark.parametrize("injection, initial_state, coda, inter_loop_norm, K", OPTIONS)
def test_every_adapter_option_goes_through_the_default_diagnose(tol, tokens, foreign_layers,
                                                                injection, initial_state, coda,
                                                                inter_loop_norm, K):
    torch.manual_seed(3)
    model = Configurable(foreign_layers, injection, initial_state, coda, inter_loop_norm,
                         K).eval()
    adapter = model.adapter()
    tk = tokens()
    with torch.no_grad():  # the recorder reproduces the model's own forward bit for bit
        assert torch.equal(record(adapter, tk[:, :-1]).logits[-1], model(tk[:, :-1]))
    tables = diagnose(adapter, tk)  # every default: 2K loops, every table, the toy fit
    assert set(tables) == EXPECTED
    lemma2 = tables["lemma2"].rows
    assert len(lemma2) == 2 * K
    # ‖H_k‖ is defined at every loop, also after a zero initial state
    assert all(math.isfinite(r["scale_out"]) and r["scale_out"] > 0 for r in lemma2)
    first = lemma2[0]
    if initial_state == "zeros":  # loop 1 has no direction to decompose against
        assert first["scale_in"] == 0 and first["tokens"] == 0
        # s_1 − 0 and ‖H_1 − 0‖ are s_1, up to the order of a float64 reduction
        assert math.isclose(first["scale_increment"], first["scale_out"], rel_tol=tol.float64)
        assert math.isclose(first["update_norm"], first["scale_out"], rel_tol=tol.float64)
        assert math.isnan(first["radial_increment"])
    later = lemma2[1:] if initial_state == "zeros" else lemma2
    assert all(r["tokens"] == 4 * 16 and math.isfinite(r["radial_increment"]) for r in later)
    toy = tables["toy_prediction"]
    if K == 1:  # nothing to fit and predict: skipped, and the notes say why
        assert toy.rows == [] and toy.notes.startswith("skipped:") and "K = 1" in toy.notes
    else:
        assert toy.rows and all(math.isfinite(r["predicted"]) for r in toy.rows)
    closed = tables["radial_gradient"].column("closed_form_share")
    # the bare RMSNorm head states its form, so the closed form is compared; a coda has none
    assert all(math.isnan(c) for c in closed) == coda
    # the JSON round trip (blank cells become null) works for every option
    json.dumps({k: t.to_json() for k, t in tables.items()}, allow_nan=False)
