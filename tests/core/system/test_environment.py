"""System params: packages, environment without secrets, git state, command line."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess

import pytest

from aim_core.system.environment import (
    HIDDEN,
    arguments,
    environment_variables,
    git_info,
    installed_packages,
    system_params,
)

SECRETS = {
    "MY_API_KEY": "s3cr3t-api", "HF_TOKEN": "hf_s3cr3t", "DB_PASSWORD": "pw-s3cr3t",
    "AWS_SECRET_ACCESS_KEY": "aws-s3cr3t", "GOOGLE_APPLICATION_CREDENTIALS": "/s3cr3t.json",
    "Github_Auth": "gh-s3cr3t", "DATABASE_URL": "postgres://bob:url-s3cr3t@db.local/x",
}


def test_secrets_are_left_out_and_the_rest_is_kept(monkeypatch, tmp_path):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TRAIN_DATA_DIR", "/data/imagenet")
    monkeypatch.setattr("sys.argv", ["train.py", "--lr", "0.1", "--api-key", "arg-s3cr3t",
                                     "--hf-token=tok-s3cr3t"])
    params = system_params(cwd=str(tmp_path))
    dumped = json.dumps(params)
    assert "s3cr3t" not in dumped
    assert params["env_variables"]["TRAIN_DATA_DIR"] == "/data/imagenet"
    assert not set(SECRETS) & set(params["env_variables"])
    assert params["arguments"] == ["train.py", "--lr", "0.1", "--api-key", HIDDEN,
                                   f"--hf-token={HIDDEN}"]
    assert params["packages"]["numpy"] == importlib.metadata.version("numpy")
    assert params["executable"]
    assert params["git_info"] == {}  # tmp_path is not inside a git work tree


def test_environment_filter_keeps_plain_urls():
    env = {"HOME": "/root", "INDEX_URL": "https://pypi.org/simple", "PROXY": "http://u:p@h:1"}
    assert environment_variables(env) == {"HOME": "/root", "INDEX_URL": "https://pypi.org/simple"}


def test_arguments_keep_a_following_flag_and_strip_url_credentials():
    assert arguments(["x.py", "--token", "--verbose", "https://u:p@host/repo"]) == [
        "x.py", "--token", "--verbose", "https://host/repo"]


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_git_info_inside_a_repository(tmp_path):
    try:
        _git(tmp_path, "init", "-q", "-b", "trainbranch")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not installed")
    _git(tmp_path, "config", "user.email", "a@b.c")
    _git(tmp_path, "config", "user.name", "Ada / Lovelace")
    _git(tmp_path, "remote", "add", "origin", "https://ada:ghp_s3cr3t@github.com/ada/x.git")
    (tmp_path / "f.txt").write_text("x")
    _git(tmp_path, "add", "f.txt")
    _git(tmp_path, "commit", "-q", "-m", "first")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, check=True,
                          capture_output=True, text=True).stdout.strip()
    info = git_info(str(tmp_path / "."))
    assert info["branch"] == "trainbranch"
    assert info["remote_origin_url"] == "https://github.com/ada/x.git"
    assert info["commit"]["hash"] == head
    assert info["commit"]["author"] == "Ada / Lovelace"
    assert info["commit"]["timestamp"].startswith("20")


def test_packages_come_from_dist_info_and_egg_info_folders(tmp_path, monkeypatch):
    (tmp_path / "Plain_Pkg-1.2.3.dist-info").mkdir()
    (tmp_path / "old_egg-0.9-py3.11.egg-info").mkdir()
    dev = tmp_path / "devpkg.egg-info"
    dev.mkdir()
    (dev / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: Dev.Pkg\nVersion: 4.5\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    packages = installed_packages()
    assert packages["plain-pkg"] == "1.2.3"
    assert packages["old-egg"] == "0.9"
    assert packages["dev-pkg"] == "4.5"
    expected = {}
    for dist in importlib.metadata.distributions():
        try:  # newer importlib_metadata raises on a folder with no METADATA file
            name = dist.metadata["Name"]
        except Exception:
            continue
        if name:
            expected[name.lower().replace("_", "-")] = dist.version
    assert {k: v for k, v in packages.items() if k in expected} == {
        k: v for k, v in expected.items() if k in packages}


def test_no_git_means_no_git_info(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable anywhere
    assert git_info(str(tmp_path)) == {}
