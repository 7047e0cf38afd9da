"""The Voilà server of dashboards: Voilà 0.5's standalone app, locked down.

It runs as the unprivileged service account (``alertlab.dashboards.server``
starts it), listens on 127.0.0.1 only and answers only requests carrying its
secret token, which only the `alertlab` web service holds: people reach it
through that service's proxy (``alertlab.dashboards.proxy``), which has
already decided that the viewer may see the dashboard and says who the viewer
is in the ``X-AlertLab-Viewer`` header. Here:

- a dashboard page is rendered only for a request naming its viewer and
  dashboard, and only while the dashboard has fewer than its limit of kernels
  (``X-AlertLab-Limit``; more: 429, "try again shortly");
- each page's kernel is recorded with its viewer, and a kernel's websocket,
  model and shutdown answer only that viewer (403 otherwise);
- Voilà's directory listing, contents API and file server are not offered;
- idle kernels are culled (``MappingKernelManager.cull_*``);
- kernels use unix sockets in Voilà's private connection folder, not TCP ports;
- a few kernels are kept warm (started, heavy modules imported) so a page
  does not wait for a kernel to boot; a warm kernel receives its viewer's
  token and working directory when it is handed out.

The viewer's token reaches the kernel in the environment (Voilà maps the
``X-AlertLab-Token`` header to ``HTTP_X_ALERTLAB_TOKEN``; ``dashboards.kernel``
turns it into ALERTLAB_TOKEN), or for a warm kernel in a first silent
execution. This process makes itself non-dumpable, so kernels (same account)
cannot read its token from /proc."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import secrets
import sys
import time

from jinja2 import BytecodeCache
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.services.kernels.handlers import KernelHandler
from tornado import web
from traitlets import Integer
from traitlets.config import Config
from voila import notebook_renderer
from voila.app import Voila
from voila.execute import VoilaExecutor
from voila.exporter import VoilaExporter
from voila.shutdown_kernel_handler import VoilaShutdownKernelHandler
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.kernel_websocket_handler import VoilaKernelWebsocketHandler

from alertlab.dashboards.headers import DASHBOARD, LIMIT, LINK, RESERVATION, TOKEN, URL, VIEWER

HEADER_ENVS = [VIEWER, DASHBOARD, TOKEN, RESERVATION, URL]
REFILL_PAUSE = 1.0  # seconds between looks for a quiet moment to refill the warm pool
NUDGE_AFTER = 10.0  # a page still being rendered after this long gets its kernel nudged
NUDGE_EVERY = 5.0  # ... every so many seconds
NUDGE_SECONDS = 2.0
REPOLL_SECONDS = 1.0  # the executor's longest single wait on the shell socket
CONNECTION_FILE_SECONDS = 30.0  # a started kernel's connection file is removed after this long


def _env_name(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


BUSY_PAGE = """<!doctype html><meta charset="utf-8"><title>Dashboard busy</title>
<body style="font-family: sans-serif; margin: 3em"><h1>This dashboard is busy</h1>
<p>It already has {n} viewers, its limit. Try again in a minute.</p></body>"""


async def _reply(client, msg_id: str, seconds: float) -> dict:
    """The shell reply to ``msg_id``, polling in short steps (see RepollingExecutor); queue.Empty if none."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise queue.Empty
        try:
            reply = await client.get_shell_msg(timeout=min(REPOLL_SECONDS, left))
        except queue.Empty:
            continue
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


