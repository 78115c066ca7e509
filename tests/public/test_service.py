"""The public-data service joins the kernel through the entry-point group `cardio.services`: `cardio data` is its
command (the kernel has none), and the plugin hooks cardio_datasets and cardio_releases are its specifications,
added to the kernel's plugin manager (services.cardio_hookspecs), so a plugin that offers public data declares it."""
from __future__ import annotations

import pytest

pytest.importorskip("cardio_public")

from cardio_testing.harness import invoke_with_services as cardio

# with the fusion service, whose cardio_write_synthetic ecg_transfer implements (it declares both)
PUBLIC = {"public": "cardio_public.cli", "fusion": "cardio_fusion.cli"}


def test_data_is_the_public_services_command_and_the_kernel_has_none():
    installed, bare = cardio("--help"), cardio("--help", services={})
    assert installed.returncode == bare.returncode == 0, installed.stderr + bare.stderr
    assert "  data " in installed.stdout
    assert "  data " not in bare.stdout and "  run " in bare.stdout
    listed = cardio("plugins")
    assert listed.returncode == 0, listed.stderr
    assert any(line.startswith("public ") and line.endswith("service  adds: cardio data")
               for line in listed.stdout.splitlines()), listed.stdout
    for command in ("list", "fetch", "build", "place"):  # as users typed them when they were the kernel's
        shown = cardio("data", command, "--help", services=PUBLIC)
        assert shown.returncode == 0 and f"Usage: cardio data {command}" in shown.stdout, shown.stderr


def test_the_public_data_hooks_are_the_services_specifications():
    """With the service, ecg_transfer's data sets and releases are offered; without it, the kernel knows no such
    hooks, and the plugin that implements them (it declares cardio-crt-public) is named, not loaded."""
    pytest.importorskip("cardio_ecg_transfer")
    listed = cardio("data", "list", services=PUBLIC)
    assert listed.returncode == 0 and "mitdb  MIT-BIH Arrhythmia Database" in listed.stdout, listed.stderr
    unknown = cardio("data", "build", "nope", "--out", "x", services=PUBLIC)
    assert unknown.returncode == 2, unknown.stderr
    assert "installed plugins build: mitdb-resnet101, mitdb-resnet18" in unknown.stderr, unknown.stderr
    bare = cardio("plugins", services={})
    assert bare.returncode == 0, bare.stderr
    line = next(r for r in bare.stdout.splitlines() if r.startswith("ecg_transfer "))
    assert "BROKEN" in line and "cardio_datasets is not a cardio hook" in line, line
