import { test, expect, Page } from "@playwright/test";

// A self-built → NetEase Yunxin rehearsal against the NetEase sandbox inside the console:
// accounts to team members by API, the team ids in the id map, and the history as files for
// NetEase's staff. Runs after 1-team.spec.ts: the owner exists.
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
  // N7 has a capital: NetEase keeps ids in lower case, so the id map holds N7 → n7.
  for (let i = 1; i <= 8; i++) lines.push(JSON.stringify({ kind: "account", id: i === 7 ? "N7" : `n${i}`, nick: `User ${i}` }));
  lines.push(JSON.stringify({ kind: "friend", owner: "n1", friend: "n2" }));
  lines.push(JSON.stringify({ kind: "group", id: "crew", type: "private", name: "Crew", owner: "n1", created_at: 1600000000000 }));
  lines.push(JSON.stringify({ kind: "member", group: "crew", account: "n1", role: "owner" }));
  lines.push(JSON.stringify({ kind: "member", group: "crew", account: "n2", role: "admin" }));
  for (let i = 3; i <= 6; i++) lines.push(JSON.stringify({ kind: "member", group: "crew", account: `n${i}` }));
  let t = 1600000100000;
  for (let i = 0; i < 12; i++) {
    t += 1000;
    lines.push(JSON.stringify({ kind: "message", id: `p${i}`, conv: "c2c", from: "n1", to: "n2", sent_at: t, body: { type: "text", text: `hi ${i}` } }));
  }
  for (let i = 0; i < 5; i++) {
    t += 1000;
    lines.push(JSON.stringify({ kind: "message", id: `t${i}`, conv: "group", from: "n3", to: "crew", sent_at: t, body: { type: "text", text: `crew ${i}` } }));
  }
  // NetEase's migration files have no sticker type: kept aside, with why.
  lines.push(JSON.stringify({ kind: "message", id: "s1", conv: "c2c", from: "n2", to: "n1", sent_at: t + 1000, body: { type: "face", index: 3 } }));
  return lines.join("\n") + "\n";
}

test("rehearse a move into NetEase Yunxin: import by API, team ids mapped, history as files", async ({ page, browser }) => {
  const problems = watch(page);
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Email").fill(OWNER);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("signed-in-user")).toContainText(OWNER);

  await hydrated(page);
  await page.getByLabel("Name").fill("Into NetEase");
  await page.getByLabel("Source").selectOption("self_built");
  await page.getByLabel("Target").selectOption("netease");
  await page.getByRole("button", { name: "Create migration" }).click();
  await expect(page.getByRole("heading", { name: "Into NetEase" })).toBeVisible();
  const id = page.url().match(/migrations\/([0-9a-f-]+)/)![1];

  // The target's card asks for NetEase's fields; rehearse in its sandbox.
  await page.goto(`/migrations/${id}/connections`);
  await hydrated(page);
  const target = page.getByTestId("connection-target");
  await expect(target).toContainText("App Key");
  await expect(target).toContainText("App Secret");
  await target.getByRole("button", { name: "Rehearse in sandbox" }).click();
  await expect(target).toContainText("local sandbox");
  await target.getByRole("button", { name: "Test connection" }).click();
  await expect(target).toContainText("user/getUinfos", { timeout: 10_000 });

  await page.goto(`/migrations/${id}/dumps`);
  await hydrated(page);
  await page.getByTestId("file-input").setInputFiles({ name: "crew.jsonl", mimeType: "application/x-ndjson", buffer: Buffer.from(dump()) });
  await expect(page.getByTestId("upload-row").first()).toHaveAttribute("data-state", "staged", { timeout: 30_000 });
  await expect(page.getByTestId("report-state")).toHaveText("up to date", { timeout: 30_000 });

  await page.goto(`/migrations/${id}/import`);
  await hydrated(page);
  await expect(page.getByTestId("preflight-phases")).toContainText("user/create");
  await expect(page.getByTestId("preflight-phases")).toContainText("team/create");
  await expect(page.locator('[data-testid="preflight-phase"][data-phase="c2c_history"] [data-testid="skip-reason"]')).toContainText("migration files");
  // What NetEase's API takes and what goes to its staff, counted apart.
  await expect(page.getByTestId("preflight-lead")).toContainText("by API");
  await expect(page.getByTestId("preflight-hand-over")).toContainText("messages and group events do not go through NetEase Yunxin's API: they go in the NetEase history files");
  await expect(page.getByTestId("preflight-hand-over")).toContainText("its staff import it from files");
  // Nothing built yet: the files say what they are for.
  const handOver = page.getByTestId("hand-over");
  await expect(handOver).toContainText("NetEase history files");
  await expect(page.getByTestId("hand-over-status")).toHaveText("Not built yet.");
  await page.getByTestId("launch").click();
  await expect(page.getByTestId("run-state")).toHaveText("done", { timeout: 60_000 });
  await expect(page.getByTestId("run-summary")).toContainText("0 failed");
  await expect(page.getByTestId("run-hand-over")).toContainText("NetEase history files");

  // The team NetEase numbered, in the id map (after a reload too).
  await page.reload();
  await hydrated(page);
  const map = page.getByTestId("id-map");
  await expect(map).toContainText("crew");
  await expect(map.locator("tbody tr").filter({ hasText: "crew" }).locator("td").nth(2)).toHaveText(/^\d+$/);
  await map.getByPlaceholder("old or new id").fill("n7");
  await map.getByPlaceholder("old or new id").press("Enter");
  await expect(map.locator("tbody tr")).toHaveCount(1);
  await expect(map.locator("tbody tr")).toContainText("N7");
  await expect(map.getByRole("link", { name: "Export CSV" })).toHaveAttribute("href", /id-map\.csv\?q=n7/);

  // History as files for NetEase's staff.
  await handOver.getByRole("button", { name: "Build files" }).click();
  const status = page.getByTestId("hand-over-status");
  await expect(status).toContainText("Built from what was staged", { timeout: 30_000 });
  await expect(status).toContainText("17 records in 2 files, 1 kept aside");
  const p2p = handOver.getByRole("link", { name: "p2p-0001.txt" });
  await expect(p2p).toBeVisible();
  const file = await page.request.get((await p2p.getAttribute("href"))!);
  expect(file.ok()).toBeTruthy();
  const first = JSON.parse((await file.text()).split("\n")[0]);
  expect(first.type).toBe(0);
  expect(first.data.from).toBe("n1");
  await expect(handOver.getByRole("link", { name: /1 kept aside/ })).toBeVisible();

  expect(problems, problems.join("\n")).toEqual([]);

  // A viewer loads each of this migration's pages directly: no console error, the id map and
  // the files' list are there, but no Build button and no link to the history itself.
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
  await expect(viewer.getByTestId("id-map")).toContainText("crew");
  await expect(viewer.getByTestId("hand-over")).toContainText("p2p-0001.txt");
  await expect(viewer.getByTestId("hand-over").getByRole("button")).toHaveCount(0);
  await expect(viewer.getByTestId("hand-over").getByRole("link", { name: "p2p-0001.txt" })).toHaveCount(0);
  expect(seen, seen.join("\n")).toEqual([]);
  await context.close();
});
