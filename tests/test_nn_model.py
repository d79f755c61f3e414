"""LoopedLM: the loop equals its unrolling, each switch does what it says, the trace is
consistent, masking is causal, bad input fails clearly, and a seed fixes the output."""

import copy
from dataclasses import replace

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from blindspot.nn import LoopedLM, LoopTrace, ModelConfig, layer_norm, rms_norm

TINY = ModelConfig(vocab_size=32, max_seq_len=12, d_model=16, n_heads=2, n_layers=2,
                   ff_mult=2.0, num_loops=3)
# float64 round-off through a few tiny blocks is ~1e-15 relative; tol.float64 is far below
# any change a wrong wiring would cause (O(1e-2) and up at this init).

SWITCHES = {
    "default": {},
    "raw": dict(readout="raw"),
    "final_only_norm": dict(readout="final_only_norm"),
    "inter_loop_layernorm": dict(inter_loop_norm=True, norm="layernorm"),
    "sandwich": dict(block_norm="sandwich"),
    "huginn_add": dict(prelude_layers=1, coda_layers=1, input_injection="add"),
    "huginn_concat": dict(prelude_layers=1, coda_layers=1, input_injection="concat",
                          inter_loop_norm=True, tie_embeddings=False),
}


def model(seed: int = 0, dtype=torch.float64, **overrides) -> LoopedLM:
    torch.manual_seed(seed)
    return LoopedLM(replace(TINY, **overrides)).to(dtype).eval()


def tokens(seed: int = 1, B: int = 2, T: int = 10) -> torch.Tensor:
    return torch.randint(0, TINY.vocab_size, (B, T), generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- differential


class Unrolled(nn.Module):
    """The same network written without a loop: K·n_layers blocks with their own (copied)
    parameters, one inter-loop norm and one readout stack per loop. Its forward is written
    out here from the definition, not through LoopedLM's methods."""

    def __init__(self, m: LoopedLM):
        super().__init__()
        K, cfg = m.cfg.num_loops, m.cfg
        self.cfg = cfg
        self.tok_emb, self.pos_emb = copy.deepcopy(m.tok_emb), copy.deepcopy(m.pos_emb)
        self.prelude = copy.deepcopy(m.prelude)
        self.injections = nn.ModuleList(copy.deepcopy(m.injection_proj) for _ in range(K))
        self.layers = nn.ModuleList(copy.deepcopy(b) for _ in range(K) for b in m.blocks)
        self.loop_norms = nn.ModuleList(copy.deepcopy(m.loop_norm) for _ in range(K))
        self.codas = nn.ModuleList(copy.deepcopy(m.coda) for _ in range(K))
        self.final_norms = nn.ModuleList(copy.deepcopy(m.final_norm) for _ in range(K))
        self.heads = nn.ModuleList(copy.deepcopy(m.lm_head) for _ in range(K))

    def forward(self, idx):
        K, L = self.cfg.num_loops, self.cfg.n_layers
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(idx.shape[1]))
        for blk in self.prelude:
            x = blk(x)
        e, h, states, logits = x, x, [], []
        for k in range(K):
            if self.cfg.input_injection == "add":
                h = h + e
            elif self.cfg.input_injection == "concat":
                h = self.injections[k](torch.cat([h, e], dim=-1))
            for blk in self.layers[k * L:(k + 1) * L]:
                h = blk(h)
            states.append(h)
            z = h
            for blk in self.codas[k]:
                z = blk(z)
            if self.cfg.readout == "norm" or (self.cfg.readout == "final_only_norm"
                                              and k == K - 1):
                z = self.final_norms[k](z)
            logits.append(self.heads[k](z))
            if self.cfg.inter_loop_norm:
                h = self.loop_norms[k](h)
        return logits, states


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_looped_equals_unrolled_bit_for_bit_in_float64(switch):
    m = model(**SWITCHES[switch])
    u = Unrolled(m)
    idx = tokens()
    out = m(idx)
    logits, states = u(idx)
    assert len(out.logits) == len(logits) == m.cfg.num_loops
    for a, b in zip(out.states + out.logits, states + logits, strict=True):
        assert torch.equal(a, b)  # bit for bit: same operations in the same order


