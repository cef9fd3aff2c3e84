"""Methods: how a suite row becomes restored images.

The Method protocol (what the harness expects from any model, built-in or yours):

- ``forward(x)``: ``x`` is float32 N×3×H×W in [0, 1] (RGB); return the same shape. The
  harness clips to [0, 1] before scoring, so no clamp is needed.
- ``pad_multiple`` (int attribute, default 1): the model pads internally to this multiple
  and crops back; the harness feeds test images at their protocol size.
- ``can_train`` (bool attribute, default True): False means "inference only" — the row
  needs a ``checkpoint`` (or builds pre-trained weights itself).
- ``training_loss(degraded, clean)`` (optional): the training objective; otherwise the
  trainer uses L1(model(degraded), clean) as the paper does.

A method reaches a suite in one of three ways (see ``harness.suite.MethodEntry``):
built-in or entry-point id (``model:``), dotted path (``build:``), or a folder of already
restored images (``outputs:``).
"""
from __future__ import annotations

import importlib
import inspect
import pathlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

import torch

from harness.errors import HarnessError

ENTRY_POINT_GROUP = "dacode_bench.methods"


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


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_methods() -> list[str]:
    return sorted(set(BUILTIN) | set(_entry_points()))


def get_method(method_id: str) -> MethodSpec:
    if method_id in BUILTIN:
        return BUILTIN[method_id]
    entry_point = _entry_points().get(method_id)
    if entry_point is None:
        raise HarnessError(
            f"unknown method '{method_id}'; allowed: {', '.join(available_methods())} "
            f"(packages add more under the entry-point group '{ENTRY_POINT_GROUP}')"
        )
    try:
        target = entry_point.load()
    except Exception as exc:  # a broken plug-in must not look like a harness crash
        raise HarnessError(f"entry point '{method_id}' ({entry_point.value}) failed to load: {exc}") from None
    return MethodSpec(method_id, f"entry point {entry_point.value}", target)


def load_dotted(path: str) -> Callable[..., torch.nn.Module]:
    """``package.module:function`` → the function (a builder returning an nn.Module)."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise HarnessError(f"build '{path}': expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HarnessError(f"build '{path}': cannot import module '{module_name}' ({exc})") from None
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise HarnessError(f"build '{path}': module '{module_name}' has no attribute '{attr}'")
        target = getattr(target, part)
    if not callable(target):
        raise HarnessError(f"build '{path}': '{attr}' is not callable")
    return target


def _call_builder(label: str, builder: Callable[..., torch.nn.Module], kwargs: dict[str, Any]) -> torch.nn.Module:
    try:
        model = builder(**kwargs)
    except TypeError as exc:
        raise HarnessError(f"method '{label}': bad constructor keywords {kwargs}: {exc}") from None
    except ValueError as exc:
        raise HarnessError(f"method '{label}': {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise HarnessError(f"method '{label}': the builder returned {type(model).__name__}, not a torch.nn.Module")
    return model


def build_model(method_id: str, overrides: dict[str, Any] | None = None) -> torch.nn.Module:
    spec = get_method(method_id)
    return _call_builder(method_id, spec.build, dict(overrides or {}))


def load_weights(model: torch.nn.Module, path: pathlib.Path, *, trust_pickle: bool = False) -> torch.nn.Module:
    """Strictly load a state dict from ``.safetensors`` or a torch file (weights only unless trusted)."""
    if not path.is_file():
        raise HarnessError(f"checkpoint '{path}' does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
        except Exception as exc:
            raise HarnessError(
                f"checkpoint '{path}' cannot be read with weights_only=True ({exc}); if you trust the file, "
                "set 'trust_pickle: true' on the method"
            ) from None
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise HarnessError(f"checkpoint '{path}' does not match the model: {' '.join(first)}") from None
    return model.eval()


def instantiate(entry, profile: str) -> tuple[torch.nn.Module, bool]:
    """Build the row's model; returns (model, loaded_from_checkpoint)."""
    kwargs = entry.constructor_kwargs(profile)
    checkpoint = pathlib.Path(entry.checkpoint).expanduser() if entry.checkpoint else None
    if entry.model:
        spec = get_method(entry.model)
        if checkpoint is not None and spec.family == "baselines" and not kwargs:
            import baselines

            try:
                return baselines.load_checkpoint(entry.model, checkpoint, trust_pickle=entry.trust_pickle), True
            except (ValueError, OSError) as exc:
                raise HarnessError(f"method '{entry.name}': {exc}") from None
        model = _call_builder(entry.name, spec.build, kwargs)
    else:
        builder = load_dotted(entry.build)
        if checkpoint is not None and "checkpoint" in inspect.signature(builder).parameters:
            return _call_builder(entry.name, builder, {**kwargs, "checkpoint": str(checkpoint)}).eval(), True
        model = _call_builder(entry.name, builder, kwargs)
    if checkpoint is not None:
        return load_weights(model, checkpoint, trust_pickle=entry.trust_pickle), True
    return model, False


def check_entry(entry) -> None:
    """Fail fast (before any compute) on a row that cannot be built or read."""
    if entry.model:
        get_method(entry.model)
    elif entry.build:
        load_dotted(entry.build)
    else:
        folder = pathlib.Path(entry.outputs).expanduser()
        if not folder.is_dir():
            raise HarnessError(f"method '{entry.name}': outputs folder '{folder}' does not exist")
    if entry.checkpoint and not pathlib.Path(entry.checkpoint).expanduser().is_file():
        raise HarnessError(f"method '{entry.name}': checkpoint '{entry.checkpoint}' does not exist")
