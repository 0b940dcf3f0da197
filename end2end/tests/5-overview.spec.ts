import { test, expect, Browser, BrowserContext, Page } from "@playwright/test";

// The migration's state live everywhere: the Overview's next step, the header badge and the
// migrations list follow a run from Importing to Done without a reload; quotas edited per API
// during the run take effect and are audited; a viewer sees the state but no edit controls, and
// the service refuses a viewer's edit. Sets the console up when it runs alone.

const OWNER = "owner@example.com";
const PASSWORD = "correct horse battery";
const RUN = Date.now().toString(36);
const VIEWER = `overview-viewer-${RUN}@example.com`;
const NAME = `Live overview ${RUN}`;

async function hydrated(page: Page) {
  await page.locator("body[data-hydrated]").waitFor({ state: "attached" });
}

async function signIn(browser: Browser, email: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto("/setup");
  await hydrated(page);
  if (page.url().endsWith("/setup") && email === OWNER) {
    await page.getByLabel("Email").fill(OWNER);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByLabel("Repeat password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create owner account" }).click();
  } else {
    await page.goto("/login");
    await hydrated(page);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
  }
  await expect(page.getByTestId("signed-in-user")).toContainText(email);
  await hydrated(page);
  return { context, page };
}

function dump(): string {
  const lines: string[] = [];
  for (let i = 1; i <= 6; i++) lines.push(JSON.stringify({ kind: "account", id: `u${i}`, nick: `User ${i}` }));
  lines.push(JSON.stringify({ kind: "friend", owner: "u1", friend: "u2" }));
  let t = 1600000100000;
  for (let i = 0; i < 30; i++) {
    t += 1000;
    lines.push(JSON.stringify({ kind: "message", id: `c${i}`, conv: "c2c", from: "u1", to: "u2", sent_at: t, body: { type: "text", text: `hello ${i}` } }));
  }
  return lines.join("\n") + "\n";
}

const tabs = (page: Page) => page.getByRole("navigation", { name: "Migration" });
const badge = (page: Page) => page.locator(".page-header [data-testid=migration-state]");
const nextStep = (page: Page) => page.getByTestId("next-step");

let migration = "";
let waiting = "";