def test_shared_weight_gradient_is_the_sum_over_unrolled_copies(tol):
    m = model(**SWITCHES["inter_loop_layernorm"])
    u = Unrolled(m)
    idx = tokens()
    sum(z.square().mean() for z in m(idx).logits).backward()
    sum(z.square().mean() for z in u(idx)[0]).backward()
    K, L = m.cfg.num_loops, m.cfg.n_layers
    for j, blk in enumerate(m.blocks):
        for name, p in blk.named_parameters():
            copies = [dict(u.layers[k * L + j].named_parameters())[name].grad for k in range(K)]
            # tied weights: dL/dw = Σ_k dL/dw_k; float64 summation order differs: tol.float64
            torch.testing.assert_close(p.grad, sum(copies), rtol=tol.float64, atol=tol.float64)


# ----------------------------------------------------------------------------- readout switches


def test_raw_readout_logits_scale_with_the_state(tol):
    m = model(readout="raw")
    h = torch.randn(2, 5, TINY.d_model, dtype=torch.float64)
    for c in (1e-3, 0.5, 7.0, 1e3):
        torch.testing.assert_close(m.readout_logits(c * h, 1, 3), c * m.readout_logits(h, 1, 3),
                                   rtol=tol.float64, atol=0)


@settings(max_examples=25, deadline=None)
@given(c=st.floats(1e-3, 1e3), kind=st.sampled_from(["rmsnorm", "layernorm"]))
def test_norm_readout_is_invariant_to_rescaling_the_state_at_eps_zero(tol, c, kind):
    m = model(norm=kind, norm_eps=0.0)
    h = torch.randn(2, 5, TINY.d_model, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(3))
    for loop in (1, 3):
        torch.testing.assert_close(m.readout_logits(c * h, loop, 3), m.readout_logits(h, loop, 3),
                                   rtol=tol.float64, atol=tol.float64)


def test_final_only_norm_is_raw_before_the_last_loop_and_normalized_at_it():
    m_f = model(readout="final_only_norm")
    m_raw, m_norm = model(readout="raw"), model(readout="norm")  # same seed: same weights
    out_f, out_raw, out_norm = m_f(tokens()), m_raw(tokens()), m_norm(tokens())
    for k in range(TINY.num_loops - 1):
        assert torch.equal(out_f.logits[k], out_raw.logits[k])
        assert not torch.allclose(out_f.logits[k], out_norm.logits[k])
    assert torch.equal(out_f.logits[-1], out_norm.logits[-1])
    # at a larger num_loops, "last" moves with it: loop 3 of 5 is raw
    assert torch.equal(m_f(tokens(), num_loops=5).logits[2], m_raw(tokens(), num_loops=5).logits[2])


def test_norm_readout_applies_the_configured_norm():
    for kind, fn in (("rmsnorm", lambda h, n: rms_norm(h, n.weight, n.eps)),
                     ("layernorm", lambda h, n: layer_norm(h, n.weight, n.bias, n.eps))):
        m = model(norm=kind)
        h = torch.randn(2, 5, TINY.d_model, dtype=torch.float64)
        assert torch.equal(m.readout_logits(h, 2, 3), fn(h, m.final_norm) @ m.lm_head.weight.T)


def test_readout_logits_rejects_a_loop_outside_the_range():
    with pytest.raises(ValueError, match="loop = 4 outside 1..num_loops = 3"):
        model().readout_logits(torch.zeros(1, 1, TINY.d_model, dtype=torch.float64), 4, 3)


# ----------------------------------------------------------------------------- recurrence switches


