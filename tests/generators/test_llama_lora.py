"""llama.cpp with a GGUF LoRA adapter: a tiny adapter for the bundled Qwen GGUF, written here with `gguf`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb_assistant.errors import ModelUnavailableError
from kb_assistant.generators.base import ChatMessage

MESSAGES = [ChatMessage("user", "北京是哪个国家的首都？")]


def write_lora_gguf(path: Path, *, layers: int = 24, hidden: int = 896, rank: int = 4, scale: float = 0.2) -> Path:
    """A LoRA adapter on every attn_q of Qwen2.5-0.5B, in llama.cpp's adapter GGUF layout."""
    import gguf

    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(str(path), arch="qwen2")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(rank))
    for i in range(layers):
        # numpy (rank, in) is ggml ne = [in, rank]; (out, rank) is ne = [rank, out]
        a = (rng.standard_normal((rank, hidden)) * scale).astype(np.float32)
        b = (rng.standard_normal((hidden, rank)) * scale).astype(np.float32)
        writer.add_tensor(f"blk.{i}.attn_q.weight.lora_a", a)
        writer.add_tensor(f"blk.{i}.attn_q.weight.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.slow
def test_gguf_lora_adapter_changes_the_answer(bundled_models_dir: Path, tmp_path: Path) -> None:
    from kb_assistant.bundled import bundled_model_path
    from kb_assistant.generators.llama import LlamaCppGenerator

    model = bundled_model_path(bundled_models_dir)
    lora = write_lora_gguf(tmp_path / "q-lora.gguf")
    base = LlamaCppGenerator(model, n_ctx=512)
    adapted = LlamaCppGenerator(model, n_ctx=512, lora_path=lora)
    assert adapted.name.endswith("+q-lora.gguf")
    plain = base.generate(MESSAGES, max_tokens=12, temperature=0)
    changed = adapted.generate(MESSAGES, max_tokens=12, temperature=0)
    assert plain and plain != changed  # the adapter is applied (a random one may even end the answer at once)
    with pytest.raises(ModelUnavailableError, match="GGUF LoRA"):
        LlamaCppGenerator(model, n_ctx=512, lora_path=tmp_path / "missing.gguf")
