"""Paper-format report templates (jinja2) used by ``harness.report``."""
