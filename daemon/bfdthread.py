"""BFD in a thread of its own, with its own trio loop.

At 10 ms x 3 a session is declared down after 30 ms without a packet. The daemon's main loop
does work that can hold it longer than that (a 1000-group batch from the backup channel, a
burst of IGMP reports, a switchover adopting every backed-up group), so BFD must not wait
behind it. In its own thread the BFD loop gets the interpreter within the switch interval
(set to 1 ms by the daemon) whatever the main loop is doing. State changes cross back to the
main loop with `run_sync_soon`, in order.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import trio

from daemon.bfd import StateChanged
from daemon.bfd.machine import SessionSnapshot
from daemon.bfd.service import BfdService
from daemon.kernel.udp import BfdSockets
from daemon.log import Log


class BfdThread:
    def __init__(self, service: BfdService, sockets: BfdSockets, log: Log) -> None:
        self.service = service
        self.sockets = sockets
        self.log = log
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel: trio.CancelScope | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def relay(main: trio.lowlevel.TrioToken,
              handler: Callable[[StateChanged], None]) -> Callable[[StateChanged], None]:
        """An `on_state` for the service that runs `handler` on the main loop."""
        return lambda ev: main.run_sync_soon(handler, ev)

    async def start(self) -> None:
        """Start the thread and wait (without blocking the main loop) until BFD runs."""
        self._thread = threading.Thread(target=self._run, name="bfd", daemon=True)
        self._thread.start()
        await trio.to_thread.run_sync(self._ready.wait)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # a dead BFD thread must be visible, not silent
            self.log.error("bfd thread ended", error=repr(exc))
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            self._cancel = nursery.cancel_scope
            nursery.start_soon(self.sockets.run)
            await nursery.start(self.service.run)
            self._ready.set()

    def snapshots(self) -> list[tuple[SessionSnapshot, str]]:
        return self.service.snapshots()

    async def admin_down_all(self) -> None:
        """The goodbye (AdminDown on every session), run in the BFD loop; returns once sent."""
        if self._token is None:
            return
        token = self._token
        await trio.to_thread.run_sync(
            lambda: trio.from_thread.run(self.service.admin_down_all, trio_token=token))

    def stop(self) -> None:
        if self._token is not None and self._cancel is not None:
            cancel = self._cancel
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(cancel.cancel)
        if self._thread is not None:
            self._thread.join(timeout=2)
