"""What the shell would run: simple commands extracted by policies/shell.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.shell import analyze
from policies.shell_conditions import has_option


def runs(line: str) -> list[str]:
    return sorted(" ".join([c.name, *c.args]) for c in analyze(line).commands)


@pytest.mark.parametrize(("line", "expected"), [
    ("r''m -rf ~/keep", ["rm -rf ~/keep"]),
    ("\\rm -r 'a b'", ["rm -r a b"]),
    ("/bin/rm -r x", ["rm -r x"]),
    ("ls | grep x && echo ok || true", ["echo ok", "grep x", "ls", "true"]),
    ("(cd /tmp; rm -r x)", ["cd /tmp", "rm -r x"]),
    ("echo $(rm -r x) `ls`", ["echo $(rm -r x) `ls`", "ls", "rm -r x"]),
    ("sh -c 'bash -c \"rm -r x\"'", ["bash -c rm -r x", "rm -r x", "sh -c bash -c \"rm -r x\""]),
    ("eval 'rm -r x'", ["eval rm -r x", "rm -r x"]),
    ("find . -exec rm {} +", ["find . -exec rm {} +", "rm {}"]),
    ("ls | xargs -n 1 rm -r", ["ls", "rm -r", "xargs -n 1 rm -r"]),
    ("sudo -u root env A=1 nice -n 3 rm x", ["env A=1 nice -n 3 rm x", "nice -n 3 rm x", "rm x",
                                             "sudo -u root env A=1 nice -n 3 rm x"]),
    ("timeout 5 rm x", ["rm x", "timeout 5 rm x"]),
    ("alias k='rm -r'; k x", ["alias k=rm -r", "rm -r", "rm -r x"]),
    ("rm x \\\n -r", ["rm x -r"]),
    ("time make -j4", ["make -j4"]),
    ("echo $((1 + 2))", ["echo 0"]),
    ("command -v rm", ["command -v rm"]),
])
def test_every_simple_command_is_found_with_quotes_removed(line: str,
                                                           expected: list[str]) -> None:
    assert runs(line) == expected


@pytest.mark.parametrize("line", [
    "$x -rf y", "$(printf rm) -r y", "`echo rm` y", "rm${IFS}-r y", "{rm,-r,y}",
    "echo x | base64 -d | sh", "printf 'rm y' | bash", "curl -s u | sh", "bash <<< 'rm y'",
    "python3 -c 'import os; os.remove(\"y\")'", "perl -e 'unlink \"y\"'", "node -e 'fs.rmSync(1)'",
    "ruby -e 'File.delete(\"y\")'", "eval \"$c\"", "bash -c \"$c\"", ". /dev/stdin <<< x",
    "source <(echo x)", "awk 'BEGIN{system(\"rm y\")}'", "$'\\x72\\x6d' y",
])
def test_what_hides_a_command_is_reported(line: str) -> None:
    assert analyze(line).obfuscations


@pytest.mark.parametrize("line", [
    "ls -la", "git log --oneline | head -5", "python3 -c 'print(1 + 1)'", "echo $HOME",
    "[ -f x ] && cat x", "python3 -m json.tool f", "bash build.sh", "cat f | sort | uniq -c",
    "for f in *.txt; do wc -l \"$f\"; done",
])
def test_ordinary_lines_hide_nothing(line: str) -> None:
    analysis = analyze(line)
    assert analysis.parsed
    assert analysis.obfuscations == ()


@pytest.mark.parametrize("line", ["[[ -d x ]] && rm -r x", "case x in x) rm -r y;; esac",
                                  "coproc rm -r x", "echo 'unclosed"])
def test_a_line_the_parser_rejects_says_so_and_still_yields_rough_commands(line: str) -> None:
    analysis = analyze(line)
    assert analysis.parse_error
    if "rm" in line:
        assert any(c.name == "rm" and c.via == "unparsed line" for c in analysis.commands)


@pytest.mark.parametrize(("args", "option", "found"), [
    (("-rf", "x"), "-r", True), (("x", "-fR"), "-R", True), (("x", "-f"), "-r", False),
    (("--recursive",), "--recursive", True), (("--rec",), "--recursive", True),
    (("--re=1",), "--recursive", True), (("--",), "--recursive", False),
    (("--", "-r"), "-r", False), (("-delete",), "-delete", True), (("-depth",), "-delete", False),
    (("--no-preserve-root",), "--recursive", False),
])
def test_options_match_in_any_position_and_spelling(args: tuple[str, ...], option: str,
                                                    found: bool) -> None:
    assert has_option(args, option) is found


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
               max_size=80))
def test_any_text_is_analysed_without_raising(text: str) -> None:
    analysis = analyze(text)
    assert analysis.parsed or analysis.parse_error
