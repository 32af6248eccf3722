"""The production deployment in docker/: one image, compose with web, worker, beat, PostgreSQL and Redis.

`docker compose config` (or the older `docker-compose config`) validates the file where the client is installed;
no engine is needed. The structure is checked everywhere.
"""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

DOCKER = ROOT / "docker"
REQUIRED = {
    "DJANGO_SECRET_KEY": "invented-test-key",
    "DATABASE_URL": "postgres://exchangepatch:invented@postgres:5432/exchangepatch",
    "DJANGO_ALLOWED_HOSTS": "patch.contoso.example",
    "POSTGRES_PASSWORD": "invented",
}


def compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_runs_web_workers_beat_postgres_and_redis_from_one_image():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]

    assert set(services) == {"web", "worker", "beat", "postgres", "redis"}
    for name in ("web", "worker", "beat"):
        assert services[name]["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        assert services[name]["image"] == "exchangepatch:latest"
    assert services["worker"]["command"][:4] == ["celery", "-A", "exchangepatch", "worker"]
    assert services["beat"]["command"][-2:] == ["--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]
    assert services["web"]["environment"]["EXCHANGEPATCH_MIGRATE"] == "1"
    assert "EXCHANGEPATCH_MIGRATE" not in services["worker"]["environment"]
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements.txt" in dockerfile


def test_every_requirement_is_locked_with_a_hash():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pins = [line for line in lines if line and not line.startswith((" ", "#", "--"))]
    assert pins, "requirements.txt lists no package"
    for index, line in enumerate(lines):
        if line in pins:
            requirement = line.rstrip(" \\")
            assert "==" in requirement, f"{requirement}: not pinned to one version"
            assert lines[index + 1].strip().startswith("--hash=sha256:"), f"{requirement}: no hash"


@pytest.mark.skipif(compose_command() is None, reason="no docker compose (plugin) or docker-compose client installed")
def test_docker_compose_config_validates(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    command = [*compose_command(), "--env-file", str(empty), "-f", str(DOCKER / "compose.yaml"), "config"]

    valid = subprocess.run(command, capture_output=True, text=True, timeout=60, env=_env(REQUIRED))
    missing = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=_env(REQUIRED | {"DJANGO_SECRET_KEY": ""})
    )

    assert valid.returncode == 0, valid.stderr
    assert set(yaml.safe_load(valid.stdout)["services"]) == {"web", "worker", "beat", "postgres", "redis"}
    assert missing.returncode != 0
    assert "set DJANGO_SECRET_KEY in docker/.env" in missing.stderr


def _env(values: dict[str, str]) -> dict[str, str]:
    import os

    keep = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "DOCKER_HOST", "LANG")}
    return keep | values


def test_docker_readme_names_every_required_variable():
    text = (DOCKER / "README.md").read_text()
    for name in REQUIRED:
        assert f"`{name}`" in text
    assert Path(DOCKER / "entrypoint.sh").exists()