test("the Overview, the badge and the list follow a run live; quotas edited during it take effect and are audited", async ({ browser, baseURL }) => {
  test.setTimeout(180_000);
  const { context, page } = await signIn(browser, OWNER);
  const headers = { origin: baseURL! };

  // A viewer, invited through the Team page.
  await page.goto("/team");
  await hydrated(page);
  const form = page.getByTestId("invite-form");
  await form.getByLabel("Email").fill(VIEWER);
  await form.getByLabel("Role").selectOption("viewer");
  await form.getByRole("button", { name: "Create invite link" }).click();
  await expect(page.getByTestId("invites")).toContainText(VIEWER);
  const link = await page.getByTestId("invite-link").inputValue();
  const joining = await browser.newContext();
  const join = await joining.newPage();
  await join.goto(new URL(link).pathname);
  await hydrated(join);
  await join.getByLabel("Choose a password").fill(PASSWORD);
  await join.getByLabel("Repeat password").fill(PASSWORD);
  await join.getByRole("button", { name: "Join" }).click();
  await expect(join.getByTestId("signed-in-user")).toContainText(VIEWER);
  await joining.close();

  // A new migration opens on its Overview: a draft that needs keys first.
  await page.goto("/");
  await hydrated(page);
  await page.getByLabel("Name").fill(NAME);
  await page.getByLabel("Source").selectOption("self_built");
  await page.getByLabel("Target").selectOption("tencent");
  await page.getByRole("button", { name: "Create migration" }).click();
  await expect(page.getByRole("heading", { name: NAME })).toBeVisible();
  migration = page.url().match(/migrations\/([0-9a-f-]+)/)![1];
  await expect(badge(page)).toHaveText("Draft");
  await expect(nextStep(page)).toHaveAttribute("data-step", "set_keys");
  await expect(nextStep(page).getByRole("link", { name: "Set keys" })).toBeVisible();

  // Connections: the target in a sandbox. The badge follows without a reload.
  await nextStep(page).getByRole("link", { name: "Set keys" }).click();
  await expect(tabs(page).getByRole("link", { name: "Connections", exact: true })).toHaveAttribute("aria-current", "page");
  await page.getByTestId("connection-target").getByRole("button", { name: "Rehearse in sandbox" }).click();
  await expect(page.getByTestId("connection-target")).toContainText("local sandbox");
  await expect(badge(page)).toHaveText("Keys set");

  // Quotas on the Connections tab: a bad value is refused in words, a good one is saved.
  const importmsg = page.locator('[data-testid=limit][data-api="openim/importmsg"]');
  const rate = page.getByLabel("Requests per second for openim/importmsg");
  await rate.fill("0");
  await page.getByRole("button", { name: "Save openim/importmsg" }).click();
  await expect(page.getByTestId("limits").getByRole("alert")).toContainText("qps 0: use 1 to");
  await page.getByLabel("Requests per second for openim/importmsg").fill("2");
  await page.getByRole("button", { name: "Save openim/importmsg" }).click();
  await expect(page.getByTestId("limits-saved")).toBeVisible();
  await expect(importmsg).toContainText("default 200");
  await expect(page.getByLabel("Requests per second for openim/importmsg")).toHaveValue("2");

  // The Overview asks for dumps; staging one moves it on without a reload.
  await tabs(page).getByRole("link", { name: "Overview", exact: true }).click();
  await expect(nextStep(page)).toHaveAttribute("data-step", "upload_dumps");
  const staged = await page.request.post(`/api/v1/migrations/${migration}/dumps?file_name=overview.jsonl`, {
    headers: { ...headers, "content-type": "application/octet-stream" },
    data: Buffer.from(dump()),
  });
  expect(staged.status(), await staged.text()).toBe(202);
  await expect(nextStep(page)).toHaveAttribute("data-step", "launch", { timeout: 60_000 });
  await expect(page.getByTestId("staged")).toContainText("6 account");

  // The list, open in another tab of the same browser.
  const list = await context.newPage();
  await list.goto("/");
  await hydrated(list);
  const row = list.locator(`[data-testid=migration-row][data-id="${migration}"]`);
  await expect(row.getByTestId("migration-state")).toHaveText("Keys set");

  // Launch from the Import tab, reached by the next step's button.
  await nextStep(page).getByRole("link", { name: "Go to launch" }).click();
  await expect(tabs(page).getByRole("link", { name: "Import", exact: true })).toHaveAttribute("aria-current", "page");
  await page.getByTestId("launch").click();
  await expect(badge(page)).toHaveText("Importing", { timeout: 15_000 });
  await expect(row.getByTestId("migration-state")).toHaveText("Importing", { timeout: 15_000 });
  await expect(row.getByTestId("migration-progress")).toContainText("running");
  const run = (await (await page.request.get(`/api/v1/migrations/${migration}/imports`)).json())[0].id;

  // The Overview says it runs, with the run's numbers moving.
  await tabs(page).getByRole("link", { name: "Overview", exact: true }).click();
  await expect(nextStep(page)).toHaveAttribute("data-step", "running");
  const lastRun = page.getByTestId("last-run");
  await expect(lastRun.locator(".run-line")).toHaveAttribute("data-state", "running");
  const before = await lastRun.locator(".hint").first().textContent();
  await expect(lastRun.locator(".hint").first()).not.toHaveText(before!, { timeout: 20_000 });

  // Raise the quota mid-run: the running import uses it.
  await nextStep(page).getByRole("link", { name: "Adjust quotas" }).click();
  await page.getByLabel("Requests per second for openim/importmsg").fill("50");
  await page.getByRole("button", { name: "Save openim/importmsg" }).click();
  await expect(page.getByTestId("limits-saved")).toBeVisible();
  await expect
    .poll(async () => {
      const r = await (await page.request.get(`/api/v1/migrations/${migration}/imports/${run}`)).json();
      return r.phases.find((p: { api: string }) => p.api === "openim/importmsg")?.qps;
    })
    .toBe(50);

  // The badge and the list reach Done without a reload; the Overview has nothing left.
  await expect(badge(page)).toHaveText("Done", { timeout: 60_000 });
  await expect(row.getByTestId("migration-state")).toHaveText("Done", { timeout: 15_000 });
  await expect(row.getByTestId("migration-progress")).toContainText("100 %");
  await tabs(page).getByRole("link", { name: "Overview", exact: true }).click();
  await expect(nextStep(page)).toHaveAttribute("data-step", "done");
  await expect(page.getByTestId("last-run").locator(".run-line")).toHaveAttribute("data-state", "done");

  // Reset to default, then the audit log has each change with its old and new values.
  await tabs(page).getByRole("link", { name: "Connections", exact: true }).click();
  await page.getByRole("button", { name: "Reset openim/importmsg to default" }).click();
  await expect(page.getByLabel("Requests per second for openim/importmsg")).toHaveValue("200");
  await expect(page.getByRole("button", { name: "Reset openim/importmsg to default" })).toHaveCount(0);
  const audit = await (await page.request.get(`/api/v1/audit?action=migration.limits_set&target=migration:${migration}`)).json();
  const changes = audit.entries.map((e: { details: { changes: Record<string, unknown> } }) => e.details.changes["openim/importmsg"]);
  expect(changes).toEqual([
    { qps: { from: 50, to: 200 } },
    { qps: { from: 2, to: 50 } },
    { qps: { from: 200, to: 2 } },
  ]);
  await page.getByRole("navigation").first().getByRole("link", { name: "Audit log" }).click();
  await expect(page.getByTestId("audit-table")).toContainText("migration.limits_set");

  // Another migration with keys and no dump: an operator's next step is a button.
  const created = await page.request.post("/api/v1/migrations", {
    headers,
    data: { name: `${NAME} (waiting)`, strategy: "forced_upgrade", source: "self_built", target: "tencent" },
  });
  expect(created.status()).toBe(201);
  waiting = (await created.json()).id;
  expect((await page.request.post(`/api/v1/migrations/${waiting}/sandbox`, { headers })).ok()).toBeTruthy();
  // The list open in the other tab shows it without a reload.
  await expect(list.locator(`[data-testid=migration-row][data-id="${waiting}"] [data-testid=migration-state]`)).toHaveText("Keys set", { timeout: 15_000 });
  await page.goto(`/migrations/${waiting}`);
  await hydrated(page);
  await expect(nextStep(page)).toHaveAttribute("data-step", "upload_dumps");
  await expect(nextStep(page).getByRole("link", { name: "Upload dumps" })).toBeVisible();

  await list.close();
  await context.close();
});

