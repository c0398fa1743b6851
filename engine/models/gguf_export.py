"""Write a Hugging Face causal LM held in memory (a merged adapter's) as one GGUF file, with the ``gguf`` package's
writer: llama.cpp's tensor names and metadata keys, so llama.cpp, Ollama and transformers (``gguf_file=``) load it.

Only the llama architecture (the bundled SmolLM2's) with a byte-level BPE tokenizer is written. Tensors stream to
the file one at a time, so a model is never held twice in memory.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.errors import InputError

# export format -> the GGML type of 2-D weights (1-D norms are F32 in every format, as llama.cpp writes them)
GGUF_TYPES = {"gguf-f16": "F16", "gguf-q8_0": "Q8_0", "gguf-q4": "Q4_1"}
# the llama.cpp file type recorded for each (gguf.LlamaFileType: MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_Q4_1)
FILE_TYPES = {"F16": 1, "Q8_0": 7, "Q4_1": 3}
SUPPORTED = "GGUF export supports llama-architecture models with a byte-level BPE tokenizer (as the bundled SmolLM2)"
Progress = Callable[[int, int], None]


def check_supported(model) -> None:
    """InputError, in a sentence naming what is supported, unless ``model`` can be written as GGUF here."""
    config = model.config
    kind = getattr(config, "model_type", "?")
    if kind != "llama":
        raise InputError(f"{SUPPORTED}; this model is a {kind!r} model: export it as safetensors instead.")
    rope = getattr(config, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default" or getattr(config, "attention_bias", False):
        raise InputError(f"{SUPPORTED}, without rope scaling or attention biases: export this one as safetensors.")


def permute(weights, heads: int):
    """llama.cpp's order of the rows of a q or k projection of ``heads`` heads (convert_hf_to_gguf's
    LlamaModel.permute): its rotary embedding pairs neighbouring dimensions, Hugging Face's the two halves of a head."""
    shape = weights.shape
    return weights.reshape(heads, 2, shape[0] // heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def ggml_type(gguf_name: str, shape: tuple[int, ...], weight_type: str):
    """The GGML type of one tensor: F32 for 1-D ones; a quantized type only where rows split into its blocks; in a
    4-bit file the embedding (also the output layer when tied) stays Q8_0, as llama.cpp's quantizer keeps it."""
    import gguf  # noqa: PLC0415 - 0.2 s to import (numpy, yaml): only an export needs it

    types = gguf.GGMLQuantizationType
    if len(shape) == 1:
        return types.F32
    wanted = types[weight_type]
    if wanted == types.Q4_1 and gguf_name.startswith(("token_embd.", "output.")):
        wanted = types.Q8_0
    block = gguf.GGML_QUANT_SIZES[wanted][0]
    return wanted if shape[-1] % block == 0 else types.F16


def llama_tensors(model, state: dict) -> list[tuple[str, str]]:
    """(GGUF name, Hugging Face name) of every tensor to write; a tied output layer is written once, as the
    embedding (llama.cpp and transformers tie it back when ``output.weight`` is absent)."""
    import gguf  # noqa: PLC0415 - see ggml_type

    config = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    found = []
    for hf_name in state:
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise InputError(f"{SUPPORTED}; this model has a tensor GGUF has no name for: {hf_name}.")
        found.append((gguf_name, hf_name))
    return found


def tensor_data(tensor, hf_name: str, config, ggml):
    """The tensor as the file stores it (a numpy array): float32 rows (q/k permuted), converted to ``ggml``'s type."""
    import gguf  # noqa: PLC0415 - see ggml_type
    import torch

    with torch.no_grad():
        array = tensor.detach().to(torch.float32).cpu().numpy()
    if hf_name.endswith("q_proj.weight"):
        array = permute(array, config.num_attention_heads)
    elif hf_name.endswith("k_proj.weight"):
        array = permute(array, config.num_key_value_heads)
    types = gguf.GGMLQuantizationType
    if ggml == types.F32:
        return np.ascontiguousarray(array, dtype=np.float32)
    if ggml == types.F16:
        return np.ascontiguousarray(array, dtype=np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(array), ggml)


def add_model_metadata(writer, config, name: str, weight_type: str) -> None:
    """The hyperparameters llama.cpp reads (and transformers maps back to a LlamaConfig)."""
    import gguf  # noqa: PLC0415 - see ggml_type

    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    rope = getattr(config, "rope_parameters", None) or {}
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(config.vocab_size)
    writer.add_rope_dimension_count(head_dim)
    if head_dim != config.hidden_size // config.num_attention_heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_file_type(FILE_TYPES[weight_type])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def pre_tokenizer(tokenizer_json: dict, source_pre: str = "") -> str:
    """llama.cpp's name for how text is split before BPE: the source GGUF's; else read off the tokenizer
    (SmolLM's digits one by one, or GPT-2's); else llama.cpp's default."""
    if source_pre:
        return source_pre
    pre = tokenizer_json.get("pre_tokenizer") or {}
    parts = [p.get("type") for p in pre.get("pretokenizers", [pre])]
    if parts == ["Digits", "ByteLevel"]:
        return "smollm"
    return "gpt2" if parts == ["ByteLevel"] else "default"


def add_tokenizer_metadata(writer, tokenizer, vocab_size: int, source_pre: str = "") -> None:
    """The vocabulary as llama.cpp's "gpt2" (byte-level BPE) tokenizer: tokens, their types, merges, the special
    ids and the chat template."""
    import gguf  # noqa: PLC0415 - see ggml_type

    backend = getattr(tokenizer, "backend_tokenizer", None)
    data = json.loads(backend.to_str()) if backend is not None else {}
    model = data.get("model") or {}
    if model.get("type") != "BPE" or (data.get("decoder") or {}).get("type") != "ByteLevel":
        raise InputError(f"{SUPPORTED}; this model's tokenizer is not byte-level BPE: export it as safetensors.")
    tokens = [f"[PAD{i}]" for i in range(vocab_size)]  # ids no token has, as llama.cpp's converter names them
    types = [gguf.TokenType.UNUSED] * vocab_size
    added = {t["id"]: t for t in data.get("added_tokens", [])}
    if max([*model["vocab"].values(), *added], default=0) >= vocab_size:
        raise InputError(f"The tokenizer has more tokens than the model's {vocab_size} embeddings: not a GGUF model.")
    for token, index in model["vocab"].items():
        tokens[index], types[index] = token, gguf.TokenType.NORMAL
    for index, token in added.items():  # special ones (<|im_end|>) are control tokens, others matched whole in text
        kind = gguf.TokenType.CONTROL if token.get("special") else gguf.TokenType.USER_DEFINED
        tokens[index], types[index] = token["content"], kind
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre_tokenizer(data, source_pre))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])])
    for key, token_id in (
        ("bos", tokenizer.bos_token_id),
        ("eos", tokenizer.eos_token_id),
        ("unk", tokenizer.unk_token_id),
        ("pad", tokenizer.pad_token_id),
    ):
        if token_id is not None:
            getattr(writer, f"add_{key}_token_id")(token_id)
    ids = tokenizer("a").input_ids  # whether the tokenizer itself adds BOS / EOS around a text
    writer.add_add_bos_token(bool(ids) and ids[0] == tokenizer.bos_token_id)
    writer.add_add_eos_token(len(ids) > 1 and ids[-1] == tokenizer.eos_token_id)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


