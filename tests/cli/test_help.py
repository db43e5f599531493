"""`--help` explains every option of every command."""

import argparse

from dalle.cli import build_parser


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...]):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, path + (name,))


def test_every_option_of_every_command_has_help_text():
    commands = list(_commands(build_parser(), ("dalle",)))
    assert len(commands) > 25  # the walk reaches the nested commands (dalle train decoder, ...)
    missing = [
        f"{' '.join(path)} {action.option_strings[-1]}"
        for path, parser in commands
        for action in parser._actions
        if action.option_strings
        and not action.help
        and not isinstance(action, argparse._HelpAction)
    ]
    assert missing == []


def test_every_command_says_what_it_does():
    leaves = [(path, sub) for path, sub in _commands(build_parser(), ("dalle",))
              if len(path) > 1 and not sub._subparsers]  # fmt: skip
    assert len(leaves) > 20
    assert [" ".join(path) for path, sub in leaves if not sub.description] == []
