"""Methods: how a suite row becomes a model (or a folder of restored images).

The Method protocol (what the harness expects from any model, built-in or yours):

- ``forward(x)``: ``x`` is float32 N×3×H×W in [0, 1] (RGB); return the same shape. The
  harness clips to [0, 1] before scoring, so no clamp is needed. A different shape, or a
  NaN/Inf anywhere, stops the run with a message naming the method (and the image).
- ``pad_multiple`` (int attribute, default 1): the model pads internally to this multiple
  and crops back; the harness feeds test images at their protocol size (and sizes tiles by it).
- ``can_train`` (bool attribute, default True): False means "inference only" — the row
  needs a ``checkpoint`` (or builds pre-trained weights itself).
- ``training_loss(degraded, clean)`` (optional): the training objective; otherwise the
  trainer uses L1(model(degraded), clean) as the paper does.
- ``stochastic`` (bool, default False): the forward draws from torch's global RNG (MoCE-IR's
  noisy router); the harness then runs one image at a time, seeding torch per image from
  (dataset, image id, run seed, noise seed) so a number does not depend on file order.
- ``records_codebook`` (bool, default False): ``dacode.record_codebook`` works on it (figures).

A method reaches a suite in one of three ways (see ``harness.suite.MethodEntry``):
built-in or entry-point id (``model:``), dotted path (``build:``), or a folder of already
restored images (``outputs:``). :data:`BUILTIN` is the registry of built-in ids.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import pathlib
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

import torch

from harness.errors import HarnessError

ENTRY_POINT_GROUP = "dacode_bench.methods"


@dataclass(frozen=True)
class MethodSpec:
    id: str
    family: str  # "dacode", "baselines" or "entry point <target>"
    build: Callable[..., torch.nn.Module]
    mini: Callable[[], dict[str, Any]] | None = None  # the registered mini configuration
    builtin: bool = True  # code under this repository (covered by the code fingerprint)
    distribution: str | None = None  # entry points: the installed distribution that provides it


def _dacode(name: str) -> MethodSpec:
    def build(**overrides: Any) -> torch.nn.Module:
        import dacode

        return dacode.create_model(name, **overrides)

    def mini() -> dict[str, Any]:
        import dacode

        return dict(dacode.MINI_CONFIG)

    return MethodSpec(name, "dacode", build, mini)


def _baseline(name: str) -> MethodSpec:
    def build(**overrides: Any) -> torch.nn.Module:
        import baselines

        return baselines.create_model(name, **overrides)

    def mini() -> dict[str, Any]:
        import baselines

        return baselines.mini_config(name)

    return MethodSpec(name, "baselines", build, mini)


BUILTIN: dict[str, MethodSpec] = {
    spec.id: spec for spec in (
        _dacode("dacode"), _dacode("dacode-s"),
        *(_baseline(name) for name in ("promptir", "airnet", "adair", "moce_ir", "moce_ir_s")),
    )
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
        raise HarnessError(f"entry point '{method_id}' ({entry_point.value}) failed to load: "
                           f"{type(exc).__name__}: {exc}") from None
    dist = getattr(entry_point, "dist", None)
    return MethodSpec(method_id, f"entry point {entry_point.value}", target, builtin=False,
                      distribution=getattr(dist, "name", None))


def load_dotted(path: str) -> Callable[..., torch.nn.Module]:
    """``package.module:function`` → the function (a builder returning an nn.Module)."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise HarnessError(f"build '{path}': expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or the module itself raising on import
        raise HarnessError(f"build '{path}': cannot import module '{module_name}' ({type(exc).__name__}: {exc})") from None
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise HarnessError(f"build '{path}': module '{module_name}' has no attribute '{attr}'")
        target = getattr(target, part)
    if not callable(target):
        raise HarnessError(f"build '{path}': '{attr}' is not callable")
    return target


def _call_builder(label: str, builder: Callable[..., torch.nn.Module], kwargs: dict[str, Any],
                  plugin: bool) -> torch.nn.Module:
    try:
        model = builder(**kwargs)
    except TypeError as exc:
        strings = [f"{k}={v!r}" for k, v in kwargs.items() if isinstance(v, str)]
        hint = f" (check the types: {', '.join(strings)} {'is a string' if len(strings) == 1 else 'are strings'})" \
            if strings else ""
        raise HarnessError(f"method '{label}': bad constructor keywords {kwargs}: {exc}{hint}") from None
    except ValueError as exc:
        raise HarnessError(f"method '{label}': {exc}") from None
    except Exception as exc:
        if not plugin:
            raise  # a built-in model failing is the harness's bug: exit 3 with a traceback log
        raise HarnessError(f"method '{label}': its builder raised {type(exc).__name__}: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise HarnessError(f"method '{label}': the builder returned {type(model).__name__}, not a torch.nn.Module")
    return model


def build_model(method_id: str, overrides: dict[str, Any] | None = None) -> torch.nn.Module:
    spec = get_method(method_id)
    return _call_builder(method_id, spec.build, dict(overrides or {}), plugin=not spec.builtin)


def load_weights(model: torch.nn.Module, path: pathlib.Path, *, trust_pickle: bool = False) -> torch.nn.Module:
    """Strictly load a state dict from ``.safetensors`` or a torch file (weights only unless trusted)."""
    import baselines

    try:
        state = baselines.checkpoints.state_dict_of(baselines.read_checkpoint(path, trust_pickle), str(path))
    except (ValueError, OSError, baselines.UnsafeCheckpointError) as exc:
        raise HarnessError(str(exc).splitlines()[0]) from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [k for k in expected if k in state and getattr(state[k], "shape", None) != expected[k].shape]
    if missing or unexpected or misshaped:
        def some(keys):
            return ", ".join(keys[:3]) + (f", … ({len(keys) - 3} more)" if len(keys) > 3 else "")

        parts = [f"{len(keys)} {what} ({some(keys)})" for what, keys in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("mis-shaped keys", misshaped)) if keys]
        raise HarnessError(f"checkpoint '{path}' does not match the model: {'; '.join(parts)}")
    model.load_state_dict(state, strict=True)
    return model.eval()


