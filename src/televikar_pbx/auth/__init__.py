"""Users of the agent desk: passwords, log-in, sessions, the audit log (use cases)."""
