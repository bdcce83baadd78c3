"""The container image check (checks.py): a package, so its conftest does not shadow tests/conftest.py."""
