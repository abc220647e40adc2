"""Perception: screen parsing (OCR) and intent triage."""
