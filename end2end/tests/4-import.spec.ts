import { test, expect, Page } from "@playwright/test";

// Runs after 3-dumps.spec.ts on the same console: the owner exists.
const OWNER = "owner@example.com";
const PASSWORD = "correct horse battery";

async function hydrated(page: Page) {
  await page.locator("body[data-hydrated]").waitFor({ state: "attached" });
}

function dump(): string {
  const lines: string[] = [];
  for (let i = 1; i <= 10; i++) lines.push(JSON.stringify({ kind: "account", id: `u${i}`, nick: `User ${i}` }));
  lines.push(JSON.stringify({ kind: "friend", owner: "u1", friend: "u2" }));
  lines.push(JSON.stringify({ kind: "friend", owner: "u2", friend: "u1" }));
  lines.push(JSON.stringify({ kind: "group", id: "team", type: "private", name: "Team", owner: "u1", created_at: 1600000000000 }));
  // The owner's own membership: Tencent makes it with the group, so the import skips it (and says why).
  lines.push(JSON.stringify({ kind: "member", group: "team", account: "u1", role: "owner", joined_at: 1600000001000 }));
  for (let i = 2; i <= 5; i++) lines.push(JSON.stringify({ kind: "member", group: "team", account: `u${i}`, joined_at: 1600000001000 + i }));
  let t = 1600000100000;
  for (let i = 0; i < 80; i++) {
    t += 3000;
    lines.push(JSON.stringify({ kind: "message", id: `c${i}`, conv: "c2c", from: `u${1 + (i % 2)}`, to: `u${2 - (i % 2)}`, sent_at: t, body: { type: "text", text: `hello ${i}` } }));
  }
  for (let i = 0; i < 10; i++) {
    t += 1000;
    lines.push(JSON.stringify({ kind: "message", id: `g${i}`, conv: "group", from: "u2", to: "team", sent_at: t, body: { type: "text", text: `team ${i}` } }));
  }
  return lines.join("\n") + "\n";
}

