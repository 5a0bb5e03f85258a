"""The double-entry ledger (SPEC 2.5). It knows nothing of projects or merchants and no request state."""
