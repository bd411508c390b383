---@meta luaco
-- LuaLS definitions of the luaco API (written by `luaco types`). Every
-- global luaco installs is here; they are also fields of require("luaco").

---@class luaco.Error
---@field kind "runtime"|"type"|"timeout"|"network"|"io"|"permission"|"json"|"cancelled"|"limit"|"aggregate"|string
---@field message string
---@field traceback? string
---@field code? string     # errno name for io errors ("ENOENT"), limit name for limits ("instructions", "memory", "time")
---@field errors? any[]    # for kind "aggregate": every rejection, in list order

---@class luaco.Promise<T>
---@field then fun(self: luaco.Promise, on_ok?: fun(value: any): any, on_err?: fun(error: any): any): luaco.Promise   # `p:next`, for thenables
local Promise = {}

--- Runs `on_ok(value)` or `on_err(error)` as a task once this settles;
--- returns a promise of the handler's result.
---@generic T, U
---@param on_ok? fun(value: T): U
---@param on_err? fun(error: any): U
---@return luaco.Promise<U>
function Promise:next(on_ok, on_err) end

--- `p:next`.
---@generic T, U
---@param on_ok? fun(value: T): U
---@param on_err? fun(error: any): U
---@return luaco.Promise<U>
function Promise:and_then(on_ok, on_err) end

--- `p:next(nil, on_err)`.
---@generic U
---@param on_err fun(error: any): U
---@return luaco.Promise<U>
function Promise:catch(on_err) end

--- Runs `fn` (which may await) whatever the outcome; keeps the outcome.
---@param fn fun()
---@return luaco.Promise<T>
function Promise:finally(fn) end

--- "pending", "resolved", "rejected" or "cancelled".
---@return "pending"|"resolved"|"rejected"|"cancelled"
function Promise:status() end

--- Cancels the promise and the task behind it (its `<close>` values run,
--- its child tasks are cancelled); true if it was still pending.
---@return boolean
function Promise:cancel() end

--- `await(p)`.
---@async
---@return T
function Promise:await() end

--- Runs `fn(...)` as a task (starting on a later turn); a promise of its
--- first return value.
---@generic T
---@param fn fun(...): T
---@param ... any
---@return luaco.Promise<T>
function async(fn, ...) end

--- `async`, kept for older scripts.
---@generic T
---@param fn fun(...): T
---@param ... any
---@return luaco.Promise<T>
function try_async(fn, ...) end

--- Suspends the running task until `p` settles; its value, or raises its
--- error. A non-promise value is returned as it is.
---@async
---@generic T
---@param p luaco.Promise<T>|T
---@return T
function await(p) end

--- Resolves with every value, in list order, once all resolve; rejects
--- with the first rejection. Non-promise items count as values.
---@async
---@param list any[]
---@return luaco.Promise<any[]>
function all(list) end

---@class luaco.Settled
---@field status "resolved"|"rejected"|"cancelled"
---@field value? any
---@field reason? any

--- Waits for every item; a list of `{status, value|reason}` (note:
--- "resolved", where Node says "fulfilled").
---@param list any[]
---@return luaco.Promise<luaco.Settled[]>
function all_settled(list) end

--- The first to resolve; rejects with kind "aggregate" if all reject.
---@param list any[]
---@return luaco.Promise<any>
function any(list) end

--- The first to settle, either way. `race({})` raises kind "type".
---@param list any[]
---@return luaco.Promise<any>
function race(list) end

--- `fn(item, index)` for each item as tasks, at most `limit` at once; a
--- promise of the results in list order.
---@param list any[]
---@param fn fun(item: any, index: integer): any
---@param limit? integer
---@return luaco.Promise<any[]>
function map(list, fn, limit) end

--- Rejects with kind "timeout" if `p` has not settled within `ms` (and
--- cancels it); else settles as `p`.
---@generic T
---@param p luaco.Promise<T>
---@param ms number
---@return luaco.Promise<T>
function timeout(p, ms) end

--- A promise that resolves after `ms` milliseconds.
---@param ms number
---@return luaco.Promise<nil>
function sleep(ms) end

---@class luaco.Timer
local Timer = {}
--- Stops the timer; true if it was still pending.
---@return boolean
function Timer:cancel() end

--- Calls `fn` once after `ms` milliseconds (as a task).
---@param fn fun()
---@param ms number
---@return luaco.Timer
function set_timeout(fn, ms) end

--- Calls `fn` every `ms` milliseconds until cancelled.
---@param fn fun()
---@param ms number
---@return luaco.Timer
function set_interval(fn, ms) end

--- Milliseconds on the loop's clock (read once per turn).
---@return number
function now() end

---@class luaco.PromiseLib
promise = {}
--- A promise settled by `executor(resolve, reject)`.
---@generic T
---@param executor fun(resolve: fun(value: T), reject: fun(reason: any))
---@return luaco.Promise<T>
function promise.new(executor) end
---@generic T
---@param value T
---@return luaco.Promise<T>
function promise.resolve(value) end
---@param reason any
---@return luaco.Promise<nil>
function promise.reject(reason) end
---@param list any[]
---@return luaco.Promise<any[]>
function promise.all(list) end
---@param list any[]
---@return luaco.Promise<luaco.Settled[]>
function promise.all_settled(list) end
---@param list any[]
---@return luaco.Promise<any>
function promise.any(list) end
---@param list any[]
---@return luaco.Promise<any>
function promise.race(list) end
---@generic T
---@param p luaco.Promise<T>
---@param ms number
---@return luaco.Promise<T>
function promise.timeout(p, ms) end

