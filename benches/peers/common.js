// Shared by the Node.js peer programs: the report line `cargo xtask bench` reads.
exports.report = (fields) => {
  const parts = ["result"];
  for (const k of Object.keys(fields).sort()) parts.push(`${k}=${fields[k]}`);
  console.log(parts.join(" "));
};
exports.rssKb = () => process.resourceUsage().maxRSS;
exports.sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
exports.percentile = (list, p) => {
  list.sort((a, b) => a - b);
  return list[Math.max(0, Math.min(list.length - 1, Math.ceil(list.length * p) - 1))];
};
