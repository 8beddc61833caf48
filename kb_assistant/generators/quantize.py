"""Quantization choices for the transformers backend: how to load (bitsandbytes) or convert (torch int8)."""

from __future__ import annotations

import warnings
from typing import Any, get_args

from ..errors import ModelUnavailableError
from ..settings import Quantize

QUANTIZE_CHOICES: tuple[str, ...] = get_args(Quantize)

# Memory per parameter to *run* a model (weights + unquantized embeddings + KV cache + runtime), calibrated on
# the figures quoted for ChatGLM-6B (6.2B parameters): FP16 ~13 GB, INT8 ~8 GB, INT4 ~6 GB.
BYTES_PER_PARAM = {"fp32": 4.2, "fp16/bf16": 2.1, "int8": 1.3, "int4": 0.97}


def bitsandbytes_available() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except Exception:  # ImportError, or a broken native library
        return False
    return True


def load_kwargs(quantize: str, device: str) -> dict[str, Any]:
    """Keyword arguments for ``from_pretrained`` for a quantization choice on ``device`` ('cpu'/'cuda').

    int8 on the CPU is not done at load time: the model loads in fp32 and :func:`convert_after_load`
    swaps its Linear layers for torch's dynamic int8 ones (faster than bitsandbytes' CPU int8 path).
    """
    import torch

    if quantize not in QUANTIZE_CHOICES:
        raise ModelUnavailableError(f"unknown quantization {quantize!r}: use one of {', '.join(QUANTIZE_CHOICES)}")
    if quantize == "none":
        # On a GPU keep the checkpoint's own half-precision dtype; CPUs are fastest in fp32.
        return {"dtype": "auto"} if device == "cuda" else {"dtype": torch.float32}
    if quantize == "bf16":
        return {"dtype": torch.bfloat16}
    if quantize == "int8" and device == "cpu":
        return {"dtype": torch.float32}
    # bitsandbytes: int8 on CUDA, int4 (NF4) on CUDA and on the CPU (bitsandbytes >= 0.45 ships CPU kernels).
    if not bitsandbytes_available():
        hint = (
            "pip install bitsandbytes==0.50.2"
            if device == "cuda"
            else "pip install bitsandbytes==0.50.2, or use --quantize int8 (torch, CPU), or a Q4 GGUF "
            "file with the llama-cpp backend"
        )
        raise ModelUnavailableError(f"--quantize {quantize} needs bitsandbytes, which cannot be imported here: {hint}")
    from transformers import BitsAndBytesConfig

    if quantize == "int8":
        config = BitsAndBytesConfig(load_in_8bit=True)
    else:
        compute = torch.float16 if device == "cuda" else torch.float32
        config = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute,
            bnb_4bit_use_double_quant=True,
        )
    return {"quantization_config": config, "device_map": "auto" if device == "cuda" else "cpu"}


def convert_after_load(model: Any, quantize: str, device: str) -> Any:
    """Post-load conversion: torch dynamic int8 for CPU int8; everything else is already done."""
    if quantize != "int8" or device != "cpu":
        return model
    import torch

    quantize_dynamic = getattr(getattr(torch, "ao", None), "quantization", None)
    if quantize_dynamic is None or not hasattr(quantize_dynamic, "quantize_dynamic"):
        raise ModelUnavailableError(
            "this torch has no dynamic int8 quantization: use --quantize int4 (bitsandbytes) or a Q8 GGUF file"
        )
    with warnings.catch_warnings():
        # torch 2.13 deprecates torch.ao eager quantization in favour of torchao; it still works and is the
        # only int8 path here that needs no extra package.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def estimate_gb(parameters: float, precision: str) -> float:
    """Approximate memory to run a model of ``parameters`` at ``precision`` (a key of BYTES_PER_PARAM)."""
    return parameters * BYTES_PER_PARAM[precision] / 1e9
