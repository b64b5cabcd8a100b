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


SNEAKY = {  # names that say nothing, values that carry the secret
    "PIP_EXTRA_INDEX_URL": "https://ghp_s3cr3t@pypi.example.com/simple",   # token as the user
    "DATABASE_URL": "postgres://bob:pa/ss-s3cr3t@db.local/x",            # '/' in the password
    "OTHER_DB": "mysql://bob:p@ss-s3cr3t@db.local/x",                    # '@' in the password
    "AZURE_STORAGE_CONNECTION_STRING": "Protocol=https;AccountName=a;AccountKey=s3cr3t==",
    "MONGO_URI": "mongodb://db.local/x?authSource=admin&password=s3cr3t",
    "BLOB_URL": "https://a.blob.core.windows.net/c?sv=2020&sig=s3cr3t",
    "SENTRY_DSN": "https://s3cr3t@o1.ingest.sentry.io/1",
    "GITHUB_PAT": "ghp_s3cr3t", "MYSQL_PWD": "s3cr3t", "REDIS_URL": "redis://:s3cr3t@h:6379",
    "GCP_CREDS": "s3cr3t", "CI_JOB_JWT_V2": "s3cr3t", "SLACK_WEBHOOK": "https://hooks.x/s3cr3t",
    "GH": "ghp_s3cr3tAbCdEfGhIjKlMnOpQrStUvWxYz01", "HF": "hf_s3cr3tAbCdEfGhIjKlMnOpQrSt",
    "ID": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzM2NyM3QifQ.s3cr3t-sig",
}


@pytest.mark.parametrize("name", sorted(SNEAKY))
def test_a_secret_in_the_value_or_a_short_name_is_left_out(name):
    env = {name: SNEAKY[name], "PWD": "/home/ada", "INDEX": "https://registry.npmjs.org/@a/b"}
    assert environment_variables(env) == {"INDEX": env["INDEX"], "PWD": "/home/ada"}


def test_arguments_hide_credentials_inside_urls_and_settings():
    argv = ["train.py", "--db", "postgres://u:pa/ss-s3cr3t@h/x", "db.password=s3cr3t",
            "https://u:p@ss-s3cr3t@host/x", "trainer.max_epochs=3",
            "git+https://github.com/a/b@v1.0", "ghp_s3cr3tAbCdEfGhIjKlMnOpQrStUvWxYz01"]
    shown = arguments(argv)
    assert "s3cr3t" not in json.dumps(shown)
    assert shown == ["train.py", "--db", "postgres://h/x", f"db.password={HIDDEN}",
                     "https://host/x", "trainer.max_epochs=3", "git+https://github.com/a/b@v1.0",
                     HIDDEN]


def test_git_remote_with_an_at_sign_in_the_password_is_stripped(tmp_path):
    try:
        _git(tmp_path, "init", "-q")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not installed")
    _git(tmp_path, "remote", "add", "origin", "https://ada:gh@p/s3cr3t@github.com/ada/x.git")
    _git(tmp_path, "-c", "user.email=a@b.c", "-c", "user.name=Ada", "commit", "-q",
         "--allow-empty", "-m", "first")
    info = git_info(str(tmp_path))
    assert info["remote_origin_url"] == "https://github.com/ada/x.git"
