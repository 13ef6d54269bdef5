"""Allow `python -m lts_cli`."""

from lts_cli.cli import main

if __name__ == "__main__":
    main()
