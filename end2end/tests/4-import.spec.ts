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
  for (let i = 2; i <= 5; i++) lines.push(JSON.stringify({ kind: "member", group: "team", account: `u${i}`, joined_at: 1600000001000 + i }));
  let t = 1600000100000;
  for (let i = 0; i < 40; i++) {
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

  // Keys: a sandbox inside the console.
  await page.getByRole("navigation", { name: "Migration" }).getByRole("link", { name: "Keys" }).click();
  await hydrated(page);
  await page.getByRole("button", { name: "Rehearse in sandbox" }).click();
  await expect(page.getByTestId("keys-summary")).toContainText("local sandbox");
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
  await page.getByTestId("launch").click();

  const run = page.getByTestId("run");
  await expect(page.getByTestId("run-state")).toHaveText("running", { timeout: 15_000 });
  // Progress moves without reloading the page.
  const counts = page.getByTestId("run-counts");
  const first = await counts.textContent();
  await expect(counts).not.toHaveText(first!, { timeout: 15_000 });
  await expect(page.locator('[data-testid="phase"][data-phase="c2c_history"]')).toHaveAttribute("data-state", "running", { timeout: 20_000 });

  await page.getByTestId("pause").click();
  await expect(page.getByTestId("run-state")).toHaveText("paused", { timeout: 10_000 });
  await page.getByTestId("resume").click();
  await expect(page.getByTestId("run-state")).toHaveText("running", { timeout: 10_000 });

  await expect(page.getByTestId("run-state")).toHaveText("done", { timeout: 60_000 });
  const summary = page.getByTestId("run-summary");
  await expect(summary).toContainText("Finished");
  await expect(summary).toContainText("0 failed");
  await expect(summary).toContainText("openim/importmsg");
  await expect(run).toContainText("Group history");

  await page.getByRole("navigation").first().getByRole("link", { name: "Audit log" }).click();
  const table = page.getByTestId("audit-table");
  await expect(table).toContainText("import.launched");
  await expect(table).toContainText("import.paused");
  await expect(table).toContainText("import.resumed");
});
