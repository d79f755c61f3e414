"""The theory's statements on the package's own LoopedLM (blindspot.checks.theory_lm): tied
vs untied readouts, kappa at two initializations, the direction-only limit of a real loop,
and the norm of the stream-writing parameters under the SGD family and Adam."""

import numpy as np
import pytest
import torch

from blindspot.checks import theory_lm as T

# Every quantity below is computed in float64 on a model whose parameters are O(1) or
# smaller, and compared at tol.float64 relative to the size of the cancelling sum it comes
# from.


@pytest.mark.parametrize("block", ["pre", "sandwich"])
def test_tied_readout_adds_the_temperature_force_and_untied_is_blind(tol, block):
    r = T.tied_vs_untied(block_norm=block)
    t, u = r["tied"], r["untied"]
    assert abs(u["inner"]) <= tol.float64 * u["size"]
    assert t["inner"] == pytest.approx(t["correction"], abs=tol.float64 * t["size"])
    assert abs(t["correction"]) > 1e-6 * t["size"]  # resolvably non-zero: not a 0 = 0


def test_at_the_paper_init_the_tied_force_is_large_and_inward(tol):
    """N(0, 1) tied readout: large initial logits, CE far above ln V, so the loss wants
    softer logits and <P, grad_P L> > 0 (descent shrinks the group); still the closed form."""
    r = T.tied_vs_untied(init="paper")
    t, u = r["tied"], r["untied"]
    assert t["inner"] == pytest.approx(t["correction"], abs=tol.float64 * t["size"])
    assert t["inner"] > 1.0 and t["loss"] > np.log(64)
    assert abs(u["inner"]) <= tol.float64 * u["size"]
    with pytest.raises(ValueError, match="init"):
        T.tied_vs_untied(init="xavier")


def test_eps_breaks_the_parameter_invariance_by_the_leak():
    r = T.tied_vs_untied(norm_eps=1e-3)["untied"]
    assert abs(r["inner"]) > 1e-6 * r["size"]  # eps > 0: the hypothesis fails, so does the law


def test_stream_parameters_name_the_writers_of_each_block_kind():
    pre = T.stream_parameters(T.small_lm(0))
    assert set(pre) == {"tok_emb.weight", "pos_emb.weight"} | {
        f"blocks.{i}.{s}.proj.weight" for i in range(2) for s in ("attn", "mlp")}
    sand = T.stream_parameters(T.small_lm(0, block_norm="sandwich", norm="layernorm"))
    assert {f"blocks.0.{p}.{w}" for p in ("post_attn", "post_mlp") for w in ("weight", "bias")} \
        <= set(sand)
    assert not any(n.endswith("proj.weight") for n in sand)
    with pytest.raises(ValueError, match="inter-loop norm"):
        T.stream_parameters(T.small_lm(0, inter_loop_norm=True))


def test_homogeneity_of_the_states_in_p(tol):
    """Scaling P by c scales every state by c (eps = 0, untied), which is what both
    statements rest on; with an input injection ("add") too."""
    for injection in ("none", "add"):
        m = T.small_lm(0, tie_embeddings=False, input_injection=injection)
        idx, _ = T.batch(m)
        with torch.no_grad():
            before = m(idx, logits="none").states[-1].clone()
            for p in T.stream_parameters(m).values():
                p.mul_(1e3)
            after = m(idx, logits="none").states[-1]
        assert float((after - 1e3 * before).norm() / (1e3 * before).norm()) <= tol.float64


def test_kappa_at_both_initializations():
    paper, gpt2 = T.kappa_at_init("paper"), T.kappa_at_init("gpt2")
    # ms(H_0) of token + position embeddings: 2 sigma^2, measured over 64 tokens x 128
    # coordinates (a sample mean of chi-square variables: ~2% spread); 10% is 5 spreads
    assert paper["ms_H0"] == pytest.approx(2.0, rel=0.1)
    assert gpt2["ms_H0"] == pytest.approx(8e-4, rel=0.1)
    assert paper["kappa_H0"] == pytest.approx(5e-7, rel=0.1)
    assert gpt2["kappa_H0"] == pytest.approx(1.25e-3, rel=0.1)
    with pytest.raises(ValueError, match="init"):
        T.kappa_at_init("xavier")


def test_paper_init_ties_the_readout_to_the_n01_embedding():
    m = T.small_lm(0, d_model=128, init="paper")
    w = m.tok_emb.weight.detach()
    assert m.lm_head.weight is m.tok_emb.weight
    assert float(w.std()) == pytest.approx(1.0, rel=0.05)  # 64 x 128 N(0, 1) draws
    lin = m.blocks[0].attn.qkv.weight.detach()  # kaiming-uniform U(+-1/sqrt(fan_in))
    assert float(lin.abs().max()) <= 1 / np.sqrt(128)


def test_direction_limit_on_a_real_loop():
    m = T.small_lm(0)
    r = T.direction_limit_on_lm(m, T.batch(m)[0])
    assert r["reparametrization_error"] < 1e-9
    assert r["change_c=0.01"] > 0.1 and r["change_c=10000"] > 0.01  # Delta depends on s
    assert 80 < r["to_limit_c=100"] / r["to_limit_c=10000"] < 120  # like 1/c: 100x


def test_sgd_family_never_shrinks_the_stream_norm_and_the_state_need_not_follow(tol):
    for opt, lr in (("sgd", 0.5), ("heavy_ball", 0.05), ("nesterov", 0.05)):
        r = T.optimizer_stream_norms(opt, steps=12, lr=lr)
        P = np.array(r["P_norm"])
        assert np.all(np.diff(P) >= -tol.float64 * P[:-1])
    H = np.array(T.optimizer_stream_norms("sgd", steps=12, lr=0.5)["HK_norm"])
    assert np.any(np.diff(H) < 0)
    # |H_K| is measured on one fixed batch: with lr = 0 the parameters stay put, and so must
    # |H_K| (exactly: the same float64 forward on the same tokens), though the training
    # batches change at every step
    still = T.optimizer_stream_norms("sgd", steps=3, lr=0.0)
    assert len(set(still["HK_norm"])) == 1 and len(set(still["P_norm"])) == 1
    with pytest.raises(ValueError, match="optimizer"):
        T.optimizer_stream_norms("lion")
