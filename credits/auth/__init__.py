"""Users, roles, organisations, tokens, sign-in, permissions and the audit trail."""
