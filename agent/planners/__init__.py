"""Planners propose the next actions: script, anthropic, openai."""
