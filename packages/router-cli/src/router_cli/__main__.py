"""`python -m router_cli`."""

from router_cli import main_exit

main_exit()
