"""Test doubles shared by the test modules (fake servers and the like)."""
