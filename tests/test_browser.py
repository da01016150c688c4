"""JupyterLab as a student sees it: the kit's own JupyterLab, opened by a real (headless) browser.

nbval runs the notebooks' kernels; this test runs the page. It starts JupyterLab the way
``./kit lab`` does (``./kit lab-serve``: the kit's lab-prepare, then the same ``jupyter lab``
command line, without the set-up, which the test session has done), with a token, on loopback
inside the test session's private network namespace. Then Debian's ``chromium``, driven by
Playwright, opens notebooks 00, 03 and 08, runs every cell with JupyterLab's own "Run All Cells"
command, and checks:

- the stored pictures show on opening (the kit trusted the notebooks);
- every code cell ran, and no cell shows an error (in the page, and in the notebook JupyterLab
  saves at the end);
- each graphviz picture is in the page as an SVG (JupyterLab shows it as an ``<img>`` of
  ``image/svg+xml``), with the nodes it should have;
- each ipywidgets widget renders and reacts: notebook 03's memory sliders and button run the
  hog (a bigger limit turns an OOM kill into a clean exit), notebook 08's tracer answers a new
  destination with a new trace.

The notebooks are copies (in a temporary directory laid out like the checkout), so the files in
``notebooks/`` never change. A screenshot of each notebook, and JupyterLab's log, go to
``$MINIDOCKER_ARTIFACTS`` (default ``/tmp/minidocker-artifacts``) under ``browser/``.

Needs: ``chromium`` (Debian) and ``playwright`` (pip, the ``dev`` extra); skipped without them.
"""

import base64
import html
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import TIMEOUT_SCALE

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("MINIDOCKER_ARTIFACTS", "/tmp/minidocker-artifacts")) / "browser"
# Seconds, stretched by MINIDOCKER_TEST_TIMEOUT_SCALE: under an emulated VM's CPUs JupyterLab's
# page took over 90 s to show its first cell.
RUN_TIMEOUT = 420 * TIMEOUT_SCALE  # one notebook's Run All (08 makes a dozen namespaces)
PAGE_TIMEOUT = 90 * TIMEOUT_SCALE  # the page, a widget's output
STEP_TIMEOUT = 30 * TIMEOUT_SCALE  # a queued cell, the kernel idle again

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extra)")
if not os.path.exists(CHROMIUM):
    pytest.skip("no chromium: apt-get install chromium (./kit test installs it)",
                allow_module_level=True)

# For each notebook, in page order: each graphviz picture's title and labels it must show.
PICTURES = {
    "00-tour": [],
    "03-cgroups": [
        ("the cgroups of a container and of this notebook", ["this notebook", "/"]),
    ],
    "08-networking": [
        ("step 1: box1 has only lo", ["host", "outside", "box1", "lo", "out-host"]),
        ("step 2: a veth pair between box1 and the host", ["box1", "veth"]),
        ("step 3: two veth pairs on one subnet", ["box1", "box2"]),
        ("step 4: a bridge, with the gateway address", ["br0", "box1", "box2"]),
        ("step 5: a default route and ip_forward; no way back", ["host (ip_forward = 1)"]),
        ("step 6: MASQUERADE", ["box1", "box2"]),
        ("minidocker run --network bridge -p 8080:80", ["web", "minidocker0"]),
        ("two user networks, and the default bridge",
         ["web", "db", "shopper", "spy", "minidocker0"]),
    ],
}
WIDGETS = {"00-tour": 0, "03-cgroups": 1, "08-networking": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """``./kit lab-serve`` on a copy of the checkout's notebooks; yields (base URL, token,
    the copy's directory). Stopped (its whole process group) at the end."""
    site = tmp_path_factory.mktemp("lab-site")
    shutil.copy2(REPO / "kit", site / "kit")
    (site / "notebooks").mkdir()
    for name in PICTURES:
        shutil.copy2(REPO / "notebooks" / f"{name}.ipynb", site / "notebooks")
    for shared in ("labs", "minidocker", "diagrams", "docs", "README.md"):
        (site / shared).symlink_to(REPO / shared)
    # The kit's venv, as far as it calls it: a stand-in, so that lab-prepare writes its
    # settings here and not into the real venv.
    venv = site / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(sys.executable)
    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.exists():
        pytest.skip("JupyterLab is not installed (./kit setup installs it)")
    (venv / "jupyter").symlink_to(jupyter)
    home = site / "home"
    settings = home / "lab-settings"
    # Every cell stays in the page (JupyterLab 4 otherwise skips the off-screen ones), and the
    # news prompt stays away (the kit sets that in the real venv's overrides.json).
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings") \
        .write_text(json.dumps({"windowingMode": "none"}))
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings") \
        .write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    token = secrets.token_hex(16)
    port = free_port()
    env = {**os.environ, "HOME": str(home), "MINIDOCKER_VENV": str(site / "venv"),
           "MINIDOCKER_LAB_PORT": str(port), "MINIDOCKER_LAB_IP": "127.0.0.1",
           "JUPYTER_TOKEN": token, "JUPYTER_CONFIG_DIR": str(home / "jupyter-config"),
           "JUPYTER_DATA_DIR": str(home / "jupyter-data"),
           "JUPYTER_RUNTIME_DIR": str(home / "jupyter-runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces"),
           "IPYTHONDIR": str(home / "ipython"),
           "PYTHONPATH": str(REPO)}  # the kernels import this checkout's minidocker
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / "jupyterlab.log", "w")
    server = subprocess.Popen(["bash", str(site / "kit"), "lab-serve"], cwd=site, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120 * TIMEOUT_SCALE
        while not answers(f"{base}/api/status?token={token}"):
            assert server.poll() is None, (ARTIFACTS / "jupyterlab.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "JupyterLab did not answer within 2 minutes"
            time.sleep(0.5)
        yield base, token, site
    finally:
        stop_kernels(base, token)
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def stop_kernels(base: str, token: str) -> None:
    """Shut every kernel down through JupyterLab's API (each runs in a session of its own)."""
    headers = {"Authorization": f"token {token}"}
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{base}/api/kernels",
                                                           headers=headers), timeout=10) as r:
            kernels = json.load(r)
        for kernel in kernels:
            urllib.request.urlopen(urllib.request.Request(
                f"{base}/api/kernels/{kernel['id']}", method="DELETE", headers=headers),
                timeout=30).close()
    except OSError:
        pass  # the server is gone already; its kernels went with its SIGTERM handler


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield chromium
        finally:
            chromium.close()


