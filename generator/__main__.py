"""`python -m generator`: the console script without an installed entry point."""

from generator.entry import main

if __name__ == "__main__":
    main()
