"""``python -m k8stars.tarscli``: the same as the ``tarscli`` console script."""

from k8stars.tarscli.cli import main

main()