def test_inter_loop_norm_carries_the_normalized_state(tol):
    for kind in ("rmsnorm", "layernorm"):
        m = model(inter_loop_norm=True, norm=kind)
        tr = m(tokens(), return_trace=True).trace
        for h, c in zip(tr.states, tr.carried, strict=True):
            assert torch.equal(c, m.loop_norm(h))
        # the scale the next loop sees is fixed by the norm (unit gain, zero bias at init):
        # ‖C_k‖ = √d·√(m/(m + ε)) with m = ms(H_k) (rmsnorm) or ms(P H_k) (layernorm)
        for h, c in zip(tr.states, tr.carried, strict=True):
            centred = h - h.mean(-1, keepdim=True) if kind == "layernorm" else h
            ms = centred.pow(2).mean(-1)
            expected = (TINY.d_model * ms / (ms + TINY.norm_eps)).sqrt()
            torch.testing.assert_close(c.norm(dim=-1), expected, rtol=tol.float64, atol=0)


def test_without_inter_loop_norm_the_state_is_carried_as_is():
    tr = model()(tokens(), return_trace=True).trace
    assert all(c is h for h, c in zip(tr.states, tr.carried, strict=True))


def test_inter_loop_norm_removes_the_scale_of_the_carried_state():
    """Rescaling the carried state by c > 0 between loops changes nothing downstream when the
    next loop receives N(H_k) (ε = 0) but does change it without inter-loop norm."""
    idx = tokens()
    for inter, should_change in ((True, False), (False, True)):
        m = model(inter_loop_norm=inter, norm_eps=0.0)
        h0, e = m.embed(idx)
        s1 = m.loop_step(m.carry(m.loop_step(h0, e)), e)
        s2 = m.loop_step(m.carry(5.0 * m.loop_step(h0, e)), e)
        assert (not torch.allclose(s1, s2)) == should_change


def test_sandwich_adds_a_norm_on_each_branch_and_changes_the_output():
    pre, sand = model(), model(block_norm="sandwich")
    assert isinstance(pre.blocks[0].post_attn, nn.Identity)
    assert not isinstance(sand.blocks[0].post_attn, nn.Identity)
    assert not torch.allclose(pre(tokens()).states[-1], sand(tokens()).states[-1])


def test_injection_adds_the_prelude_output_at_every_loop():
    m = model(prelude_layers=1, input_injection="add")
    h0, e = m.embed(tokens())
    h = torch.randn_like(h0)
    expected = h + e
    for blk in m.blocks:
        expected = blk(expected)
    assert torch.equal(m.loop_step(h, e), expected)
    assert not torch.equal(model(input_injection="none").loop_step(h, e),
                           model(input_injection="add").loop_step(h, e))


def test_concat_injection_starts_as_add(tol):
    add, cat = model(input_injection="add"), model(input_injection="concat")
    cat.load_state_dict(add.state_dict(), strict=False)  # same blocks; injection_proj = [I | I]
    h, e = torch.randn(2, 1, 4, TINY.d_model, dtype=torch.float64).unbind(0)  # (1, 4, d) each
    # [I | I]·[h; e] = h + e up to one rounding per element in the matmul
    torch.testing.assert_close(cat.loop_step(h, e), add.loop_step(h, e), rtol=tol.float64,
                               atol=tol.float64)


def test_prelude_and_coda_are_applied_once_not_per_loop():
    m = model(prelude_layers=2, coda_layers=1)
    assert len(m.prelude) == 2 and len(m.coda) == 1 and len(m.blocks) == TINY.n_layers
    h0, e = m.embed(tokens())
    x = m.tok_emb(tokens()) + m.pos_emb(torch.arange(10))
    assert torch.equal(h0, m.prelude[1](m.prelude[0](x))) and h0 is e


def test_tied_and_untied_readout():
    tied, untied = model(), model(tie_embeddings=False)
    assert tied.lm_head.weight is tied.tok_emb.weight
    assert untied.lm_head.weight is not untied.tok_emb.weight
    assert untied.num_parameters() == tied.num_parameters() + TINY.vocab_size * TINY.d_model


