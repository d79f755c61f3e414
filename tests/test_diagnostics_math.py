"""The mathematics of each diagnostic against its closed form, on traces of foreign models
(defined in test_diagnostics_adapter.py) and on synthetic states."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from blindspot.diagnostics import record
from blindspot.diagnostics.early_exit import (
    calibrate,
    early_exit_table,
    halt_loops,
    halting_scores,
    halting_table,
    pareto_mask,
    token_ce,
)
from blindspot.diagnostics.interventions import clamp_table, remove_radial, sensitivity_table
from blindspot.diagnostics.lemma2 import decompose_update, lemma2_table
from blindspot.diagnostics.radial import radial_table
from blindspot.diagnostics.scale import scale_table

# float64 round-off, with room for sums over d ≤ 64 terms and a few chained operations


def _run(model, tokens, seed=0, batch=4):
    """(e, targets, trace): the injected context, next tokens, and a recorded run of a batch
    drawn by the ``tokens`` fixture."""
    tk = tokens(batch=batch, seed=seed)
    idx, y = tk[:, :-1], tk[:, 1:]
    with torch.no_grad():
        return model.adapter().start(idx)[1], y, record(model.adapter(), idx)


def test_scale_table_matches_direct_norms(tol, tokens, ouro_style):
    torch.manual_seed(0)
    _, _, trace = _run(ouro_style(inter_loop_norm=True).eval(), tokens)
    t = scale_table(trace)
    assert t.column("loop") == [0, 1, 2, 3]
    norms = trace.states[-1].norm(dim=-1).double().flatten()
    last = t.rows[-1]
    assert math.isclose(last["scale_mean"], norms.mean().item(), rel_tol=tol.float64)
    assert last["token_max"] == norms.max().item()
    assert last["token_median"] <= last["token_p99"] <= last["token_max"]
    # the inter-loop norm sets every carried state to RMS 1: norm √d = √32 (γ = 1 at init)
    carried = t.column("carried_scale_mean")[1:]
    assert all(math.isclose(c, 32**0.5, rel_tol=tol.float32) for c in carried)


@settings(max_examples=60, deadline=None)
@given(log_scale=st.floats(0, 6), seed=st.integers(0, 2**31 - 1), d=st.integers(2, 64))
def test_lemma2_identity_and_expansion_orders(tol, log_scale, seed, d):
    """x = s·u, Δ with ‖Δ‖ ≈ 1: the identity holds to round-off at every scale; the first-order
    radial error is ‖Δ⊥‖²/(2s) up to O(s⁻²); second-order radial and angular errors are O(s⁻²)."""
    g = torch.Generator().manual_seed(seed)
    s = 10.0**log_scale
    u = torch.randn(d, generator=g, dtype=torch.float64)
    u = u / u.norm()
    delta = torch.randn(d, generator=g, dtype=torch.float64)
    delta = delta / delta.norm()
    out = decompose_update(s * u, s * u + delta)
    assert out["identity_residual"].item() <= tol.float64
    perp = out["tangential"].item()
    if s >= 10:  # the expansions are asymptotic; at s ≥ 10‖Δ‖ their remainders are ≤ 2‖Δ‖³/s²
        bound = 2.0 / s**2 + 1e-15 * s  # + round-off of s' − s, which cancels ~ ε·s
        assert abs(out["radial_expansion_error"].item() - perp**2 / (2 * s)) <= bound
        assert out["radial_expansion_error_2nd"].item() <= bound
        assert out["angular_expansion_error"].item() <= bound


def test_lemma2_table_on_a_trace_and_a_zero_initial_state(tokens, ouro_style, tol):
    torch.manual_seed(2)
    _, _, trace = _run(ouro_style().eval(), tokens, batch=2)
    t = lemma2_table(trace)
    assert max(t.column("identity_residual")) <= tol.float64
    assert t.column("tokens") == [32, 32, 32]
    zero = decompose_update(torch.zeros(3, 4), torch.ones(3, 4))
    assert not zero["valid"].any() and torch.isnan(zero["radial_increment"]).all()


def test_radial_closed_form_matches_autograd(tokens, ouro_style, tol):
    """⟨h, ∇L⟩ = κ (E_p z − z_y), κ = 1 (raw) or ε/(ms + ε) (RMSNorm): proofs/eps_leak.md and
    proofs/readouts.md."""
    for raw, eps in [(True, 0.0), (False, 0.0), (False, 1e-2), (False, 1.0)]:
        torch.manual_seed(3)
        model = ouro_style(raw=raw, eps=eps).double().eval()
        _, y, trace = _run(model, tokens)
        t = radial_table(model.adapter(), trace.states, y)
        for r in t.rows:
            assert r["closed_form_error"] <= tol.float64
            assert math.isclose(r["radial_share"], r["closed_form_share"], rel_tol=1e-9,
                                abs_tol=tol.float64)
            if raw or eps >= 1e-2:
                assert r["radial_share"] > 1e-3  # the leak ε/ms is visible at these ε
            else:
                assert r["radial_share"] <= tol.float64  # the blind spot, exactly


@settings(max_examples=25, deadline=None)
@given(log_c=st.floats(-6, 6), raw=st.booleans())
def test_radial_share_is_blind_at_every_scale(tokens, ouro_style, tol, log_c, raw):
    """A normalized readout at ε = 0 has no radial gradient whatever the scale; a raw one has."""
    torch.manual_seed(4)
    model = ouro_style(raw=raw, eps=0.0).double().eval()
    _, y, trace = _run(model, tokens, batch=2)
    c = 10.0**log_c
    t = radial_table(model.adapter(), [c * h for h in trace.states], y)
    shares = t.column("radial_share")
    if raw:
        assert min(shares) > 1e-3  # logits c·W·h: CE is an inverse temperature in c
    else:
        assert max(shares) <= tol.float64


def test_interventions_on_a_pre_norm_model(tol, tokens, ouro_style):
    torch.manual_seed(5)
    model = ouro_style(eps=0.0).double().eval()
    e, y, trace = _run(model, tokens)
    with torch.no_grad():
        t = sensitivity_table(model.adapter(), e, y, trace)
    readout = [r for r in t.rows if r["mode"] == "readout"]
    carry = [r for r in t.rows if r["mode"] == "carry"]
    # N(αh) = N(h) at ε = 0: the readout cannot see α (float64 round-off of the CE)
    assert max(abs(r["ce_change"]) for r in readout) <= tol.float64
    # pre-norm recurrence: α·H_{K-1} changes the step size of the last loop, hence its CE
    assert max(abs(r["ce_change"]) for r in carry if r["loop"] > 1) > 1e-3
    raw = ouro_style(raw=True, eps=0.0).double().eval()
    e, y, trace = _run(raw, tokens)
    with torch.no_grad():
        t = sensitivity_table(raw.adapter(), e, y, trace)
    changed = [r for r in t.rows if r["alpha"] != 1 and (r["mode"] == "readout" or r["loop"] >= 2)]
    assert min(abs(r["ce_change"]) for r in changed) > 1e-3  # a raw readout sees α
    before = [r for r in t.rows if r["mode"] == "carry" and r["loop"] < 2]
    assert all(r["ce_change"] == 0 for r in before)  # loops before H_{K-1} are untouched

    # with an inter-loop norm, rescaling H_1 changes nothing downstream either
    normed = ouro_style(eps=0.0, inter_loop_norm=True).double().eval()
    e, y, trace = _run(normed, tokens)
    with torch.no_grad():
        t = sensitivity_table(normed.adapter(), e, y, trace)
    assert max(abs(r["ce_change"]) for r in t.rows) <= tol.float64


def test_clamps_do_what_they_say(tokens, ouro_style, tol):
    torch.manual_seed(6)
    model = ouro_style().double().eval()
    e, y, trace = _run(model, tokens)
    x, h = trace.initial, trace.states[0]
    clamped = remove_radial(x, h)
    u = x / x.norm(dim=-1, keepdim=True)
    assert ((clamped - x) * u).sum(-1).abs().max() <= tol.float64  # no radial part left
    with torch.no_grad():
        t = clamp_table(model.adapter(), e, y, trace)
    frozen = t.column("scale_freeze_scale")
    assert all(math.isclose(f, frozen[0], rel_tol=tol.float64) for f in frozen)
    assert t.rows[0]["ppl_freeze_scale"] == t.rows[0]["ppl_base"]  # loop 1 is untouched
    # removing the radial part leaves s_k² = s_{k-1}² + ‖Δ⊥‖², so scales still grow (slowly)
    clamped_scales = t.column("scale_remove_radial")
    assert all(b >= a for a, b in zip(clamped_scales[:-1], clamped_scales[1:], strict=True))


def test_pareto_and_early_exit():
    assert pareto_mask([1, 2, 3, 4], [5.0, 4.0, 4.5, 3.0]) == [True, True, False, True]
    ce = torch.tensor([[2.0, 2.0], [1.0, 1.0], [1.5, 0.5]], dtype=torch.float64)
    t = early_exit_table(ce, trained_loops=2)
    assert t.column("beyond_trained_depth") == [False, False, True]
    assert t.column("rel_ppl")[1] == 1.0 and t.column("pareto") == [True, True, False]
    assert math.isclose(t.rows[0]["ppl"], math.e**2)


def test_halting_calibration_respects_target():
    torch.manual_seed(7)
    V, B, T, K = 11, 8, 20, 4
    y = torch.randint(0, V, (B, T))
    # loops sharpen toward the target at a token-dependent pace: some tokens are done early
    pace = torch.rand(B, T, 1) * 3
    onehot = torch.nn.functional.one_hot(y, V).double()
    logits = [k * pace * onehot + 0.3 * torch.randn(B, T, V, dtype=torch.float64)
              for k in range(1, K + 1)]
    scores = halting_scores(logits)
    assert torch.isinf(scores["kl"][0]).all() and (scores["kl"][1:] >= -1e-12).all()
    ce = token_ce(logits, y)
    for policy in ("margin", "entropy", "kl"):
        for target in (1.0, 1.01, 1.2):
            tau, used, rel = calibrate(scores[policy], ce, policy, target)
            assert rel <= target and 1 <= used <= K
            loops = halt_loops(scores[policy], policy, tau)
            assert math.isclose(loops.double().mean().item() + 1, used)
    t = halting_table(logits, y, target=1.2)
    assert all(r["val_rel_ppl"] <= 1.2 for r in t.rows)
    assert min(r["test_avg_loops"] for r in t.rows) < K  # some policy exits early


def test_halting_rejects_bad_input():
    import pytest

    logits = [torch.randn(1, 5, 3)]
    with pytest.raises(ValueError, match="B ≥ 2"):
        halting_table(logits, torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="≥ 1"):
        halting_table([torch.randn(2, 5, 3)], torch.zeros(2, 5, dtype=torch.long), target=0.9)
    with pytest.raises(ValueError, match="unknown halting policies"):
        halting_table([torch.randn(2, 5, 3)], torch.zeros(2, 5, dtype=torch.long),
                      policies=("depth",))


def test_resuming_from_a_recorded_prefix_equals_a_hooked_full_run(ouro_style, tokens):
    """The interventions reuse unchanged loops; that must equal re-running them all."""
    from blindspot.diagnostics.interventions import prefix
    from blindspot.diagnostics.recorder import continue_loops

    torch.manual_seed(8)
    model = ouro_style(inter_loop_norm=True).eval()
    adapter = model.adapter()
    e, _, trace = _run(model, tokens)
    idx = tokens()[:, :-1]
    with torch.no_grad():
        full = record(adapter, idx, update_hook=lambda k, x, h: 3.0 * h if k == 2 else h)
        resumed = continue_loops(adapter, prefix(trace, 2, 3.0 * trace.states[1], adapter), e)
    for a, b in zip(full.logits + full.carried, resumed.logits + resumed.carried, strict=True):
        assert torch.equal(a, b)  # same ops in the same order: bit for bit


def test_batched_interventions_equal_separate_runs(tokens, ouro_style):
    """The full pass runs every intervention as one batch; each slice must equal its own run
    (up to float32 round-off of differently blocked matrix products)."""
    from blindspot.diagnostics.interventions import intervention_runs, prefix, remove_radial
    from blindspot.diagnostics.recorder import continue_loops

    torch.manual_seed(9)
    model = ouro_style().eval()
    adapter = model.adapter()
    e, _, trace = _run(model, tokens)
    with torch.no_grad():
        runs = intervention_runs(adapter, e, trace)
        alone = {
            "carry:10.0@2": continue_loops(adapter, prefix(trace, 2, 10 * trace.states[1],
                                                           adapter), e),
            "remove_radial": continue_loops(adapter, prefix(trace, 0), e,
                                            update_hook=lambda k, x, h: remove_radial(x, h)),
        }
    # K = 3: carry mode rescales H_{K-1} = H_2 by default
    assert set(runs) == {"carry:0.1@2", "carry:10.0@2", "remove_radial", "freeze_scale"}
    for name, run in alone.items():
        for a, b in zip(runs[name].logits, run.logits, strict=True):
            # float32 logits of size ~30: 1e-4 absolute is ~100 ulps
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-4)
