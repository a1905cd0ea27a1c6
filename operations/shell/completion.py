"""Completion scripts for bash, zsh and fish, made from the command line's parser: every flag,
its choices where it has them, file names where it takes a path, and the subcommands.

``backgroundswap completion bash`` prints the script; ``source <(backgroundswap completion
bash)`` (or the file in ``~/.local/share/bash-completion/completions/backgroundswap``) loads it.
zsh loads the bash one through ``bashcompinit``; fish gets its own ``complete`` lines.
"""

from __future__ import annotations

import argparse
import shlex

SHELLS = ("bash", "zsh", "fish")
SUBCOMMANDS = ("serve", "review", "report", "download", "config", "completion")


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS]


def bash(parser: argparse.ArgumentParser, prog: str) -> str:
    flags = " ".join(s for a in _options(parser) for s in a.option_strings)
    cases = "\n".join(
        f"        {'|'.join(a.option_strings)}) COMPREPLY=($(compgen -W "
        f'{shlex.quote(" ".join(map(str, a.choices)))} -- "$cur")); return;;'
        for a in _options(parser)
        if a.choices
    )
    name = "_" + prog.replace("-", "_")
    return f"""# bash completion for {prog} (made by `{prog} completion bash`)
{name}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    if [ "$COMP_CWORD" -eq 1 ] && [[ "$cur" != -* ]]; then
        COMPREPLY=($(compgen -W "{" ".join(SUBCOMMANDS)}" -- "$cur"))
        [ ${{#COMPREPLY[@]}} -gt 0 ] && return
    fi
    case "$prev" in
{cases}
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "{flags}" -- "$cur"))
    fi
}}
complete -o default -F {name} {prog}
"""


def zsh(parser: argparse.ArgumentParser, prog: str) -> str:
    return (
        f"# zsh completion for {prog} (made by `{prog} completion zsh`): the bash one\n"
        "autoload -U +X bashcompinit && bashcompinit\n" + bash(parser, prog)
    )


def fish(parser: argparse.ArgumentParser, prog: str) -> str:
    lines = [f"# fish completion for {prog} (made by `{prog} completion fish`)"]
    lines.append(
        f"complete -c {prog} -n __fish_use_subcommand -a {shlex.quote(' '.join(SUBCOMMANDS))}"
    )
    for action in _options(parser):
        parts = [f"complete -c {prog}"]
        for option in action.option_strings:
            parts.append(f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}")
        if action.choices:
            parts.append(f"-x -a {shlex.quote(' '.join(map(str, action.choices)))}")
        elif action.nargs != 0:
            parts.append("-r -F")  # takes a value: a file name, or anything
        summary = (action.help or "").split(";")[0].split("(")[0].strip()
        if summary:
            parts.append(f"-d {shlex.quote(summary[:80])}")
        lines.append(" ".join(parts))
    return "\n".join(lines) + "\n"


def script(shell: str, parser: argparse.ArgumentParser, prog: str) -> str:
    """The completion script for ``shell`` (one of :data:`SHELLS`)."""
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell](parser, prog)
