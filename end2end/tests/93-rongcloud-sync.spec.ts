import { test, expect, Browser, BrowserContext, Page } from "@playwright/test";

// Coexistence with RongCloud in the console: the relay sandbox as the self-built old system,
// the RongCloud sandbox as the new one (it routes its users' messages to the console, signed),
// both directions turned on from the Sync tab, a test message each way, the setup to paste
// into RongCloud's console shown, and the figures following without a reload. Loaded
// directly, with no console error. Sets the console up when it runs alone.

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

test("sync with RongCloud carries a test message each way and shows what to paste into RongCloud", async ({ browser, baseURL }) => {
  test.setTimeout(120_000);
  const { context, page: first } = await signIn(browser);
  const api = first.request;
  const headers = { origin: baseURL! };
  const created = await api.post("/api/v1/migrations", {
    headers,
    data: { name: `RongCloud coexist ${RUN}`, strategy: "coexistence", source: "self_built", target: "rongcloud" },
  });
  expect(created.status()).toBe(201);
  const id = (await created.json()).id;
  for (const side of ["source", "target"]) {
    const r = await api.post(`/api/v1/migrations/${id}/connections/${side}/sandbox`, { headers });
    expect(r.status(), await r.text()).toBe(200);
  }
  await first.close();

  const page = await context.newPage();
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`uncaught: ${e.message}`));
  await page.goto(`/migrations/${id}/sync`);
  await page
    .locator("body[data-hydrated]")
    .waitFor({ state: "attached", timeout: 20_000 })
    .catch(() => {
      throw new Error(`the Sync tab did not hydrate; console: ${problems.join(" | ")}`);
    });

  const oldToNew = page.getByTestId("sync-source");
  const newToOld = page.getByTestId("sync-target");
  // RongCloud's side says where its message routing goes and how it is signed, never the secret.
  const setup = newToOld.getByTestId("sync-setup");
  await expect(setup).toContainText(`/hooks/${id}/target`);
  await expect(setup).toContainText("全量消息路由");
  await expect(setup).toContainText("The App Secret of this connection");

  for (const card of [oldToNew, newToOld]) {
    await card.getByRole("button", { name: "Turn on" }).click();
    await expect(card.getByTestId("sync-status")).toHaveAttribute("data-status", "idle");
  }

  // Old → RongCloud: published through the Server API as the old system's user.
  await oldToNew.getByTestId("sync-test").click();
  await expect(oldToNew.getByTestId("sync-sent")).toHaveText("1", { timeout: 20_000 });
  await expect(oldToNew.getByTestId("sync-status")).toHaveAttribute("data-status", "healthy");
  // RongCloud → old: a RongCloud user's message, routed to the console, relayed.
  await newToOld.getByTestId("sync-test").click();
  await expect(newToOld.getByTestId("sync-sent")).toHaveText("1", { timeout: 20_000 });
  // imshift's own send into RongCloud went through the Server API: it was not routed back.
  await expect(newToOld.getByTestId("sync-received")).toHaveText("1");

  const log = page.getByTestId("sync-log");
  await expect(log.locator("[data-testid=sync-event][data-state=sent]")).toHaveCount(2, { timeout: 10_000 });

  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width, "the Sync tab fits 1280 px").toBeLessThanOrEqual(WIDTH);
  expect(problems, "console on the Sync tab").toEqual([]);

  await page.reload();
  await hydrated(page);
  await expect(newToOld.getByTestId("sync-sent")).toHaveText("1");
  await expect(oldToNew.getByTestId("sync-sent")).toHaveText("1");
  expect(problems, "console after a reload").toEqual([]);
  await context.close();
});
