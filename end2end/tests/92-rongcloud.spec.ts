import { test, expect, Page } from "@playwright/test";

// A self-built → RongCloud rehearsal against the RongCloud sandbox inside the console: users,
// blacklists, groups and members by API; the history phases skipped, saying RongCloud has no
// server API to import history, and built as bundles for the new app; never a token in sight. Runs after 1-team.spec.ts: the owner
// and a viewer exist.
const OWNER = "owner@example.com";
const PASSWORD = "correct horse battery";

test.use({ viewport: { width: 1280, height: 800 } });

function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`uncaught: ${e.message}`));
  return problems;
}

async function hydrated(page: Page) {
  await page.locator("body[data-hydrated]").waitFor({ state: "attached" });
}

function dump(): string {
  const lines: string[] = [];
  for (let i = 1; i <= 6; i++) lines.push(JSON.stringify({ kind: "account", id: `r${i}`, nick: `User ${i}`, avatar: `https://old.example/a/${i}.png` }));
  lines.push(JSON.stringify({ kind: "block", owner: "r1", blocked: "r6" }));
  lines.push(JSON.stringify({ kind: "group", id: "band", type: "private", name: "Band", owner: "r1", created_at: 1600000000000 }));
  for (let i = 1; i <= 4; i++) lines.push(JSON.stringify({ kind: "member", group: "band", account: `r${i}`, role: i === 1 ? "owner" : "member" }));
  let t = 1600000100000;
  for (let i = 0; i < 5; i++) {
    t += 1000;
    lines.push(JSON.stringify({ kind: "message", id: `m${i}`, conv: "c2c", from: "r1", to: "r2", sent_at: t, body: { type: "text", text: `hi ${i}` } }));
  }
  return lines.join("\n") + "\n";
}

test("rehearse a move into RongCloud: users, groups and members by API, history skipped with why", async ({ page, browser }) => {
  const problems = watch(page);
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Email").fill(OWNER);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("signed-in-user")).toContainText(OWNER);

  await hydrated(page);
  await page.getByLabel("Name").fill("Into RongCloud");
  await page.getByLabel("Source").selectOption("self_built");
  await page.getByLabel("Target").selectOption("rongcloud");
  await page.getByRole("button", { name: "Create migration" }).click();
  await expect(page.getByRole("heading", { name: "Into RongCloud" })).toBeVisible();
  const id = page.url().match(/migrations\/([0-9a-f-]+)/)![1];

  await page.goto(`/migrations/${id}/connections`);
  await hydrated(page);
  const target = page.getByTestId("connection-target");
  await expect(target).toContainText("App Key");
  await expect(target).toContainText("App Secret");
  await target.getByRole("button", { name: "Rehearse in sandbox" }).click();
  await expect(target).toContainText("local sandbox");
  await target.getByRole("button", { name: "Test connection" }).click();
  await expect(target).toContainText("user/info", { timeout: 10_000 });

  await page.goto(`/migrations/${id}/dumps`);
  await hydrated(page);
  await page.getByTestId("file-input").setInputFiles({ name: "band.jsonl", mimeType: "application/x-ndjson", buffer: Buffer.from(dump()) });
  await expect(page.getByTestId("upload-row").first()).toHaveAttribute("data-state", "staged", { timeout: 30_000 });
  await expect(page.getByTestId("report-state")).toHaveText("up to date", { timeout: 30_000 });

  await page.goto(`/migrations/${id}/import`);
  await hydrated(page);
  const phases = page.getByTestId("preflight-phases");
  await expect(phases).toContainText("user/getToken");
  await expect(phases).toContainText("group/create");
  await expect(page.locator('[data-testid="preflight-phase"][data-phase="c2c_history"] [data-testid="skip-reason"]')).toContainText("no server API to import history");
  await expect(page.getByTestId("preflight-hand-over")).toContainText("they go in the RongCloud history bundles");
  await page.getByTestId("launch").click();
  await expect(page.getByTestId("run-state")).toHaveText("done", { timeout: 60_000 });
  await expect(page.getByTestId("run-summary")).toContainText("0 failed");
  // The history as bundles for the new app to insert on the device.
  const handOver = page.getByTestId("hand-over");
  await expect(handOver).toContainText("RongCloud history bundles");
  await handOver.getByRole("button", { name: "Build files" }).click();
  await expect(page.getByTestId("hand-over-status")).toContainText("Built from what was staged", { timeout: 30_000 });
  await expect(handOver.getByTestId("hand-over-archive")).toBeVisible();
  const r1 = handOver.getByRole("link", { name: "user-r1.jsonl" });
  await expect(r1).toBeVisible();
  const file = await page.request.get((await r1.getAttribute("href"))!);
  expect(file.ok()).toBeTruthy();
  const first = JSON.parse((await file.text()).split("\n")[0]);
  expect(first.objectName).toBe("RC:TxtMsg");
  expect(first.targetId).toBe("r2");
  expect(first.messageDirection).toBe(1);
  // A token is never shown: the page holds none of the sandbox's token text.
  expect(await page.content()).not.toMatch(/"token"\s*:/);
  expect(problems, problems.join("\n")).toEqual([]);

  // A viewer loads each page of this migration directly, with no console error, at 1280 px.
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const viewer = await context.newPage();
  const seen = watch(viewer);
  await viewer.goto("/login");
  await hydrated(viewer);
  await viewer.getByLabel("Email").fill("viewer@example.com");
  await viewer.getByLabel("Password").fill(PASSWORD);
  await viewer.getByRole("button", { name: "Sign in" }).click();
  await expect(viewer.getByTestId("signed-in-user")).toContainText("viewer@example.com");
  for (const tab of ["", "/connections", "/dumps", "/sync", "/import"]) {
    await viewer.goto(`/migrations/${id}${tab}`);
    await hydrated(viewer);
    const width = await viewer.evaluate(() => document.documentElement.scrollWidth);
    expect(width, `/migrations/${id}${tab} at 1280 px`).toBeLessThanOrEqual(1280);
  }
  await expect(viewer.getByTestId("run-state")).toHaveText("done");
  expect(seen, seen.join("\n")).toEqual([]);
  await context.close();
});
