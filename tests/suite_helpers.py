"""A bundled suite as one mapping, its `include:` files resolved: to copy and edit in tests."""
import copy

from harness.suite import load_suite_document


def resolved(name: str) -> dict:
    return copy.deepcopy(load_suite_document(name)[1])
