"""``python -m tinyship``: the same as the ``tinyship`` console script."""

from .command import entry

if __name__ == "__main__":
    entry()
