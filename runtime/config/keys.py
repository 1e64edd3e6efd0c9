"""Redis key names: one namespace, `redis.prefix`, in front of every key the runtime writes.

Two deployments with different prefixes share one Redis and nothing in it. After the prefix
(`rosey:db:` by default, the database's prefix before every key had one, so a database written
before keeps its keys) come:

    {<collection>}:...                         the database (docs/database.md)
    cooldown:<command>:<scope>                 a command's cooldown (core/cooldowns.py)
    schedule:<function>:<schedule>:<due ms>    the claim of one firing (core/schedule.py)
    lease:cytube:<server>/<channel>            the CyTube connector's lease (cytube/lease.py)
    <activations.stream>                       the activation records, `activations` by default
    deploy:current, deploy:removed, deploy:history:<function>    deployed bundles

Only the database's keys start with a brace after the prefix, so no other key can be taken for
one of a collection's.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.errors import ConfigError

DEFAULT_PREFIX = "rosey:db:"


@dataclass(frozen=True)
class Namespace:
    """The Redis keys of one deployment, all starting with `prefix`."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if "{" in self.prefix or "}" in self.prefix:
            # A collection's {hash tag} must be the first braces in each of its keys.
            raise ConfigError(
                "settings", "redis.prefix", f"{self.prefix!r} must not contain braces"
            )

    def join(self, *parts: str) -> str:
        """The full key of `parts`: the prefix, then the parts separated by colons."""
        return self.prefix + ":".join(parts)

    def tag(self, collection: str) -> str:
        """How every key of a database collection starts: `<prefix>{<collection>}:`, the braces a
        Redis Cluster hash tag that keeps the collection in one slot."""
        return f"{self.prefix}{{{collection}}}:"


DEFAULT_NAMESPACE = Namespace()
