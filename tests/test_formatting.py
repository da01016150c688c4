"""``--format`` as Docker's Go templates: ``ps``, ``images``, ``inspect``, ``network ls`` and
``volume ls`` with Docker's field names, ``{{json .}}``, ``json`` and the ``table`` prefix (a
header made from the field names, aligned columns); a broken template fails, never echoes."""

import json
import re

import pytest

from minidocker.cli.templates import TemplateError, parse


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def columns(line: str) -> list[str]:
    return re.split(r"\s{3,}", line.strip())


def test_ps_format_fields_json_and_table(md, containers):
    name = containers.run_d("busybox", "sleep", "60")
    full_id = ok(md("inspect", "-f", "{{.Id}}", name)).strip()
    lines = ok(md("ps", "--format", "{{.Names}} {{.State}} {{.Command}}|{{.Image}}")).splitlines()
    (mine,) = [line for line in lines if line.startswith(f"{name} ")]
    assert mine.startswith(f'{name} running "sleep 60"|busybox')

    rows = [json.loads(line) for line in ok(md("ps", "--format", "{{json .}}")).splitlines()]
    (row,) = [r for r in rows if r["Names"] == name]
    assert {"ID", "Image", "Command", "CreatedAt", "RunningFor", "Ports", "Status", "State",
            "Names", "Labels", "Mounts", "Networks"} <= set(row)
    assert row["ID"] == full_id[:12] and row["Status"].startswith("Up ")
    assert row["CreatedAt"].endswith("+0000 UTC") and row["RunningFor"].endswith(" ago")
    def timeless(row):  # two ps calls may straddle a second: "Up 1 second" vs "Up 2 seconds"
        return {k: v for k, v in row.items() if k not in ("Status", "RunningFor")}

    again = [json.loads(line) for line in ok(md("ps", "--format", "json")).splitlines()]
    assert [timeless(r) for r in again] == [timeless(r) for r in rows]

    table = ok(md("ps", "--format", r"table {{.ID}}\t{{.Names}}\t{{.Status}}")).splitlines()
    assert columns(table[0]) == ["CONTAINER ID", "NAMES", "STATUS"]
    (mine,) = [line for line in table if name in line]
    assert columns(mine)[:2] == [full_id[:12], name]
    assert mine.index(name) == table[0].index("NAMES")  # the columns line up

    assert f"{full_id} {name}" in ok(md("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}"))


def test_ps_default_table_is_dockers(md, containers):
    name = containers.run_d("busybox", "sleep", "60")
    header, *rows = ok(md("ps")).splitlines()
    assert columns(header) == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS",
                               "NAMES"]
    (mine,) = [row for row in rows if row.endswith(name)]
    assert '"sleep 60"' in mine
    assert re.search(r"(\d+ seconds?|Less than a second) ago", mine), mine
    assert columns(ok(md("ps", "--format", "table")).splitlines()[0]) == columns(header)


def test_images_format(md):
    image_id = ok(md("inspect", "-f", "{{.Id}}", "busybox")).strip().split(":")[1]
    lines = ok(md("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Digest}}"))
    assert f"busybox:latest {image_id[:12]} <none>" in lines.splitlines()
    table = ok(md("images", "--format", r"table {{.Repository}}\t{{.Tag}}\t{{.Size}}"))
    assert columns(table.splitlines()[0]) == ["REPOSITORY", "TAG", "SIZE"]
    row = next(json.loads(line) for line in ok(md("images", "--format", "{{json .}}")).splitlines()
               if json.loads(line)["Repository"] == "busybox")
    assert set(row) >= {"ID", "Repository", "Tag", "Digest", "CreatedSince", "CreatedAt", "Size"}
    assert columns(ok(md("images")).splitlines()[0]) == ["REPOSITORY", "TAG", "IMAGE ID",
                                                         "CREATED", "SIZE"]


def test_inspect_format(md, containers):
    name = containers.run_d("busybox", "sleep", "60")
    (whole,) = json.loads(ok(md("inspect", name)))
    assert json.loads(ok(md("inspect", "--format", "{{json .}}", name))) == whole
    assert ok(md("inspect", "-f", "{{json .Config.Cmd}}", name)) == '["sleep","60"]\n'
    assert ok(md("inspect", "-f", "{{.State.Status | upper}} {{len .Config.Cmd}}", name)) == \
        "RUNNING 2\n"
    assert ok(md("inspect", "-f", "{{if .State.Running}}up{{else}}down{{end}}", name)) == "up\n"
    image = ok(md("inspect", "-f", "{{index .RepoTags 0}}", "busybox"))
    assert image == "busybox:latest\n"


