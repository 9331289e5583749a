"""The ``precond`` command's help (issue 11, point 24): one whole sentence per command."""

from __future__ import annotations

import argparse

from precond.cli import build_parser, summary


def _helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                out[choice.dest] = choice.help
                out.update({f"{choice.dest} {k}": v for k, v in _helps(action.choices[choice.dest]).items()})
    return out


def test_summary_is_the_whole_first_sentence():
    doc = "Run the thing: first this,\nthen that.\n\nMore text. And more."
    assert summary(doc) == "Run the thing: first this, then that."
    assert summary("One line only") == "One line only"
    assert summary("First. Second.") == "First."
    assert summary(None) is None


def test_every_command_help_is_a_whole_sentence():
    helps = _helps(build_parser())
    assert {"demo", "run", "report", "problems", "bench", "bench step", "bench sweep"} <= set(helps)
    for name, text in helps.items():
        assert text and text[0].isupper() and text.endswith((".", ")")), (name, text)
