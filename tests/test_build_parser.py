"""The Dockerfile parser and shell lexer against BuildKit's own test corpus, then our errors.

The corpus lives beside the repository (``../shared/conformance/buildkit-parser``, as in CI) and
is read in place: every positive case must print BuildKit's AST dump byte for byte, every
negative case must be refused, the line-number file must give BuildKit's start and end lines,
and every Unix or all-platform line of the lexer's two tables must give BuildKit's result.
No case is skipped (the ``W`` lines of envVarTest are Windows-only: BuildKit itself runs them
only on Windows, where ``$pwd`` is ``$PWD``).
"""

from pathlib import Path

import pytest

from minidocker.build.parser import DockerfileError, dump, parse
from minidocker.build.shell import ExpansionError, Lexer, go_quote
from minidocker.errors import MinidockerError

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "buildkit-parser"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(),
                                  reason=f"BuildKit's parser corpus is not at {CORPUS}")


def cases(folder: str) -> list[str]:
    return sorted(p.name for p in (CORPUS / folder).iterdir()) if CORPUS.is_dir() else []


# --- the corpus ------------------------------------------------------------------------------

@needs_corpus
@pytest.mark.parametrize("case", cases("testfiles"))
def test_parses_like_buildkit(case):
    folder = CORPUS / "testfiles" / case
    dockerfile = parse((folder / "Dockerfile").read_bytes())
    assert dump(dockerfile) + "\n" == (folder / "result").read_text(encoding="utf-8")


@needs_corpus
def test_the_whole_positive_corpus_is_there():
    assert len(cases("testfiles")) == 33 and len(cases("testfiles-negative")) == 4


@needs_corpus
@pytest.mark.parametrize("case", cases("testfiles-negative"))
def test_refuses_what_buildkit_refuses(case):
    with pytest.raises(DockerfileError) as refused:
        parse((CORPUS / "testfiles-negative" / case / "Dockerfile").read_bytes())
    assert str(refused.value).startswith("Dockerfile:")


@needs_corpus
def test_line_numbers_like_buildkit():
    dockerfile = parse((CORPUS / "testfile-line" / "Dockerfile").read_bytes())
    assert [(n.start_line, n.end_line) for n in dockerfile.nodes] == [(5, 5), (11, 12), (17, 31)]


def env_var_table() -> list[tuple[int, str, str]]:
    """(line, input, expected) for the Unix and all-platform lines of envVarTest."""
    if not CORPUS.is_dir():
        return []
    rows = []
    text = (CORPUS / "shell" / "envVarTest").read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#") or not line.strip():
            continue
        platform, source, expected = (field.strip() for field in line.strip().split("|"))
        if platform in ("A", "U"):
            rows.append((number, source, expected))
    return rows


@needs_corpus
@pytest.mark.parametrize("number,source,expected", env_var_table(),
                         ids=[f"line{row[0]}" for row in env_var_table()])
def test_expands_like_buildkit(number, source, expected):
    env = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}
    if expected == "error":
        with pytest.raises(ExpansionError):
            Lexer().process_word(source, env)
    else:
        assert Lexer().process_word(source, env) == expected


def words_table() -> list[tuple[int, str, dict, list[str]]]:
    """(line, input, environment so far, expected words); ``ENV k=v`` lines add to the env."""
    if not CORPUS.is_dir():
        return []
    rows, env = [], {}
    text = (CORPUS / "shell" / "wordsTest").read_text(encoding="utf-8")
    for number, line in enumerate(text.split("\n"), 1):
        if line.startswith("#") or not line:
            continue
        if line.startswith("ENV "):
            name, _, value = line[3:].lstrip(" ").partition("=")
            env = {**env, name: value}
            continue
        source, expected = line.split("|")
        rows.append((number, source.strip(), env, expected.lstrip(" ").split(",")))
    return rows


@needs_corpus
@pytest.mark.parametrize("number,source,env,expected", words_table(),
                         ids=[f"line{row[0]}" for row in words_table()])
def test_splits_words_like_buildkit(number, source, env, expected):
    try:
        words = Lexer().process_words(source, env)
    except ExpansionError:
        words = ["error"]
    assert words == expected


# --- our own cases: what the reference says, and the errors a student will meet ----------------

def test_unknown_instruction_is_refused_with_a_suggestion():
    from minidocker.build.instructions import instructions

    dockerfile = parse("FROM busybox\n\nRUNN echo hi\n")
    with pytest.raises(DockerfileError, match=r"^Dockerfile:3: unknown instruction: RUNN "
                                              r"\(did you mean RUN\?\)$"):
        instructions(dockerfile)


def test_bad_json_falls_back_to_the_shell_form():
    node = parse('FROM x\nCMD ["echo", "hi"\n').nodes[1]
    assert (node.arguments, node.json_form) == (['["echo", "hi"'], False)
    node = parse("FROM x\nCMD ['echo', 'hi']\n").nodes[1]
    assert node.arguments == ["['echo', 'hi']"] and not node.json_form
    node = parse('FROM x\nCMD ["echo", "hi"]\n').nodes[1]
    assert (node.arguments, node.json_form) == (["echo", "hi"], True)