def test_network_ls_format(md):
    lines = ok(md("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")).splitlines()
    assert {"bridge bridge local", "host host local", "none null local"} <= set(lines)
    table = ok(md("network", "ls", "--format", r"table {{.ID}}\t{{.Name}}")).splitlines()
    assert columns(table[0]) == ["NETWORK ID", "NAME"]
    assert columns(ok(md("network", "ls")).splitlines()[0]) == ["NETWORK ID", "NAME", "DRIVER",
                                                                "SCOPE"]


def test_volume_ls_format(md):
    ok(md("volume", "create", "fmt-data"))
    try:
        lines = ok(md("volume", "ls", "--format",
                      "{{.Name}} {{.Driver}} {{.Scope}} {{.Mountpoint}}")).splitlines()
        (mine,) = [line for line in lines if line.startswith("fmt-data ")]
        assert mine.startswith("fmt-data local local /") and mine.endswith("/fmt-data/_data")
        table = ok(md("volume", "ls", "--format", r"table {{.Name}}\t{{.Driver}}")).splitlines()
        assert columns(table[0]) == ["VOLUME NAME", "DRIVER"]
        assert columns(ok(md("volume", "ls")).splitlines()[0]) == ["DRIVER", "VOLUME NAME"]
    finally:
        md("volume", "rm", "fmt-data")


@pytest.mark.parametrize(("args", "code", "words"), [
    (("inspect", "-f", "{{", "busybox"), 64, "unclosed action"),  # as docker: EX_USAGE
    (("inspect", "-f", "{{nosuch .Id}}", "busybox"), 64, 'function "nosuch" not defined'),
    (("inspect", "-f", "{{range .RepoTags}}", "busybox"), 64, "without {{end}}"),
    (("inspect", "-f", "{{.Nope}}", "busybox"), 1, "can't evaluate field Nope"),
    (("ps", "-a", "--format", "{{"), 1, "unclosed action"),
    (("ps", "--format", r"table {{.Nope}}"), 1, "can't evaluate field Nope"),
    (("images", "--format", "{{.Nope}}"), 1, "can't evaluate field Nope"),
    (("network", "ls", "--format", "{{upper}}"), 1, "error calling upper"),
    (("volume", "ls", "--format", "{{.Name"), 1, "unclosed action"),
])
def test_a_broken_template_fails_clearly(md, args, code, words):
    result = md(*args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("minidocker: ") and "template" in line and words in line


@pytest.mark.parametrize(("template", "value"), [
    ("{{.A.B}}", "1"),
    ("{{index .M \"k\"}}", "v"),
    ("{{(index .L 1).B}}", "3"),
    ("{{range .L}}{{.B}},{{end}}", "2,3,"),
    ("{{range .Empty}}x{{else}}none{{end}}", "none"),
    ("{{join .S \", \"}}", "a, b"),
    ("{{printf \"%s=%d\" .M.k 5}}", "v=5"),
    ("{{- .M.k }} and {{ .M.k -}} !", "v and v!"),
    ("{{.T}} {{.F}} {{.N}} {{.M}} {{.S}}", "true false <no value> map[k:v] [a b]"),
    ("{{json .L}}", '[{"B":2},{"B":3}]'),
])
def test_go_template_forms(template, value):
    obj = {"A": {"B": 1}, "M": {"k": "v"}, "L": [{"B": 2}, {"B": 3}], "Empty": [],
           "S": ["a", "b"], "T": True, "F": False, "N": None}
    assert parse(template).execute(obj) == value


def test_parse_errors_come_before_any_output():
    for broken in ["{{", "{{end}}", "{{if .A}}", "{{.A | nosuch}}", "{{(index .A}}", "{{$x}}"]:
        with pytest.raises(TemplateError):
            parse(broken)


@pytest.mark.parametrize("seconds, said", [
    (0.4, "Less than a second"), (1.5, "1 second"), (59, "59 seconds"), (60, "About a minute"),
    (119, "About a minute"), (120, "2 minutes"), (3599, "59 minutes"), (5399, "About an hour"),
    (5400, "2 hours"), (47 * 3600, "47 hours"), (48 * 3600, "2 days"), (14 * 86400, "2 weeks"),
    (60 * 86400, "2 months"), (3 * 365 * 86400, "3 years"),
])
def test_durations_are_said_as_docker_says_them(seconds, said):
    from minidocker.humanize import duration
    assert duration(seconds) == said
