"""An Ollama ``Modelfile`` and a short README for an exported GGUF model, in Ollama's documented instructions only.

The Modelfile carries over how the Studio asks the model: its chat format (a Go template written from the
tokenizer's chat template), the system message an adapter was trained with, greedy decoding and the answer length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import InputError

# ChatML, as Ollama's Modelfile reference writes it; text after {{ .Response }} is left out while generating
CHATML_TEMPLATE = (
    "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n"
)
PLAIN_TEMPLATE = (
    "{{ if .System }}{{ .System }}\n\n{{ end }}"
    "{{ if .Prompt }}User: {{ .Prompt }}\n\n{{ end }}Assistant: {{ .Response }}"
)
# the system message a ChatML template writes when the conversation has none (SmolLM2's does)
DEFAULT_SYSTEM = re.compile(r"<\|im_start\|>system\n([^'\"{}<]+?)<\|im_end\|>")


@dataclass(frozen=True)
class ChatDefaults:
    """How the Studio asks the exported model: its system message ('': the chat template's own default, if any),
    the most new tokens of an answer (0: Ollama's default), and the form of a question's user turn (for the README)."""

    system: str = ""
    num_predict: int = 0
    user_turn: str = ""


def is_chatml(chat_template: str | None) -> bool:
    return bool(chat_template) and "<|im_start|>" in chat_template and "<|im_end|>" in chat_template


def ollama_template(chat_template: str | None) -> str:
    """The Go template for Ollama's TEMPLATE: ChatML for a ChatML chat template, else a plain User/Assistant one."""
    return CHATML_TEMPLATE if is_chatml(chat_template) else PLAIN_TEMPLATE


def default_system(chat_template: str | None) -> str:
    """The system message the chat template adds by itself ('' if it adds none): Ollama's template adds none."""
    found = DEFAULT_SYSTEM.search(chat_template or "") if is_chatml(chat_template) else None
    return found.group(1).strip() if found else ""


def quoted(text: str) -> str:
    """A value for a Modelfile line: in triple quotes (multi-line values, and any with quotes in them)."""
    if '"""' in text:
        raise InputError('A Modelfile value cannot hold three double quotes in a row ("""): change the text.')
    return f'"""{text}"""'


def stop_tokens(chat_template: str | None, eos_token: str | None) -> list[str]:
    """Where an answer ends: ChatML's end of turn and the tokenizer's end of sequence, each once."""
    stops = ["<|im_end|>"] if is_chatml(chat_template) else []
    return list(dict.fromkeys([*stops, *([eos_token] if eos_token else [])]))


def modelfile_text(
    gguf_name: str, chat_template: str | None, eos_token: str | None, num_ctx: int, chat: ChatDefaults = ChatDefaults()
) -> str:
    """The Modelfile for the GGUF file ``gguf_name`` lying beside it."""
    system = chat.system or default_system(chat_template)
    lines = [
        "# Made by the Studio: `ollama create NAME -f Modelfile` in this folder, then `ollama run NAME`.",
        f"FROM ./{gguf_name}",
        f"TEMPLATE {quoted(ollama_template(chat_template))}",
    ]
    if system:
        lines.append(f"SYSTEM {quoted(system)}")
    lines += [f'PARAMETER stop "{stop}"' for stop in stop_tokens(chat_template, eos_token)]
    lines += ["# greedy decoding, as the Studio answers", "PARAMETER temperature 0", "PARAMETER repeat_penalty 1"]
    lines.append(f"PARAMETER num_ctx {num_ctx}")
    if chat.num_predict > 0:
        lines.append(f"PARAMETER num_predict {chat.num_predict}")
    return "\n".join(lines) + "\n"


def readme_text(name: str, gguf_name: str, record: dict, chat: ChatDefaults = ChatDefaults()) -> str:
    """How to run the export with Ollama, llama.cpp and transformers, and what it was made from."""
    made_of = f"the base model {record.get('base_name', '?')}"
    if record.get("adapter"):
        made_of += f" with the LoRA adapter {record['adapter']} merged in"
    asked = ""
    if chat.user_turn:
        limit = f" and at most {chat.num_predict} new tokens" if chat.num_predict else ""
        asked = (
            f"\n## How the Studio asks it\n\nOne user turn per question, with the sources found for it:\n\n"
            f"```\n{chat.user_turn}\n```\n\nwith the system message the Modelfile sets{limit}, decoding greedily; "
            "the answer is the reply's first line.\n"
        )
    return f"""# {name}

`{gguf_name}`: {made_of}, exported by the Studio as GGUF ({record.get("format", "?")}).

## Ollama

In this folder:

```sh
ollama create {name.lower()} -f Modelfile
ollama run {name.lower()}
```

The `Modelfile` sets the chat template, the stop tokens and greedy decoding; edit its PARAMETER lines to change them.

## llama.cpp

```sh
llama-cli -m {gguf_name}
llama-server -m {gguf_name}
```

## transformers

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained(".", gguf_file="{gguf_name}")  # "." : this folder
model = AutoModelForCausalLM.from_pretrained(".", gguf_file="{gguf_name}")
```
{asked}"""
