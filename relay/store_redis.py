"""Redis backend of ``MailStore``: several relay processes share mailboxes, prekeys, blobs and snapshots.

Keys (``P`` is the prefix, default ``pocketscan:``)::

    P mb:{account}          stream of envelopes (fields s=sender, t=time, x=expiry, e=envelope)
    P mbb:{account}         total envelope bytes in the mailbox (quota)
    P mbs:{account}         hash: "c:"+sender -> envelopes, "b:"+sender -> bytes (per-sender share)
    P cid:{sender}:{cid}    idempotency key -> "mid|recipient|time", expires with the TTL; at delivery
                            -> "mid||time", expiring ``delivered_id_ttl`` later
    P bq:{owner}            sorted set of the owner's live blob ids, score = expiry (blob quota)
    P bqs:{owner}           hash blob id -> size (blob quota)
    P tb:{key}              token bucket (k = tokens, s = stamp)
    P mailboxes             set of accounts with a mailbox (for pruning)
    P bundle:{account}      signed prekey bundle;  P otk:{account}  list of one-time prekeys
    P blob:{id}             hash owner/size/chunks/complete;  P blobc:{id}  list of chunks
    P uploads:{owner}       set of unfinished upload ids
    P snapshot              hash of the newest snapshot (version, blob, size, sha256, published)

Every multi-step change is one Lua script, so it is atomic across processes (one-time prekeys are
popped with LPOP inside the script: each is handed out once). Stream ids grow in commit order, so
re-reading a mailbox after a wake-up never skips an envelope. Wake-ups travel on the pub/sub
channels ``P wake`` (payload ``origin|account``, published by the store script itself), ``P snap``
and ``P pklow`` (payload ``origin|account|count``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from typing import Any

import cbor2
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from relay.errors import LimitExceeded, NotFound, RelayError, RequestFailed
from relay.limits import DAY, Limits
from relay.protocol import ErrorCode
from relay.store import MailWake, PrekeysWake, SnapshotInfo, SnapshotWake, Stored

__all__ = ["RedisStore"]

UPLOAD_TTL = int(1 * DAY)
_MID = re.compile(r"^\d{1,20}-\d{1,20}$")

_PUT = """
local prior = redis.call('GET', KEYS[1])
if prior then return {0, prior} end
local count = redis.call('XLEN', KEYS[2])
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
local size = string.len(ARGV[4])
if count + 1 > tonumber(ARGV[5]) or used + size > tonumber(ARGV[6]) then return {-1, ''} end
local mine = redis.call('HMGET', KEYS[6], 'c:' .. ARGV[1], 'b:' .. ARGV[1])
local mine_count, mine_bytes = tonumber(mine[1] or '0'), tonumber(mine[2] or '0')
if mine_count + 1 > tonumber(ARGV[10]) or mine_bytes + size > tonumber(ARGV[11]) then return {-2, ''} end
local mid = redis.call('XADD', KEYS[2], '*', 's', ARGV[1], 't', ARGV[3], 'x', ARGV[8], 'e', ARGV[4],
                       'c', ARGV[12])
redis.call('INCRBY', KEYS[3], size)
redis.call('HINCRBY', KEYS[6], 'c:' .. ARGV[1], 1)
redis.call('HINCRBY', KEYS[6], 'b:' .. ARGV[1], size)
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('EXPIRE', KEYS[3], ARGV[7])
redis.call('EXPIRE', KEYS[6], ARGV[7])
redis.call('SET', KEYS[1], mid .. '|' .. ARGV[2] .. '|' .. ARGV[3], 'EX', ARGV[7])
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('PUBLISH', KEYS[5], ARGV[9] .. '|' .. ARGV[2])
return {1, mid}
"""

_ACK = """
local done = {}
local freed = 0
local grace = tonumber(ARGV[2])
for i = 3, #ARGV do
  local mid = ARGV[i]
  local entries = redis.call('XRANGE', KEYS[1], mid, mid)
  if #entries > 0 then
    local fields = entries[1][2]
    local sender, cid, ts, size = nil, nil, nil, 0
    for j = 1, #fields, 2 do
      local name = fields[j]
      if name == 'e' then size = string.len(fields[j + 1])
      elseif name == 's' then sender = fields[j + 1]
      elseif name == 'c' then cid = fields[j + 1]
      elseif name == 't' then ts = fields[j + 1] end
    end
    freed = freed + size
    if sender then
      if redis.call('HINCRBY', KEYS[3], 'c:' .. sender, -1) <= 0 then
        redis.call('HDEL', KEYS[3], 'c:' .. sender, 'b:' .. sender)
      else
        redis.call('HINCRBY', KEYS[3], 'b:' .. sender, -size)
      end
      if cid then
        local key = ARGV[1] .. sender .. ':' .. cid
        local left = redis.call('TTL', key)
        if left > 0 then
          local keep = grace
          if left < keep then keep = left end
          redis.call('SET', key, mid .. '||' .. (ts or '0'), 'EX', math.max(1, keep))
        end
      end
    end
    redis.call('XDEL', KEYS[1], mid)
    table.insert(done, mid)
  end
