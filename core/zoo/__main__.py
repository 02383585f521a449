"""``python -m zoo`` (and ``torchrun -m zoo run NAME``)."""

from .cli import main

if __name__ == "__main__":
    main()
