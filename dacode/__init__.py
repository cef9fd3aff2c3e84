"""DACode: Degradation-Adaptive Codebook for all-in-one image restoration (reference implementation).

    import dacode
    model = dacode.create_model("dacode")            # or "dacode-s"; see dacode.list_models()
    with dacode.record_codebook(model) as rec:       # per-image stage-2 codebook activations
        model(x)
    rec.activations["decoder_level1.dac.dacode"]     # images × Nc, rows sum to 1

Design decisions and per-stage parameter counts: dacode/model.py and dacode/README.md.
"""
from dacode.codebook import CodebookRecording, DACBlock, DACode, record_codebook, topk_primitives
from dacode.model import MINI_CONFIG, DACodeConfig, DACodeNet, create_model, list_models, stage_parameter_counts

__all__ = [
    "create_model",
    "list_models",
    "record_codebook",
    "topk_primitives",
    "stage_parameter_counts",
    "CodebookRecording",
    "DACode",
    "DACBlock",
    "DACodeConfig",
    "DACodeNet",
    "MINI_CONFIG",
]
