// N timers with delays spread over one second: how late each fires after
// its deadline (the time it was set plus its delay).
const { report, rssKb, percentile } = require("./common");
const { performance } = require("perf_hooks");
const n = Number(process.argv[2] || 100000);
// argv[3]: added to every delay (1500: all made at once, due 1.5-2.5 s later).
const base = Number(process.argv[3] || 0);
const late = [];
let done = 0;
for (let i = 1; i <= n; i++) {
  const delay = base + ((i * 7919) % 1000);
  const start = performance.now();
  setTimeout(() => {
    late.push(performance.now() - (start + delay));
    if (++done === n) {
      report({ rss_kb: rssKb(), p50_ms: percentile(late, 0.5).toFixed(3), p99_ms: percentile(late, 0.99).toFixed(3) });
    }
  }, delay);
}