# --- what the page shows -------------------------------------------------------------------------

def svg_pictures(page) -> list[str]:
    """Every SVG output in the page: an inline ``<svg>`` or an ``<img>`` of image/svg+xml."""
    sources = page.eval_on_selector_all(
        ".jp-OutputArea-output img, .jp-OutputArea-output svg",
        "els => els.map(e => e.tagName.toLowerCase() === 'img' ? e.src : e.outerHTML)")
    pictures = []
    for source in sources:
        if source.startswith("data:image/svg+xml"):
            header, _, data = source.partition(",")
            pictures.append(base64.b64decode(data).decode() if header.endswith(";base64")
                            else urllib.parse.unquote(data))
        elif source.lstrip().startswith("<svg"):
            pictures.append(source)
    return [p for p in pictures if "graphviz" in p or 'class="graph"' in p]


def svg_texts(svg: str) -> list[str]:
    """The words of a graphviz SVG, one entry per ``<text>``, whitespace-normalised."""
    root = ET.fromstring(svg[svg.index("<svg"):])
    return [" ".join(html.unescape("".join(t.itertext())).split())
            for t in root.iter("{http://www.w3.org/2000/svg}text")]


def errors_in_page(page) -> list[str]:
    """The text of every output that is a Python error (a traceback), or a kernel's crash."""
    stderr = page.eval_on_selector_all(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
        "els => els.map(e => e.innerText)")
    return [text for text in stderr if "Traceback (most recent call last)" in text
            or re.search(r"^\w*(Error|Exception)\b.*", text, re.M)]


def prompts(page) -> list[str]:
    return page.eval_on_selector_all(
        ".jp-CodeCell .jp-InputArea-prompt", "els => els.map(e => e.innerText.trim())")


def run_all(page) -> None:
    """JupyterLab's Run menu → Run All Cells, then wait until the kernel has run them all."""
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator(".lm-Menu-item:visible", has_text="Run All Cells").first.click()
    page.wait_for_function(  # queued: at least one [*]
        "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]"
        ".some(e => e.innerText.includes('*'))", timeout=STEP_TIMEOUT * 1000)
    deadline = time.monotonic() + RUN_TIMEOUT
    while any("*" in p for p in prompts(page)):
        assert time.monotonic() < deadline, f"Run All did not finish: {prompts(page)}"
        time.sleep(1)
    page.wait_for_function(KERNEL_IDLE, timeout=STEP_TIMEOUT * 1000)


KERNEL_IDLE = ("() => (document.querySelector('#jp-main-statusbar') || {innerText: ''})"
               ".innerText.includes('| Idle')")


def open_notebook(page, base: str, token: str, name: str) -> None:
    page.goto(f"{base}/lab/tree/notebooks/{name}.ipynb?reset&token={token}")  # this one only
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=PAGE_TIMEOUT * 1000)
    page.wait_for_function(KERNEL_IDLE, timeout=PAGE_TIMEOUT * 1000)  # "Python 3 | Idle"


