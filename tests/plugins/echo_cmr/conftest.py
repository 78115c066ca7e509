"""echo_cmr's tests: each module skips (pytest.importorskip) when the plugin is not installed."""
