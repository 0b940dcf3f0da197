import { test, expect, Page } from "@playwright/test";

// Runs after 2-migration.spec.ts on the same console: the owner exists.
const OWNER = "owner@example.com";
const PASSWORD = "correct horse battery";

async function hydrated(page: Page) {
  await page.locator("body[data-hydrated]").waitFor({ state: "attached" });
}

// Line 3 names an account that is not in the dump; line 4 is not JSON.
const DUMP = [
  `{"kind":"account","id":"u1","nick":"Alice"}`,
  `{"kind":"account","id":"u2","nick":"Bob"}`,
  `{"kind":"friend","owner":"u1","friend":"ghost"}`,
  `this is not json`,
  `{"kind":"message","id":"m1","conv":"c2c","from":"u1","to":"u2","sent_at":1513685265481,"body":{"type":"text","text":"hi"}}`,
].join("\n") + "\n";

test("upload a dump with errors in the browser and read the validation report", async ({ page }) => {
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Email").fill(OWNER);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("signed-in-user")).toContainText(OWNER);

  await hydrated(page);
  await page.getByLabel("Name").fill("Dumps rehearsal");
  await page.getByLabel("Source").selectOption("self_built");
  await page.getByLabel("Target").selectOption("tencent");
  await page.getByRole("button", { name: "Create migration" }).click();
  await expect(page.getByRole("heading", { name: "Dumps rehearsal" })).toBeVisible();
  await page.getByRole("navigation", { name: "Migration" }).getByRole("link", { name: "Dumps" }).click();
  await expect(page.getByText("No dumps yet")).toBeVisible();
  await hydrated(page);
  // The Format list is the registry's: imshift's own lines, each vendor export it reads, CSV.
  const format = page.getByTestId("upload-format");
  await expect(format.locator("option")).toHaveText([
    "Tell from the content",
    "imshift canonical JSON Lines",
    "NetEase Yunxin migration lines",
    "Easemob history export",
    "CSV (accounts, friends or members)",
  ]);
  await format.selectOption("canonical");

  await page.getByTestId("file-input").setInputFiles({
    name: "dump.jsonl",
    mimeType: "application/x-ndjson",
    buffer: Buffer.from(DUMP),
  });

  const row = page.getByTestId("upload-row").first();
  await expect(row).toHaveAttribute("data-state", "staged", { timeout: 30_000 });
  await expect(row.getByTestId("upload-format-read")).toContainText("imshift canonical JSON Lines (chosen)");
  await expect(row).toContainText("dump.jsonl");
  await expect(row).toContainText("4 records, 1 line unreadable");

  const report = page.getByTestId("report");
  await expect(page.getByTestId("report-state")).toHaveText("up to date", { timeout: 30_000 });
  await expect(page.getByTestId("report-counts")).toContainText("Accounts");
  await expect(report).toContainText("2 errors");

  const missing = page.locator('[data-testid="rule"][data-code="ref.account_missing"]');
  await expect(missing).toContainText("dump.jsonl:3");
  await expect(missing).toContainText("ghost");
  await expect(missing).toContainText("add the account");
  const syntax = page.locator('[data-testid="rule"][data-code="json.syntax"]');
  await expect(syntax).toContainText("dump.jsonl:4");
  await expect(syntax).toContainText("this is not json");

  // Every finding, filtered, and the CSV link.
  await page.getByTestId("show-all-findings").click();
  await expect(page.getByTestId("all-findings")).toContainText("ref.account_missing");
  await expect(page.getByTestId("findings-csv")).toHaveAttribute("href", /findings\.csv$/);

  // Discarding empties the staged data, and the audit log has the story.
  await row.getByTestId("discard").click();
  await expect(page.getByText("No dumps yet")).toBeVisible({ timeout: 15_000 });
  await page.getByRole("navigation").first().getByRole("link", { name: "Audit log" }).click();
  const table = page.getByTestId("audit-table");
  await expect(table).toContainText("dump.upload_started");
  await expect(table).toContainText("dump.uploaded");
  await expect(table).toContainText("dump.deleted");
});

test("an upload whose bytes are on their way is shown as receiving, never as interrupted", async ({ page, browser }) => {
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Email").fill(OWNER);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("signed-in-user")).toContainText(OWNER);

  await hydrated(page);
  await page.getByLabel("Name").fill("Live upload");
  await page.getByLabel("Source").selectOption("self_built");
  await page.getByLabel("Target").selectOption("tencent");
  await page.getByRole("button", { name: "Create migration" }).click();
  await expect(page.getByRole("heading", { name: "Live upload" })).toBeVisible();
  await page.getByRole("navigation", { name: "Migration" }).getByRole("link", { name: "Dumps" }).click();
  await expect(page.getByText("No dumps yet")).toBeVisible();
  await hydrated(page);

  // Hold the file's bytes on their way until the page has been looked at.
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route(/\/uploads\/[0-9a-f-]+\?offset=/, async (route) => {
    await held;
    await route.continue();
  });
  await page.getByTestId("file-input").setInputFiles({
    name: "slow.jsonl",
    mimeType: "application/x-ndjson",
    buffer: Buffer.from(DUMP),
  });
  const row = page.getByTestId("upload-row").first();
  await expect(row).toHaveAttribute("data-state", "uploading");
  await expect(row.getByTestId("upload-feed")).toHaveAttribute("data-feed", "here");
  await expect(row).toContainText("Receiving from this browser");
  await expect(row).not.toContainText("interrupted");
  await expect(row.getByTestId("resume-upload")).toBeHidden();

  // Someone else watching the same migration sees it receiving too (bytes arrived, or the
  // upload was announced, moments ago), with no Resume.
  const other = await browser.newContext();
  const watcher = await other.newPage();
  await watcher.goto("/login");
  await hydrated(watcher);
  await watcher.getByLabel("Email").fill(OWNER);
  await watcher.getByLabel("Password").fill(PASSWORD);
  await watcher.getByRole("button", { name: "Sign in" }).click();
  await expect(watcher.getByTestId("signed-in-user")).toContainText(OWNER);
  await watcher.goto(page.url());
  await hydrated(watcher);
  const seen = watcher.getByTestId("upload-row").first();
  await expect(seen.getByTestId("upload-feed")).toHaveAttribute("data-feed", "elsewhere");
  await expect(seen).toContainText("receiving");
  await expect(seen).not.toContainText("interrupted");
  await expect(seen.getByTestId("resume-upload")).toBeHidden();

  // Let the bytes go: the upload is staged, and the watcher's page follows.
  release();
  await expect(row).toHaveAttribute("data-state", "staged", { timeout: 30_000 });
  await expect(seen).toHaveAttribute("data-state", "staged", { timeout: 30_000 });
  await other.close();
});
