"""`kubectl market info` shows the catalog metadata of real charts and Olares apps, safely."""

from __future__ import annotations

from kubemart.plugin.views import app_info

APP = {
    "metadata": {"name": "olares.uptimekuma"},
    "spec": {
        "source": "olares",
        "app": "uptimekuma",
        "title": "Uptime Kuma",
        "description": "A fancy self-hosted monitoring tool\x1b[2J",
        "categories": ["Developer Tools"],
        "license": "MIT",
        "maintainers": [{"name": "Ann", "email": "ann@example.com"}, {"name": "Bob"}],
        "links": [{"name": "source", "url": "https://github.com/louislam/uptime-kuma"}],
        "deprecated": True,
        "manifest": "olares",
        "requirements": {
            "cpu": "0.25",
            "memory": "512Mi",
            "gpu": "8Gi",
            "architectures": ["amd64"],
            "limits": {"cpu": "1", "memory": "4Gi"},
        },
        "entrances": [{"name": "uptimekuma", "title": "Uptime Kuma", "host": "uptimekuma", "port": 3001}],
        "dependencies": [{"app": "olares", "version": ">=1.12.6-0", "type": "system"}],
        "latestVersion": "1.0.7",
        "versions": [{"version": "1.0.7"}],
    },
}


def test_info_shows_metadata_entrances_and_requirements() -> None:
    text = app_info(APP)
    lines = text.splitlines()
    assert any(line.startswith("Deprecated:") and "no longer maintained" in line for line in lines)
    assert any(line.startswith("License:") and line.endswith("MIT") for line in lines)
    assert any(line.startswith("Maintainers:") and "Ann <ann@example.com>, Bob" in line for line in lines)
    assert any(
        line.startswith("Requirements:") and "cpu 0.25, memory 512Mi, gpu 8Gi" in line for line in lines
    )
    assert any(line.startswith("Limits:") and line.endswith("cpu 1, memory 4Gi") for line in lines)
    assert any(line.startswith("Dependencies:") and "olares >=1.12.6-0 (system)" in line for line in lines)
    assert "  source: https://github.com/louislam/uptime-kuma" in lines
    entrances = lines[lines.index("Entrances:") + 1 : lines.index("Entrances:") + 3]
    assert entrances[0].split() == ["NAME", "TITLE", "SERVICE"]
    assert entrances[1].split() == ["uptimekuma", "Uptime", "Kuma", "uptimekuma:3001"]
    assert "\x1b" not in text  # catalog text cannot drive the terminal


def test_info_of_a_bare_chart_lists_no_empty_sections() -> None:
    text = app_info({"spec": {"source": "s", "app": "a", "versions": []}})
    assert "Entrances:" not in text
    assert "Links:" not in text
    assert "Deprecated" not in text
    assert "License:" in text
