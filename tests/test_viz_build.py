"""The build picture of notebook 10 as data: the classic output read back into steps, which
step images added a layer, and the graph (step -> container -> image -> layer, cache hits)."""

from types import SimpleNamespace

from minidocker.viz.build import BuildStep, StepLayer, build_graph, parse_build, step_layers

FIRST = """\
Sending build context to Docker daemon  3.072kB
Step 1/3 : FROM busybox
 ---> aaaaaaaaaaaa
Step 2/3 : RUN echo hi > /hi
 ---> Running in cccccccccccc
hi
Removing intermediate container cccccccccccc
 ---> bbbbbbbbbbbb
Step 3/3 : CMD ["cat", "/hi"]
 ---> dddddddddddd
Successfully built dddddddddddd
"""
SECOND = FIRST.replace(" ---> Running in cccccccccccc\nhi\nRemoving intermediate container "
                       "cccccccccccc\n", " ---> Using cache\n").replace(
    "Step 3/3 : CMD [\"cat\", \"/hi\"]\n", "Step 3/3 : CMD [\"cat\", \"/hi\"]\n ---> Using cache\n")


def image(short_id: str, empty: bool, diff_ids: list[str]):
    return SimpleNamespace(short_id=short_id, diff_ids=diff_ids,
                           config={"history": [{"empty_layer": empty}]},
                           manifest={"layers": [{"size": 1000 * len(d)} for d in diff_ids]})


IMAGES = [image("aaaaaaaaaaaa", False, ["sha256:" + "1" * 64]),
          image("bbbbbbbbbbbb", False, ["sha256:" + "1" * 64, "sha256:" + "2" * 64]),
          image("dddddddddddd", True, ["sha256:" + "1" * 64, "sha256:" + "2" * 64])]


def test_the_output_becomes_steps():
    assert parse_build(FIRST) == [
        BuildStep(1, "FROM busybox", "aaaaaaaaaaaa"),
        BuildStep(2, "RUN echo hi > /hi", "bbbbbbbbbbbb", "cccccccccccc"),
        BuildStep(3, 'CMD ["cat", "/hi"]', "dddddddddddd")]
    assert [s.cached for s in parse_build(SECOND)] == [False, True, True]
    assert not any(s.container for s in parse_build(SECOND))


def test_a_run_adds_a_layer_and_a_cmd_only_config():
    layers = step_layers(parse_build(FIRST), IMAGES)
    assert layers["bbbbbbbbbbbb"] == StepLayer("222222222222", 71000)
    assert layers["dddddddddddd"] == StepLayer()


def test_the_graph_goes_step_container_image_layer():
    steps = parse_build(FIRST)
    graph = build_graph(steps, step_layers(steps, IMAGES))
    assert ("step:2", "container:cccccccccccc", "runs in") in graph.edges
    assert ("container:cccccccccccc", "image:bbbbbbbbbbbb", "commit") in graph.edges
    assert ("image:bbbbbbbbbbbb", "layer:222222222222", "adds") in graph.edges
    assert ("image:bbbbbbbbbbbb", "image:dddddddddddd", "parent of") in graph.edges
    assert not any(e[0] == "image:dddddddddddd" and e[2] == "adds" for e in graph.edges)
    assert not any(n.shared for n in graph.nodes)


def test_cache_hits_have_no_container_and_are_marked():
    steps = parse_build(SECOND)
    graph = build_graph(steps, step_layers(steps, IMAGES))
    assert not [n for n in graph.nodes if n.kind == "container"]
    assert ("step:2", "image:bbbbbbbbbbbb", "Using cache") in graph.edges
    assert graph.node("image:bbbbbbbbbbbb").shared and not graph.node("image:aaaaaaaaaaaa").shared


def test_the_picture_has_one_row_per_step():
    from minidocker.viz.build import rows

    steps = parse_build(FIRST)
    assert rows(build_graph(steps, step_layers(steps, IMAGES))) == [
        ["step:1", "", "image:aaaaaaaaaaaa", "layer:111111111111"],
        ["step:2", "container:cccccccccccc", "image:bbbbbbbbbbbb", "layer:222222222222"],
        ["step:3", "", "image:dddddddddddd", ""]]
