"""Claim checks, one module per layer; each module registers claims with
:func:`blindspot.claims.claim` when imported by :func:`blindspot.claims.load_all`."""
