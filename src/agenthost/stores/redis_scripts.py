"""The Lua scripts that make each multi-key Redis write atomic.

Redis runs a script alone, start to finish, so a turn's messages, its run and
the session's counters change together or not at all, and a lease is checked
and taken in one step. Times travel as strings of microseconds and are only
turned into Lua numbers to compare them (Lua would print a large number back
in exponent form). ARGV[1] is always the key prefix; key names are built here
as in ``redis_layout`` (which is why the store targets a single Redis
server, not Redis Cluster).
"""

from __future__ import annotations

import json
from typing import Final

from agenthost.stores.base import INTERRUPTED_ERROR

_PRELUDE: Final = """
local p = ARGV[1]
local function k(kind, id) return p .. ':' .. kind .. ':' .. id end
local function interrupt(rid, now)
  local rk = k('run', rid)
  redis.call('SREM', p .. ':running', rid)
  if redis.call('HGET', rk, 'status') ~= 'running' then return 0 end
  redis.call('HSET', rk, 'status', 'interrupted', 'error', %s, 'finished_at', now)
  local sid = redis.call('HGET', rk, 'session_id')
  if sid and redis.call('EXISTS', k('session', sid)) == 1 then
    redis.call('HSET', k('session', sid), 'running', '')
  end
  return 1
end
local function give_back(sid, token)
  local lk = k('lease', sid)
  local cur = redis.call('HMGET', lk, 'token', 'holder')
  if cur[1] == token then
    redis.call('DEL', lk)
    redis.call('SREM', k('holder', cur[2]), sid)
  end
end
local function touch(sid, ttl)
  if tonumber(ttl) > 0 then
    for _, kind in ipairs({'session', 'messages', 'message-seq', 'runs', 'lease'}) do
      redis.call('PEXPIRE', k(kind, sid), ttl)
    end
  end
end
local function lease_live(sid, now)
  local expires = redis.call('HGET', k('lease', sid), 'expires_at')
  return expires and tonumber(expires) > tonumber(now)
end
local function take(sid, holder, token, now, expires)
  local lk = k('lease', sid)
  local old = redis.call('HGET', lk, 'holder')
  if old then redis.call('SREM', k('holder', old), sid) end
  redis.call('HSET', lk, 'holder', holder, 'token', token, 'expires_at', expires)
  redis.call('SADD', k('holder', holder), sid)
  local running = redis.call('HGET', k('session', sid), 'running')
  if running and running ~= '' then interrupt(running, now) end
end
local function open_run(sid, rid, now, model, mid, doc, ttl)
  local rk = k('run', rid)
  redis.call('HSET', rk, 'session_id', sid, 'status', 'running', 'model', model,
    'prompt_tokens', 0, 'completion_tokens', 0, 'started_at', now)
  redis.call('SADD', k('runs', sid), rid)
  redis.call('SADD', p .. ':running', rid)
  local seq = redis.call('RPUSH', k('messages', sid), doc)
  redis.call('HSET', k('message-seq', sid), mid, seq)
  redis.call('HSET', k('session', sid), 'message_count', seq, 'updated_at', now, 'running', rid)
  touch(sid, ttl)
  if tonumber(ttl) > 0 then redis.call('PEXPIRE', rk, ttl) end
  return seq
end
""" % json.dumps(INTERRUPTED_ERROR)  # noqa: UP031 (Lua's own braces make format() awkward)

# ARGV: prefix, session id, holder, token, now, expires at, ttl ms
ACQUIRE_LEASE: Final = (
    _PRELUDE
    + """
local sid, now = ARGV[2], ARGV[5]
if redis.call('EXISTS', k('session', sid)) == 0 then return 'missing' end
if lease_live(sid, now) then return 'busy' end
take(sid, ARGV[3], ARGV[4], now, ARGV[6])
touch(sid, ARGV[7])
return 'ok'
"""
)

