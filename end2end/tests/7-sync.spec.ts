import { test, expect, Browser, BrowserContext, Page } from "@playwright/test";

// Coexistence in the console: both sides rehearsed in sandboxes (the relay sandbox as the
// self-built old system, the Tencent IM sandbox as the new one), both directions turned on
// from the Sync tab, a test message sent each way, and the health figures and the event log
// following without a reload. Loaded directly, with no console error. Sets the console up
// when it runs alone.

const OWNER = "owner@example.com";
const PASSWORD = "correct horse battery";
const RUN = Date.now().toString(36);
const WIDTH = 1280;

test.use({ viewport: { width: WIDTH, height: 900 } });

async function hydrated(page: Page) {
  await page.locator("body[data-hydrated]").waitFor({ state: "attached" });
}

async function signIn(browser: Browser): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: WIDTH, height: 900 } });
  const page = await context.newPage();
  await page.goto("/setup");
  await hydrated(page);
  if (page.url().endsWith("/setup")) {
    await page.getByLabel("Email").fill(OWNER);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByLabel("Repeat password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create owner account" }).click();
  } else {
    await page.goto("/login");
    await hydrated(page);
    await page.getByLabel("Email").fill(OWNER);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
  }
  await expect(page.getByTestId("signed-in-user")).toContainText(OWNER);
  return { context, page };
}

test("sync turned on from the Sync tab carries a test message each way and the health follows live", async ({ browser, baseURL }) => {
  test.setTimeout(120_000);
  const { context, page: first } = await signIn(browser);
  const api = first.request;
  const headers = { origin: baseURL! };
  const created = await api.post("/api/v1/migrations", {
    headers,
    data: { name: `Coexist ${RUN}`, strategy: "coexistence", source: "self_built", target: "tencent" },
  });
  expect(created.status()).toBe(201);
  const id = (await created.json()).id;
  for (const side of ["source", "target"]) {
    const r = await api.post(`/api/v1/migrations/${id}/connections/${side}/sandbox`, { headers });
    expect(r.status(), await r.text()).toBe(200);
  }
  await first.close();

  // The tab loaded directly, as after a refresh or a shared link.
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`uncaught: ${e.message}`));
  await page.goto(`/migrations/${id}/sync`);
  // A panic during hydration leaves the page dead: say what the console said.
  await page
    .locator("body[data-hydrated]")
    .waitFor({ state: "attached", timeout: 20_000 })
    .catch(() => {
      throw new Error(`the Sync tab did not hydrate; console: ${problems.join(" | ")}`);
    });

  const oldToNew = page.getByTestId("sync-source");
  const newToOld = page.getByTestId("sync-target");
  await expect(oldToNew.getByTestId("sync-status")).toHaveAttribute("data-status", "off");
  await expect(newToOld.getByTestId("sync-status")).toHaveAttribute("data-status", "off");
  // What to paste into each side's console names imshift's door for it.
  await expect(oldToNew.getByTestId("sync-setup")).toContainText(`/hooks/${id}/source`);
  await expect(newToOld.getByTestId("sync-setup")).toContainText(`/hooks/${id}/target`);

  for (const card of [oldToNew, newToOld]) {
    await card.getByRole("button", { name: "Turn on" }).click();
    await expect(card.getByTestId("sync-status")).toHaveAttribute("data-status", "idle");
    await expect(card.getByRole("button", { name: "Turn off" })).toBeVisible();
  }

  // Old → new: a user of the old system (the relay sandbox) sends; Tencent gets it.
  await oldToNew.getByTestId("sync-test").click();
  await expect(oldToNew.getByTestId("sync-test-result")).toBeVisible();
  await expect(oldToNew.getByTestId("sync-sent")).toHaveText("1", { timeout: 20_000 });
  await expect(oldToNew.getByTestId("sync-status")).toHaveAttribute("data-status", "healthy");
  // Its apply lag joins the chart, minute by minute.
  await expect(oldToNew.getByTestId("sync-lag-chart")).toBeVisible();

  // New → old: a user of the new app (the Tencent sandbox) sends; the old system gets it,
  // and imshift's own write into Tencent did not come back as an echo.
  await newToOld.getByTestId("sync-test").click();
  await expect(newToOld.getByTestId("sync-sent")).toHaveText("1", { timeout: 20_000 });
  await expect(newToOld.getByTestId("sync-received")).toHaveText("1");
  await expect(oldToNew.getByTestId("sync-received")).toHaveText("1");

  // The event log shows both, each applied on the other side, and finds them by account.
  const log = page.getByTestId("sync-log");
  await expect(log.getByTestId("sync-event")).toHaveCount(2, { timeout: 10_000 });
  await expect(log.locator("[data-testid=sync-event][data-state=sent]")).toHaveCount(2);
  await log.getByTestId("sync-search").fill("nobody-here");
  await log.getByTestId("sync-search").press("Tab");
  await expect(log.getByTestId("sync-events-empty")).toBeVisible();
  await log.getByTestId("sync-search").fill("imshift_test_a");
  await log.getByTestId("sync-search").press("Tab");
  await expect(log.getByTestId("sync-event")).toHaveCount(2);

  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width, "the Sync tab fits 1280 px").toBeLessThanOrEqual(WIDTH);
  expect(problems, "console on the Sync tab").toEqual([]);

  // A reload mid-flow keeps the switches and figures.
  await page.reload();
  await hydrated(page);
  await expect(oldToNew.getByTestId("sync-status")).toHaveAttribute("data-status", "healthy");
  await expect(newToOld.getByTestId("sync-sent")).toHaveText("1");
  // The id map shows what each side calls the two test messages, and finds one by its id.
  const ids = page.getByTestId("sync-id-map");
  await expect(ids.getByTestId("sync-id-pair").first()).toBeVisible();
  expect(await ids.getByTestId("sync-id-pair").count()).toBeGreaterThanOrEqual(2);
  const oldId = (await ids.getByTestId("sync-id-pair").first().locator("td").nth(1).textContent()) ?? "";
  await ids.getByTestId("sync-id-search").fill("nobody-here");
  await ids.getByTestId("sync-id-search").press("Tab");
  await expect(ids.getByTestId("sync-id-map-empty")).toHaveText("No id matches.");
  await ids.getByTestId("sync-id-search").fill(oldId);
  await ids.getByTestId("sync-id-search").press("Tab");
  await expect(ids.getByTestId("sync-id-pair").first().locator("td").nth(1)).toHaveText(oldId);
  expect(problems, "console after a reload").toEqual([]);
  await context.close();
});
