"""The kit's JupyterLab set-up (``./kit lab-prepare``, run by ``./kit lab`` before it starts
JupyterLab): the shipped notebooks are trusted, so their stored pictures show on first open; the
news prompt is off; wide pictures fit the column. Checked without starting JupyterLab, against a
stand-in venv and a private Jupyter data and config dir (nothing of this machine's is touched)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

KIT_DIR = Path(__file__).resolve().parent.parent
KIT = KIT_DIR / "kit"
NEWS = "@jupyterlab/apputils-extension:notification"

nbformat = pytest.importorskip("nbformat")
from nbformat.sign import NotebookNotary  # noqa: E402


def real_jupyter() -> str:
    beside = Path(sys.executable).parent / "jupyter"
    found = str(beside) if beside.exists() else shutil.which("jupyter")
    if not found:
        pytest.skip("JupyterLab is not installed (./kit setup installs it)")
    return found


@pytest.fixture
def lab_env(tmp_path):
    """A venv that is only what the kit calls (python, jupyter), and a home of its own."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "bin" / "jupyter").symlink_to(real_jupyter())
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "MINIDOCKER_VENV": str(venv), "HOME": str(home),
           "JUPYTER_DATA_DIR": str(tmp_path / "data"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    return venv, tmp_path, env


def lab_prepare(env) -> subprocess.CompletedProcess:
    result = subprocess.run(["bash", str(KIT), "lab-prepare"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def notebooks() -> list[Path]:
    found = sorted((KIT_DIR / "notebooks").glob("*.ipynb"))
    assert found, "no notebooks shipped"
    return found


def trusted(data_dir: Path, path: Path) -> bool:
    notary = NotebookNotary(data_dir=str(data_dir))
    return notary.check_signature(nbformat.read(path, as_version=4))


def test_lab_prepare_turns_off_news_and_trusts_every_notebook(lab_env):
    venv, tmp, env = lab_env
    settings = venv / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True)
    # an override of someone else's is kept
    (settings / "overrides.json").write_text(json.dumps(
        {"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}))
    (tmp / "data").mkdir()
    assert not any(trusted(tmp / "data", nb) for nb in notebooks())

    result = lab_prepare(env)
    assert result.stdout == "" and result.stderr == ""  # quiet: ./kit lab says one line for it

    overrides = json.loads((settings / "overrides.json").read_text())
    assert overrides[NEWS]["fetchNews"] == "false"
    assert overrides["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    untrusted = [nb.name for nb in notebooks() if not trusted(tmp / "data", nb)]
    assert untrusted == []
    css = (tmp / "config" / "custom" / "custom.css").read_text()
    assert re.search(r"\.jp-RenderedSVG[^{]* img \{[^}]*max-width: 100%", css)


def test_lab_prepare_is_idempotent(lab_env):
    venv, tmp, env = lab_env
    lab_prepare(env)
    settings = venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    css = tmp / "config" / "custom" / "custom.css"
    first = settings.read_text(), css.read_text()
    lab_prepare(env)
    assert (settings.read_text(), css.read_text()) == first
    assert css.read_text().count("minidocker: wide pictures") == 1
    assert all(trusted(tmp / "data", nb) for nb in notebooks())


def test_lab_prepares_then_starts_jupyterlab_with_the_custom_css():
    """``./kit lab`` runs the set-up above before JupyterLab, which loads the custom CSS
    (``lab`` is ``setup`` then ``lab_serve``, which ``./kit lab-serve`` runs alone)."""
    text = KIT.read_text()

    def body(name: str) -> str:
        found = text[text.index(f"\n{name}() {{"):]
        return found[:found.index("\n}\n")]

    lab = body("lab")
    assert lab.index("setup") < lab.index("lab_serve")
    serve = body("lab_serve")
    assert serve.index("lab_prepare") < serve.index('jupyter" lab')
    assert "--LabApp.custom_css=True" in serve


def test_lab_prepare_without_a_venv_says_what_to_do(tmp_path):
    env = {**os.environ, "MINIDOCKER_VENV": str(tmp_path / "none")}
    result = subprocess.run(["bash", str(KIT), "lab-prepare"], env=env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode != 0
    assert "run ./kit setup first" in result.stderr


def test_kit_daemon_starts_answers_and_stops(tmp_path):
    """``./kit daemon-ctl`` (``./kit daemon`` without the set-up), on a socket of the test's."""
    env = {**os.environ, "MINIDOCKER_VENV": str(Path(sys.executable).parent.parent),
           "PYTHONPATH": str(KIT_DIR), "MINIDOCKER_DAEMON_HOST": f"unix://{tmp_path}/md.sock",
           "MINIDOCKER_DAEMON_PIDFILE": str(tmp_path / "pid"),
           "MINIDOCKER_DAEMON_LOG": str(tmp_path / "log")}

    def kit(*args):
        return subprocess.run([str(KIT), "daemon-ctl", *args], capture_output=True, text=True,
                              env=env, timeout=60)

    started = kit("start")
    try:
        assert started.returncode == 0, started.stderr
        assert "export DOCKER_HOST=unix://" in started.stdout
        assert "already runs" in kit("start").stdout
        import httpx

        transport = httpx.HTTPTransport(uds=str(tmp_path / "md.sock"))
        with httpx.Client(transport=transport, base_url="http://docker") as client:
            assert client.get("/_ping").text == "OK"
    finally:
        stopped = kit("stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert kit("status").returncode == 3
    assert not (tmp_path / "md.sock").exists() and not (tmp_path / "pid").exists()