class DashboardKernelManager(AsyncMappingKernelManager):
    """Kernels with their viewer and dashboard; a per-dashboard limit; a warm pool."""

    warm_kernels = Integer(0, config=True, help="Kernels kept started and waiting for a viewer")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.owners: dict[str, dict] = {}  # kernel id -> {viewer, dashboard, link}
        self.pending: dict[str, str] = {}  # reservation -> dashboard
        self.pending_links: dict[str, str] = {}  # reservation -> the link share the viewer came with
        self.rendering: dict[str, str] = {}  # reservation -> the kernel its page is being rendered with
        self.warm: list[str] = []
        self._warming = 0
        self._warm_name = None
        self._warm_path = None

    # -- limits --------------------------------------------------------------------------------

    def in_use(self, dashboard: str) -> int:
        return (sum(1 for o in self.owners.values() if o["dashboard"] == dashboard)
                + sum(1 for d in self.pending.values() if d == dashboard))

    def reserve(self, dashboard: str, limit: int) -> str | None:
        """A place for one more viewer of ``dashboard`` (None when it has ``limit`` already)."""
        if self.in_use(dashboard) >= limit:
            return None
        rid = secrets.token_hex(8)
        self.pending[rid] = dashboard
        return rid

    def release(self, rid: str | None) -> None:
        self.pending.pop(rid or "", None)
        self.pending_links.pop(rid or "", None)

    # -- kernels -------------------------------------------------------------------------------

    async def start_kernel(self, *, kernel_name=None, path=None, env=None, **kwargs):
        env = dict(env or {})
        viewer = env.get(_env_name(VIEWER), "")
        dashboard = env.get(_env_name(DASHBOARD), "")
        rid = env.get(_env_name(RESERVATION))
        kid = await self._take_warm(kernel_name, path, env) if viewer else None
        if kid is None:
            kid = await super().start_kernel(kernel_name=kernel_name, path=path, env=env, **kwargs)
        if viewer:
            self.owners[kid] = {"viewer": viewer, "dashboard": dashboard,
                                "link": self.pending_links.get(rid or "")}
            if rid:
                self.rendering[rid] = kid
            self.release(rid)
            self._forget_connection_file_later(kid)
            self._schedule_refill(kernel_name, path)
        return kid

    async def shutdown_kernel(self, kernel_id, now=False, restart=False):
        if not restart:
            self.owners.pop(kernel_id, None)
            if kernel_id in self.warm:
                self.warm.remove(kernel_id)
        return await super().shutdown_kernel(kernel_id, now=now, restart=restart)

    async def cull_kernel_if_idle(self, kernel_id):
        if kernel_id in self.warm:  # waiting for a viewer is not idling
            return
        return await super().cull_kernel_if_idle(kernel_id)

    # -- the warm pool -------------------------------------------------------------------------

    def _schedule_refill(self, kernel_name, path) -> None:
        if self.warm_kernels <= 0:
            return
        self._warm_name = self._warm_name or kernel_name
        self._warm_path = self._warm_path or path
        asyncio.ensure_future(self.refill(quiet_first=True))

    async def refill(self, quiet_first: bool = False) -> None:
        """Start kernels until ``warm_kernels`` wait: one at a time, and (``quiet_first``) once no page is
        being rendered, so that booting spare kernels does not slow down the viewers arriving now."""
        if quiet_first:
            for _ in range(60):
                await asyncio.sleep(REFILL_PAUSE)
                if not self.pending and not self.rendering:
                    break
        while self.warm_kernels > 0 and len(self.warm) + self._warming < self.warm_kernels:
            self._warming += 1
            try:
                env = {k: v for k, v in os.environ.items() if not k.startswith("HTTP_")}
                kid = await super().start_kernel(kernel_name=self._warm_name or "alertlab",
                                                 path=self._warm_path, env=env)
                await self._ready(kid)
                self._remove_connection_file(kid)
                self.warm.append(kid)
            except Exception as exc:  # noqa: BLE001 - the pool is an optimisation: log and stop filling
                self.log.warning("could not start a warm dashboard kernel: %s", exc)
                return
            finally:
                self._warming -= 1

    def _forget_connection_file_later(self, kid: str) -> None:
        """Once the kernel has surely read its connection file (its key), remove it, so other kernels of this
        account cannot read it afterwards; the manager keeps the connection details in memory. (Later rather
        than after asking the kernel: a second client talking to a kernel Voila is starting proved fragile.)"""
        from tornado.ioloop import IOLoop

        IOLoop.current().call_later(CONNECTION_FILE_SECONDS, self._remove_connection_file, kid)

    async def nudge(self, kid: str) -> None:
        """Ask the kernel for its info on a connection of our own. ipykernel 7 can leave a request unread
        on its shell socket until another message arrives (ipython/ipykernel#1554): Voila's executor,
        which sends one request and waits, would then wait for ever. A message from another connection
        wakes the kernel up, and it reads the waiting request too."""
        if kid not in self.owners:
            return
        client = self._own_client(kid)
        client.start_channels(iopub=False, stdin=False, hb=False, control=False)
        try:
            await _reply(client, client.kernel_info(), NUDGE_SECONDS)
        except Exception:  # noqa: BLE001 - a busy or dying kernel: the next nudge, or Voila, sees to it
            pass
        finally:
            client.stop_channels()

    def _own_client(self, kid: str):
        """A client of the kernel with a session (so a ZMQ identity) of its own: clients made by ``km.client()``
        share the manager's session, and two sockets with one identity make the kernel's replies go astray
        (Voila's own client would then wait for ever)."""
        from jupyter_client.session import Session

        km = self.get_kernel(kid)
        return km.client(session=Session(key=km.session.key, signature_scheme=km.session.signature_scheme,
                                          username="alertlab-dashboards"))

    def _remove_connection_file(self, kid: str) -> None:
        try:
            os.remove(self.get_kernel(kid).connection_file)
        except (FileNotFoundError, KeyError):
            pass

    async def _ready(self, kid: str) -> None:
        client = self._own_client(kid)
        client.start_channels(stdin=False, hb=False, control=False)
        try:
            await client.wait_for_ready(timeout=120)
        finally:
            client.stop_channels()

    async def _take_warm(self, kernel_name, path, env) -> str | None:
        if not self.warm or kernel_name != (self._warm_name or "alertlab"):
            return None
        kid = self.warm.pop(0)
        token = env.get(_env_name(TOKEN), "")
        url = env.get(_env_name(URL)) or os.environ.get("ALERTLAB_URL", "")
        code = ("import os as _os\n"
                f"_os.environ['ALERTLAB_TOKEN'] = {json.dumps(token)}\n"
                f"_os.environ['ALERTLAB_URL'] = {json.dumps(url)}\n"
                f"_os.chdir({json.dumps(os.path.join(self.root_dir, path or ''))})\n"
                "del _os\n")
        client = self._own_client(kid)
        client.start_channels(iopub=False, stdin=False, hb=False, control=False)
        try:
            msg_id = client.execute(code, silent=True, store_history=False)
            reply = await _reply(client, msg_id, 30)
            if reply["content"].get("status") != "ok":
                raise RuntimeError(reply["content"].get("evalue", "setup failed"))
        except Exception as exc:  # noqa: BLE001 - fall back to a fresh kernel
            self.log.warning("warm kernel %s could not be handed out (%s); starting a new one", kid, exc)
            await super().shutdown_kernel(kid, now=True)
            return None
        finally:
            client.stop_channels()
        return kid


