"""``python -m swain.contrib.swain_cli``: the same as the ``swain_cli`` command."""

from swain.contrib.swain_cli import main

main()