---@class luaco.Request
---@field method? string            # default "GET"
---@field url string
---@field headers? table<string, string>
---@field body? string
---@field timeout_ms? number        # default 30000

---@class luaco.RequestOptions
---@field method? string
---@field headers? table<string, string>
---@field body? string
---@field timeout_ms? number

---@class luaco.Response
---@field status integer
---@field headers table<string, string>   # names in lower case
---@field body string

---@class luaco.Http
http = {}
--- Sends a request; rejects with kind "network", "timeout", "limit",
--- "type" or "permission".
---@param request luaco.Request
---@return luaco.Promise<luaco.Response>
function http.request(request) end
--- `http.request` with method GET.
---@param url string
---@param opts? luaco.RequestOptions
---@return luaco.Promise<luaco.Response>
function http.get(url, opts) end

--- `http.get`.
---@param url string
---@param opts? luaco.RequestOptions
---@return luaco.Promise<luaco.Response>
function http_get(url, opts) end

---@class luaco.Stat
---@field size integer
---@field type "file"|"dir"|"link"|"other"
---@field modified number   # seconds since the epoch

---@class luaco.MkdirOptions
---@field parents? boolean

---@class luaco.Fs
fs = {}
---@param path string
---@return luaco.Promise<string>
function fs.read(path) end
---@param path string
---@param data string
---@return luaco.Promise<nil>
function fs.write(path, data) end
---@param path string
---@param data string
---@return luaco.Promise<nil>
function fs.append(path, data) end
---@param path string
---@return luaco.Promise<boolean>
function fs.exists(path) end
---@param path string
---@return luaco.Promise<string[]>
function fs.list(path) end
---@param path string
---@param opts? luaco.MkdirOptions
---@return luaco.Promise<nil>
function fs.mkdir(path, opts) end
--- Removes a file or an empty directory.
---@param path string
---@return luaco.Promise<nil>
function fs.remove(path) end
---@param from string
---@param to string
---@return luaco.Promise<nil>
function fs.rename(from, to) end
---@param path string
---@return luaco.Promise<luaco.Stat>
function fs.stat(path) end

---@class luaco.Json
---@field null userdata   # what JSON null decodes to
json = {}
--- Compact JSON, object keys sorted; raises kind "type" for cycles and functions.
---@param value any
---@return string
function json.encode(value) end
--- Raises kind "json" with the line and column of bad input.
---@param text string
---@return any
function json.decode(text) end
--- Marks `t` to encode as an array, even when empty.
---@generic T: table
---@param t T
---@return T
function json.array(t) end

--- `json.decode`.
---@param text string
---@return any
function json_parse(text) end

---@class luaco.Semaphore
local Semaphore = {}
--- A promise of a permit; release it with `:release()`.
---@return luaco.Promise<boolean>
function Semaphore:acquire() end
function Semaphore:release() end
--- Runs `fn(...)` holding a permit, releasing it however `fn` ends.
---@async
---@param fn fun(...): any
---@return any
function Semaphore:with(fn, ...) end
---@return integer
function Semaphore:available() end

---@class luaco.Channel
local Channel = {}
--- A promise that resolves when the value is taken or buffered; rejects
--- on a closed channel. `nil` cannot be sent.
---@param value any
---@return luaco.Promise<boolean>
function Channel:send(value) end
--- The next value; nil once the channel is closed and drained.
---@return luaco.Promise<any>
function Channel:recv() end
function Channel:close() end
---@return boolean
function Channel:is_closed() end

---@class luaco.Sync
sync = {}
---@param permits integer
---@return luaco.Semaphore
function sync.semaphore(permits) end
---@param capacity? integer   # 0: every send waits for a receiver
---@return luaco.Channel
function sync.channel(capacity) end

---@class luaco.Subscription
local Subscription = {}
--- Stops delivery; true if it was still subscribed.
---@return boolean
function Subscription:off() end

---@class luaco.LifecycleEvent
---@field thread_id integer
---@field script_name string
---@field status "pending"|"resolved"|"rejected"|"cancelled"
---@field execution_time_ms number
---@field memory_usage_bytes integer
---@field yield_count integer

---@class luaco.Events
events = {}
--- Runs `fn(data, name)` as a task for each event `name` reaches: a
--- name, `prefix.*` (one name part more) or `*`.
---@param name string
---@param fn fun(data: any, name: string)
---@return luaco.Subscription
function events.on(name, fn) end
--- A promise of the next event's data.
---@param name string
---@return luaco.Promise<any>
function events.once(name) end
--- The number of handlers and waiters it reached (Rust subscribers included).
---@param name string
---@param data? any
---@return integer
function events.emit(name, data) end
