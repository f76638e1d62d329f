"""``python -m garrison`` runs the command line."""

from garrison.cli import main

if __name__ == "__main__":
    main()
