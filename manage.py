#!/usr/bin/env python
"""Django's command-line utility for ExchangePatch."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchangepatch.settings")
    from exchangepatch.commandline import execute

    execute(sys.argv)


if __name__ == "__main__":
    main()
