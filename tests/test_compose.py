"""docker-compose.yml, Dockerfile and .env.example agree with the Settings class.

No Docker engine runs in the test environment, so the files are parsed and checked
against ``bot.settings.Settings`` instead of being started.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "KURASHI_PORT"}     # read by compose, not by the app
SETTINGS_VARS = {name.upper() for name in Settings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def env_example_vars() -> dict[str, str | None]:
    """VAR → value for ``VAR=value`` lines, None for documented-but-commented ``# VAR=`` lines."""
    found: dict[str, str | None] = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            found.setdefault(m.group(2), None if m.group(1) else m.group(3))
    return found


def test_env_example_lists_every_setting_and_nothing_unknown():
    listed = set(env_example_vars())
    assert SETTINGS_VARS - listed == set(), "settings missing from .env.example"
    assert listed - SETTINGS_VARS - COMPOSE_ONLY == set(), ".env.example names unknown variables"


def test_env_example_values_are_accepted_by_settings(tmp_path):
    values = {k: v for k, v in env_example_vars().items() if v is not None and k in SETTINGS_VARS}
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    settings = Settings(_env_file=env_file)
    assert settings.line_enabled is False and settings.telegram_enabled is False   # empty = unset
    assert settings.knowledge_dir is None


def test_compose_runs_app_and_postgres_with_a_volume(compose):
    services = compose["services"]
    assert set(services) >= {"app", "db"}
    db = services["db"]
    assert db["image"].startswith("postgres:")
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    assert db["volumes"][0].endswith(":/var/lib/postgresql/data")


def test_compose_app_points_at_the_db_service_with_an_async_driver(compose):
    app = compose["services"]["app"]
    url = app["environment"]["DATABASE_URL"]
    assert url.startswith("postgresql+asyncpg://") and "@db:5432/" in url
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    env_files = [e["path"] if isinstance(e, dict) else e for e in app["env_file"]]
    assert ".env" in env_files
    assert set(app["environment"]) <= SETTINGS_VARS


def test_compose_runs_migrations_at_start(compose):
    command = " ".join(compose["services"]["app"]["command"])
    assert command.index("kurashi db upgrade") < command.index("kurashi serve")
    assert "--host 0.0.0.0" in command


def test_both_services_have_health_checks_and_the_app_checks_healthz(compose):
    for name in ("app", "db"):
        assert compose["services"][name]["healthcheck"]["test"], name
    assert "/healthz" in " ".join(compose["services"]["app"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(compose["services"]["db"]["healthcheck"]["test"])


def test_every_variable_compose_interpolates_is_documented_or_defaulted():
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    listed = set(env_example_vars())
    for name, modifier in re.findall(r"\$\{([A-Z_][A-Z0-9_]*)(:?[-?][^}]*)?\}", text):
        assert name in listed or modifier.startswith((":-", "-")), name


def test_dockerfile_exposes_the_port_compose_publishes(compose):
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    exposed = re.search(r"^EXPOSE\s+(\d+)", dockerfile, re.MULTILINE).group(1)
    published = [p.rsplit(":", 1)[1] for p in compose["services"]["app"]["ports"]]
    assert exposed in published
    assert "kurashi db upgrade" in dockerfile and "/healthz" in dockerfile
