// N async functions each awaiting a 10 ms timer, joined with Promise.all.
const { report, rssKb, sleep } = require("./common");
const n = Number(process.argv[2] || 100000);
(async () => {
  const ps = [];
  for (let i = 1; i <= n; i++) ps.push((async () => { await sleep(10); return i; })());
  const r = await Promise.all(ps);
  if (r.length !== n) throw new Error("wrong length");
  report({ rss_kb: rssKb() });
})();
