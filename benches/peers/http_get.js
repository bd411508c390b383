// N GETs of URL with INFLIGHT at once through http.get and a keep-alive
// agent: INFLIGHT workers, each sending its share in sequence.
const http = require("http");
const { report, rssKb } = require("./common");
const n = Number(process.argv[2] || 2000);
const url = process.argv[3];
const inflight = Number(process.argv[4] || 200);
const agent = new http.Agent({ keepAlive: true });
const get = () =>
  new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}`))));
      })
      .on("error", reject);
  });
(async () => {
  const t0 = performance.now();
  const workers = [];
  for (let w = 0; w < inflight; w++) {
    workers.push((async () => { for (let i = 0; i < Math.floor(n / inflight); i++) await get(); })());
  }
  await Promise.all(workers);
  report({ ms: (performance.now() - t0).toFixed(1), rss_kb: rssKb() });
  agent.destroy();
})();
