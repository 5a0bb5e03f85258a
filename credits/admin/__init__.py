"""Admin pages: users and roles, organisations, policy settings and the audit trail."""
