"""Managed API keys: create, list, update and revoke them; read usage per key."""
