// What a browser downloads of the front in a site folder's pkg/: the main module, and for each
// page that is a split point (a lazy route), the main module and that page's modules together
// (the split manifest lists them); raw, gzip -9, and brotli as sent (the .br file the build's
// --precompress wrote, else quality 11, window 22 as it writes them).
//   node scripts/bundle-report.js target/site/pkg
const fs = require("fs"), path = require("path"), zlib = require("zlib");
const { execFileSync } = require("child_process");
const dir = process.argv[2];
const files = fs.readdirSync(dir);
const brotli = (file, data) =>
  fs.existsSync(`${file}.br`)
    ? fs.statSync(`${file}.br`).size
    : zlib.brotliCompressSync(data, {
        params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_LGWIN]: 22 },
      }).length;
// Every module sized once: pages share most of theirs.
const sizes = new Map();
for (const name of files.filter((f) => f.endsWith(".wasm"))) {
  const file = path.join(dir, name);
  const data = fs.readFileSync(file);
  sizes.set(name, {
    raw: data.length,
    // gzip -9 itself: zlib's level 9 writes a few KB more.
    gz: execFileSync("gzip", ["-9", "-n", "-c", file], { maxBuffer: 1 << 30 }).length,
    br: brotli(file, data),
  });
}
const add = (a, b) => ({ raw: a.raw + b.raw, gz: a.gz + b.gz, br: a.br + b.br });
const show = (what, s, n) =>
  console.log(`${what.padEnd(34)} ${String(n).padStart(7)} ${[s.raw, s.gz, s.br].map((v) => v.toLocaleString("en-US").padStart(11)).join(" ")}`);
const main = [...sizes.keys()].find((f) => /^imshift(\..+)?\.wasm$/.test(f));
const m = sizes.get(main);
console.log(`${"".padEnd(34)} modules         raw     gzip -9      brotli`);
show("main module", m, 1);
const manifest = files.find((f) => /^__wasm_split_manifest.*\.json$/.test(f));
if (manifest) {
  const splits = JSON.parse(fs.readFileSync(path.join(dir, manifest), "utf8"));
  for (const [point, modules] of Object.entries(splits).sort()) {
    const page = point.replace(/^__/, "").replace(/_route_view_\d+$/, "");
    show(`first visit of ${page}`, modules.map((x) => sizes.get(`${x}.wasm`)).reduce(add, m), modules.length + 1);
  }
}
show("every module together", [...sizes.values()].reduce(add), sizes.size);
