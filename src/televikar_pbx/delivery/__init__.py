"""Delivering messages to customers: composing the e-mail, the SMS port and its gateway
adapter. No database here; the outbox worker that drives these lives with the service."""
