"""The pre-flight estimate: grows and shrinks with the settings that matter."""

from transformers import LlamaConfig

from engine.finetune.preflight import estimate

CONFIG = LlamaConfig(vocab_size=49152, hidden_size=576, num_hidden_layers=30)


def run(**changes):
    args = {"config": CONFIG, "total_params": 135_000_000, "trainable": 900_000, "examples": 600,
            "mean_tokens": 450, "max_tokens": 700, "batch_size": 4, "grad_accum": 1, "epochs": 1.0,
            "flops": 1e11} | changes  # fmt: skip
    return estimate(**args)


def test_memory_follows_batch_quantization_and_checkpointing() -> None:
    base = run()
    assert run(batch_size=8).memory_mb > base.memory_mb
    assert run(quantization="4bit").memory_mb < run(quantization="8bit").memory_mb < base.memory_mb
    assert run(gradient_checkpointing=True).memory_mb < base.memory_mb
    # quantization-aware training holds a float32 copy of the base as it deploys: 540 MB more here
    assert 500 < run(quantization_aware="int4-weight").memory_mb - base.memory_mb < 600
    assert 1500 < base.memory_mb < 12000  # the measured run of these settings peaked at about 5.4 GB


def test_steps_tokens_and_time() -> None:
    found = run(epochs=2.0, grad_accum=2)
    assert found.steps == 150  # 600 / (4 x 2) per epoch, two epochs
    assert found.tokens == 540_000
    assert run(flops=2e11).minutes < run().minutes
    assert run().minutes > 1


def test_a_run_larger_than_the_machine_does_not_fit() -> None:
    found = run(batch_size=4096, max_tokens=4096)
    assert not found.fits and "may not fit" in found.note
    assert run().fits
