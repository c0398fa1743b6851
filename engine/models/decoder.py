"""Fast one-answer decoding on a CPU for Llama-layout models on the int4-weight path.

transformers' ``generate`` spends about 12 of its 18 ms a token on the bundled model in Python,
cache concatenation and small operations around the int4 products. This decoder runs the same
weights in a lean step: fused q/k/v and gate/up int4 products (views of the layers' own
weights, no copy), a preallocated key/value cache written in place, attention over the filled
part only; the step is compiled with torch.compile (``compile``), after which a token takes
about 9 ms. Prompts are read eagerly with the bfloat16 copies, as in the model itself.

The cache is kept between calls: a prompt that starts like the previous one (the same system
message and worked examples) reads only its new tokens. One answer at a time: callers hold
the generator's lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from engine.models.quantize import PROMPT_ROWS, Int4WeightLinear, Int8WeightLinear

CAPACITY = 2048  # positions of prompt and answer the cache holds
ROPE_TYPES = ("default", "linear", "llama3")  # position tables that do not depend on the length
ATTENTION, MLP = ("q_proj", "k_proj", "v_proj", "o_proj"), ("gate_proj", "up_proj", "down_proj")


def unsupported(loaded) -> str | None:
    """Why ``loaded`` cannot use this decoder, or None when it can."""
    model, spec = loaded.model, loaded.spec
    if loaded.device != "cpu" or spec.quantization != "int4-weight":
        return "the fast decoder runs the int4-weight quantization on a CPU"
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) != "llama" or getattr(model, "peft_config", None):
        return "the fast decoder knows the Llama layout (without an unmerged adapter)"
    rope = (getattr(config, "rope_parameters", None) or {}).get("rope_type", "default")
    if rope not in ROPE_TYPES or getattr(config, "hidden_act", "silu") != "silu":
        return f"rope type {rope!r} / activation {config.hidden_act!r} are not handled"
    projections = [getattr(layer.self_attn, n) for layer in model.model.layers for n in ATTENTION]
    projections += [getattr(layer.mlp, n) for layer in model.model.layers for n in MLP]
    int4 = all(isinstance(p, Int4WeightLinear) for p in projections)
    if not int4 or not isinstance(model.lm_head, Int8WeightLinear):
        return "some layers are not on the int4 / int8 kernels"
    return None


def decoder_for(loaded) -> FastDecoder | None:
    """A FastDecoder for ``loaded`` where it applies, else None."""
    return None if unsupported(loaded) else FastDecoder(loaded.model)


class FastDecoder:
    """Greedy or sampled decoding of one sequence at a time with a persistent key/value cache."""

    def __init__(self, model):
        config = model.config
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.eps = config.rms_norm_eps
        self.embed = model.model.embed_tokens.weight
        self.layers = []
        for layer in model.model.layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.layers.append(
                {
                    "qkv": Int4WeightLinear.joined([attn.q_proj, attn.k_proj, attn.v_proj]),
                    "o": attn.o_proj,
                    "gate_up": Int4WeightLinear.joined([mlp.gate_proj, mlp.up_proj]),
                    "down": mlp.down_proj,
                    "norm1": layer.input_layernorm.weight,
                    "norm2": layer.post_attention_layernorm.weight,
                }
            )
        self.norm, self.head = model.model.norm.weight, model.lm_head
        positions = torch.arange(config.max_position_embeddings)[None]
        with torch.inference_mode():  # the model's own rotary tables (scaling included)
            cos, sin = model.model.rotary_emb(torch.zeros(1, dtype=torch.float32), positions)
        self.cos, self.sin = cos[0].float(), sin[0].float()
        # A fixed size, so that the compiled step is specialized to it (a dynamic size made each
        # token 1.5 ms slower): 2,048 positions are 94 MB for the bundled model.
        self.capacity = min(CAPACITY, config.max_position_embeddings)
        self.cache: list[torch.Tensor] = []  # keys and values of each layer
        self.tokens: list[int] = []  # the tokens whose keys and values the cache holds
        self.step = self.forward  # the compiled forward once ``compile`` has run
        self.compiled = threading.Event()
        self.compiling = False
        self.compile_seconds: float | None = None

    # -- the model ----------------------------------------------------------------------------

    def rms(self, x, weight):
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def rotate(self, x, cos, sin):
        half = x.shape[-1] // 2
        return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin

    def forward(self, ids, positions, cache, length: int, mask=None):
        """Logits of the last of ``ids`` ([1, T]) at ``positions`` ([T]); keys and values are written
        to ``cache`` and attention reads its first ``length`` positions (``mask``: which of them)."""
        t, dims = ids.shape[1], (self.heads * self.head_dim, self.kv_heads * self.head_dim)
        x = F.embedding(ids, self.embed).float()
        cos, sin = self.cos[positions][None, None], self.sin[positions][None, None]
        for i, layer in enumerate(self.layers):
            q, k, v = layer["qkv"](self.rms(x, layer["norm1"])).split([dims[0], dims[1], dims[1]], -1)
            q = self.rotate(q.view(1, t, self.heads, self.head_dim).transpose(1, 2), cos, sin)
            k = self.rotate(k.view(1, t, self.kv_heads, self.head_dim).transpose(1, 2), cos, sin)
            keys, values = cache[2 * i], cache[2 * i + 1]  # separate tensors: a write to a view of one
            keys.index_copy_(1, positions, k[0])  # tensor makes the compiled step copy all of it
            values.index_copy_(1, positions, v.view(t, self.kv_heads, self.head_dim).transpose(0, 1))
            keys, values = keys[:, :length][None], values[:, :length][None]
            out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, enable_gqa=True)
            x = x + layer["o"](out.transpose(1, 2).reshape(1, t, -1))
            gate, up = layer["gate_up"](self.rms(x, layer["norm2"])).chunk(2, -1)
            x = x + layer["down"](F.silu(gate) * up)
        return self.head(self.rms(x[:, -1], self.norm))[0]

    # -- compiling ----------------------------------------------------------------------------

    def compile(self) -> float:
        """Compile the decoding step (tens of seconds; faster when torch's compile cache is warm).
        Safe beside decoding: it runs on a scratch cache. Returns the seconds it took."""
        start, self.compiling = time.perf_counter(), True
        # each decoder (each model loaded or quantized) adds its own compiled entries
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        step = torch.compile(self.forward, fullgraph=True)
        scratch = self.new_cache()
        with torch.inference_mode():
            for n in (3, 4):  # two lengths: the compiled step must not specialize on one
                step(torch.tensor([[0]]), torch.tensor([n - 1]), scratch, n)
        self.step = step
        self.compile_seconds, self.compiling = time.perf_counter() - start, False
        self.compiled.set()
        return self.compile_seconds

    def describe(self) -> str:
        """The decoder's state in words, for the Models page."""
        if self.compiled.is_set():
            return f"fast decoder, compiled in {self.compile_seconds:.0f} s"
        return "fast decoder, compiling (uncompiled meanwhile)" if self.compiling else "fast decoder, uncompiled"

    def compile_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.compile, name="decoder-compile", daemon=True)
        thread.start()
        return thread

    # -- decoding -----------------------------------------------------------------------------

    def new_cache(self) -> list[torch.Tensor]:
        """Keys and values of each layer, [kv heads, capacity, head dim] each."""
        return [torch.zeros(self.kv_heads, self.capacity, self.head_dim) for _ in range(2 * len(self.layers))]

    def fits(self, prompt_tokens: int, new_tokens: int) -> bool:
        """Whether a prompt and its answer fit the cache (longer ones go through ``generate``)."""
        return 0 < prompt_tokens and prompt_tokens + new_tokens <= self.capacity

    def forget(self) -> None:
        """Drop what the cache holds: the next prompt is read in full (for timing)."""
        self.tokens = []

    def read_prompt(self, prompt: Sequence[int]) -> torch.Tensor:
        """The next-token logits after ``prompt``, reading only what the cache does not hold yet."""
        kept = 0
        while kept < min(len(self.tokens), len(prompt) - 1) and self.tokens[kept] == prompt[kept]:
            kept += 1
        # At least PROMPT_ROWS tokens are read (or the whole prompt), so they go through the same weights as a
        # prompt read whole (the bfloat16 copy, not the int4 kernel): else the answer would depend on what was
        # asked before (a close first token flipped: measured on "What is the capital of France?" after Italy).
        kept = min(kept, max(0, len(prompt) - PROMPT_ROWS))
        new = torch.tensor([list(prompt[kept:])])
        positions = torch.arange(kept, len(prompt))
        # causal: each new token sees the kept prefix and the new tokens up to itself
        mask = torch.arange(len(prompt))[None] <= positions[:, None]
        self.tokens = list(prompt)
        return self.forward(new, positions, self.cache, len(prompt), mask[None, None])

    def decode(
        self, prompt: Sequence[int], new_tokens: int, choose: Callable[[torch.Tensor], int], stop: Callable[[int], bool]
    ) -> Iterator[int]:
        """Yield new tokens after ``prompt``: ``choose(logits)`` picks each; decoding ends after
        ``new_tokens`` or at a token for which ``stop`` is true (that one is not yielded)."""
        if not self.fits(len(prompt), new_tokens):
            raise ValueError(f"{len(prompt)} + {new_tokens} tokens do not fit the cache ({self.capacity})")
        self.cache = self.cache or self.new_cache()  # allocated at the first answer
        try:
            with torch.inference_mode():
                logits = self.read_prompt(prompt)
                for n in range(new_tokens):
                    token = choose(logits)
                    if stop(token):
                        return
                    yield token
                    if n + 1 == new_tokens:
                        return
                    position = len(self.tokens)
                    self.tokens.append(token)
                    logits = self.step(torch.tensor([[token]]), torch.tensor([position]), self.cache, position + 1)
        except Exception:
            self.tokens = []  # the cache may be half written: trust none of it
            raise


def chooser(temperature: float, top_p: float, seed: int | None) -> Callable[[torch.Tensor], int]:
    """Greedy choice at temperature 0, else nucleus sampling (seeded when ``seed`` is given)."""
    if temperature == 0:
        return lambda logits: int(logits.argmax())
    rng = torch.Generator()
    rng.manual_seed(seed if seed is not None else torch.seed())

    def sample(logits: torch.Tensor) -> int:
        probs, order = torch.softmax(logits.float() / temperature, -1).sort(descending=True)
        keep = probs.cumsum(-1) - probs < top_p  # the smallest set whose mass reaches top_p
        probs = probs * keep
        return int(order[torch.multinomial(probs / probs.sum(), 1, generator=rng)])

    return sample
