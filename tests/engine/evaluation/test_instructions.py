"""The Dolly forgetting check with the real bundled model."""

import pytest

from engine.errors import InputError
from engine.evaluation.instructions import InstructionSpec, run_instructions

pytestmark = pytest.mark.slow


def test_closed_qa_records_are_answered_and_scored(generator, settings) -> None:
    result = run_instructions(InstructionSpec(limit=3, max_new_tokens=12), generator, settings)
    assert len(result.rows) == 3
    assert all(r["id"].startswith("dolly-") and r["reference"] for r in result.rows)
    assert all(0 <= r["f1"] <= 100 and 0 < r["new_tokens"] <= 12 for r in result.rows)
    assert result.metrics["f1"] == pytest.approx(sum(r["f1"] for r in result.rows) / 3)
    assert result.metrics["records"] == 3


def test_bad_settings_are_input_errors(generator, settings) -> None:
    with pytest.raises(InputError):
        InstructionSpec(limit=0)
    with pytest.raises(InputError, match="no category"):
        run_instructions(InstructionSpec(category="poetry", limit=2), generator, settings)
