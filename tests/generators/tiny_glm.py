"""A tiny random-weight GLM checkpoint (config, safetensors, BPE tokenizer, chat template) for tests."""

from __future__ import annotations

import json
from pathlib import Path

SPECIAL = ["<|endoftext|>", "[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>"]
# GLM-4's template shape: prefix tokens, then <|role|>\ncontent per message.
CHAT_TEMPLATE = (
    "[gMASK]<sop>{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_ZH = [
    "员工每年有十五天带薪年假。", "报销需要在三十天内提交发票。", "北京是中华人民共和国的首都。",
    "备份每周轮换一次，保存在异地机房。", "知识库助手根据资料回答问题，并标注来源。", "上海是中国最大的城市。",
    "请假超过三天需要部门经理批准。", "服务器每天凌晨两点自动重启。", "新员工入职第一周参加培训。",
    "密码每九十天必须更换一次。",
]
_EN = [
    "Employees get fifteen days of paid leave per year.", "Backups are rotated every week and stored off site.",
    "Expense claims must be filed within thirty days.", "The assistant answers from the sources and cites them.",
    "Passwords must be changed every ninety days.", "New hires attend training in their first week.",
    "The server restarts automatically at two in the morning.", "Leave longer than three days needs approval.",
    "Hello world, this is a tiny test model.", "Question: how many days? Answer: fifteen.",
]


def corpus() -> list[str]:
    """A few hundred lines of mixed Chinese and English text."""
    lines = []
    for i in range(30):
        for zh, en in zip(_ZH, _EN):
            lines.append(f"{zh} {en} {i}" if i % 3 else f"{en} {zh}")
    return lines


def qa_pairs() -> list[dict[str, str]]:
    """Instruction-style examples over the corpus facts (for fine-tuning tests)."""
    pairs = []
    for zh, en in zip(_ZH, _EN):
        pairs.append({"instruction": "请根据规定回答。", "input": zh[:6] + "？", "output": zh})
        pairs.append({"instruction": "Answer from the policy.", "input": en[:20] + "?", "output": en})
    return pairs


def build_tiny_glm(
    target: Path, *, hidden_size: int = 64, layers: int = 2, intermediate: int = 128, vocab_size: int = 1000,
    max_positions: int = 512, seed: int = 0,
) -> Path:
    """Write a GlmForCausalLM with random weights plus a trained byte-level BPE tokenizer into ``target``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GlmConfig, GlmForCausalLM, PreTrainedTokenizerFast

    target.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL[1:],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(target)

    eos = [fast.convert_tokens_to_ids("<|endoftext|>"), fast.convert_tokens_to_ids("<|user|>")]
    config = GlmConfig(
        vocab_size=len(fast), hidden_size=hidden_size, num_hidden_layers=layers, num_attention_heads=4,
        num_key_value_heads=2, head_dim=hidden_size // 4, intermediate_size=intermediate,
        max_position_embeddings=max_positions, pad_token_id=eos[0], eos_token_id=eos, bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = GlmForCausalLM(config)
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = eos[0]
    model.save_pretrained(target)
    (target / "kb_test_marker.json").write_text(json.dumps({"tiny": True}))
    return target


def tiny_glm_dir(base: Path) -> Path:
    """Build the tiny GLM once per test session under ``base`` (a session temp dir)."""
    target = base / "tiny-glm"
    if not (target / "kb_test_marker.json").exists():
        build_tiny_glm(target)
    return target
