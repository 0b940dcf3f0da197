// What a browser downloads of the front in a site folder's pkg/: the main module, and for each
// page that is a split point (a lazy route), the main module and that page's modules together
// (the split manifest lists them); raw, gzip -9 and brotli (quality 11, window 22, as
// cargo-leptos' --precompress writes it).
//   node scripts/bundle-report.js target/site/pkg
const fs = require("fs"), path = require("path"), zlib = require("zlib");
const { execFileSync } = require("child_process");
const dir = process.argv[2];
const files = fs.readdirSync(dir);
const size = (name) => {
  const data = fs.readFileSync(path.join(dir, name));
  return {
    raw: data.length,
    // gzip -9 itself: zlib's level 9 writes a few KB more.
    gz: execFileSync("gzip", ["-9", "-n", "-c", path.join(dir, name)], { maxBuffer: 1 << 30 }).length,
    br: zlib.brotliCompressSync(data, {
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_LGWIN]: 22 },
    }).length,
  };
};
const add = (a, b) => ({ raw: a.raw + b.raw, gz: a.gz + b.gz, br: a.br + b.br });
const show = (what, s, n) =>
  console.log(`${what.padEnd(34)} ${String(n).padStart(7)} ${[s.raw, s.gz, s.br].map((v) => v.toLocaleString("en-US").padStart(11)).join(" ")}`);
const main = files.find((f) => /^imshift\..*\.wasm$|^imshift\.wasm$/.test(f));
const manifest = files.find((f) => /^__wasm_split_manifest.*\.json$/.test(f));
const m = size(main);
console.log(`${"".padEnd(34)} modules         raw     gzip -9      brotli`);
show("main module", m, 1);
let all = m, count = 1;
for (const f of files.filter((f) => f.endsWith(".wasm") && f !== main)) {
  all = add(all, size(f));
  count += 1;
}
if (manifest) {
  const splits = JSON.parse(fs.readFileSync(path.join(dir, manifest), "utf8"));
  for (const [point, modules] of Object.entries(splits).sort()) {
    const page = point.replace(/^__/, "").replace(/_route_view_\d+$/, "");
    const s = modules.map((x) => size(`${x}.wasm`)).reduce(add, m);
    show(`first visit of ${page}`, s, modules.length + 1);
  }
}
show("every module together", all, count);
