"""Before training: an estimate of peak memory and time, and whether it fits this machine.

Rough by design (within a factor of about 1.5): it is there to catch a run that will not
fit or will take all night before it starts, not to replace the live numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil

BYTES_PER_WEIGHT = {"none": 4.0, "8bit": 1.0, "4bit": 0.55}  # fp32 weights; bnb blocks carry some overhead
RUNTIME_MB = 900.0  # torch + transformers + peft in a fresh process, measured on the bundled model's CPU path


@dataclass(frozen=True)
class Estimate:
    memory_mb: float
    available_mb: float
    minutes: float
    steps: int
    tokens: int
    note: str

    @property
    def fits(self) -> bool:
        return self.memory_mb < 0.9 * self.available_mb


def matmul_flops(seconds: float = 0.3) -> float:
    """This machine's float32 matrix-multiply speed (FLOP/s), measured for ``seconds``."""
    import torch

    a = torch.randn(512, 512)
    b = torch.randn(512, 512)
    a @ b  # first call pays for thread start-up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return n * 2 * 512**3 / (time.perf_counter() - start)


def estimate(
    config,
    total_params: int,
    trainable: int,
    examples: int,
    mean_tokens: float,
    max_tokens: int,
    batch_size: int,
    grad_accum: int,
    epochs: float,
    quantization: str = "none",
    gradient_checkpointing: bool = False,
    device: str = "cpu",
    flops: float | None = None,
    quantization_aware: str = "none",
    sequences: int = 1,
    reference: bool = False,
) -> Estimate:
    """Peak memory (weights, adapter and optimizer state, activations, logits) and time of a run.

    A preference pair is ``sequences=2`` (the chosen and the rejected answer, each after the prompt); DPO's
    ``reference`` adds a forward pass of both without gradients."""
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", 768)
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", 12)
    vocab = getattr(config, "vocab_size", 32000)
    weights = total_params * BYTES_PER_WEIGHT.get(quantization, 4.0)
    if quantization_aware != "none":
        weights += total_params * 4.0  # the fake-quantized copy the base computes with (engine.finetune.qat)
    adapter = trainable * 16  # weight, gradient and two Adam moments, fp32
    tokens_in_batch = batch_size * sequences * max_tokens  # the longest batch sets the peak
    per_token_layer = 2 * hidden * 4 if gradient_checkpointing else 18 * hidden * 4
    activations = tokens_in_batch * layers * per_token_layer
    logits = tokens_in_batch * vocab * 4 * 3  # logits, their softmax and its gradient
    memory_mb = RUNTIME_MB + (weights + adapter + activations + logits) / 2**20
    if device == "cuda":
        import torch

        available = torch.cuda.get_device_properties(0).total_memory / 2**20
    else:
        available = psutil.virtual_memory().available / 2**20
    steps = max(1, round(epochs * -(-examples // (batch_size * grad_accum))))
    tokens = round(examples * sequences * mean_tokens * epochs)
    # Forward and backward through the frozen base cost about 3x a forward (2 FLOPs per weight and token).
    flops = flops or matmul_flops()
    efficiency = 0.35 if device == "cpu" else 0.25
    minutes = tokens * (8 if reference else 6) * total_params / (flops * efficiency) / 60
    note = "fits" if memory_mb < 0.9 * available else "may not fit: lower the batch size or max length"
    return Estimate(memory_mb=memory_mb, available_mb=available, minutes=minutes, steps=steps, tokens=tokens, note=note)
