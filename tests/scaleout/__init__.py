"""A small project that several hub processes serve, sharing Redis (tests/hub/test_scale_out.py)."""
