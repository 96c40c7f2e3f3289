"""OpenAPI document (placeholder until built)."""