class MemoryBytecodeCache(BytecodeCache):
    """Compiled Jinja templates kept in memory, checked against their source's checksum by Jinja."""

    def __init__(self):
        self.codes: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        code = self.codes.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket) -> None:
        self.codes[bucket.key] = bucket.bytecode_to_string()


class CachedTemplatesExporter(VoilaExporter):
    """Voila's exporter, with compiled templates kept: Voila makes a new exporter, so a new Jinja
    environment, for every page, which compiles its dozen templates again each time (about half a second
    of CPU per page, most of a dashboard's first render). This one gives each environment the process's
    bytecode cache; Jinja checks each template's source checksum before reusing its code."""

    cache = MemoryBytecodeCache()

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = self.cache
        return environment


class RepollingExecutor(VoilaExecutor):
    """Voila's notebook executor, waiting for shell replies in short polls. Waiting on the shell socket
    with no timeout can miss a reply that arrives while the executor sends on that socket (widget
    messages do), and then waits for ever (jupyter/nbclient#312): about one dashboard in thirty, with ten
    opened at once, never finished. Polling again every second sees the waiting reply."""

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        kc.hb_channel.stop()  # one thread less per page: whether the kernel lives is asked of its manager
        channel = kc.shell_channel
        wait = channel.get_msg

        async def get_msg(timeout=None):
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                step = REPOLL_SECONDS if deadline is None else max(0.0, min(REPOLL_SECONDS,
                                                                             deadline - time.monotonic()))
                try:
                    return await wait(timeout=step)
                except queue.Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise

        channel.get_msg = get_msg
        return kc


