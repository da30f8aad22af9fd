"""``python -m agenthost`` runs the ``agenthost`` command."""

from agenthost.cli import main

main()