def save(page, site: Path, name: str) -> dict:
    """Ctrl+S (on the copy), then the notebook as JupyterLab wrote it."""
    path = site / "notebooks" / f"{name}.ipynb"
    before = path.stat().st_mtime_ns
    page.locator(".jp-NotebookPanel:visible .jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while path.stat().st_mtime_ns == before:
        assert time.monotonic() < deadline, "JupyterLab did not save the notebook"
        time.sleep(0.3)
    time.sleep(0.5)
    return json.loads(path.read_text())


# --- the widgets ---------------------------------------------------------------------------------

def set_slider(widget, description: str, value: int) -> None:
    """Type a value into an ipywidgets slider's readout, as a student can."""
    slider = widget.locator(".widget-slider", has_text=description)
    readout = slider.locator(".widget-readout")
    readout.click()
    readout.press("Control+a")
    readout.type(str(value))
    readout.press("Enter")


def output_text(widget) -> str:
    return widget.locator(".widget-output").inner_text()


def wait_for_output(widget, pattern: str, timeout: float = PAGE_TIMEOUT) -> str:
    deadline = time.monotonic() + timeout
    while not re.search(pattern, text := output_text(widget)):
        assert time.monotonic() < deadline, f"the widget's output never showed {pattern!r}: {text!r}"
        time.sleep(0.5)
    return text


def wait_for_count(locator, expected: int, timeout: float = 2 * STEP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while (count := locator.count()) != expected:
        assert time.monotonic() < deadline, f"{count} widget views rendered, not {expected}"
        time.sleep(0.5)


def memory_widget_reacts(page) -> None:
    widget = page.locator(".widget-vbox", has=page.locator("button", has_text="run the hog"))
    widget.first.scroll_into_view_if_needed()
    widget = widget.first
    assert output_text(widget).strip() == ""
    set_slider(widget, "-m (MiB)", 32)
    set_slider(widget, "hog (MiB)", 96)
    widget.locator("button", has_text="run the hog").click()
    killed = wait_for_output(widget, r"OOM-killed: \w+")
    assert "OOM-killed: True" in killed, killed
    set_slider(widget, "-m (MiB)", 128)
    set_slider(widget, "hog (MiB)", 16)
    widget.locator("button", has_text="run the hog").click()
    wait_for_output(widget, r"OOM-killed: False")
    assert "exit status 0" in output_text(widget)


def tracer_widget_reacts(page) -> None:
    widget = page.locator(".widget-vbox", has=page.get_by_label("to", exact=True)).first
    widget.scroll_into_view_if_needed()
    first = wait_for_output(widget, r"\S")
    target = widget.get_by_label("to", exact=True)
    options = target.locator("option").all_inner_texts()
    assert len(options) > 1, options
    target.select_option(label=options[2] if len(options) > 2 else options[1])
    deadline = time.monotonic() + 60
    while (text := output_text(widget)) == first or not text.strip():  # cleared, then redrawn
        assert time.monotonic() < deadline, "the tracer did not answer the new destination"
        time.sleep(0.3)


REACTIONS = {"03-cgroups": memory_widget_reacts, "08-networking": tracer_widget_reacts}


# --- the test ------------------------------------------------------------------------------------

@pytest.mark.timeout(RUN_TIMEOUT + 2 * PAGE_TIMEOUT)
@pytest.mark.parametrize("name", list(PICTURES))
def test_a_notebook_runs_in_jupyterlab_in_a_browser(name, jupyterlab, browser):
    base, token, site = jupyterlab
    shipped = (REPO / "notebooks" / f"{name}.ipynb").read_bytes()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(PAGE_TIMEOUT * 1000)  # goto, clicks: 90 s, stretched by the scale
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        open_notebook(page, base, token, name)
        # trusted by the kit's lab-prepare: the stored pictures show before anything runs
        assert len(svg_pictures(page)) == len(PICTURES[name])
        run_all(page)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

        assert errors_in_page(page) == []
        assert all(re.fullmatch(r"\[\d+\]:", p) for p in prompts(page)), prompts(page)

        pictures = [svg_texts(svg) for svg in svg_pictures(page)]
        titles = [texts[0] if texts else "" for texts in pictures]
        assert titles == [title for title, _ in PICTURES[name]], titles
        for (title, labels), texts in zip(PICTURES[name], pictures, strict=True):
            missing = [label for label in labels if label not in texts
                       and not any(t.startswith(label + " ") for t in texts)]
            assert not missing, f"{title!r} lacks {missing}"

        views = page.locator(".jp-OutputArea-output .widget-vbox:not(.widget-vbox .widget-vbox)")
        wait_for_count(views, WIDGETS[name])  # widget views render after the kernel is idle
        if name in REACTIONS:
            REACTIONS[name](page)
            page.screenshot(path=str(ARTIFACTS / f"{name}-widget.png"), full_page=True)

        saved = save(page, site, name)
        code = [c for c in saved["cells"] if c["cell_type"] == "code"]
        assert all(c["execution_count"] for c in code)
        errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
        assert errors == [], [f"{o['ename']}: {o['evalue']}" for o in errors]
        assert not [e for e in page_errors if "widget" in e.lower()], page_errors
    finally:
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}-last.png"), full_page=True)
        except Exception:  # noqa: BLE001  (the page may be gone; the screenshot is a bonus)
            pass
        context.close()
    assert (REPO / "notebooks" / f"{name}.ipynb").read_bytes() == shipped
