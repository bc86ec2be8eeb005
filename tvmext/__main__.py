"""``python -m tvmext``: the command line."""

from tvmext.cli import main_exit

main_exit()