def _owner_check(handler, kernel_id: str) -> None:
    owner = handler.kernel_manager.owners.get(kernel_id)
    viewer = handler.request.headers.get(VIEWER, "")
    if owner is None or not viewer or owner["viewer"] != viewer:
        raise web.HTTPError(403, "this kernel belongs to another viewer")


class DashboardPageHandler(TornadoVoilaHandler):
    """A dashboard page: only for a named viewer, within the dashboard's limit of viewers."""

    @web.authenticated
    async def get(self, path=None):
        viewer, dashboard = self.request.headers.get(VIEWER), self.request.headers.get(DASHBOARD)
        if not viewer or not dashboard:
            raise web.HTTPError(403, "dashboards are opened through the alertlab service")
        try:
            limit = max(1, int(self.request.headers.get(LIMIT, "10")))
        except ValueError:
            limit = 10
        rid = self.kernel_manager.reserve(dashboard, limit)
        if rid is None:
            self.set_status(429)
            self.set_header("Retry-After", "30")
            self.finish(BUSY_PAGE.format(n=limit))
            return
        self.request.headers[RESERVATION] = rid
        if self.request.headers.get(LINK):
            self.kernel_manager.pending_links[rid] = self.request.headers[LINK]
        watchdog = asyncio.ensure_future(self._nudge_while_rendering(rid))
        try:
            await super().get(path)
        finally:
            watchdog.cancel()
            self.kernel_manager.release(rid)
            self.kernel_manager.rendering.pop(rid, None)

    async def _nudge_while_rendering(self, rid: str) -> None:
        km = self.kernel_manager
        await asyncio.sleep(NUDGE_AFTER)
        while True:
            await asyncio.sleep(NUDGE_EVERY)
            kid = km.rendering.get(rid)
            if kid is not None:
                await km.nudge(kid)


class DashboardKernelWebsocketHandler(VoilaKernelWebsocketHandler):
    async def get(self, kernel_id, *args, **kwargs):
        _owner_check(self, kernel_id)
        return await super().get(kernel_id, *args, **kwargs)


class DashboardKernelHandler(KernelHandler):
    async def get(self, kernel_id):
        _owner_check(self, kernel_id)
        return await super().get(kernel_id)

    async def delete(self, kernel_id):
        _owner_check(self, kernel_id)
        return await super().delete(kernel_id)


class DashboardShutdownHandler(VoilaShutdownKernelHandler):
    async def post(self, kernel_id):
        _owner_check(self, kernel_id)
        return await super().post(kernel_id)


class KernelOwnerHandler(web.RequestHandler):
    """For the proxy: whose kernel this is, and of which dashboard (token required)."""

    def initialize(self, token: str):
        self.token = token

    def get(self, kernel_id):
        if not secrets.compare_digest(self.request.headers.get("Authorization", ""), f"token {self.token}"):
            raise web.HTTPError(403)
        owner = self.settings["kernel_manager"].owners.get(kernel_id)
        if owner is None:
            raise web.HTTPError(404)
        self.finish(owner)


class StatsHandler(KernelOwnerHandler):
    def get(self):
        if not secrets.compare_digest(self.request.headers.get("Authorization", ""), f"token {self.token}"):
            raise web.HTTPError(403)
        km = self.settings["kernel_manager"]
        dashboards = {o["dashboard"] for o in km.owners.values()} | set(km.pending.values())
        self.finish({"kernels": len(km.list_kernel_ids()), "warm": len(km.warm), "starting": len(km.pending),
                     "dashboards": {d: km.in_use(d) for d in sorted(dashboards)}})


