"""A non-editable install into a fresh virtual environment works on its own.

The project is built into a wheel and installed with ``--no-deps`` into a new venv; the
dependencies are borrowed from the test environment's site-packages through a plain path
line (so no editable finder of this checkout leaks in), and every check runs from a folder
outside the repository.
"""

import os
import re
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh")
    wheels = root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(REPO)], check=True, cwd=root)
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    wheel = next(wheels.glob("skillmix-*.whl"))
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True, cwd=root)
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # Dependencies from this environment (every site-packages folder on its path, in order), after the
    # fresh venv's own site-packages.
    borrowed = [p for p in sys.path if p.endswith("site-packages")] or [sysconfig.get_paths()["purelib"]]
    Path(site, "zz_borrowed_deps.pth").write_text("\n".join(borrowed) + "\n")
    return py, Path(site), root


def test_building_the_package_prints_no_setuptools_warning(tmp_path):
    """The packaging is in the form current setuptools wants: no deprecation or ignored-package notices."""
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
                          "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    log = out.stdout + out.stderr
    bad = [line.strip() for line in log.splitlines()
           if re.search(r"Warning:|would be ignored|is deprecated|deprecated calls", line)
           and "Location 'file:" not in line]  # pip's own notes on this machine's index config
    assert not bad, "\n".join(bad)


def run(py, code, cwd, **env):
    return subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": "", **env})


def test_wheel_installs_the_packages_and_data(fresh_venv):
    py, site, root = fresh_venv
    code = ("import skillmix_tasks, skillmix.grading, skillmix.harness.tasks.utils, skillmix.training, skillmix.leaderboard; "
            "from skillmix_tasks import default_catalog, sample_items; "
            "c = default_catalog(); print(skillmix_tasks.__file__); print(len(c.skills), len(c.topics)); "
            "print(sample_items('heldout', 3, 2)[1].id)")
    out = run(py, code, root)
    assert out.returncode == 0, out.stderr
    path, counts, item_id = out.stdout.split("\n")[:3]
    assert path.startswith(str(site)), "imported from the checkout instead of the install"
    assert counts == "101 100" and item_id == "heldout-k3-001"
    # Nothing generic lands at the top level of site-packages.
    for generic in ("grading", "training", "leaderboard", "pipeline", "tests"):
        assert not (site / generic).exists(), generic
    assert (site / "skillmix_lmeval.pth").read_text().strip() == "import skillmix.harness._lmeval_hook"


def test_pipeline_finds_its_bundled_configs_outside_the_checkout(fresh_venv):
    py, site, root = fresh_venv
    out = subprocess.run([str(py), "-m", "skillmix.pipeline", "--config", "paper", "--dry-run",
                          "stages=[train,eval]", "eval.k=[3]"], capture_output=True, text=True, cwd=root,
                         env={**os.environ, "PYTHONPATH": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    assert str(site / "skillmix" / "training" / "configs" / "paper.yaml") in out.stdout  # the bundled trainer config
    # 8 models x 2 tasks x 100 items x 3 generations x 3 gradings, each text's 3 in one request (openai's n).
    assert '"judge_replies": 14400' in out.stdout and '"judge_calls": 4800' in out.stdout


def test_bare_lm_eval_finds_the_tasks_in_the_fresh_install(fresh_venv):
    py, site, root = fresh_venv
    listing = subprocess.run([str(py), "-m", "lm_eval", "ls", "tasks"], capture_output=True, text=True, cwd=root,
                             env={**os.environ, "PYTHONPATH": ""})
    assert listing.returncode == 0, listing.stderr[-2000:]
    for name in ("skillmix_heldout_k3", "skillmix_train_k1", "skillmix_all_k6", "skillmix_heldout"):
        assert name in listing.stdout
    code = ("from lm_eval.tasks import TaskManager; import sys; tm = TaskManager(include_path=sys.argv[1] or None, include_defaults=False); "
            "e = tm._index.get('skillmix_heldout_k3'); print(e is not None, e.yaml_path if e else '-')")
    task_dir = str(site / "skillmix" / "harness" / "tasks")

    def tasks(include_path="", **env):
        out = subprocess.run([str(py), "-c", code, include_path], capture_output=True, text=True, cwd=root,
                             env={**os.environ, "PYTHONPATH": "", **env})
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.split()

    found, path = tasks()
    assert found == "True" and path.startswith(str(site))
    # Opt-out: the hook stays away, and --include_path still works on its own.
    assert tasks(SKILLMIX_NO_LMEVAL_HOOK="1")[0] == "False"
    assert tasks(task_dir, SKILLMIX_NO_LMEVAL_HOOK="1")[0] == "True"
    # With the hook on, an explicit include path of the same folder is not added twice.
    assert tasks(task_dir)[0] == "True"
