"""Pipelines: text in, images out; they wire tokenizer, models and samplers together."""
