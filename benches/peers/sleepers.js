// N async functions suspended on a timer at once: resident memory per task.
const { report, rssKb, sleep } = require("./common");
const n = Number(process.argv[2] || 1000000);
(async () => {
  if (global.gc) global.gc();
  const before = process.memoryUsage().rss;
  const ps = [];
  for (let i = 1; i <= n; i++) ps.push((async () => { await sleep(500); return i; })());
  await sleep(1);
  const during = process.memoryUsage().rss;
  await Promise.all(ps);
  report({ rss_kb: rssKb(), bytes_per_task: Math.floor((during - before) / n) });
})();
