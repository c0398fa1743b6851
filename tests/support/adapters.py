"""A LoRA adapter that changes answers without training: nonzero random ``lora_B`` (PEFT starts it at zero)."""

from __future__ import annotations


def random_lora(model, lora=None, scale: float = 0.02, seed: int = 0):
    """``model`` wrapped in a PEFT LoRA (``lora``: a LoraSpec, default its defaults) whose B weights are drawn
    from N(0, scale) with ``seed``: the same adapter every run."""
    import peft
    import torch

    from engine.finetune.lora import LoraSpec, to_lora_config

    torch.manual_seed(seed)  # lora_A's initialization
    model = peft.get_peft_model(model, to_lora_config(lora or LoraSpec(), model.config))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * scale)
    return model
