"""What a new user installs: the wheel built from this tree, installed without -e into a scratch
directory, answers a question from a directory outside the repository (every file read at run time
is in the wheel), and the plain install brings the page's dependencies."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

from conftest import REPO

RUNTIME_FILES = ["qa/stopwords.txt", "qa/ja_glossary.tsv", "index/default_corpus/manifest.json", "index/default_corpus/japanwork.txt", "app.py",
                 "qa/cli.py", "index/store.py", "eval/questions_dev.jsonl"]


def test_plain_install_has_the_page():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in deps}
    assert {"gradio", "gradio_client"} <= names


@pytest.mark.slow
def test_wheel_installed_without_editable_answers_a_question(tmp_path):
    source = tmp_path / "src"  # a clean copy: building in the tree would leave build/ and egg-info behind
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".pytest_cache",
                                                                "tests", "reports"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
                    str(source)], check=True, timeout=600)
    wheel = next(wheels.glob("policyqa-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(RUNTIME_FILES) <= names, set(RUNTIME_FILES) - names

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", str(site),
                    str(wheel)], check=True, timeout=600)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "POLICYQA_INDEX")}
    env.update(PYTHONPATH=str(site), POLICYQA_INDEX=str(tmp_path / "index"), HF_HUB_OFFLINE="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", PYTHONDONTWRITEBYTECODE="1")
    where = subprocess.run([sys.executable, "-c", "import qa, index, app; print(qa.__file__, index.__file__, app.__file__)"],
                           cwd=outside, env=env, capture_output=True, text=True, timeout=300)
    assert where.returncode == 0 and all(p.startswith(str(site)) for p in where.stdout.split()), where.stdout + where.stderr
    done = subprocess.run([sys.executable, "-m", "qa.cli", "ask", "can JapanWork share my data with partners?", "--json"],
                          cwd=outside, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)
    assert answer["policies"] == ["japanwork"] and answer["citations"] and not answer["abstained"]