def row_kwargs(entry, profile: str, profile_cfg=None) -> dict[str, Any]:
    """The constructor keywords of a row under a profile: the model's registered mini
    configuration when the profile builds mini models, then the row's kwargs and overrides."""
    base = None
    if entry.model and profile_cfg is not None and getattr(profile_cfg, "model_size", "released") == "mini":
        spec = get_method(entry.model)
        base = spec.mini() if spec.mini else None
    return entry.constructor_kwargs(profile, base)


def instantiate(entry, kwargs: dict[str, Any]) -> tuple[torch.nn.Module, bool]:
    """Build the row's model from its constructor keywords; returns (model, loaded_from_checkpoint)."""
    checkpoint = pathlib.Path(entry.checkpoint).expanduser() if entry.checkpoint else None
    if entry.model:
        spec = get_method(entry.model)
        if checkpoint is not None and spec.family == "baselines" and not kwargs:
            import baselines

            try:
                return baselines.load_checkpoint(entry.model, checkpoint, trust_pickle=entry.trust_pickle), True
            except (ValueError, OSError, baselines.UnsafeCheckpointError) as exc:
                raise HarnessError(f"method '{entry.name}': {exc}") from None
        model = _call_builder(entry.name, spec.build, kwargs, plugin=not spec.builtin)
    else:
        builder = load_dotted(entry.build)
        if checkpoint is not None and "checkpoint" in _parameters(builder):
            return _call_builder(entry.name, builder, {**kwargs, "checkpoint": str(checkpoint)}, plugin=True).eval(), True
        model = _call_builder(entry.name, builder, kwargs, plugin=True)
    if checkpoint is not None:
        return load_weights(model, checkpoint, trust_pickle=entry.trust_pickle), True
    return model, False


def _parameters(fn) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


def check_constructor(entry, kwargs: dict[str, Any]) -> None:
    """Build a built-in row's model on the meta device (no memory, no compute): unknown or mistyped
    constructor keywords are found before any compute, by ``validate`` as by ``run``."""
    if not entry.model or not get_method(entry.model).builtin:
        return  # a plug-in's builder is the user's code: it runs when the row runs
    with torch.device("meta"):
        _call_builder(entry.name, get_method(entry.model).build, dict(kwargs), plugin=False)


def check_entry(entry) -> None:
    """Fail fast (before any compute) on a row that cannot be built or read."""
    if entry.model:
        get_method(entry.model)
    elif entry.build:
        load_dotted(entry.build)
    else:
        folder = pathlib.Path(entry.outputs).expanduser()
        if not folder.is_dir():
            what = "is a file, not a folder" if folder.is_file() else "does not exist"
            raise HarnessError(f"method '{entry.name}': outputs folder '{folder}' {what}")
    if entry.checkpoint:
        path = pathlib.Path(entry.checkpoint).expanduser()
        if path.is_dir():
            raise HarnessError(f"method '{entry.name}': checkpoint '{path}' is a directory; give the weights file")
        if not path.is_file():
            raise HarnessError(f"method '{entry.name}': checkpoint '{path}' does not exist")


# -- what code decides a row's numbers (part of its cache key) ---------------------------------------


def _hash_files(files: list[pathlib.Path], root: pathlib.Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _package_source(module_name: str) -> dict[str, Any]:
    """The files of the top-level package a module sits in (or the module alone), hashed."""
    top = module_name.split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        module = sys.modules.get(module_name)
        origin = getattr(module, "__file__", None)
        if origin is None:
            return {"module": module_name, "sha256": None}
        path = pathlib.Path(origin)
        return {"module": module_name, "files": 1, "sha256": _hash_files([path], path.parent)}
    origin = pathlib.Path(spec.origin)
    if spec.submodule_search_locations:  # a package: every source file under it
        root = origin.parent
        files = [p for p in root.rglob("*.py") if "__pycache__" not in p.parts]
    else:
        root, files = origin.parent, [origin]
    return {"package": top, "files": len(files), "sha256": _hash_files(files, root)}


def code_identity(entry) -> dict[str, Any]:
    """What the cache key records of the code behind a row: built-ins are covered by the
    harness's code fingerprint; a ``build:`` row by the files of the package its builder sits
    in; an entry point by its distribution's name and version and its package's files."""
    if entry.outputs:
        return {"kind": "outputs"}
    if entry.model:
        spec = get_method(entry.model)
        if spec.builtin:
            return {"kind": "builtin", "family": spec.family}
        module = spec.build.__module__
        version = None
        if spec.distribution:
            try:
                version = metadata.version(spec.distribution)
            except metadata.PackageNotFoundError:
                pass
        return {"kind": "entry point", "target": spec.family, "distribution": spec.distribution,
                "version": version, "source": _package_source(module)}
    module_name = entry.build.partition(":")[0]
    return {"kind": "build", "target": entry.build, "source": _package_source(module_name)}
