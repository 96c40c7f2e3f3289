"""Swagger UI (placeholder until built)."""
