"""Loading the officially released baseline checkpoints, without Lightning or mmcv.

Formats (baselines.md §1.5 and §2.4; specs/*_state_dict.json):

* PromptIR ``model.ckpt``: a Lightning checkpoint, a dict whose ``state_dict``
  maps ``"net." + <PromptIR(decoder=True) key>`` to tensors (548 keys); the
  other entries (epoch, optimizer states, callbacks, ...) are ignored.
* AirNet ``All.pth``: a plain ``state_dict`` (584 entries incl. BN buffers and
  the MoCo queue).  The queue length depends on the file (All 1280, Denoise 768,
  Derain/Dehaze 256), so it is read from ``E.E.queue``.

Files are read with ``torch.load(weights_only=True)``; a file that needs
arbitrary unpickling is refused unless the caller passes ``trust_pickle=True``.
Loading is strict: any missing, unexpected or mis-shaped key raises
:class:`CheckpointMismatchError` before the weights are copied.
"""
from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Tuple

import torch
from torch import Tensor, nn

__all__ = ["CheckpointMismatchError", "UnsafeCheckpointError", "load_checkpoint", "RELEASES"]


class CheckpointMismatchError(ValueError):
    """The file's keys or shapes differ from the release the loader expects."""

    def __init__(self, message: str, missing: List[str], unexpected: List[str],
                 mismatched: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]]):
        super().__init__(message)
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched  # (key, shape in file, expected shape)


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The file needs arbitrary unpickling and the caller did not declare it trusted."""


RELEASES: Dict[str, str] = {
    "promptir": (
        "PromptIR(decoder=True) as released by va1shn9v/PromptIR (v1.0 model.ckpt: Lightning checkpoint, "
        "548 tensors under state_dict with prefix 'net.', 35,592,263 parameters)"
    ),
    "airnet": (
        "AirNet as released by XLearning-SCU/2022-CVPR-AirNet (ckpt/All.pth: plain state_dict, "
        "584 entries, 8,930,313 parameters, E.E.queue of shape (256, K))"
    ),
}

_SHOW = 5  # keys listed per category in the error message


def _read(path: str, trust_pickle: bool) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not trust_pickle:
            raise UnsafeCheckpointError(
                f"refusing to load {path!r}: it cannot be read with torch.load(weights_only=True) and would need "
                f"arbitrary unpickling, which can run code from the file. If you trust this file, pass "
                f"trust_pickle=True.{_why(err)}"
            ) from err
    return torch.load(path, map_location="cpu", weights_only=False)


def _why(err: Exception) -> str:
    """The informative line of torch's weights_only error (e.g. the disallowed global)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    detail = next((ln for ln in lines if "Unsupported global" in ln or "WeightsUnpickler" in ln), "")
    return f" ({detail.split('. Please use')[0]})" if detail else ""


def _tensor_dict(obj: Any, path: str) -> Dict[str, Tensor]:
    if not isinstance(obj, Mapping):
        raise CheckpointMismatchError(f"{path!r} holds a {type(obj).__name__}, not a state_dict", [], [], [])
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):  # Lightning and similar wrappers
        obj = obj["state_dict"]
    return {str(k): v for k, v in obj.items()}


def _strip(sd: Dict[str, Tensor], prefix: str) -> Dict[str, Tensor]:
    if not prefix:
        return sd
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in sd.items()}


def _compare(name: str, path: str, sd: Dict[str, Any], expected: Dict[str, Tensor]) -> None:
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    mismatched = []
    for k, ref in expected.items():
        v = sd.get(k)
        if v is None:
            continue
        shape = tuple(v.shape) if isinstance(v, Tensor) else None
        if shape != tuple(ref.shape):
            mismatched.append((k, shape, tuple(ref.shape)))
    if not (missing or unexpected or mismatched):
        return

    def show(items: List[str]) -> str:
        more = f", ... ({len(items) - _SHOW} more)" if len(items) > _SHOW else ""
        return ", ".join(items[:_SHOW]) + more

    lines = [f"checkpoint {path!r} does not match the release expected by load_checkpoint({name!r}): "
             f"{RELEASES[name]}."]
    if missing:
        lines.append(f"  {len(missing)} missing keys: {show(missing)}")
    if unexpected:
        lines.append(f"  {len(unexpected)} unexpected keys: {show(unexpected)}")
    if mismatched:
        shown = [f"{k} (file {'not a tensor' if s is None else list(s)}, expected {list(e)})"
                 for k, s, e in mismatched]
        lines.append(f"  {len(mismatched)} mis-shaped keys: {show(shown)}")
    raise CheckpointMismatchError("\n".join(lines), missing, unexpected, mismatched)


def _promptir_overrides(sd: Dict[str, Tensor]) -> Dict[str, Any]:
    return {}


def _airnet_overrides(sd: Dict[str, Tensor]) -> Dict[str, Any]:
    queue = sd.get("E.E.queue")
    if isinstance(queue, Tensor) and queue.dim() == 2:
        return {"queue_size": int(queue.shape[1])}
    return {}


# name -> (prefix to strip, keyword overrides read from the file)
_FORMATS: Dict[str, Tuple[str, Callable[[Dict[str, Tensor]], Dict[str, Any]]]] = {
    "promptir": ("net.", _promptir_overrides),
    "airnet": ("", _airnet_overrides),
}


def load_checkpoint(name: str, path: str | os.PathLike, *, trust_pickle: bool = False) -> nn.Module:
    """Build baseline ``name`` and load the released checkpoint at ``path`` strictly; eval mode."""
    from baselines import _check_name, create_model

    name = _check_name(name)
    path = os.fspath(path)
    prefix, overrides_of = _FORMATS[name]
    sd = _strip(_tensor_dict(_read(path, trust_pickle), path), prefix)
    overrides = overrides_of(sd)
    # Compare against a parameter-free skeleton first: a wrong file fails fast.
    with torch.device("meta"):
        skeleton = create_model(name, **overrides)
    _compare(name, path, sd, skeleton.state_dict())
    model = create_model(name, **overrides)
    model.load_state_dict(sd, strict=True)
    return model.eval()
