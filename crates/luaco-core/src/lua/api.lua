-- The public API table: what scripts see as globals and as
-- require("luaco"). Modules (timers, I/O, events) add their entries to it.
local core = ...

local promise = core.promise
core.api = {
  async = core.spawn,
  try_async = core.spawn,
  await = core.await_c,
  promise = promise,
  all = promise.all,
  all_settled = promise.all_settled,
  race = promise.race,
  any = promise.any,
  timeout = promise.timeout,
  map = core.map,
  sync = core.sync,
}
