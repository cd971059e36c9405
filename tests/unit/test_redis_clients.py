"""The app's Redis clients ask for no "maintenance notifications" (issue 15): redis-py 8's RESP3
handshake for a managed Redis feature raced under concurrent connects and turned a staff sign-in
into a 500 (bench.memory at 10,000,000 cases)."""

from __future__ import annotations

import threading

import redis

from supervise.queueing import redis_connection, redis_from_url
from supervise.throttle import _strategy


def _handshake_on(client: redis.Redis) -> bool:
    """Whether the client's connections would ask (redis-py's default config is "auto")."""
    connection = client.connection_pool.get_connection()
    try:
        config = connection.maint_notifications_config
        return bool(config and config.enabled)
    finally:
        client.connection_pool.release(connection)


def test_every_client_of_the_app_has_the_handshake_off(app):
    if app.config["REDIS_URL"].startswith("redis://"):  # over TCP (not the laptop's unix socket) …
        assert _handshake_on(redis.Redis.from_url(app.config["REDIS_URL"]))  # … what the option turns off
    assert not _handshake_on(redis_connection(app))
    assert not _handshake_on(_strategy().storage.get_connection())  # the rate limits' client


def test_a_new_connection_sends_no_maintenance_handshake(app):
    url = app.config["REDIS_URL"]
    monitor_client = redis.Redis.from_url(url)
    seen: list[str] = []
    ready = threading.Event()

    def watch() -> None:
        with monitor_client.monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                seen.append(command["command"])
                if "handshake-probe" in command["command"]:
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert ready.wait(5)
    fresh = redis_from_url(url, socket_timeout=5)
    fresh.get("handshake-probe")  # a new connection: its handshake, then this command
    watcher.join(5)
    assert any("handshake-probe" in command for command in seen), seen
    assert not [command for command in seen if "MAINT_NOTIFICATIONS" in command.upper()], seen
