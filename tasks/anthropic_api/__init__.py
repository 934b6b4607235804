"""Anthropic's Messages API and Message Batches in front of the ordinary task pipeline."""
