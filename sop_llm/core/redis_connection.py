"""The connection class of every Sentinel-managed sync client (imports no Django: settings use it).

redis-py's SentinelManagedConnection reads replies with `disconnect_on_error=False` by default,
unlike every other connection (the async one included): a read cut short -- a socket timeout,
or a signal's exception during a blocking pop -- leaves the connection in the pool with a reply
still on its way, and the next command reads that reply as its own (a GET answered with the
previous command's PONG), or blocks until it comes. Upstream: redis/redis-py#4292. PubSub passes
the flag explicitly and is unaffected.
"""

from redis.sentinel import SentinelManagedConnection


class SentinelConnection(SentinelManagedConnection):
    def read_response(self, *args, disconnect_on_error: bool = True, **kwargs):
        return super().read_response(*args, disconnect_on_error=disconnect_on_error, **kwargs)
