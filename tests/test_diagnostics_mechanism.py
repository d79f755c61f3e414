"""The self-logit mechanism: the embedding split, the table on a hand-built trace, and the
trainer's record against the diagnostics' table on one model."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from blindspot.diagnostics import adapter_for, record
from blindspot.diagnostics.mechanism import mechanism_table
from blindspot.nn import LoopedLM, ModelConfig
from blindspot.nn.functional import embedding_components
from blindspot.nn.trace import LoopTrace
from blindspot.train.mechanism import mechanism_stats

# float64 round-off on O(1)..O(1e3) coefficients of d <= 64 vectors: 1e-9 relative is far
# above it and far below any real error
TOL = 1e-9


@settings(max_examples=50, deadline=None)
@given(a=st.floats(-1e3, 1e3), b=st.floats(-1e3, 1e3), r=st.floats(0, 1e3),
       seed=st.integers(0, 10_000))
def test_embedding_components_recover_a_constructed_split(a, b, r, seed):
    g = torch.Generator().manual_seed(seed)
    e, p, noise = torch.randn(3, 64, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.stack([e, p], 1))  # orthonormal basis of span{e, p}
    rest = noise - q @ (q.T @ noise)  # ⟂ span{e, p}
    rest = r * rest / rest.norm()
    comp = embedding_components(a * e + b * p + rest, e, p)
    scale = 1 + abs(a) + abs(b) + r
    assert abs(comp["alpha"].item() - a) <= TOL * scale
    assert abs(comp["beta"].item() - b) <= TOL * scale
    assert abs(comp["rest"].item() - r) <= TOL * scale


def test_mechanism_table_on_a_hand_built_trace():
    """H_0 = e + p, H_1 = 3 e + p (loops amplify e), H_2 = 0·e + p + r (cancel): the table
    reads α 3 then 0, ‖r‖ 0 then ‖r‖, and the self-logit from the given logits."""
    g = torch.Generator().manual_seed(0)
    E, P = torch.randn(5, 16, generator=g, dtype=torch.float64), torch.randn(
        4, 16, generator=g, dtype=torch.float64)
    idx = torch.tensor([[1, 2, 3, 4]])
    e, p = E[idx], P[:4].unsqueeze(0)
    r = torch.randn(1, 4, 16, generator=g, dtype=torch.float64)
    basis = torch.stack([e, p], -1)  # (1, 4, 16, 2)
    coef = torch.linalg.lstsq(basis, r.unsqueeze(-1)).solution
    r = r - (basis @ coef).squeeze(-1)  # ⟂ span{e, p} per token
    h1, h2 = 3 * e + p, p + r
    logits = [torch.randn(1, 4, 5, generator=g, dtype=torch.float64) for _ in range(2)]
    table = mechanism_table(LoopTrace(e + p, [h1, h2], [h1, h2], logits), idx, E, P)
    rows = table.rows
    assert rows[0]["alpha"] == pytest.approx(3, abs=TOL)
    assert rows[1]["alpha"] == pytest.approx(0, abs=TOL)
    assert rows[0]["rest"] == pytest.approx(0, abs=1e-6)  # sqrt of a round-off square
    assert rows[1]["rest"] == pytest.approx(r.norm(dim=-1).mean().item(), rel=TOL)
    z = logits[1]
    want = (z.gather(-1, idx.unsqueeze(-1)).squeeze(-1) - z.mean(-1)).mean().item()
    assert rows[1]["self_logit"] == pytest.approx(want, rel=TOL)
    # radial increment of loop 1: ⟨u_0, H_1 − H_0⟩ with H_1 − H_0 = 2e
    u0 = (e + p) / (e + p).norm(dim=-1, keepdim=True)
    assert rows[0]["radial_increment"] == pytest.approx(
        (u0 * 2 * e).sum(-1).mean().item(), rel=TOL)


def test_trainer_record_equals_the_diagnostics_table():
    """Two code paths, one quantity: the trainer's mechanism record of a tied LoopedLM equals
    the diagnostics' table computed through the adapter's trace."""
    torch.manual_seed(0)
    model = LoopedLM(ModelConfig(vocab_size=50, max_seq_len=12, d_model=32, n_heads=4,
                                 n_layers=1, num_loops=3, dropout=0.0)).double().eval()
    idx = torch.randint(0, 50, (2, 12))
    stats = mechanism_stats(model, idx)
    # the trainer passes its evaluation's own states: the same record, bit for bit
    with torch.no_grad():
        assert mechanism_stats(model, idx, model(idx, logits="none").states) == stats
    with torch.no_grad():
        trace = record(adapter_for(model), idx)
    table = mechanism_table(trace, idx, model.tok_emb.weight, model.pos_emb.weight)
    for q in ("alpha", "beta", "rest", "self_logit", "radial_increment"):
        # the trainer computes the self-logit in float32 (cheap at V = 20,000): 1e-5 relative
        # is float32 round-off over a d = 32 sum
        tol = 1e-5 if q == "self_logit" else TOL
        assert stats[q] == pytest.approx([r[q] for r in table.rows], rel=tol, abs=tol)
    assert stats["scale_K_tokens"]["mean"] == pytest.approx(table.rows[-1]["scale"], rel=1e-6)


def test_mechanism_table_needs_logits():
    h = torch.zeros(1, 2, 4)
    with pytest.raises(ValueError, match="logits=True"):
        mechanism_table(LoopTrace(h, [h], [h], None), torch.zeros(1, 2, dtype=torch.long),
                        torch.ones(3, 4))
