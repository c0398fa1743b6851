"""``python -m engine train`` and ``adapters``: bad input is one line and exit status 2."""

import pytest

from engine.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--adapter", "../escape", "--no-mlflow"], "Invalid adapter name"),
        (["train", "--adapter", "x", "--dolly", "1.5", "--no-mlflow"], "--dolly is a share"),
        (["train", "--adapter", "x", "--lr", "0", "--no-mlflow"], "must be positive"),
        (
            ["train", "--adapter", "x", "--dolly", "0.2", "--dolly-categories", "closed_qa", "--no-mlflow"],
            "forgetting check",
        ),
        (
            ["train", "--adapter", "poem-lora", "--dolly", "0.2", "--dolly-categories", "poetry", "--no-mlflow"],
            "no category poetry",
        ),
        (["train", "--adapter", "never-trained", "--resume", "--no-mlflow"], "no training run"),
        (["adapters", "delete", "missing"], "missing"),
        (["adapters", "rename", "only-one"], "takes 2 name(s)"),
        (["eval", "--split", "test", "--adapter", "missing", "--limit", "2", "--no-mlflow"], "missing"),
    ],
)
def test_bad_input_is_one_line_and_status_2(settings, capsys, argv, message) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # after the progress bars of a model load, where there is one
    assert last.startswith("error: ") and message in last and "Traceback" not in err


def test_adapters_list_on_an_empty_registry(settings, capsys) -> None:
    assert main(["adapters", "list"]) == 0
    assert capsys.readouterr().out == ""