end
if freed > 0 then
  local left = redis.call('DECRBY', KEYS[2], freed)
  if left < 0 then redis.call('SET', KEYS[2], 0) end
end
return done
"""

_PREKEYS_PUT = """
if ARGV[1] == '1' then
  redis.call('SET', KEYS[1], ARGV[2])
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  return -2
end
if ARGV[3] == '1' then redis.call('DEL', KEYS[2]) end
local count = redis.call('LLEN', KEYS[2])
local adding = #ARGV - 4
if count + adding > tonumber(ARGV[4]) then return -1 end
for i = 5, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
return count + adding
"""

_PREKEYS_GET = """
local bundle = redis.call('GET', KEYS[1])
if not bundle then return false end
if ARGV[1] ~= '1' then return {bundle} end
local otk = redis.call('LPOP', KEYS[2])
return {bundle, otk}
"""

# Blob quota bookkeeping shared by the blob scripts: KEYS[q] = bq:{owner} (ids by expiry),
# KEYS[q + 1] = bqs:{owner} (sizes); drops expired ids, returns (live blobs, their bytes).
_QUOTA_USAGE = """
local function quota_usage(zkey, hkey, now)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', zkey, '-inf', now)) do
    redis.call('ZREM', zkey, id)
    redis.call('HDEL', hkey, id)
  end
  local bytes = 0
  for _, v in ipairs(redis.call('HVALS', hkey)) do bytes = bytes + tonumber(v) end
  return redis.call('ZCARD', zkey), bytes
end
"""

_BLOB_CREATE = (
    _QUOTA_USAGE
    + """
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[4] .. id) == 0 then redis.call('SREM', KEYS[1], id) end
end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
if ARGV[6] == '1' then
  local count, bytes = quota_usage(KEYS[3], KEYS[4], ARGV[7])
  if count >= tonumber(ARGV[8]) then return -2 end
  if bytes >= tonumber(ARGV[9]) then return -3 end
  redis.call('ZADD', KEYS[3], tonumber(ARGV[7]) + tonumber(ARGV[2]), ARGV[5])
  redis.call('HSET', KEYS[4], ARGV[5], 0)
  redis.call('EXPIRE', KEYS[3], ARGV[10])
  redis.call('EXPIRE', KEYS[4], ARGV[10])
end
redis.call('HSET', KEYS[2], 'owner', ARGV[1], 'size', 0, 'chunks', 0, 'complete', 0)
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
)

_BLOB_APPEND = (
    _QUOTA_USAGE
    + """
local meta = redis.call('HMGET', KEYS[1], 'owner', 'size', 'complete')
if not meta[1] or meta[1] ~= ARGV[1] or meta[3] ~= '0' then return -1 end
local size = tonumber(meta[2]) + string.len(ARGV[2])
local over = 0
if size > tonumber(ARGV[4]) then over = -2
elseif ARGV[8] == '1' and string.len(ARGV[2]) > 0 then
  local count, bytes = quota_usage(KEYS[4], KEYS[5], ARGV[9])
  if bytes + string.len(ARGV[2]) > tonumber(ARGV[10]) then over = -3 end
end
if over < 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[7])
  redis.call('ZREM', KEYS[4], ARGV[7])
  redis.call('HDEL', KEYS[5], ARGV[7])
  return over
end
if ARGV[8] == '1' then
  local ttl = ARGV[6]
  if ARGV[3] == '1' then ttl = ARGV[5] end
  redis.call('HSET', KEYS[5], ARGV[7], size)
  redis.call('ZADD', KEYS[4], tonumber(ARGV[9]) + tonumber(ttl), ARGV[7])
  redis.call('EXPIRE', KEYS[4], ARGV[5])
  redis.call('EXPIRE', KEYS[5], ARGV[5])
end
if string.len(ARGV[2]) > 0 then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'chunks', 1)
end
redis.call('HSET', KEYS[1], 'size', size)
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'complete', 1)
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
  redis.call('SREM', KEYS[3], ARGV[7])
else
  redis.call('EXPIRE', KEYS[1], ARGV[6])
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
return size
"""
)

