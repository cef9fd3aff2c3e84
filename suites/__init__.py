"""Declarative suite files, one per paper table (``*.yaml`` beside this file)."""