# ----------------------------------------------------------------------------- trace, loops, mask


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_trace_is_consistent_with_the_output(switch):
    m = model(**SWITCHES[switch])
    out = m(tokens(), return_trace=True)
    tr = out.trace
    assert isinstance(tr, LoopTrace) and tr.num_loops == TINY.num_loops
    assert all(a is b for a, b in zip(tr.states, out.states, strict=True))
    assert all(a is b for a, b in zip(tr.logits, out.logits, strict=True))
    assert torch.equal(tr.initial, m.embed(tokens())[0])
    assert tr.scales().shape == (TINY.num_loops, 2, 10)
    assert m(tokens()).trace is None


def test_num_loops_override_extends_the_same_recurrence():
    m = model()
    short, long = m(tokens(), num_loops=2), m(tokens(), num_loops=5)
    assert len(short.logits) == len(short.states) == 2
    assert len(long.logits) == len(long.states) == 5
    base = m(tokens())
    for k in range(2):
        assert torch.equal(short.states[k], base.states[k])
        assert torch.equal(long.states[k], base.states[k])
    # the loops beyond K keep changing the state (depth extrapolation runs the shared stack)
    assert not torch.allclose(long.states[4], long.states[2])


def test_logits_last_and_none():
    m = model()
    full, last, none = (m(tokens(), logits=r, return_trace=True) for r in ("all", "last", "none"))
    assert len(last.logits) == 1 and torch.equal(last.logits[0], full.logits[-1])
    assert none.logits == [] and len(none.states) == TINY.num_loops
    assert last.trace.logits is None and none.trace.logits is None


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_future_tokens_do_not_affect_past_logits(switch):
    m = model(**SWITCHES[switch])
    a = tokens(5)
    b = a.clone()
    b[:, 6:] = (b[:, 6:] + 1) % TINY.vocab_size
    za, zb = m(a).logits, m(b).logits
    for x, y in zip(za, zb, strict=True):
        assert torch.equal(x[:, :6], y[:, :6])  # positions 0..5 never see 6..
        assert not torch.allclose(x[:, 6:], y[:, 6:])  # and the change is visible after it


# ----------------------------------------------------------------------------- errors, determinism


@pytest.mark.parametrize("field,value,match", [
    ("d_model", 30, "d_model = 30 is not divisible by n_heads = 4"),
    ("n_heads", 0, "n_heads = 0: must be an integer >= 1"),
    ("num_loops", 2.0, "num_loops = 2.0: must be an integer"),
    ("readout", "rms", "readout = 'rms': valid choices are 'norm', 'raw', 'final_only_norm'"),
    ("norm", "batchnorm", "norm = 'batchnorm': valid choices"),
    ("block_norm", "post", "block_norm = 'post': valid choices are 'pre', 'sandwich'"),
    ("input_injection", "gate", "input_injection = 'gate'"),
    ("inter_loop_norm", 1, "inter_loop_norm = 1: must be True or False"),
    ("dropout", 1.0, r"dropout = 1.0: must be in \[0, 1\)"),
    ("norm_eps", float("nan"), "norm_eps = nan: must be a finite number >= 0"),
    ("ff_mult", 0.0, "ff_mult = 0.0: must be a finite number > 0"),
    ("prelude_layers", -1, "prelude_layers = -1: must be an integer >= 0"),
    ("attention_kernel", "flash", "attention_kernel = 'flash': valid choices are 'sdpa', "
                                  "'explicit'"),
])
def test_bad_config_names_the_field_and_the_fix(field, value, match):
    with pytest.raises(ValueError, match=match):
        LoopedLM(ModelConfig(**{field: value}))


