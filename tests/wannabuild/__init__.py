"""Tests of the wanna-build adapter."""
