"""The Lua scripts of the Redis coordinator: each one runs atomically on the server.

Every write script is safe to send twice: redis-py retries a command once after a connection
error, and the first attempt may have run even though its reply was lost. A claim or lock
carries the caller's random token and a counted run a random member, so the retry recognises
its own earlier write instead of reporting "taken by someone else" or counting twice.

Scores are integer microseconds since the epoch, passed as strings and never computed in Lua
(Lua 5.1 prints large numbers with 14 significant digits, which would round them).
"""

from __future__ import annotations

SET_IF_ABSENT = """
-- KEYS[1]: the claim or lock. ARGV[1]: this caller's token. ARGV[2]: time to live in ms.
-- 1: the key now holds our token (set here, or by our own retried call); 0: held by another.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return 1 end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

COMPARE_AND_DELETE = """
-- KEYS[1]: the lock. ARGV[1]: the token of the caller. 1: released; 0: not the owner.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

BUDGET = """
-- KEYS: one sorted set per window length of one budget key (score: run time in us).
-- ARGV[1]: '1' to count the run (take_budget), '0' to only check (budget_allows).
-- ARGV[2]: the run's score. ARGV[3]: the run's unique member.
-- Then per key i: ARGV[3i+1] cut-off score (now - window; runs at or before it are out),
-- ARGV[3i+2] the most runs the window admits, ARGV[3i+3] the key's time to live in ms.
-- 1: fits every window (and, when taking, counted in every one); 0: refused, nothing counted.
local take = ARGV[1] == '1'
if take and redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 1 end
for i, key in ipairs(KEYS) do
  local cutoff = ARGV[3 * i + 1]
  if take then redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff) end
  if redis.call('ZCOUNT', key, '(' .. cutoff, '+inf') >= tonumber(ARGV[3 * i + 2]) then
    return 0
  end
end
if take then
  for i, key in ipairs(KEYS) do
    redis.call('ZADD', key, ARGV[2], ARGV[3])
    redis.call('PEXPIRE', key, ARGV[3 * i + 3])
  end
end
return 1
"""
