"""The nn claims pass on the package's model and their measurements can fail: each contrast
is shown from both sides, so a check that cannot fail would be caught here."""

import torch

from blindspot.checks import nn as nn_checks
from blindspot.checks.nn import rescaled_rollout
from blindspot.checks.small import small_inputs, small_model


def test_rescaled_rollout_with_c_one_is_the_forward_pass():
    m, idx = small_model(), small_inputs()
    out = m(idx)
    assert all(torch.equal(a, b) for a, b in
               zip(rescaled_rollout(m, idx, 1, 1.0), out.states, strict=True))


def test_inter_loop_norm_claim_and_its_contrast():
    out = nn_checks.inter_loop_norm_removes_scale()
    assert out.passed, out.evidence
    # the same intervention with ε > 0 is no longer exact: the leak ε/ms(h) shows up
    m, idx = small_model(inter_loop_norm=True, norm_eps=1e-2), small_inputs()
    with torch.no_grad():
        a, b = rescaled_rollout(m, idx, 1, 1.0)[-1], rescaled_rollout(m, idx, 1, 1e-3)[-1]
    assert not torch.allclose(a, b, rtol=1e-6, atol=0)


def test_prenorm_claim_and_its_contrast(tol):
    out = nn_checks.prenorm_loop_carries_scale()
    assert out.passed, out.evidence
    # with the inter-loop norm the scale is not carried: H_2 from c·H_1 does not grow with c
    m, idx = small_model(inter_loop_norm=True), small_inputs()
    with torch.no_grad():
        s1 = rescaled_rollout(m, idx, 1, 1.0)[1].norm()
        s2 = rescaled_rollout(m, idx, 1, 1e4)[1].norm()
    torch.testing.assert_close(s2, s1, rtol=tol.float64, atol=0)  # float64 round-off
