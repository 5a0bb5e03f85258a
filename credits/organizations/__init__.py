"""Organisations onboard their members: creation, roster import, activation of imported accounts (SPEC 2.8)."""