REPLACE = {TornadoVoilaHandler: DashboardPageHandler, VoilaKernelWebsocketHandler: DashboardKernelWebsocketHandler,
           KernelHandler: DashboardKernelHandler, VoilaShutdownKernelHandler: DashboardShutdownHandler}
DROP = ("TornadoVoilaTreeHandler", "VoilaContentsHandler", "AllowListFileHandler")


class DashboardVoila(Voila):
    """Voilà serving the dashboards folder, with the handlers above.

    The one place this reaches into Voilà's internals: its notebook renderer's exporter and executor
    classes are replaced by ``CachedTemplatesExporter`` and ``RepollingExecutor`` (Voilà offers no setting
    for them), in this process only."""

    def initialize(self, argv=None):
        notebook_renderer.VoilaExporter = CachedTemplatesExporter
        notebook_renderer.VoilaExecutor = RepollingExecutor
        super().initialize(argv)

    def init_handlers(self):
        handlers = []
        for rule in super().init_handlers():
            pattern, cls, *rest = rule
            if cls.__name__ in DROP:
                continue
            handlers.append((pattern, REPLACE.get(cls, cls), *rest))
        base = self.server_url.rstrip("/")
        handlers.insert(0, (base + r"/alertlab/kernels/(?P<kernel_id>[\w-]+)", KernelOwnerHandler,
                            {"token": self.token}))
        handlers.insert(0, (base + r"/alertlab/stats", StatsHandler, {"token": self.token}))
        return handlers

    def init_settings(self):
        settings = super().init_settings()
        km = self.kernel_manager
        if km.warm_kernels > 0:  # fill the pool once the server runs
            from tornado.ioloop import IOLoop

            km._warm_name, km._warm_path = "alertlab", ""
            IOLoop.current().call_later(1.0, lambda: asyncio.ensure_future(km.refill()))
        return settings


def config(args) -> Config:
    c = Config()
    c.Voila.ip = "127.0.0.1"
    c.Voila.port = args.port
    c.Voila.port_retries = 0
    c.Voila.open_browser = False
    c.Voila.base_url = args.base_url
    c.Voila.root_dir = args.root
    c.Voila.token = args.token
    c.VoilaConfiguration.template = "lab"
    c.VoilaConfiguration.http_header_envs = HEADER_ENVS
    c.VoilaConfiguration.multi_kernel_manager_class = DashboardKernelManager
    c.VoilaConfiguration.show_tracebacks = False
    c.VoilaConfiguration.attempt_fix_notebook = False
    c.DashboardKernelManager.cull_idle_timeout = args.idle
    c.DashboardKernelManager.cull_interval = max(5, min(60, args.idle // 4))
    c.DashboardKernelManager.cull_connected = True
    c.DashboardKernelManager.warm_kernels = args.warm
    # kernels talk over unix sockets in Voila's private connection folder: no TCP port another local account
    # could reach, and no two kernels started at once racing for the same port
    c.KernelManager.transport = "ipc"
    c.KernelSpecManager.allowed_kernelspecs = {"alertlab", "python3"}
    c.NotebookNotary.db_file = ":memory:"  # Jupyter's data folder is read-only here
    c.NotebookNotary.secret = secrets.token_bytes(32)
    return c


def main(argv=None) -> None:
    from alertlab.dashboards.kernel import non_dumpable

    non_dumpable()
    parser = argparse.ArgumentParser(prog="alertlab.dashboards.voila_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--token-fd", type=int, required=True, help="a pipe holding the secret token")
    parser.add_argument("--idle", type=int, default=600)
    parser.add_argument("--warm", type=int, default=0)
    args = parser.parse_args(argv)
    with os.fdopen(args.token_fd, "r") as fh:
        args.token = fh.read().strip()
    if not args.token:
        sys.exit("no token on --token-fd")
    app = DashboardVoila(config=config(args))
    app.initialize([])
    app.start()


if __name__ == "__main__":
    main()
