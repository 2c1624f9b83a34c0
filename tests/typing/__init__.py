"""Typing cases: checked by mypy (tests/test_typing.py), never imported or run."""
