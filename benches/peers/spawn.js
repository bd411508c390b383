// N trivial async functions started, then each awaited in turn.
const { report, rssKb } = require("./common");
const n = Number(process.argv[2] || 1000000);
(async () => {
  const ps = [];
  for (let i = 1; i <= n; i++) ps.push((async () => i)());
  let sum = 0;
  for (let i = 0; i < n; i++) sum += await ps[i];
  if (sum !== (n * (n + 1)) / 2) throw new Error("wrong sum");
  report({ rss_kb: rssKb() });
})();
