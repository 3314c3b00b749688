"""Catalog data files (skills.jsonl, topics.jsonl)."""
