// First-visit time to interactive: a browser with an empty cache opens a page of a running
// console and waits until the app has hydrated (body[data-hydrated]). Prints the median of 5.
//   BASE_URL=http://127.0.0.1:3000 EMAIL=… PASSWORD=… node tti.mjs [path] [--slow]
// --slow emulates a 10 Mbit/s line with 40 ms of latency.
import { chromium } from "@playwright/test";

const base = process.env.BASE_URL ?? "http://127.0.0.1:3000";
const path = process.argv.find((a, i) => i > 1 && a.startsWith("/")) ?? "/";
const slow = process.argv.includes("--slow");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
});
let storageState;
if (process.env.EMAIL) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(base + "/login");
  await page.locator("body[data-hydrated]").waitFor({ state: "attached" });
  await page.getByLabel("Email").fill(process.env.EMAIL);
  await page.getByLabel("Password").fill(process.env.PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("signed-in-user").waitFor();
  storageState = await ctx.storageState();
  await ctx.close();
}
const times = [];
let bytes = 0;
for (let i = 0; i < 5; i++) {
  const ctx = await browser.newContext({ storageState }); // a fresh HTTP cache each time
  const page = await ctx.newPage();
  if (slow) {
    const cdp = await ctx.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false, latency: 40, downloadThroughput: (10e6 / 8), uploadThroughput: (5e6 / 8),
    });
  }
  let wasm = 0;
  page.on("response", async (r) => {
    // The main module and every chunk of the page (lazy routes), as sent (compressed).
    if (r.url().endsWith(".wasm")) wasm += (await r.request().sizes()).responseBodySize;
  });
  await page.goto(base + path);
  await page.waitForFunction(() => document.body.hasAttribute("data-hydrated"), null, { polling: 10, timeout: 120_000 });
  const t = await page.evaluate(() => performance.now());
  times.push(t);
  bytes = wasm;
  await ctx.close();
}
await browser.close();
times.sort((a, b) => a - b);
console.log(JSON.stringify({ path, slow, median_ms: Math.round(times[2]), all_ms: times.map(Math.round), wasm_bytes_on_wire: bytes }));