def test_json_of_something_else_than_strings_is_an_error():
    with pytest.raises(DockerfileError, match="^Dockerfile:2: when using JSON array syntax"):
        parse('FROM x\nENTRYPOINT ["sh", 1]\n')


def test_unterminated_heredoc():
    with pytest.raises(DockerfileError, match=r"^Dockerfile:2: unterminated heredoc: no line "
                                              r"EOF ends it"):
        parse("FROM x\nRUN <<EOF\necho hi\n")


def test_a_directive_after_an_instruction_is_a_comment():
    dockerfile = parse("FROM x\n# escape=`\nRUN a \\\n  b\n")
    assert dockerfile.escape_token == "\\"
    assert dump(dockerfile) == '(from "x")\n(run "a   b")'


def test_a_directive_after_a_comment_is_a_comment():
    assert parse("# hello\n# escape=`\nFROM x\n").escape_token == "\\"


def test_escape_directive_changes_the_continuation_character():
    dockerfile = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo hi\n")
    assert dockerfile.escape_token == "`"
    assert dockerfile.nodes[1].arguments == ["dir c:\\   && echo hi"]


def test_directives_are_checked():
    with pytest.raises(DockerfileError, match="^Dockerfile:2: only one escape parser directive"):
        parse("# escape=`\n# escape=\\\nFROM x\n")
    with pytest.raises(DockerfileError, match="^Dockerfile:1: invalid escape token '!'"):
        parse("# escape=!\nFROM x\n")
    assert parse("# syntax=docker/dockerfile:1\nFROM x\n").nodes[0].start_line == 2


def test_comments_and_empty_lines_inside_a_continuation():
    dockerfile = parse("FROM x\nRUN a \\\n# a comment\n\n    b\n")
    assert dockerfile.nodes[1].arguments == ["a     b"]
    assert (dockerfile.nodes[1].start_line, dockerfile.nodes[1].end_line) == (2, 5)
    assert dockerfile.warnings == ["Dockerfile:4: empty continuation line "
                                   "(Docker will refuse these in a future release)"]


def test_keywords_are_case_insensitive_and_keep_their_spelling():
    node = parse("from busybox As base\n").nodes[0]
    assert (node.instruction, dump(node)) == ("from", '(from "busybox" "As" "base")')


def test_heredocs_on_run_and_copy():
    dockerfile = parse('FROM x\nRUN <<-EOT bash\n\techo "$A"\n\tEOT\n'
                       "COPY <<'ONE' 3<<TWO /dest/\n$kept\nONE\nsecond\nTWO\n")
    run, copy = dockerfile.nodes[1:]
    [script] = run.heredocs
    assert (script.name, script.chomp, script.expand, script.content) == ("EOT", True, True,
                                                                            '\techo "$A"\n')
    one, two = copy.heredocs
    assert (one.name, one.expand, one.content) == ("ONE", False, "$kept\n")
    assert (two.name, two.fd, two.expand, two.content) == ("TWO", 3, True, "second\n")
    assert (run.end_line, copy.start_line, copy.end_line) == (4, 5, 9)


def test_heredocs_only_in_the_shell_form_of_run_copy_add():
    dockerfile = parse('FROM x\nCMD <<EOF\nRUN ["cat", "<<EOF"]\n')
    assert [n.heredocs for n in dockerfile.nodes] == [[], [], []]


def test_flags_end_at_the_first_word_without_dashes_or_at_a_double_dash():
    node = parse('FROM x\nCOPY --from=build --chown="me:me" -- --odd /dest\n').nodes[1]
    assert (node.flags, node.arguments) == (["--from=build", "--chown=me:me"], ["--odd", "/dest"])


def test_onbuild_nests_its_trigger():
    node = parse("FROM x\nONBUILD COPY --from=a /b /c\n").nodes[1]
    assert dump(node) == '(onbuild (copy ["--from=a"] "/b" "/c"))'


def test_env_both_forms_in_the_tree():
    dockerfile = parse('FROM x\nENV a=1 b="2 3"\nENV c four five\n')
    assert dump(dockerfile).splitlines()[1:] == ['(env "a" "1" "=" "b" "\\"2 3\\"" "=")',
                                                 '(env "c" "four five" "")']


def test_an_empty_dockerfile_says_what_it_needs():
    with pytest.raises(DockerfileError, match="file with no instructions"):
        parse("\n# only a comment\n")


def test_go_quote_matches_strconv_quote():
    assert go_quote('a"b\\c\n\t\x00\x7f é\u00a0\U0001f600') == \
        '"a\\"b\\\\c\\n\\t\\x00\\x7f é\\u00a0\U0001f600"'


def test_errors_are_minidocker_errors():
    assert issubclass(DockerfileError, MinidockerError)
    assert issubclass(ExpansionError, MinidockerError)