_BLOB_GET = """
local meta = redis.call('HMGET', KEYS[1], 'complete', 'size', 'chunks')
if meta[1] ~= '1' then return false end
if tonumber(meta[3]) == 0 and tonumber(ARGV[1]) == 0 then return {'', 0, tonumber(meta[2])} end
local data = redis.call('LINDEX', KEYS[2], tonumber(ARGV[1]))
if not data then return false end
return {data, tonumber(meta[3]), tonumber(meta[2])}
"""

_TOKEN = """
local state = redis.call('HMGET', KEYS[1], 'k', 's')
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(state[1] or '') or burst
local stamp = tonumber(state[2] or '') or now
local elapsed = now - stamp
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate)
if now > stamp then stamp = now end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'k', string.format('%.9f', tokens), 's', string.format('%.6f', stamp))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return allowed
"""

_SNAPSHOT_PUBLISH = """
local current = redis.call('HMGET', KEYS[1], 'version', 'blob')
if current[1] and tonumber(ARGV[1]) <= tonumber(current[1]) then return {-1, current[1]} end
local meta = redis.call('HMGET', KEYS[2], 'owner', 'complete', 'size')
if meta[1] ~= ARGV[5] or meta[2] ~= '1' or tonumber(meta[3]) ~= tonumber(ARGV[3]) then return {-2, ''} end
redis.call('PERSIST', KEYS[2])
redis.call('PERSIST', KEYS[3])
if current[2] then
  redis.call('EXPIRE', ARGV[7] .. current[2], ARGV[8])
  redis.call('EXPIRE', ARGV[9] .. current[2], ARGV[8])
end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'blob', ARGV[2], 'size', ARGV[3], 'sha256', ARGV[4],
           'published', ARGV[6])
return {1, ''}
"""


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore:
    """A ``MailStore`` in Redis, shared by every relay process pointed at it."""

    shared = True

    def __init__(self, url: str, *, prefix: str = "pocketscan:") -> None:
        self.url = url
        self.prefix = prefix
        self.origin = os.urandom(8).hex()
        """Identifies this process in wake-up messages (its own are ignored)."""
        self._redis: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._queue: list[tuple[str, list[str], list[Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def r(self) -> aioredis.Redis:
        if self._redis is None:
            raise RelayError("the store is not open")
        return self._redis

    async def open(self) -> None:
        # A blocking pool: under load, requests wait for one of the 64 connections instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(self.url, max_connections=64, timeout=30)
        self._redis = aioredis.Redis(connection_pool=pool, decode_responses=False)
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            await self._redis.aclose(close_connection_pool=True)
            self._redis = None
            raise RelayError(f"cannot reach Redis at {self.url}: {exc}") from None
        for name, source in (
            ("put", _PUT),
            ("ack", _ACK),
            ("pk_put", _PREKEYS_PUT),
            ("pk_get", _PREKEYS_GET),
            ("blob_create", _BLOB_CREATE),
            ("blob_append", _BLOB_APPEND),
            ("blob_get", _BLOB_GET),
            ("snap", _SNAPSHOT_PUBLISH),
            ("token", _TOKEN),
        ):
            self._scripts[name] = self._redis.register_script(source)

    async def close(self) -> None:
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
        if self._redis is not None:
            await self._redis.aclose(close_connection_pool=True)
            self._redis = None

    def k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self._scripts[name](keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise RelayError(f"Redis failure: {exc}") from None

    def _batched(self, name: str, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        """Queue a script call; the calls queued while a pipeline is in flight go in the next one.

        The hot path (store an envelope, delete acknowledged ones) then costs one round trip per
        batch instead of one per message; each script stays atomic on its own.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.append((name, keys, args, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return fut

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                pipe = self.r.pipeline(transaction=False)
                for name, keys, args, _ in batch:
                    await self._scripts[name](keys=keys, args=args, client=pipe)
                results = await pipe.execute(raise_on_error=False)
            except (RedisError, OSError) as exc:
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(RelayError(f"Redis failure: {exc}"))
                continue
            for (*_, fut), result in zip(batch, results, strict=True):
                if fut.done():
                    continue
                if isinstance(result, Exception):
                    fut.set_exception(RelayError(f"Redis failure: {result}"))
                else:
                    fut.set_result(result)

    # --- mailboxes -----------------------------------------------------------------------------

    def order_key(self, mid: str) -> tuple[int, int]:
        try:
            ms, seq = mid.split("-", 1)
            return (int(ms), int(seq))
        except ValueError:
            return (-1, -1)

    async def put_envelope(
        self, *, sender: str, recipient: str, cid: bytes, env: bytes, now: float, limits: Limits
    ) -> tuple[Stored, bool]:
        ttl = max(1, int(limits.ttl))
        status, value = await self._batched(
            "put",
            [
                self.k("cid", sender, cid.hex()),
                self.k("mb", recipient),
                self.k("mbb", recipient),
                self.k("mailboxes"),
                self.k("wake"),
                self.k("mbs", recipient),
            ],
            [
                sender,
                recipient,
                repr(now),
                env,
                limits.mailbox_max_messages,
                limits.mailbox_max_bytes,
                ttl,
                repr(now + limits.ttl),
                self.origin,
                limits.sender_max_messages,
                limits.sender_max_bytes,
                cid.hex(),
            ],
        )
        if status == -1:
            raise LimitExceeded(ErrorCode.QUOTA, "the recipient's mailbox is full; try again later")
        if status == -2:
            raise LimitExceeded(
                ErrorCode.QUOTA,
                "your undelivered envelopes fill your share of the recipient's mailbox; try again later",
            )
        if status == 0:
            mid, prior_recipient, ts = _s(value).split("|")
            return Stored(mid, sender, prior_recipient, float(ts), b""), False
        return Stored(_s(value), sender, recipient, now, env), True

    async def fetch(self, recipient: str, after: str | None, limit: int, now: float) -> list[Stored]:
        start = "-" if after is None or not _MID.match(after) else "(" + after
        try:
            entries: list[Any] = (
                await self.r.xrange(self.k("mb", recipient), min=start, max="+", count=limit)
            ) or []
        except (RedisError, OSError) as exc:
            raise RelayError(f"Redis failure: {exc}") from None
        out = []
        for mid, fields in entries:
            if float(fields.get(b"x", b"inf")) <= now:
                continue
            out.append(Stored(_s(mid), _s(fields[b"s"]), recipient, float(fields[b"t"]), bytes(fields[b"e"])))
        return out

    def _ack_keys(self, recipient: str) -> list[str]:
        return [self.k("mb", recipient), self.k("mbb", recipient), self.k("mbs", recipient)]

    async def ack(self, recipient: str, mids: list[str], now: float, limits: Limits) -> list[str]:
        valid = [m for m in mids if _MID.match(m)]
        if not valid:
            return []
        grace = max(1, int(limits.delivered_id_ttl))
        done = await self._batched("ack", self._ack_keys(recipient), [self.k("cid", ""), grace, *valid])
        return [_s(m) for m in done]

    # --- prekeys -------------------------------------------------------------------------------

    async def put_prekeys(
        self, account: str, bundle: bytes | None, otks: list[bytes], replace: bool, now: float, limits: Limits
    ) -> int:
        result = await self._run(
            "pk_put",
            [self.k("bundle", account), self.k("otk", account)],
            [
                "1" if bundle is not None else "0",
                bundle or b"",
                "1" if replace else "0",
                limits.max_otks,
                *otks,
            ],
        )
        if result == -2:
            raise RequestFailed(ErrorCode.BAD_REQUEST, "upload a signed bundle before one-time prekeys")
        if result == -1:
            raise LimitExceeded(ErrorCode.QUOTA, f"at most {limits.max_otks} one-time prekeys are kept")
        return int(result)

    async def get_prekeys(self, account: str, *, take_otk: bool = True) -> tuple[bytes, bytes | None] | None:
        result = await self._run(
            "pk_get", [self.k("bundle", account), self.k("otk", account)], ["1" if take_otk else "0"]
        )
        if not result:
            return None
        bundle, otk = result[0], (result[1] if len(result) > 1 else None)
        return bytes(bundle), (bytes(otk) if otk else None)

    async def count_prekeys(self, account: str) -> int:
        try:
            return int(await self.r.llen(self.k("otk", account)))
        except (RedisError, OSError) as exc:
            raise RelayError(f"Redis failure: {exc}") from None

    # --- blobs ---------------------------------------------------------------------------------

    async def blob_create(
        self, owner: str, blob_id: str, now: float, limits: Limits, *, quota: bool = True
    ) -> None:
        result = await self._run(
            "blob_create",
            [self.k("uploads", owner), self.k("blob", blob_id), self.k("bq", owner), self.k("bqs", owner)],
            [
                owner,
                UPLOAD_TTL,
                limits.uploads_per_account,
                self.k("blob", ""),
                blob_id,
                "1" if quota else "0",
                repr(now),
                limits.blob_quota_count,
                limits.blob_quota_bytes,
                max(1, int(limits.finished_blob_ttl)),
            ],
        )
        if result == -1:
            raise LimitExceeded(ErrorCode.QUOTA, f"at most {limits.uploads_per_account} unfinished uploads")
        if result == -2:
            raise LimitExceeded(
                ErrorCode.QUOTA,
                f"at most {limits.blob_quota_count} stored blobs per account; older ones expire",
            )
        if result == -3:
            raise LimitExceeded(
                ErrorCode.QUOTA,
                f"your stored blobs use the {limits.blob_quota_bytes}-byte quota; older ones expire",
            )

    async def blob_append(
        self,
        owner: str,
        blob_id: str,
        data: bytes,
        final: bool,
        max_size: int,
        now: float,
        limits: Limits,
        *,
        quota: bool = True,
    ) -> int:
        result = await self._run(
            "blob_append",
            [
                self.k("blob", blob_id),
                self.k("blobc", blob_id),
                self.k("uploads", owner),
                self.k("bq", owner),
                self.k("bqs", owner),
            ],
            [
                owner,
                data,
                "1" if final else "0",
                max_size,
                max(1, int(limits.finished_blob_ttl)),
                UPLOAD_TTL,
                blob_id,
                "1" if quota else "0",
                repr(now),
                limits.blob_quota_bytes,
            ],
        )
        if result == -1:
            raise NotFound("no unfinished upload with this id")
        if result == -2:
            raise LimitExceeded(ErrorCode.TOO_LARGE, f"blob exceeds the {max_size}-byte limit")
        if result == -3:
            raise LimitExceeded(
                ErrorCode.QUOTA,
                f"your stored blobs would exceed the {limits.blob_quota_bytes}-byte quota; older ones expire",
            )
        return int(result)

    async def blob_get(self, blob_id: str, chunk: int, now: float) -> tuple[bytes, int, int] | None:
        result = await self._run("blob_get", [self.k("blob", blob_id), self.k("blobc", blob_id)], [chunk])
        if not result:
            return None
        return bytes(result[0]), int(result[1]), int(result[2])

    # --- snapshots -----------------------------------------------------------------------------

    async def snapshot_publish(self, info: SnapshotInfo, publisher: str, now: float, limits: Limits) -> None:
        status, current = await self._run(
            "snap",
            [self.k("snapshot"), self.k("blob", info.blob), self.k("blobc", info.blob)],
            [
                info.version,
                info.blob,
                info.size,
                info.sha256,
                publisher,
                repr(now),
                self.k("blob", ""),
                max(1, int(limits.ttl)),
                self.k("blobc", ""),
            ],
        )
        if status == -1:
            raise RequestFailed(ErrorCode.STALE, f"version {info.version} is not newer than {_s(current)}")
        if status == -2:
            raise NotFound("no sealed upload of yours with this id")

    async def snapshot_latest(self) -> SnapshotInfo | None:
        try:
            fields: dict[Any, Any] = await self.r.hgetall(self.k("snapshot"))
        except (RedisError, OSError) as exc:
            raise RelayError(f"Redis failure: {exc}") from None
        if not fields:
            return None
        return SnapshotInfo(
            int(fields[b"version"]),
            _s(fields[b"blob"]),
            int(fields[b"size"]),
            bytes(fields[b"sha256"]),
            float(fields[b"published"]),
        )

    # --- maintenance and wake-ups --------------------------------------------------------------

    async def prune(self, now: float) -> dict[str, int]:
        """Trim expired envelopes (stream ids start with the insert time in ms); keys expire by themselves."""
        removed = 0
        try:
            accounts = await self.r.smembers(self.k("mailboxes"))
            for raw in accounts:
                account = _s(raw)
                key = self.k("mb", account)
                expired: list[Any] = (await self.r.xrange(key, min="-", max="+", count=1000)) or []
                stale = [mid for mid, fields in expired if float(fields.get(b"x", b"inf")) <= now]
                if stale:
                    await self._run(
                        "ack", self._ack_keys(account), [self.k("cid", ""), 1, *[_s(m) for m in stale]]
                    )
                    removed += len(stale)
                if not await self.r.exists(key):
                    await self.r.srem(self.k("mailboxes"), account)
        except (RedisError, OSError) as exc:
            raise RelayError(f"Redis failure: {exc}") from None
        return {"messages": removed}

    async def take_token(self, key: str, *, rate: float, burst: float, now: float) -> bool:
        if rate <= 0:
            return True
        result = await self._run("token", [self.k("tb", key)], [repr(rate), repr(burst), repr(now)])
        return int(result) == 1

    async def notify_prekeys_low(self, account: str, count: int) -> None:
        try:
            await self.r.publish(self.k("pklow"), f"{self.origin}|{account}|{count}")
        except (RedisError, OSError) as exc:
            raise RelayError(f"Redis failure: {exc}") from None

    async def notify_snapshot(self, info: SnapshotInfo) -> None:
        payload = cbor2.dumps(
            {
                "origin": self.origin,
                "version": info.version,
                "blob": info.blob,
                "size": info.size,
                "sha256": info.sha256,
                "published": info.published,
            }
        )
        try:
            await self.r.publish(self.k("snap"), payload)
        except (RedisError, OSError) as exc:
            raise RelayError(f"Redis failure: {exc}") from None

    async def listen(
        self, on_mail: MailWake, on_snapshot: SnapshotWake, on_prekeys_low: PrekeysWake | None = None
    ) -> None:
        wake, snap, pklow = self.k("wake").encode(), self.k("snap").encode(), self.k("pklow").encode()
        first = True
        while True:
            pubsub = self.r.pubsub()
            try:
                await pubsub.subscribe(wake, snap, pklow)
                if not first:  # wake-ups may have been lost while Redis was away: re-read every mailbox
                    result = on_mail("")
                    if result is not None:
                        await result
                first = False
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    if message["channel"] == wake:
                        origin, _, account = _s(message["data"]).partition("|")
                        if origin != self.origin:
                            result = on_mail(account)
                            if result is not None:
                                await result
                    elif message["channel"] == pklow:
                        origin, _, rest = _s(message["data"]).partition("|")
                        account, _, count = rest.partition("|")
                        if origin != self.origin and on_prekeys_low is not None and count.isdigit():
                            result = on_prekeys_low(account, int(count))
                            if result is not None:
                                await result
                    elif message["channel"] == snap:
                        data = cbor2.loads(message["data"])
                        if data.get("origin") != self.origin:
                            result = on_snapshot(
                                SnapshotInfo(
                                    data["version"],
                                    data["blob"],
                                    data["size"],
                                    data["sha256"],
                                    data["published"],
                                )
                            )
                            if result is not None:
                                await result
            except (RedisError, OSError):
                await asyncio.sleep(0.5)  # Redis restarting: resubscribe
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
