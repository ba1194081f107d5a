"""Sign-in limits: how many password checks an account, an address or a browser may have.

Only real password checks count: a form refused for a missing CSRF token or an empty field
never gets here. Each check is reserved *before* the password is checked, in one atomic
compare-and-swap, so forty requests at once cannot all slip past the count; a correct password
gives the reservation back.

- **An account** (any username typed, known or not, so the answer says nothing about which
  exist) gets LOGIN_ACCOUNT_FREE_ATTEMPTS wrong passwords; then each next check waits
  LOGIN_ACCOUNT_DELAY_SECONDS, doubling with every further wrong one up to
  LOGIN_ACCOUNT_MAX_DELAY_SECONDS. A delay, never a lockout; a correct password clears it.
- **A browser** where the account signed in before carries a signed cookie vouching for it.
  There the account's wrong passwords are counted on their own, so someone guessing from
  elsewhere cannot keep its owner out, and the address limit does not apply.
- **An address** gets LOGIN_RATE_LIMIT wrong passwords (e.g. "50 per 15 minutes") for accounts
  its browsers do not vouch for, so one person spraying guesses cannot keep colleagues behind
  the same address out of accounts they already use there.

Counters live in Redis when RATELIMIT_STORAGE_URI is Redis (beside Flask-Limiter's own), and
otherwise in the database (`sign_in_counters`), where they hold across web processes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass
from typing import Protocol, cast

from flask import Response, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import parse
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..config import settings
from ..extensions import db, limiter
from .models import SignInCounter

logger = logging.getLogger(__name__)

BROWSER_COOKIE = "storyhub_browser"
BROWSER_DAYS = 180
_BROWSER_ACCOUNTS = 20  # accounts one browser vouches for, the most recent kept
_SWAP_TRIES = 60


def clock() -> float:
    """Now, in Unix seconds (tests move it by hand)."""
    return time.time()


class TooManyAttempts(Exception):  # noqa: N818 - what the user is told, not an error class name
    """No password check now; the message says why and how long to wait."""

    def __init__(self, message: str, wait: float):
        super().__init__(message)
        self.wait = wait


@dataclass(frozen=True)
class Rule:
    """`free` checks; then a doubling delay (`delay` > 0), or none until the window ends."""

    free: int
    window: float
    delay: float = 0.0
    max_delay: float = 0.0

    def wait_after(self, hits: int) -> float:
        if not self.delay or hits < self.free:
            return 0.0
        return min(self.max_delay, self.delay * 2 ** min(hits - self.free, 32))


@dataclass(frozen=True)
class Count:
    hits: int = 0
    not_before: float = 0.0
    expires_at: float = 0.0
    version: int = 0  # 0: not stored


class _Store(Protocol):
    def get(self, key: str) -> Count: ...
    def swap(self, key: str, old: Count, new: Count) -> bool: ...
    def delete(self, key: str) -> None: ...


def _table() -> Table:
    return cast(Table, SignInCounter.__table__)


class _DatabaseStore:
    """Counters in `sign_in_counters`, each change a conditional UPDATE on its version.

    Outside the request's transaction (autocommit), so a count stands whatever the request
    does next, and SQLite never has to upgrade a stale read to a write.
    """

    def _connection(self):
        return db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def get(self, key: str) -> Count:
        table = _table()
        with self._connection() as conn:
            row = conn.execute(select(table.c.hits, table.c.not_before, table.c.expires_at,
                                      table.c.version).where(table.c.key == key)).first()
        return Count(*row) if row else Count()

    def swap(self, key: str, old: Count, new: Count) -> bool:
        table = _table()
        values = {"hits": new.hits, "not_before": new.not_before,
                  "expires_at": new.expires_at, "version": new.version}
        with self._connection() as conn:
            if old.version == 0:
                conn.execute(delete(table).where(table.c.expires_at < clock()))
                try:
                    conn.execute(insert(table).values(key=key, **values))
                except IntegrityError:
                    return False  # another request stored it first
                return True
            done = conn.execute(update(table).where(table.c.key == key,
                                                    table.c.version == old.version)
                                .values(**values))
            return done.rowcount == 1

    def delete(self, key: str) -> None:
        table = _table()
        with self._connection() as conn:
            conn.execute(delete(table).where(table.c.key == key))


_REDIS_SWAP = """
if (redis.call('HGET', KEYS[1], 'version') or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'hits', ARGV[2], 'not_before', ARGV[3], 'expires_at', ARGV[4],
           'version', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
return 1
"""


class _RedisStore:
    """Counters as Redis hashes under Flask-Limiter's prefix (its reset clears them too)."""

    def __init__(self, storage) -> None:
        self.redis = storage.get_connection()
        self.prefix = storage.prefixed_key("storyhub-sign-in:")
        self.script = self.redis.register_script(_REDIS_SWAP)

    def get(self, key: str) -> Count:
        raw = self.redis.hgetall(self.prefix + key)
        if not raw:
            return Count()
        value = {k.decode(): v.decode() for k, v in raw.items()}
        return Count(int(value["hits"]), float(value["not_before"]),
                     float(value["expires_at"]), int(value["version"]))

    def swap(self, key: str, old: Count, new: Count) -> bool:
        # Redis forgets the key a little after the count ends, by its own (real) clock.
        forget_ms = int((max(new.expires_at, time.time()) + 60) * 1000)
        return bool(self.script(keys=[self.prefix + key], args=[
            str(old.version), new.hits, repr(new.not_before), repr(new.expires_at),
            new.version, forget_ms]))

    def delete(self, key: str) -> None:
        self.redis.delete(self.prefix + key)


def _store() -> _Store:
    from limits.storage import RedisStorage

    storage = limiter.storage if limiter.enabled else None
    if isinstance(storage, RedisStorage):
        if storage.check():
            return _RedisStore(storage)
        # Still limited while Redis is away: the database holds the counts meanwhile.
        logger.warning("Rate-limit storage (Redis) is not answering: sign-in limits are counted "
                       "in the database until it is back")
    return _DatabaseStore()


def _key(kind: str, value: str) -> str:
    """A counter's key: a keyed hash, so stored keys name no account or address."""
    secret = str(current_app.secret_key).encode()
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def _reserve(store: _Store, key: str, rule: Rule) -> float:
    """Reserve one password check on `key`: return 0, or the seconds to wait first."""
    for _ in range(_SWAP_TRIES):
        now = clock()
        old = store.get(key)
        live = old.version > 0 and old.expires_at > now
        hits = old.hits if live else 0
        if rule.delay:
            if live and now < old.not_before:
                return old.not_before - now
            hits += 1
            new = Count(hits, now + rule.wait_after(hits), now + rule.window, old.version + 1)
        else:
            if hits >= rule.free:
                return old.expires_at - now
            new = Count(hits + 1, 0.0, old.expires_at if live else now + rule.window,
                        old.version + 1)
        if store.swap(key, old, new):
            return 0.0
    return 1.0  # too many at once to count: refuse this one, briefly


def _give_back(store: _Store, key: str) -> None:
    for _ in range(_SWAP_TRIES):
        old = store.get(key)
        if old.version == 0 or old.hits == 0:
            return
        if store.swap(key, old, Count(old.hits - 1, old.not_before, old.expires_at,
                                      old.version + 1)):
            return


def format_wait(seconds: float) -> str:
    seconds = max(1, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _account_rule() -> Rule:
    configured = settings()
    return Rule(free=configured.login_account_free_attempts, window=24 * 3600.0,
                delay=configured.login_account_delay_seconds,
                max_delay=configured.login_account_max_delay_seconds)


def _address_rule() -> Rule:
    item = parse(settings().login_rate_limit)
    return Rule(free=item.amount, window=float(item.get_expiry()))


# Browsers that have signed in: a signed cookie with a random browser id and a tag per account.

def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.secret_key), salt="storyhub-browser")