test("launch an import against the sandbox, watch it move, pause and resume, read the summary", async ({ page, baseURL }) => {
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Email").fill(OWNER);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("signed-in-user")).toContainText(OWNER);

  await hydrated(page);
  await page.getByLabel("Name").fill("Import rehearsal");
  await page.getByLabel("Source").selectOption("self_built");
  await page.getByLabel("Target").selectOption("tencent");
  await page.getByRole("button", { name: "Create migration" }).click();
  await expect(page.getByRole("heading", { name: "Import rehearsal" })).toBeVisible();
  const id = page.url().match(/migrations\/([0-9a-f-]+)/)![1];

  // Connections: the target in a sandbox inside the console.
  await page.getByRole("navigation", { name: "Migration" }).getByRole("link", { name: "Connections" }).click();
  await hydrated(page);
  await page.getByTestId("connection-target").getByRole("button", { name: "Rehearse in sandbox" }).click();
  await expect(page.getByTestId("connection-target")).toContainText("local sandbox");
  // Slow one-to-one history down so there is time to watch it (5 requests a second).
  const limits = await page.request.put(`/api/v1/migrations/${id}/limits`, {
    data: { "openim/importmsg": { qps: 5 } },
    headers: { origin: baseURL! },
  });
  expect(limits.ok()).toBeTruthy();

  // Stage a dump.
  await page.getByRole("navigation", { name: "Migration" }).getByRole("link", { name: "Dumps" }).click();
  await hydrated(page);
  await page.getByTestId("file-input").setInputFiles({ name: "history.jsonl", mimeType: "application/x-ndjson", buffer: Buffer.from(dump()) });
  await expect(page.getByTestId("upload-row").first()).toHaveAttribute("data-state", "staged", { timeout: 30_000 });
  await expect(page.getByTestId("report-state")).toHaveText("up to date", { timeout: 30_000 });

  // The preflight, then Launch.
  await page.getByRole("navigation", { name: "Migration" }).getByRole("link", { name: "Import" }).click();
  await hydrated(page);
  const pre = page.getByTestId("preflight");
  await expect(pre).toContainText("sandbox rehearsal");
  await expect(page.getByTestId("preflight-phases")).toContainText("openim/importmsg");
  // A phase the target cannot take says why it is skipped.
  await expect(page.locator('[data-testid="preflight-phase"][data-phase="conversations"] [data-testid="skip-reason"]')).toContainText("skipped:");
  // A first run has nothing to choose.
  await expect(page.getByTestId("relaunch")).toHaveCount(0);
  await page.getByTestId("launch").click();

  const run = page.getByTestId("run");
  await expect(page.getByTestId("run-state")).toHaveText("running", { timeout: 15_000 });
  // Progress moves without reloading the page.
  const counts = page.getByTestId("run-counts");
  const first = await counts.textContent();
  await expect(counts).not.toHaveText(first!, { timeout: 15_000 });
  await expect(page.locator('[data-testid="phase"][data-phase="c2c_history"]')).toHaveAttribute("data-state", "running", { timeout: 20_000 });

  // The throughput chart draws while the run moves: one series per API against the quota line.
  const chart = page.getByTestId("throughput-chart");
  await expect(chart).toBeVisible({ timeout: 15_000 });
  await expect(chart.getByTestId("quota-line")).toHaveCount(1);
  await expect(chart.locator('[data-testid="series"][data-api="openim/importmsg"]')).toHaveCount(1, { timeout: 15_000 });
  // The time left is measured once the phase has run a few seconds.
  await expect(page.getByTestId("run-timing")).toContainText("at the measured rates", { timeout: 15_000 });

  // Pause: requests already out still land, so the run says "pausing…" until their answers are
  // in. The rehearsal sandbox answers in milliseconds, so the page may go straight to "paused"
  // (tests/import/insight.rs holds answers in flight to prove the pausing… state over REST).
  await page.getByTestId("pause").click();
  await expect(page.getByTestId("run-state")).toHaveText(/^(pausing…|paused)$/, { timeout: 5_000 });
  await expect(page.getByTestId("run-state")).toHaveText("paused", { timeout: 10_000 });
  await page.getByTestId("resume").click();
  await expect(page.getByTestId("run-state")).toHaveText("running", { timeout: 10_000 });

  await expect(page.getByTestId("run-state")).toHaveText("done", { timeout: 60_000 });
  const summary = page.getByTestId("run-summary");
  await expect(summary).toContainText("Finished");
  await expect(summary).toContainText("0 failed");
  await expect(summary).toContainText("openim/importmsg");
  await expect(run).toContainText("Group history");
  // Each phase's start, end and duration, on a time line and in a table, and how far the
  // preflight was off.
  await expect(summary.getByTestId("preflight-error")).toContainText(/The preflight said .*; it took .*, [+−]\d/);
  await expect(summary.getByTestId("timeline")).toBeVisible();
  await expect(summary.locator('[data-testid="phase-time"][data-phase="c2c_history"]')).toContainText("+");
  // One series per API the run called.
  const apis = new Set(await summary.locator("table:not(.phase-times) code").allTextContents());
  expect(apis.size).toBeGreaterThan(3);
  await expect(chart.getByTestId("series")).toHaveCount(apis.size);
  for (const api of apis) await expect(chart.locator(`[data-testid="series"][data-api="${api}"]`)).toHaveCount(1);
  // A reload draws the same chart from the stored samples.
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("throughput-chart").getByTestId("series")).toHaveCount(apis.size);

  // Skipped counts say why, with the records behind them.
  const members = page.locator('[data-testid="phase"][data-phase="members"]');
  await members.getByTestId("skip-reasons").locator("summary").click();
  await expect(members.getByTestId("skip-reason")).toContainText("owner joined with the group");
  await expect(members.getByRole("link", { name: "The skipped records (CSV)" })).toHaveAttribute("href", /state=skipped/);

  // Launching again warns that it would send everything again and waits for a choice.
  const relaunch = page.getByTestId("relaunch");
  await expect(relaunch).toContainText("already sent");
  await expect(page.getByTestId("launch")).toBeDisabled();
  await page.getByTestId("resend-failed-or-new").check();
  await expect(page.getByTestId("launch")).toBeEnabled();
  await page.getByTestId("launch").click();
  await expect(page.getByTestId("run-state")).toHaveText("done", { timeout: 60_000 });
  await expect(page.getByTestId("run-summary")).toContainText("only what failed or was new");

  await page.getByRole("navigation").first().getByRole("link", { name: "Audit log" }).click();
  const table = page.getByTestId("audit-table");
  await expect(table).toContainText("import.launched");
  await expect(table).toContainText("import.paused");
  await expect(table).toContainText("import.resumed");
  await expect(table).toContainText("failed_or_new");
});
