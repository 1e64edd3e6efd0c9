from types import SimpleNamespace

from functions import help as help_fn
from runtime.config.manifest import parse
from runtime.core.registry import Registry
from tests.library.drive import run

REGISTRY = Registry(
    [
        parse(
            {
                "name": "dice",
                "version": "1.0.0",
                "description": "d",
                "handler": "dice:roll",
                "commands": {
                    "roll": {"usage": "!roll NdM", "help": "Rolls dice.", "aliases": ["r"]},
                    "flip": {},
                },
            }
        ),
        parse(
            {
                "name": "mod",
                "version": "1.0.0",
                "description": "m",
                "handler": "mod:f",
                "commands": {"kick": {"rank": 2, "help": "Kicks."}},
            }
        ),
    ]
)


def ctx() -> SimpleNamespace:
    return SimpleNamespace(config={}, commands=REGISTRY.commands)


def event(rank: float, *args: str) -> SimpleNamespace:
    return SimpleNamespace(args=list(args), user="amy", rank=rank)


def test_lists_only_commands_the_user_may_run() -> None:
    assert run(help_fn.show(event(0), ctx())) == "Commands: !flip !roll. Try !help <command>."
    assert run(help_fn.show(event(2), ctx())) == "Commands: !flip !kick !roll. Try !help <command>."


def test_usage_of_one_command_and_alias() -> None:
    assert run(help_fn.show(event(0, "roll"), ctx())) == "!roll NdM (also !r): Rolls dice."
    assert run(help_fn.show(event(0, "!r"), ctx())) == "!roll NdM (also !r): Rolls dice."
    assert run(help_fn.show(event(0, "flip"), ctx())) == "!flip"


def test_hidden_or_unknown_command() -> None:
    assert run(help_fn.show(event(0, "kick"), ctx())) == "amy: no command !kick that you can run."
    assert run(help_fn.show(event(0, "zzz"), ctx())) == "amy: no command !zzz that you can run."