def _account_tag(username: str) -> str:
    return _key("browser-account", username)[:16]


def _browser() -> dict | None:
    raw = request.cookies.get(BROWSER_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer().loads(raw, max_age=BROWSER_DAYS * 86400)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) \
            or not isinstance(data.get("accounts"), list):
        return None
    return data


def _vouched_browser(username: str) -> str | None:
    """The id of this browser if the account `username` has signed in on it before."""
    data = _browser()
    if data is not None and _account_tag(username) in data["accounts"]:
        return data["id"]
    return None


def remember_browser(response: Response, username: str) -> None:
    """Let this browser vouch for `username` at its next sign-ins."""
    data = _browser() or {"id": secrets.token_urlsafe(16), "accounts": []}
    tag = _account_tag(username)
    accounts = [t for t in data["accounts"] if t != tag][-(_BROWSER_ACCOUNTS - 1):] + [tag]
    response.set_cookie(BROWSER_COOKIE, _serializer().dumps({"id": data["id"],
                                                              "accounts": accounts}),
                        max_age=BROWSER_DAYS * 86400, httponly=True, samesite="Lax",
                        secure=settings().session_cookie_secure)


@dataclass
class Check:
    """A reserved password check; call `finish` with whether the password was right."""

    store: _Store
    account_key: str
    address_key: str | None

    def finish(self, correct: bool) -> None:
        if not correct:
            return
        self.store.delete(self.account_key)
        if self.address_key is not None:
            _give_back(self.store, self.address_key)


def begin_sign_in(username: str) -> Check:
    """Reserve a password check for `username` from this request, or raise TooManyAttempts."""
    store = _store()
    browser = _vouched_browser(username)
    address_key = None
    if browser is None:
        address_key = _key("address", request.remote_addr or "")
        wait = _reserve(store, address_key, _address_rule())
        if wait:
            logger.warning("Sign-in refused: too many wrong passwords from one address")
            raise TooManyAttempts(
                "There have been too many failed sign-ins from your network. Wait "
                f"{format_wait(wait)} and try again. A browser you have signed in with "
                "before is not held up.", wait)
        account_key = _key("account", username)
    else:
        account_key = _key("browser", f"{browser}:{username}")
    wait = _reserve(store, account_key, _account_rule())
    if wait:
        if address_key is not None:
            _give_back(store, address_key)
        logger.warning("Sign-in refused: too many wrong passwords for one account")
        raise TooManyAttempts(
            f"Too many wrong passwords for this username. Wait {format_wait(wait)} before "
            "trying again.", wait)
    return Check(store, account_key, address_key)


def begin_password_check(user_id: int) -> Check:
    """Reserve a check of a signed-in user's current password, or raise TooManyAttempts."""
    store = _store()
    key = _key("current-password", str(user_id))
    wait = _reserve(store, key, _account_rule())
    if wait:
        logger.warning("Password change refused: too many wrong current passwords for user %s",
                       user_id)
        raise TooManyAttempts(
            "You have typed a wrong current password too many times. Wait "
            f"{format_wait(wait)} and try again.", wait)
    return Check(store, key, None)