# ARGV: prefix, session id, token, now, expires at, ttl ms
RENEW_LEASE: Final = (
    _PRELUDE
    + """
local sid, token, now = ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', k('session', sid)) == 0 then return 'missing' end
local lk = k('lease', sid)
local cur = redis.call('HMGET', lk, 'token', 'expires_at')
if cur[1] ~= token or tonumber(cur[2]) <= tonumber(now) then return 'lost' end
redis.call('HSET', lk, 'expires_at', ARGV[5])
touch(sid, ARGV[6])
return 'ok'
"""
)

# ARGV: prefix, session id, token
RELEASE_LEASE: Final = (
    _PRELUDE
    + """
give_back(ARGV[2], ARGV[3])
return 'ok'
"""
)

# ARGV: prefix, session id, token, now, run id, model, message id, message doc, ttl ms
BEGIN_TURN: Final = (
    _PRELUDE
    + """
local sid, token, now, rid = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local sk = k('session', sid)
if redis.call('EXISTS', sk) == 0 then return {'missing'} end
local cur = redis.call('HMGET', k('lease', sid), 'token', 'expires_at')
if cur[1] ~= token or tonumber(cur[2]) <= tonumber(now) then return {'lost'} end
local running = redis.call('HGET', sk, 'running')
if running and running ~= '' and redis.call('HGET', k('run', running), 'status') == 'running' then
  return {'running'}
end
if redis.call('EXISTS', k('run', rid)) == 1 then return {'duplicate'} end
return {'ok', open_run(sid, rid, now, ARGV[6], ARGV[7], ARGV[8], ARGV[9])}
"""
)

# begin_turn taking the lease: every check first, so that a refusal writes nothing.
# ARGV: prefix, session id, holder, token, now, expires at, run id, model, message id,
#       message doc, ttl ms
TAKE_AND_BEGIN_TURN: Final = (
    _PRELUDE
    + """
local sid, now, rid = ARGV[2], ARGV[5], ARGV[7]
if redis.call('EXISTS', k('session', sid)) == 0 then return {'missing'} end
if lease_live(sid, now) then return {'busy'} end
if redis.call('EXISTS', k('run', rid)) == 1 then return {'duplicate'} end
take(sid, ARGV[3], ARGV[4], now, ARGV[6])
return {'ok', open_run(sid, rid, now, ARGV[8], ARGV[9], ARGV[10], ARGV[11])}
"""
)

# ARGV: prefix, run id, now, status, prompt tokens, completion tokens, has error (0/1),
#       error, total tokens, ttl ms, n, lease token to give back ('' for none),
#       then n pairs of (message id, message doc)
COMPLETE_TURN: Final = (
    _PRELUDE
    + """
local rid, now = ARGV[2], ARGV[3]
local rk = k('run', rid)
local run = redis.call('HMGET', rk, 'session_id', 'status')
if not run[1] then return {'missing'} end
if run[2] ~= 'running' then return {'finished', run[2]} end
local sid = run[1]
local sk, mk, qk = k('session', sid), k('messages', sid), k('message-seq', sid)
if redis.call('EXISTS', sk) == 0 then return {'missing'} end
local seq = redis.call('LLEN', mk)
local first = seq + 1
for i = 1, tonumber(ARGV[11]) do
  seq = redis.call('RPUSH', mk, ARGV[12 + 2 * i])
  redis.call('HSET', qk, ARGV[11 + 2 * i], seq)
end
redis.call('HSET', sk, 'message_count', seq, 'updated_at', now, 'running', '')
redis.call('HINCRBY', sk, 'total_tokens', ARGV[9])
redis.call('HSET', rk, 'status', ARGV[4], 'prompt_tokens', ARGV[5],
  'completion_tokens', ARGV[6], 'finished_at', now)
if ARGV[7] == '1' then
  redis.call('HSET', rk, 'error', ARGV[8])
else
  redis.call('HDEL', rk, 'error')
end
redis.call('SREM', p .. ':running', rid)
if ARGV[12] ~= '' then give_back(sid, ARGV[12]) end
touch(sid, ARGV[10])
if tonumber(ARGV[10]) > 0 then redis.call('PEXPIRE', rk, ARGV[10]) end
return {'ok', first, redis.call('HGETALL', sk), redis.call('HGETALL', rk)}
"""
)

