#!/usr/bin/env python
"""The demo's manage.py: ``python manage.py runhub`` serves it like ``hub demo``."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
