"""Reading a policy file: canonical bytes, its hash, and YAML that remembers lines.

The hash is taken over the *canonical* bytes — UTF-8 without a byte-order
mark, ``\\n`` line endings — so the same policy checked out on Windows hashes
the same.  Every value's line is kept (from YAML's node marks) so that a
pydantic error location such as ``('rules', 3, 'match', 'text')`` can be
reported as ``policy.yaml:14: rules[3].match.text: ...``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from policies.errors import PolicyError, Problem

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class PolicySource:
    """A policy file's parsed data, where each value came from, and its hash."""

    file: str
    data: Any
    lines: dict[FieldPath, int]
    sha256: str

    def line_of(self, path: FieldPath) -> int:
        """The line of ``path`` or of its nearest enclosing value that the file has."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1

    def problem(self, path: FieldPath, message: str) -> Problem:
        """A :class:`Problem` at ``path``, with the line it was written on."""
        return Problem(self.file, self.line_of(path), _field_name(self._trim(path)), message)

    def error(self, problems: Iterable[tuple[FieldPath, str]]) -> PolicyError:
        return PolicyError([self.problem(path, message) for path, message in problems])

    def translate(self, exc: ValidationError) -> PolicyError:
        """Turn pydantic's errors into problems that name file, line and field."""
        return self.error((_clean_loc(e["loc"]), _clean_message(e["msg"])) for e in exc.errors())

    def _trim(self, path: FieldPath) -> FieldPath:
        # A single pattern written without brackets is validated as a one-item
        # list; report it as the field the author wrote, not as `text[0]`.
        while path and isinstance(path[-1], int) and path not in self.lines:
            path = path[:-1]
        return path


def canonical_bytes(raw: bytes) -> bytes:
    """``raw`` without a UTF-8 byte-order mark and with ``\\n`` line endings."""
    return raw.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def read_source(raw: bytes, file: str) -> PolicySource:
    """Parse ``raw`` (the bytes of ``file``) into data with line numbers."""
    canonical = canonical_bytes(raw)
    try:
        text = canonical.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError.single(file, None, "", f"not UTF-8 text: {exc}") from None
    node, data = _load_yaml(text, file)
    lines: dict[FieldPath, int] = {(): node.start_mark.line + 1}
    problems: list[Problem] = []
    _index_lines(node, (), lines, problems, file)
    if problems:
        raise PolicyError(problems)
    if not isinstance(data, dict):
        raise PolicyError.single(file, 1, "", "a policy file must be a YAML mapping")
    return PolicySource(file, data, lines, hashlib.sha256(canonical).hexdigest())


# libyaml's loader where PyYAML has it: the same nodes and marks, several times faster.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(text: str, file: str) -> tuple[yaml.Node, Any]:
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise PolicyError.single(file, 1, "", "the policy file is empty")
        return node, loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_problem(exc, file) from None
    except yaml.YAMLError as exc:  # e.g. a control character the reader rejects
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PolicyError.single(file, None, "", f"not valid YAML: {first}") from None
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.MarkedYAMLError, file: str) -> PolicyError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    what = " ".join(part for part in (exc.context, exc.problem) if part)
    return PolicyError.single(file, line, "", f"invalid YAML: {what}")


def _index_lines(node: yaml.Node, path: FieldPath, lines: dict[FieldPath, int],
                 problems: list[Problem], file: str) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            if child in lines:
                problems.append(Problem(file, key_node.start_mark.line + 1,
                                        _field_name(child), "duplicate key"))
                continue
            lines[child] = key_node.start_mark.line + 1
            _index_lines(value_node, child, lines, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _index_lines(item, (*path, index), lines, problems, file)


def _field_name(path: Sequence[str | int]) -> str:
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else part)
    return name


def _clean_loc(loc: tuple[str | int, ...]) -> FieldPath:
    # `[key]` marks an error in a mapping key rather than its value.
    return tuple(part for part in loc if part != "[key]")


def _clean_message(message: str) -> str:
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
