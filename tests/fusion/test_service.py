"""The fusion service joins the `cardio` command through the entry-point group `cardio.services` (cardio.services):
without it `cardio` has no `fuse`, with it `cardio fuse` is the service's command, and a service that fails to load is
named by `cardio plugins` while every other command works."""
from __future__ import annotations

import pytest

pytest.importorskip("cardio_fusion")

from cardio_testing.harness import invoke_with_services as cardio


def test_fuse_is_the_fusion_services_command_and_the_kernel_has_none():
    installed, bare = cardio("--help"), cardio("--help", services={})
    assert installed.returncode == bare.returncode == 0, installed.stderr + bare.stderr
    assert "  fuse " in installed.stdout and "  synthetic-crt " in installed.stdout  # and its test bed
    assert "  fuse " not in bare.stdout and "  synthetic-crt " not in bare.stdout and "  run " in bare.stdout
    listed = cardio("plugins")
    assert listed.returncode == 0, listed.stderr
    assert any(line.startswith("fusion ") and line.endswith("service  adds: cardio fuse, cardio synthetic-crt")
               for line in listed.stdout.splitlines()), listed.stdout


def test_a_service_that_fails_to_load_is_named_and_the_command_still_works():
    broken = {"broken": "cardio_no_such_service.cli", "fusion": "cardio_fusion.cli"}
    listed = cardio("plugins", services=broken)
    assert listed.returncode == 0, listed.stderr
    assert "broken               BROKEN  service: ModuleNotFoundError: No module named 'cardio_no_such_service'" \
        in listed.stdout, listed.stdout
    assert "service  adds: cardio fuse" in listed.stdout
    fuse_help = cardio("fuse", "--help", services=broken)
    assert fuse_help.returncode == 0 and "--guideline" in fuse_help.stdout, fuse_help.stderr
