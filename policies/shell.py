"""What a shell would run: every simple command of a command line, and what hides one.

:func:`analyze` parses a line with `bashlex <https://pypi.org/project/bashlex/>`_
(a port of bash's own grammar, so quotes, escapes and line continuations are
removed the way bash removes them) and walks the tree for every simple
command — in pipelines, lists, subshells, ``{ }`` groups, ``if``/``for``/
``while`` bodies, function bodies, command and process substitutions — then
looks inside the commands that run other commands: ``sh -c``/``bash -c``
strings and ``eval`` arguments (parsed again, recursively), ``xargs``,
``find -exec``, prefixes such as ``env``, ``nohup``, ``timeout``, ``command``,
``exec``, ``sudo``, ``nice``, aliases defined earlier on the line, and the
here-documents fed to a shell.

What the parser cannot resolve is reported as *obfuscation* (a variable or
command substitution in command position, text piped into a shell, inline
interpreter code that touches files, processes or the network, a
here-document into an interpreter).  bashlex does not know every construct
(``[[ ]]``, ``case``, ``$(( ))``, ``select``, ``coproc`` raise); a line it
cannot parse is reported with :attr:`ShellAnalysis.parse_error`, which policy
rules treat as a reason to ask: failing to understand a line never lets it
through.

Pure: no I/O, no imports from the agent.  bashlex is imported on the first
parse, not with this module: building its parser tables takes about 0.3 s,
which commands that never parse a line should not pay.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

MAX_DEPTH = 6  # sh -c "sh -c '...'" nesting we follow before giving up (and saying so)

SHELLS: frozenset[str] = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "ash"})
AWKS: frozenset[str] = frozenset({"awk", "gawk", "mawk", "nawk", "busybox awk"})
_AWK_REACHES_OUT = re.compile(r"\bsystem\s*\(|\|\s*getline|\|\s*\"|print[^;}]*>")
INTERPRETERS: frozenset[str] = frozenset({
    "python", "python2", "python3", "perl", "ruby", "node", "nodejs", "php", "lua", "tclsh",
    "osascript", "pwsh",
})
# Options that take the program text as their value, per interpreter.
_INLINE_CODE_OPTIONS: dict[str, frozenset[str]] = {
    "python": frozenset({"-c"}), "perl": frozenset({"-e", "-E"}),
    "ruby": frozenset({"-e"}), "node": frozenset({"-e", "--eval", "-p", "--print"}),
    "php": frozenset({"-r"}), "lua": frozenset({"-e"}), "pwsh": frozenset({"-c", "-command"}),
}
# Inline code that reaches files, processes or the network.
_TOUCHES_SYSTEM = re.compile(
    r"\b(?:os|shutil|subprocess|pathlib|socket|urllib|requests|http|ctypes|pty|signal|"
    r"tempfile|importlib)\b|__import__|\b(?:eval|getattr|compile)\s*\(|\bopen\s*\(|\b(?:unlink|rmtree|remove|rmdir|system|popen|"
    r"exec\w*|spawn\w*|kill|chmod|chown|truncate|rename|unlinkSync|rmSync|writeFile\w*|"
    r"child_process|fork|File|Dir|FileUtils|IO|Kernel|fs|net|fetch)\b|`|"
    r"\b(?:rm|mv|dd|curl|wget)\s",
)

# Prefix commands that run their operand as a command, with the options that take a value.
_PREFIXES: dict[str, frozenset[str]] = {
    "env": frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}),
    "nohup": frozenset(),
    "timeout": frozenset({"-s", "--signal", "-k", "--kill-after"}),
    "command": frozenset(),
    "builtin": frozenset(),
    "exec": frozenset({"-a"}),
    "sudo": frozenset({"-u", "--user", "-g", "--group", "-C", "-D", "--chdir", "-h",
                       "--host", "-p", "--prompt", "-r", "--role", "-t", "--type", "-U"}),
    "doas": frozenset({"-u", "-C"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "-n", "-t"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "setsid": frozenset(),
    "chrt": frozenset(),
    "taskset": frozenset(),
    "time": frozenset({"-f", "--format", "-o", "--output"}),
    "watch": frozenset({"-n", "--interval", "-d"}),
    "strace": frozenset({"-e", "-o", "-p", "-s"}),
    "ltrace": frozenset({"-e", "-o"}),
    "unbuffer": frozenset(),
    "flock": frozenset({"-w", "-E"}),
    "busybox": frozenset(),
}
# Prefixes whose first operand is not the command (timeout's duration, chrt's priority ...).
_PREFIX_SKIPS_FIRST_OPERAND: frozenset[str] = frozenset({"timeout", "chrt", "taskset", "flock"})
_XARGS_VALUE_OPTIONS = frozenset({"-I", "-i", "-L", "-l", "-n", "-P", "-d", "-E", "-e", "-s",
                                  "-a", "--arg-file", "--delimiter", "--max-args",
                                  "--max-procs", "--replace", "--max-lines", "--eof"})
_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
_GLOB_OR_BRACE = re.compile(r"[*?\[]|\{[^}]*,[^}]*\}")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_HISTORY = re.compile(r"(?<![\\\w])!(?=[!\w?#$*^-])")
_GIT_RUNS_SHELL = re.compile(
    r"^(?:alias\.[^=]*=\s*!|core\.(?:pager|editor|sshcommand|fsmonitor|hookspath)=|"
    r"(?:diff|merge)\.[^=]*\.(?:command|textconv|driver)=|credential\.helper=\s*!)", re.I)
_ROUGH_SEPARATORS = re.compile(r"\|\||&&|[;&|\n(){}`]|\$\(")
_RESERVED = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until",
                       "for", "case", "esac", "select", "coproc", "time", "!", "[[", "]]",
                       "function", "in"})


@dataclass(frozen=True, slots=True)
class SimpleCommand:
    """One command the shell would run: its name (a basename) and its arguments.

    Quotes and escapes are removed (``r''m`` is ``rm``, ``\\rm`` is ``rm``).
    ``via`` names the command that runs this one (``sudo``, ``xargs``,
    ``sh -c`` ...), empty for a command typed directly.  ``redirects`` are the
    operator and target of each redirection (``(">", "notes.txt")``).
    """

    name: str
    args: tuple[str, ...] = ()
    redirects: tuple[tuple[str, str], ...] = ()
    via: str = ""

    def render(self) -> str:
        words = [self.name or "(no command)", *self.args]
        words += [f"{op}{target}" for op, target in self.redirects]
        shown = " ".join(_quoted(word) for word in words)
        return f"{shown}   (via {self.via})" if self.via else shown


@dataclass(frozen=True, slots=True)
class ShellAnalysis:
    """What a line would run, what hides part of it, and whether it parsed at all."""

    commands: tuple[SimpleCommand, ...]
    obfuscations: tuple[str, ...]
    parse_error: str | None = None

    @property
    def parsed(self) -> bool:
        return self.parse_error is None


def _quoted(word: str) -> str:
    if word and not re.search(r"[\s'\"\\$`]", word):
        return word
    return "'" + word.replace("'", "'\\''") + "'"


@lru_cache(maxsize=4096)
def analyze(line: str) -> ShellAnalysis:
    """Every simple command of ``line`` and every obfuscation found (cached by text)."""
    walker = _Walker()
    error = walker.script(line, depth=0, via="")
    if error is not None:
        walker.rough(line)
    return ShellAnalysis(tuple(walker.commands), tuple(dict.fromkeys(walker.obfuscations)),
                         error)


def _prepared(line: str) -> str:
    # bashlex rejects a trailing line continuation (bash would wait for more),
    # the `time` keyword and arithmetic expansion; none of them changes which
    # commands run (arithmetic with a substitution inside is left to fail).
    text = line.rstrip("\n")
    while text.endswith("\\"):
        text = text[:-1]
    text = _ARITHMETIC.sub("0", text)
    return re.sub(r"(^|[;&|(]\s*)time(\s+-p)?\s", r"\1", text)


_ARITHMETIC = re.compile(r"\$\(\(([^()$`]*)\)\)")


@dataclass(slots=True)
class _Walker:
    commands: list[SimpleCommand] = field(default_factory=list)
    obfuscations: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)

    def script(self, text: str, *, depth: int, via: str) -> str | None:
        """Parse ``text`` and walk it; returns the parse error, if any."""
        if depth > MAX_DEPTH:
            self.obfuscations.append(f"commands nested more than {MAX_DEPTH} shells deep")
            return None
        prepared = _prepared(text)
        if not prepared.strip():
            return None
        if "$'" in prepared:
            self.obfuscations.append("ANSI-C quoting ($'...') hides the words it spells")
        if depth == 0 and _uses_history(prepared):
            self.obfuscations.append("history expansion (!..., ^old^new) runs text from history")
        import bashlex  # builds its parser tables on import (~0.3 s): only when a line needs it

        try:
            trees = bashlex.parse(prepared)
        except Exception as exc:  # bashlex raises many kinds; any failure means unparsed
            return _error_text(exc)
        for tree in trees:
            self.node(tree, depth=depth, via=via)
        return None

    def rough(self, text: str) -> None:
        """Best-effort commands of a line the parser rejected, so that rules still see them."""
        for piece in _ROUGH_SEPARATORS.split(text):
            words = _lenient_split(piece)
            while words and (words[0] in _RESERVED or _ASSIGNMENT.match(words[0])):
                words.pop(0)
            if words:
                self.run(words, [], (), [], depth=MAX_DEPTH, via="unparsed line")

    def node(self, node: Any, *, depth: int, via: str) -> None:
        kind = getattr(node, "kind", "")
        if kind == "command":
            self.command(node, depth=depth, via=via)
            return
        if kind == "pipeline":
            self.pipeline(node, depth=depth)
        for child in _children(node):
            self.node(child, depth=depth, via=via)

    def pipeline(self, node: Any, *, depth: int) -> None:
        commands = [part for part in node.parts if getattr(part, "kind", "") == "command"]
        for upstream, downstream in itertools.pairwise(commands):
            name = _basename(_word_text(_first_word(downstream)))
            if not _reads_program_from_stdin(name, _words(downstream)[1:]):
                continue
            feeder = _basename(_word_text(_first_word(upstream))) or "a command"
            self.obfuscations.append(f"the output of {feeder} is piped into {name} as a program")
            program = _literal_output(feeder, upstream)
            if program is not None and name in SHELLS:
                self.script_or_unknown(program, depth=depth, via=f"{feeder} piped into {name}")

    def command(self, node: Any, *, depth: int, via: str) -> None:
        words = [part for part in node.parts if part.kind == "word"]
        redirects = [part for part in node.parts if part.kind == "redirect"]
        for part in node.parts:
            for inner in _substitutions(part):
                self.node(inner, depth=depth, via="command substitution")
        self.alias_definitions(words, depth=depth)
        redirect_pairs = tuple(_redirect_pair(r) for r in redirects)
        if not words:
            if redirect_pairs:  # `> file` alone truncates it, like `:> file`
                self.commands.append(SimpleCommand(":", (), redirect_pairs, via))
            return
        head = words[0]
        if _has_expansion(head):
            self.obfuscations.append(
                f"the command name {head.word!r} comes from a variable or command substitution")
        elif head.word not in {"[", "[["} and _GLOB_OR_BRACE.search(head.word):
            self.obfuscations.append(
                f"the command name {head.word!r} is a pattern the shell expands")
        argv = [w.word for w in words]
        if argv[0] in self.aliases and depth <= MAX_DEPTH:
            expanded = self.aliases.pop(argv[0])  # bash does not expand an alias in itself
            self.script(" ".join([expanded, *map(_quoted, argv[1:])]), depth=depth + 1,
                        via=f"alias {argv[0]}")
            return
        self.run(argv, words, redirect_pairs, redirects, depth=depth, via=via)

    def alias_definitions(self, words: list[Any], *, depth: int) -> None:
        """Remember aliases for the rest of the line, and judge their text now: an alias
        defined on one line runs on the next, which this analysis never sees."""
        if not words or words[0].word != "alias":
            return
        for word in words[1:]:
            name, sep, value = word.word.partition("=")
            if sep:
                self.aliases[name] = value
                self.script(value, depth=depth + 1, via=f"alias {name}")

    def run(self, argv: list[str], words: list[Any], redirect_pairs: tuple[tuple[str, str], ...],
            redirects: list[Any], *, depth: int, via: str) -> None:
        """Record ``argv`` and follow whatever command it runs in turn."""
        name = _basename(argv[0])
        args = tuple(argv[1:])
        self.commands.append(SimpleCommand(name, args, redirect_pairs, via))
        self.heredocs_into(name, args, redirects, depth=depth)
        family = _interpreter_family(name)
        if family is not None:
            self.inline_code(name, family, args)
        self.follow(name, args, words, depth=depth)
        self.hidden_in(name, args, words, redirects)

    def follow(self, name: str, args: tuple[str, ...], words: list[Any], *, depth: int) -> None:
        """Record the commands that ``name args`` runs in turn."""
        if name in SHELLS:
            self.shell_string(name, args, words, depth=depth)
        elif name == "eval":
            self.evaluated(args, words, depth=depth)
        elif name in _PREFIXES:
            self.prefixed(name, list(args), words[1:], depth=depth)
        elif name == "xargs":
            self.xargs(list(args), depth=depth)
        elif name == "find":
            self.find_exec(list(args), depth=depth)
        elif name == "su":
            self.su(list(args), depth=depth)
        elif name == "script":
            self.script_command(list(args), depth=depth)
        elif name == "parallel":
            self.nested(_before(":::", _after_options(list(args))), depth=depth, via="parallel")

    def hidden_in(self, name: str, args: tuple[str, ...], words: list[Any],
                  redirects: list[Any]) -> None:
        """Note what ``name args`` runs that the line does not spell out."""
        if name == "git" and any(_GIT_RUNS_SHELL.match(a) for a in args):
            self.obfuscations.append("git -c sets an alias or program that runs a shell command")
        elif name in {"fc", "r"}:
            self.obfuscations.append(f"{name} runs commands from history")
        elif name in {"source", "."}:
            self.sourced(args, words, redirects)
        elif name in AWKS and any(_AWK_REACHES_OUT.search(a) for a in args):
            self.obfuscations.append(f"{name} runs a program that starts commands or writes files")

    def script_command(self, args: list[str], *, depth: int) -> None:
        for index, arg in enumerate(args[:-1]):
            if arg in {"-c", "--command"} or (short_bundle(arg) and arg.endswith("c")):
                self.script_or_unknown(args[index + 1], depth=depth, via="script -c")
                return

    def sourced(self, args: tuple[str, ...], words: list[Any], redirects: list[Any]) -> None:
        from_stdin = bool(args) and args[0] in {"/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"}
        substituted = len(words) > 1 and _has_expansion(words[1])
        if from_stdin or substituted:
            self.obfuscations.append("source runs text that is not a file on disk")

    def nested(self, argv: list[str], *, depth: int, via: str) -> None:
        if argv:
            self.run(argv, [], (), [], depth=depth + 1, via=via)

    def shell_string(self, name: str, args: tuple[str, ...], words: list[Any], *,
                     depth: int) -> None:
        for index, arg in enumerate(args):
            if arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]:
                if index + 1 < len(args):
                    code_word = words[index + 2] if index + 2 < len(words) else None
                    if _has_expansion(code_word):
                        self.obfuscations.append(f"{name} -c runs text built from a variable "
                                                 "or command substitution")
                    self.script_or_unknown(args[index + 1], depth=depth, via=f"{name} -c")
                return

    def script_or_unknown(self, text: str, *, depth: int, via: str) -> None:
        error = self.script(text, depth=depth + 1, via=via)
        if error is not None:
            self.obfuscations.append(f"the text run by {via} cannot be parsed ({error})")

    def evaluated(self, args: tuple[str, ...], words: list[Any], *, depth: int) -> None:
        if any(_has_expansion(word) for word in words[1:]):
            self.obfuscations.append("eval runs text built from a variable or command "
                                     "substitution")
        self.script_or_unknown(" ".join(args), depth=depth, via="eval")

    def prefixed(self, name: str, args: list[str], words: list[Any], *, depth: int) -> None:
        values = _PREFIXES[name]
        index = 0
        skip_operand = name in _PREFIX_SKIPS_FIRST_OPERAND
        while index < len(args):
            arg = args[index]
            if arg == "--":
                index += 1
                break
            if arg.startswith("-") and len(arg) > 1:
                if name == "env" and arg in {"-S", "--split-string"} and index + 1 < len(args):
                    self.script_or_unknown(args[index + 1], depth=depth, via="env -S")
                    return
                if name == "command" and arg in {"-v", "-V"}:
                    return  # `command -v x` only looks x up
                index += 2 if arg in values else 1
                continue
            if name == "env" and _ASSIGNMENT.match(arg):
                index += 1
                continue
            if skip_operand:
                skip_operand = False
                index += 1
                continue
            break
        rest = args[index:]
        if rest and index < len(words) and _has_expansion(words[index]):
            self.obfuscations.append(f"{name} runs a command named by a variable or "
                                     "command substitution")
        self.nested(rest, depth=depth, via=name)

    def xargs(self, args: list[str], *, depth: int) -> None:
        index = 0
        while index < len(args) and args[index].startswith("-"):
            arg = args[index]
            index += 2 if arg in _XARGS_VALUE_OPTIONS else 1
        self.nested(args[index:] or ["echo"], depth=depth, via="xargs")

    def find_exec(self, args: list[str], *, depth: int) -> None:
        index = 0
        while index < len(args):
            if args[index] in _FIND_EXEC:
                end = index + 1
                while end < len(args) and args[end] not in {";", "+", "\\;"}:
                    end += 1
                self.nested(args[index + 1:end], depth=depth, via=f"find {args[index]}")
                index = end
            index += 1

    def su(self, args: list[str], *, depth: int) -> None:
        for index, arg in enumerate(args[:-1]):
            if arg in {"-c", "--command"}:
                self.script_or_unknown(args[index + 1], depth=depth, via="su -c")

    def heredocs_into(self, name: str, args: tuple[str, ...], redirects: list[Any], *,
                      depth: int) -> None:
        if not (name in SHELLS or _interpreter_family(name)):
            return
        for redirect in redirects:
            body = _heredoc_body(redirect)
            if body is None:
                continue
            if _reads_program_from_stdin(name, args):
                self.obfuscations.append(f"a here-document is fed to {name} as a program")
                if name in SHELLS:
                    self.script_or_unknown(body, depth=depth, via=f"here-document into {name}")

    def inline_code(self, name: str, family: str, args: tuple[str, ...]) -> None:
        options = _INLINE_CODE_OPTIONS.get(family, frozenset())
        for index, arg in enumerate(args[:-1]):
            if arg in options or (family != "node" and _bundles(arg, options)):
                if _TOUCHES_SYSTEM.search(args[index + 1]):
                    self.obfuscations.append(
                        f"{name} {arg} runs inline code that touches files, processes "
                        "or the network")
                return


def short_bundle(arg: str) -> bool:
    """Whether ``arg`` is a bundle of short options (``-rf``), not ``--long`` or ``-``."""
    return len(arg) > 1 and arg[0] == "-" and arg[1] != "-"


def _after_options(args: list[str]) -> list[str]:
    index = 0
    while index < len(args) and args[index].startswith("-"):
        index += 1
    return args[index:]


def _before(marker: str, items: list[str]) -> list[str]:
    return items[:items.index(marker)] if marker in items else items


def _uses_history(text: str) -> bool:
    """Whether interactive bash would expand history in ``text`` (outside single quotes)."""
    unquoted = re.sub(r"'[^']*'", "''", text)
    return bool(_HISTORY.search(unquoted) or unquoted.lstrip().startswith("^"))


def _lenient_split(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False)
    except ValueError:  # an unmatched quote: drop the quotes and split on blanks
        return text.replace("'", " ").replace('"', " ").split()


def _bundles(arg: str, options: frozenset[str]) -> bool:
    # `perl -ne`, `python3 -Bc`: a short option bundle ending in the code option.
    return (arg.startswith("-") and not arg.startswith("--") and len(arg) > 2
            and any(len(o) == 2 and arg.endswith(o[1]) for o in options))


def _interpreter_family(name: str) -> str | None:
    family = re.sub(r"[\d.]+$", "", name)
    family = {"nodejs": "node", "python": "python"}.get(family, family)
    return family if family in INTERPRETERS or name in INTERPRETERS else None


def _reads_program_from_stdin(name: str, args: tuple[str, ...] | list[Any]) -> bool:
    """Whether ``name args`` would read the program it runs from standard input."""
    if not (name in SHELLS or _interpreter_family(name)):
        return False
    texts = [a if isinstance(a, str) else getattr(a, "word", "") for a in args]
    family = _interpreter_family(name) or ""
    code_options = _INLINE_CODE_OPTIONS.get(family, frozenset()) | {"-m"}
    for arg in texts:
        if arg in {"-", "-s"}:
            return True
        if arg in code_options or (name in SHELLS and arg.startswith("-") and "c" in arg[1:]
                                   and not arg.startswith("--")):
            return False
        if not arg.startswith("-"):
            return False  # a script file
    return True


def _error_text(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    if isinstance(exc, NotImplementedError):
        return f"a construct the parser does not support ({message[:80]})"
    return message[:120]


def _children(node: Any) -> Iterator[Any]:
    for name in ("parts", "list"):
        yield from getattr(node, name, None) or ()
    command = getattr(node, "command", None)
    if command is not None:
        yield command


def _substitutions(node: Any) -> Iterator[Any]:
    """Commands inside a word or redirect target: ``$( )``, backticks, ``<( )``."""
    stack = [node]
    while stack:
        current = stack.pop()
        kind = getattr(current, "kind", "")
        if kind in {"commandsubstitution", "processsubstitution"}:
            yield current.command
            continue
        stack.extend(getattr(current, "parts", None) or ())
        output = getattr(current, "output", None)
        if output is not None and not isinstance(output, int):
            stack.append(output)


def _has_expansion(word: Any) -> bool:
    return any(getattr(part, "kind", "") in {"parameter", "commandsubstitution",
                                              "processsubstitution"}
               for part in getattr(word, "parts", None) or ())


def _words(command: Any) -> list[Any]:
    return [part for part in command.parts if part.kind == "word"]


def _first_word(command: Any) -> Any:
    words = _words(command)
    return words[0] if words else None


def _word_text(word: Any) -> str:
    return str(getattr(word, "word", "")) if word is not None else ""


def _basename(name: str) -> str:
    return name.rsplit("/", 1)[-1] if "/" in name.rstrip("/") else name


def _redirect_pair(redirect: Any) -> tuple[str, str]:
    output = getattr(redirect, "output", None)
    target = str(output) if isinstance(output, int) else _word_text(output)
    return str(redirect.type), target


def _literal_output(feeder: str, command: Any) -> str | None:
    """The text ``echo``/``printf``/``cat <<EOF`` writes, when the line spells it out."""
    words = _words(command)
    if feeder in {"echo", "printf"} and not any(_has_expansion(w) for w in words):
        return " ".join(w.word for w in words[1:] if not w.word.startswith("-"))
    for part in command.parts:
        if part.kind == "redirect":
            body = _heredoc_body(part)
            if body is not None:
                return body
    return None


def _heredoc_body(redirect: Any) -> str | None:
    kind = str(getattr(redirect, "type", ""))
    if kind in {"<<", "<<-"}:
        heredoc = getattr(redirect, "heredoc", None)
        value = str(getattr(heredoc, "value", ""))
        return value.rsplit("\n", 1)[0] if "\n" in value else value
    if kind == "<<<":
        return _word_text(getattr(redirect, "output", None))
    return None
