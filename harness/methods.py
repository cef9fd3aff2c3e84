"""Method registry: a suite row names a method id, the registry builds the model.

Built-in ids map to ``dacode.create_model`` and ``baselines.create_model``. Every model
follows one protocol: input N×3×H×W float in [0, 1], output the same shape (the harness
clips to [0, 1] before scoring), an int ``pad_multiple`` (the model pads internally), and
optionally ``training_loss(degraded, clean)`` for methods whose training objective is not
plain L1 on the output (AirNet's contrastive encoder).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from harness.errors import HarnessError


@dataclass(frozen=True)
class MethodSpec:
    id: str
    family: str
    build: Callable[..., torch.nn.Module]
    can_train: bool = True


def _dacode(name: str) -> Callable[..., torch.nn.Module]:
    def build(**overrides: Any) -> torch.nn.Module:
        import dacode

        return dacode.create_model(name, **overrides)

    return build


def _baseline(name: str) -> Callable[..., torch.nn.Module]:
    def build(**overrides: Any) -> torch.nn.Module:
        import baselines

        return baselines.create_model(name, **overrides)

    return build


BUILTIN: dict[str, MethodSpec] = {
    "dacode": MethodSpec("dacode", "dacode", _dacode("dacode")),
    "dacode-s": MethodSpec("dacode-s", "dacode", _dacode("dacode-s")),
    "promptir": MethodSpec("promptir", "baselines", _baseline("promptir")),
    "airnet": MethodSpec("airnet", "baselines", _baseline("airnet")),
}


def available_methods() -> list[str]:
    return sorted(BUILTIN)


def get_method(method_id: str) -> MethodSpec:
    if method_id not in BUILTIN:
        raise HarnessError(f"unknown method '{method_id}'; allowed: {', '.join(available_methods())}")
    return BUILTIN[method_id]


def build_model(method_id: str, overrides: dict[str, Any] | None = None) -> torch.nn.Module:
    spec = get_method(method_id)
    try:
        return spec.build(**(overrides or {}))
    except TypeError as exc:
        raise HarnessError(f"method '{method_id}': bad constructor overrides {overrides}: {exc}") from None
