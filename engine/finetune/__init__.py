"""LoRA / QLoRA fine-tuning: adapters, training data, the training loop and the adapter registry."""