test("a viewer sees the state and the quotas without edit controls, and the service refuses their edit", async ({ browser, baseURL }) => {
  expect(waiting, "the migrations made by the test above").not.toBe("");
  const { context, page } = await signIn(browser, VIEWER);
  await page.goto(`/migrations/${migration}`);
  await hydrated(page);
  await expect(badge(page)).toHaveText("Done");
  await expect(nextStep(page)).toHaveAttribute("data-step", "done");
  await expect(page.getByTestId("last-run")).toContainText("100 %");
  await expect(nextStep(page).getByRole("button")).toHaveCount(0);
  await expect(nextStep(page).getByRole("link")).toHaveCount(0);

  // The same step an operator has a button for: the viewer reads it, without the button.
  await page.goto(`/migrations/${waiting}`);
  await hydrated(page);
  await expect(nextStep(page)).toHaveAttribute("data-step", "upload_dumps");
  await expect(nextStep(page)).toContainText("Nothing is staged");
  await expect(nextStep(page).getByRole("link")).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Archive this migration" })).toHaveCount(0);

  await tabs(page).getByRole("link", { name: "Connections", exact: true }).click();
  const limits = page.getByTestId("limits");
  await expect(limits).toContainText("openim/importmsg");
  await expect(limits.locator("input")).toHaveCount(0);
  await expect(limits.getByRole("button")).toHaveCount(0);

  const refused = await page.request.put(`/api/v1/migrations/${migration}/limits`, {
    data: { "openim/importmsg": { qps: 1 } },
    headers: { origin: baseURL! },
  });
  expect(refused.status()).toBe(403);
  const after = await (await page.request.get(`/api/v1/migrations/${migration}/limits`)).json();
  expect(after.find((l: { api: string }) => l.api === "openim/importmsg").qps).toBe(200);
  await context.close();
});