# ARGV: prefix, session id, owner mode ('any', 'none' or 'owner'), owner id
DELETE_SESSION: Final = (
    _PRELUDE
    + """
local sid, mode = ARGV[2], ARGV[3]
local sk, lk = k('session', sid), k('lease', sid)
local s = redis.call('HMGET', sk, 'owner', 'created_at')
if not s[2] then return 'missing' end
if (mode == 'none' and s[1] ~= '') or (mode == 'owner' and s[1] ~= ARGV[4]) then
  return 'missing'
end
for _, rid in ipairs(redis.call('SMEMBERS', k('runs', sid))) do
  redis.call('UNLINK', k('run', rid))
  redis.call('SREM', p .. ':running', rid)
end
local holder = redis.call('HGET', lk, 'holder')
if holder then redis.call('SREM', k('holder', holder), sid) end
redis.call('UNLINK', sk, lk, k('messages', sid), k('message-seq', sid), k('runs', sid))
local member = string.rep('0', 20 - #s[2]) .. s[2] .. ':' .. sid
local owner = s[1]
if owner == '' then owner = '-' end
redis.call('ZREM', k('owner', owner), member)
redis.call('ZREM', p .. ':sessions', member)
return 'ok'
"""
)

# ARGV: prefix, holder, now
MARK_INTERRUPTED: Final = (
    _PRELUDE
    + """
local holder, now = ARGV[2], ARGV[3]
local hk = k('holder', holder)
local count = 0
for _, sid in ipairs(redis.call('SMEMBERS', hk)) do
  local lk = k('lease', sid)
  if redis.call('HGET', lk, 'holder') == holder then
    redis.call('DEL', lk)
    local running = redis.call('HGET', k('session', sid), 'running')
    if running and running ~= '' then count = count + interrupt(running, now) end
  end
end
redis.call('DEL', hk)
return count
"""
)

# ARGV: prefix, now
RECOVER_INTERRUPTED: Final = (
    _PRELUDE
    + """
local now = ARGV[2]
local count = 0
for _, rid in ipairs(redis.call('SMEMBERS', p .. ':running')) do
  local sid = redis.call('HGET', k('run', rid), 'session_id')
  if not sid then
    redis.call('SREM', p .. ':running', rid)
  else
    local expires = redis.call('HGET', k('lease', sid), 'expires_at')
    if not expires or tonumber(expires) <= tonumber(now) then
      count = count + interrupt(rid, now)
    end
  end
end
return count
"""
)

# KEYS: the idempotency key. ARGV: prefix, fingerprint, run id, now, expires at, ttl ms
PUT_IDEMPOTENCY: Final = """
local cur = redis.call('HMGET', KEYS[1], 'fingerprint', 'run_id', 'created_at', 'expires_at')
if cur[1] and tonumber(cur[4]) > tonumber(ARGV[4]) then
  if cur[1] ~= ARGV[2] then return {'conflict'} end
  return {'existing', cur[2], cur[3], cur[4]}
end
redis.call('HSET', KEYS[1], 'fingerprint', ARGV[2], 'run_id', ARGV[3], 'created_at', ARGV[4],
  'expires_at', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {'new'}
"""

# KEYS: the API key's hash. ARGV: prefix, field, value, only if unset (0/1)
UPDATE_API_KEY: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
if ARGV[4] == '1' then
  redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[3])
else
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
end
return redis.call('HGETALL', KEYS[1])
"""

# ARGV: prefix, index key, highest member (exclusive, or '+'), count
# One JSON reply instead of a hash per session: far less for the client to parse.
LIST_SESSIONS: Final = (
    _PRELUDE
    + """
local rows = {}
local items = redis.call('ZREVRANGEBYLEX', ARGV[2], ARGV[3], '-', 'LIMIT', 0, ARGV[4])
for i, item in ipairs(items) do
  local sid = string.sub(item, 22)
  rows[i] = {item, unpack(redis.call('HMGET', k('session', sid), 'owner', 'agent', 'title',
    'created_at', 'updated_at', 'message_count', 'total_tokens', 'metadata'))}
end
return cjson.encode(rows)
"""
)
