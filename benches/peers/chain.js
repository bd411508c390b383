// A chain of N .then handlers, each on the previous promise.
const { report, rssKb } = require("./common");
const n = Number(process.argv[2] || 100000);
(async () => {
  let p = Promise.resolve(0);
  for (let i = 0; i < n; i++) p = p.then((v) => v + 1);
  if ((await p) !== n) throw new Error("wrong result");
  report({ rss_kb: rssKb() });
})();