def test_bad_input_is_rejected_clearly():
    m = model()
    with pytest.raises(ValueError, match="T = 13 must be in 1..max_seq_len = 12"):
        m(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(ValueError, match=r"integer tensor of shape \(B, T\)"):
        m(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"integer tensor of shape \(B, T\)"):
        m(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids must lie in 0..vocab_size-1 = 31"):
        m(torch.full((1, 4), 32))
    with pytest.raises(ValueError, match="num_loops = 0: must be an integer >= 1"):
        m(tokens(), num_loops=0)
    with pytest.raises(ValueError, match="logits = 'first'"):
        m(tokens(), logits="first")
    with pytest.raises(TypeError, match="needs a ModelConfig"):
        LoopedLM({"d_model": 16})


def test_same_seed_same_model_and_output_including_dropout():
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        m = LoopedLM(replace(TINY, dropout=0.1)).train()  # float32, dropout active
        out = m(tokens())
        outs.append((m.state_dict(), out.logits))
    (sd1, z1), (sd2, z2) = outs
    assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    assert all(torch.equal(a, b) for a, b in zip(z1, z2, strict=True))
    torch.manual_seed(8)
    assert not torch.equal(LoopedLM(TINY)(tokens()).logits[0], z1[0])


def test_explicit_attention_kernel_computes_the_same_model_in_float64(tol):
    """attention_kernel changes how attention is computed, not the model: the same seed gives
    the same weights, and in eval mode (dropout 0.1 configured, off) the per-loop logits,
    states and loss gradients of the two kernels agree to float64 round-off (~1e-15 through
    these tiny blocks; tol.float64 is far below what a wrong mask or scale would change)."""
    x, y = tokens(), tokens(seed=2)
    m = {kernel: model(dropout=0.1, attention_kernel=kernel) for kernel in ("sdpa", "explicit")}
    assert m["explicit"].blocks[0].attn.kernel == "explicit"
    sd = {kernel: mod.state_dict() for kernel, mod in m.items()}
    assert all(torch.equal(sd["sdpa"][k], sd["explicit"][k]) for k in sd["sdpa"])
    out = {kernel: mod(x) for kernel, mod in m.items()}
    for a, b in zip(out["explicit"].logits + out["explicit"].states,
                    out["sdpa"].logits + out["sdpa"].states, strict=True):
        torch.testing.assert_close(a, b, rtol=tol.float64, atol=tol.float64)
    grads = {}
    for kernel, mod in m.items():
        loss = mod.loop_cross_entropy(x, y)[0].mean()
        grads[kernel] = torch.autograd.grad(loss, list(mod.parameters()))
    for a, b in zip(grads["explicit"], grads["sdpa"], strict=True):
        torch.testing.assert_close(a, b, rtol=tol.float64, atol=tol.float64)


def test_init_gpt2_scales_residual_projections_down_by_depth():
    torch.manual_seed(0)
    cfg = replace(TINY, d_model=64, n_heads=4, num_loops=8, init="gpt2")
    m = LoopedLM(cfg)
    depth = cfg.n_layers * cfg.num_loops
    std_proj = torch.cat([b.attn.proj.weight.flatten() for b in m.blocks]).std().item()
    std_qkv = torch.cat([b.attn.qkv.weight.flatten() for b in m.blocks]).std().item()
    # 8192 and 24576 N(0, σ²) samples: the sample std is within ~2 % of σ (4 sigma of its
    # sampling error), so 10 % separates the two intended scales comfortably.
    assert abs(std_qkv / 0.02 - 1) < 0.1
    assert abs(std_proj / (0.02 / (2 * depth) ** 0.5) - 1) < 0.1
    assert abs(m.tok_emb.weight.std().item() / 0.02 - 1) < 0.1


def test_init_paper_is_pytorchs_default():
    """N(0, 1) embeddings (tied readout included), U(±1/√fan_in) linears with no depth scaling,
    gains 1: the same distributions as modules left at torch's own init."""
    torch.manual_seed(0)
    cfg = replace(TINY, vocab_size=256, d_model=64, n_heads=4, num_loops=8)
    m = LoopedLM(cfg)
    assert cfg.init == "paper" and m.lm_head.weight is m.tok_emb.weight
    for emb in (m.tok_emb.weight, m.pos_emb.weight):  # 16384 / 768 N(0, 1) samples
        # sample std of n normals: relative error ~1/√(2n) ≤ 2.6 %; 10 % is ≥ 4 sigma
        assert abs(emb.std().item() - 1) < 0.1
    for lin in (m.blocks[0].attn.qkv, m.blocks[0].attn.proj, m.blocks[0].mlp.gate_up,
                m.blocks[0].mlp.proj):
        bound = 1 / lin.in_features ** 0.5
        w = lin.weight
        assert w.abs().max().item() <= bound  # uniform on [-bound, bound] ...
        # ... with variance bound²/3 (≥ 4096 samples: relative std error of the variance
        # ≤ 1.8 %, so 10 % is > 5 sigma); the gpt2 init's residual projection would be 0.1x
        assert abs(w.var().item() / (bound**2 / 3) - 1) < 0.1
    assert all(torch.equal(b.norm_attn.weight, torch.ones(64)) for b in m.blocks)


@pytest.mark.parametrize("init, std", [("paper", 1.0), ("gpt2", 0.02)])
def test_initial_state_scale_is_the_embedding_std_times_sqrt_2d(init, std):
    """The documented ‖H_0‖ ≈ std·√(2d): token + position embeddings, each N(0, std²)."""
    torch.manual_seed(0)
    cfg = replace(TINY, vocab_size=256, max_seq_len=64, d_model=128, n_heads=4, init=init)
    h0, _ = LoopedLM(cfg).embed(torch.randint(0, 256, (8, 64)))
    # 512 tokens of a χ-distributed norm with 256 degrees of freedom: its mean is within 1 %
    # of std·√(2d); 5 % leaves room for the 64 shared position rows
    assert abs(h0.norm(dim=-1).mean().item() / (std * (2 * 128) ** 0.5) - 1) < 0.05
    m = LoopedLM(replace(cfg, init_embed_std=0.3))
    assert abs(m.tok_emb.weight.std().item() / 0.3 - 1) < 0.05  # 32768 samples
    assert abs(m.pos_emb.weight.std().item() / 0.3 - 1) < 0.1  # 8192 samples


@pytest.mark.parametrize("kernel", ["sdpa", "explicit"])
def test_dropout_sits_where_the_paper_puts_it(kernel):
    """Input embedding, attention probabilities and FFN output; not the attention output
    projection. In training mode with p = 0.9, dropping attention probabilities can zero a
    token's whole output row (all its keys dropped), never single coordinates of it; dropout
    on the output projection would zero ~90 % of the coordinates of every row. Either
    attention kernel."""
    torch.manual_seed(0)
    m = LoopedLM(replace(TINY, dropout=0.9, attention_kernel=kernel)).train()
    drops = sorted(n for n, mod in m.named_modules() if isinstance(mod, nn.Dropout))
    assert drops == ["blocks.0.mlp.drop", "blocks.1.mlp.drop", "emb_drop"]
    attn = m.blocks[0].attn
    assert (attn.dropout, attn.kernel) == (0.9, kernel)  # given to the attention kernel
    y = attn(torch.randn(4, 10, TINY.d_model))  # (B, T, d)
    zero_share = (y == 0).float().mean(-1)  # (B, T): share of zero coordinates per token
    assert ((zero_share == 0) | (zero_share == 1)).all()
    assert (zero_share == 0).any()  # some tokens kept attention mass
    m.blocks[0].mlp.train()
    z = m.blocks[0].mlp(torch.randn(2, 10, TINY.d_model))
    assert (z == 0).float().mean().item() > 0.8  # the FFN output is dropped


def test_bad_init_settings_are_rejected():
    with pytest.raises(ValueError, match="init"):
        LoopedLM(replace(TINY, init="xavier"))
    for bad in (0.0, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match="init_embed_std"):
            LoopedLM(replace(TINY, init_embed_std=bad))
