"""The one skeleton of a k8stars service process: the registry, the framework services (config, notify, stat, log)
and any new one (the image builder, the web console, query services) are instances of it.

- ``options``: the options dataclass of a service: ``ServiceOptions`` (log level, node name, ``error``: the
  ``ServiceError`` subclass a bad option raises, the CLI exiting 2 with its message; ``from_cli``; ``check``),
  ``HttpServiceOptions`` (host, port), ``TarsServiceOptions`` (locator), ``StoreServiceOptions`` (kubernetes,
  sqlite or mysql store).
- ``lifecycle``: ``Service``: ``open(parts)`` opens the parts in order, pushing on ``parts`` (an AsyncExitStack)
  how each is closed; ``start``/``stop``; ``run`` serves until SIGTERM or SIGINT (asyncio signal handlers) or
  ``stopping`` is set, then closes the parts in reverse (a part that failed to open closes those before it).
- ``tars``: ``TarsService``: one TARS Application (adapters, AdminObj and the ``tars.*`` admin commands;
  AdminObj.shutdown stops the service) and ``register``: the servants registered with the registry (K8STARS
  onStartup, keepAlive, onPrestop; ``registration``).
- ``http``: ``metrics_app`` (``/metrics`` of a Prometheus registry, ``/healthz``) and ``serve_http`` (an aiohttp app
  as a part).
- ``bearer``: ``TokenFile`` (a bearer token in a file, a mounted Secret, read again when it changes) and
  ``bearer_middleware``: an HTTP side only the token's holder passes (401 otherwise; ``/healthz``, ``/metrics`` open).
- ``commands``: the shared click options and ``serve_command``, the one way a command runs a service (exit 2 for a
  bad option, 1 when it cannot start).

A plain HTTP service (no TARS servant) is a ``Service`` over ``HttpServiceOptions``::

    @dataclass(kw_only=True)
    class BuilderOptions(HttpServiceOptions):
        error: ClassVar[type[ServiceError]] = BuilderError  # a ServiceError subclass

    class BuilderService(Service[BuilderOptions]):
        name = "image"

        async def open(self, parts: AsyncExitStack) -> None:
            self.jobs = await open_jobs()  # hypothetical
            parts.push_async_callback(self.jobs.close)
            app = metrics_app(self.metrics, lambda: f"jobs={len(self.jobs)}")
            app.router.add_post("/build", self.build)
            self.port = await serve_http(parts, app, self.options.host, self.options.port, "--port")

        def describe(self) -> str:
            return f"http on {self.options.host}:{self.port}"

and its command (in the package's own click group, added to ``k8stars/cli.py``'s ``main``)::

    @click.command("serve")
    @host_option("K8STARS_IMAGE_HOST")
    @port_option("K8STARS_IMAGE_PORT", 8080, "Port of the build API.")
    @log_level_option()
    def serve(**values: Any) -> None:
        serve_command(BuilderService, BuilderOptions, values)

A TARS service is a ``TarsService``: it lists its adapters (``adapters()``, with ``tars_adapter``), adds its servants
in ``open``, then calls ``start_tars(parts)`` and ``register(parts, locator, (server, servant))``; see
``k8stars/services/config/app.py``.

This package imports nothing above ``k8stars.tars`` (and ``k8stars.sql`` for DSNs): the registry, the services and
any service package import it, never the reverse.
"""
