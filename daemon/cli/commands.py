"""VRP-style command matching: keywords may be abbreviated while unambiguous ("dis int br").

Components register patterns such as "display eth-trunk <1-64>" with a handler; the table
matches a typed line against all patterns token by token, so errors point at the first bad
token with VRP's caret message instead of a generic failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daemon.config.ifnames import canonical

Handler = Callable[[list[Any], bool], Any]
_RANGE = re.compile(r"^<(\d+)-(\d+)>$")


class CommandError(Exception):
    """A line that does not match; str() is VRP's two-line caret message."""


@dataclass(frozen=True)
class _Pattern:
    tokens: tuple[str, ...]
    handler: Handler
    help: str


def _param_value(spec: str, word: str) -> Any:
    """Return the typed value of `word` for a parameter spec, or raise ValueError."""
    m = _RANGE.match(spec)
    if m:
        value = int(word)
        if not int(m.group(1)) <= value <= int(m.group(2)):
            raise ValueError(word)
        return value
    if spec == "<ifname>":
        return canonical(word)
    if spec == "<word>":
        return word
    raise AssertionError(f"unknown parameter spec {spec}")


class CommandTable:
    def __init__(self) -> None:
        self._patterns: list[_Pattern] = []

    def add(self, pattern: str, handler: Handler, help: str = "") -> None:
        self._patterns.append(_Pattern(tuple(pattern.split()), handler, help))

    def help_lines(self) -> list[str]:
        return sorted(f"{' '.join(p.tokens):48} {p.help}".rstrip() for p in self._patterns)

    def run(self, line: str, as_json: bool = False) -> Any:
        handler, args = self.match(line)
        return handler(args, as_json)

    def match(self, line: str) -> tuple[Handler, list[Any]]:
        words = line.split()
        if not words:
            raise CommandError("Error: Empty command.")
        cands = list(self._patterns)
        args_by_pattern: dict[int, list[Any]] = {id(p): [] for p in cands}
        for i, word in enumerate(words):
            kw_exact, kw_prefix, params, bad_param = [], [], [], False
            for p in cands:
                if i >= len(p.tokens):
                    continue
                tok = p.tokens[i]
                if tok.startswith("<"):
                    try:
                        args_by_pattern[id(p)].append(_param_value(tok, word))
                        params.append(p)
                    except ValueError:
                        bad_param = True
                elif tok == word.lower():
                    kw_exact.append(p)
                elif tok.startswith(word.lower()):
                    kw_prefix.append(p)
            kw = kw_exact or kw_prefix
            if kw and len({p.tokens[i] for p in kw}) > 1 and not kw_exact:
                raise CommandError(_caret(words, i, "Ambiguous command"))
            cands = kw + params
            if not cands:
                reason = "Wrong parameter" if bad_param else "Unrecognized command"
                raise CommandError(_caret(words, i, reason))
        done = [p for p in cands if len(p.tokens) == len(words)]
        if not done:
            raise CommandError(_caret(words, len(words), "Incomplete command"))
        chosen = done[0]
        return chosen.handler, args_by_pattern[id(chosen)]


def _caret(words: list[str], index: int, reason: str) -> str:
    """VRP's message: the line, a caret under the offending word, and the reason."""
    line = " ".join(words)
    col = len(" ".join(words[:index])) + (1 if index else 0)
    return f"{line}\n{' ' * col}^\nError: {reason} found at '^' position."
