"""Allow `python -m storyhub`."""

from .cli import main

main()
