"""Every claim names its support (certificate, test, experiment, book page); this test fails
when a named object no longer exists, so the claims table cannot point at something deleted."""

import importlib
import re
from pathlib import Path

import pytest

from blindspot.checks import load_all
from blindspot.claims import TIERS

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = load_all()


def test_some_claims_are_registered():
    assert len(CLAIMS) > 0


@pytest.mark.parametrize("cid", sorted(CLAIMS))
def test_claim_support_exists(cid):
    c = CLAIMS[cid]
    assert c.tier in TIERS
    assert c.test or c.certificate or c.experiment, f"{cid} names no support"
    if c.certificate:
        mod, _, attr = c.certificate.rpartition(".")
        assert hasattr(importlib.import_module(mod), attr), f"{cid}: no {c.certificate}"
    if c.test:
        path, _, name = c.test.partition("::")
        src = (ROOT / path).read_text()
        assert re.search(rf"^\s*def {re.escape(name)}\b", src, re.M), f"{cid}: no {c.test}"
    if c.page:
        assert (ROOT / c.page).exists(), f"{cid}: no page {c.page}"
    if c.experiment:
        from blindspot.experiments import EXPERIMENTS

        assert c.experiment in EXPERIMENTS, f"{cid}: no experiment {c.experiment}"
