"""The web console (``k8stars web``): server-rendered pages over one namespace's ``k8s.tars.io`` objects, for the
people K8SFramework's tarsweb serves.

- ``service``, ``cli``: the command, an instance of the one service skeleton (``k8stars.service``).
- ``app``: the aiohttp application and the checks every request passes: ``session`` (a signed cookie, its key from
  a Secret or a file), CSRF on every POST, login (``accounts``: TAccounts, K8SFramework's password hashing), and
  ``roles`` (admin, operator, developer per app or server), checked on the server for every action.
- ``pages``: one module per page (tree, server, release, configs, events, accounts, login); ``templates`` (Jinja2,
  autoescaped) and ``static`` (our own small JS and CSS; no CDN, no build).

Imports ``k8stars.kube``, ``k8stars.image`` and ``k8stars.service``; nothing imports it but the CLI.
"""