# bytes of each fixed-size GGUF value type (gguf.GGUFValueType: 8 is a string, 9 an array)
VALUE_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def read_string_field(gguf_path: Path | None, key: str) -> str:
    """A string field of a GGUF file's header ('' if absent, not a string or unreadable): read by walking the header
    only as far as that key, which the gguf package's reader cannot (it parses every field, some 5 s for the
    bundled model's 49,152 tokens and merges)."""
    if gguf_path is None or not gguf_path.is_file():
        return ""
    try:
        with gguf_path.open("rb") as f:

            def read(fmt: str):
                return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))[0]

            def text() -> str:
                return f.read(read("Q")).decode("utf-8")

            if f.read(4) != b"GGUF" or read("I") < 2:
                return ""
            read("Q")  # the tensor count
            for _ in range(read("Q")):
                name, kind = text(), read("I")
                if name == key:
                    return text() if kind == 8 else ""
                kind, count = (read("I"), read("Q")) if kind == 9 else (kind, 1)
                if kind == 8:  # skip the value: strings one by one (each has its length), the others at once
                    for _ in range(count):
                        f.seek(read("Q"), 1)
                else:
                    f.seek(VALUE_SIZES[kind] * count, 1)  # a KeyError for an array of arrays: not a header we read
    except (OSError, KeyError, UnicodeDecodeError, struct.error):
        return ""
    return ""


def write_gguf(
    model, tokenizer, path: Path, fmt: str, name: str, on_progress: Progress | None = None, source_pre: str = ""
) -> Path:
    """Write ``model`` and ``tokenizer`` to the GGUF file ``path`` in ``fmt`` (see :data:`GGUF_TYPES`);
    ``on_progress(done, total)`` after each tensor written."""
    import gguf  # noqa: PLC0415 - see ggml_type

    check_supported(model)
    weight_type = GGUF_TYPES[fmt]
    state = model.state_dict()
    plan = []
    for gguf_name, hf_name in llama_tensors(model, state):
        shape = tuple(state[hf_name].shape)
        plan.append((gguf_name, hf_name, shape, ggml_type(gguf_name, shape, weight_type)))
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    add_model_metadata(writer, model.config, name, weight_type)
    add_tokenizer_metadata(writer, tokenizer, model.config.vocab_size, source_pre)
    plain = {gguf.GGMLQuantizationType.F32: np.dtype(np.float32), gguf.GGMLQuantizationType.F16: np.dtype(np.float16)}
    for gguf_name, _, shape, ggml in plan:  # announced first: the header lists every tensor before the data
        dtype = plain.get(ggml, np.dtype(np.uint8))
        byte_shape = shape if ggml in plain else gguf.quants.quant_shape_to_byte_shape(shape, ggml)
        writer.add_tensor_info(gguf_name, byte_shape, dtype, math.prod(byte_shape) * dtype.itemsize, raw_dtype=ggml)
    try:
        writer.write_header_to_file(path)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for done, (_, hf_name, _, ggml) in enumerate(plan, start=1):
            writer.write_tensor_data(tensor_data(state[hf_name], hf_name, model.config, ggml))
            if on_progress is not None:
                on_progress(done, len(plan))
    finally:
        writer.close()
    return path
