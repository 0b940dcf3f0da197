import { test, expect, Page } from "@playwright/test";

// What the Team, Dumps and Audit pages say (issue 11). Runs on its own or after the other
// specs: it sets the console up if nobody has, and makes its own migration.
const OWNER = "owner@example.com";
const PASSWORD = "correct horse battery";
const RUN = Date.now().toString(36);

async function hydrated(page: Page) {
  await page.locator("body[data-hydrated]").waitFor({ state: "attached" });
}

async function signIn(page: Page) {
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
}

// Easemob history: a text message between accounts the dump never defines (two errors across
// records on line 1), then a location whose latitude is off the globe (an error on line 2).
const TEXT = `{"msg_id":"1240318411839211108","timestamp":1710489612482,"direction":"outgoing","to":"1102240315112233#chatdemo_bob@easemob.com","from":"1102240315112233#chatdemo_alice@easemob.com","chat_type":"chat","payload":{"bodies":[{"msg":"good morning Bob","type":"txt"}],"ext":{},"from":"alice","meta":{},"to":"bob","type":"chat"}}`;
const SWAPPED = `{"msg_id":"1240319001178457956","timestamp":1710489749703,"direction":"outgoing","to":"1102240315112233#chatdemo_bob@easemob.com","from":"1102240315112233#chatdemo_alice@easemob.com","chat_type":"chat","payload":{"bodies":[{"addr":"swapped","lat":116.36302,"lng":39.9053,"type":"loc"}],"ext":{},"from":"alice","meta":{},"to":"bob","type":"chat"}}`;
// 1,200 accounts, to see thousands grouped.
const ACCOUNTS = Array.from({ length: 1200 }, (_, i) => `{"kind":"account","id":"w${i}"}`).join("\n") + "\n";

test("the invite form starts over and the link box says whom it is for", async ({ page }) => {
  await signIn(page);
  await page.goto("/team");
  await hydrated(page);
  const form = page.getByTestId("invite-form");
  const email = `words-${RUN}@example.com`;
  await form.getByLabel("Email").fill(email);
  await form.getByLabel("Role").selectOption("operator");
  await form.getByRole("button", { name: "Create invite link" }).click();
  await expect(page.getByTestId("invite-link")).toBeVisible();
  const label = page.getByTestId("invite-link-label");
  await expect(label).toContainText(`Invite link for ${email} (operator), valid until 20`);
  await expect(form.getByLabel("Email")).toHaveValue("");
  await expect(form.getByLabel("Role")).toHaveValue("viewer");
  await expect(page.getByTestId("invites")).toContainText(email);
});

test("the Dumps tab says what it detected, counts in words and links errors to what they kept aside", async ({ page }) => {
  await signIn(page);
  await page.goto("/");
  await hydrated(page);
  const name = `Words ${RUN}`;
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Source").selectOption("easemob");
  await page.getByLabel("Target").selectOption("tencent");
  await page.getByRole("button", { name: "Create migration" }).click();
  await expect(page.getByRole("heading", { name })).toBeVisible();
  await page.getByRole("navigation", { name: "Migration" }).getByRole("link", { name: "Dumps" }).click();
  await expect(page.getByText("No dumps yet")).toBeVisible();
  await hydrated(page);

  await page.getByTestId("file-input").setInputFiles({
    name: "history-2024031508.jsonl",
    mimeType: "application/x-ndjson",
    buffer: Buffer.from(`${TEXT}\n${SWAPPED}\n`),
  });
  const row = page.getByTestId("upload-row").first();
  await expect(row).toHaveAttribute("data-state", "staged", { timeout: 30_000 });
  await expect(row.getByTestId("upload-format-read")).toContainText("Easemob export (detected)");
  await expect(row).toContainText("1 record, 1 line unreadable");
  await expect(page.getByTestId("report-state")).toHaveText("up to date", { timeout: 30_000 });

  // The user's own line, and the canonical record it became on demand.
  const missing = page.locator('[data-testid="rule"][data-code="ref.account_missing"]');
  await expect(missing.getByTestId("finding-line").first()).toContainText("chatdemo_alice@easemob.com");
  const converted = missing.getByTestId("finding-converted").first();
  await expect(converted).not.toHaveAttribute("open", "");
  await converted.locator("summary").click();
  await expect(converted.locator("pre")).toContainText('"kind":"message"');
  await expect(converted.locator("pre")).toBeVisible();
  const off = page.locator('[data-testid="rule"][data-code="field.value"]');
  await expect(off.getByTestId("finding-line").first()).toContainText('"lat":116.36302');

  // Errors and records kept aside, explained and linked both ways.
  await expect(page.getByTestId("report-summary")).toContainText("3 errors");
  await expect(page.getByTestId("errors-vs-kept")).toContainText("3 errors kept 2 records aside");
  await expect(page.getByTestId("errors-vs-kept")).toContainText("several errors may hit the same record");
  await page.getByTestId("report-counts").getByTestId("kept-aside").first().click();
  await expect(page.getByTestId("findings-severity")).toHaveValue("error");
  await expect(page.getByTestId("errors-keep-aside")).toContainText("These errors keep 2 records aside");
  const all = page.getByTestId("all-findings");
  await expect(all.locator("tbody tr")).toHaveCount(3);
  await expect(all.locator(".sev-warning")).toHaveCount(0);
  await expect(all.getByTestId("finding-line").first()).toBeVisible();

  // Thousands grouped.
  await page.getByTestId("file-input").setInputFiles({
    name: "accounts.jsonl",
    mimeType: "application/x-ndjson",
    buffer: Buffer.from(ACCOUNTS),
  });
  await expect(page.getByTestId("upload-row").filter({ hasText: "accounts.jsonl" })).toContainText("1,200 records", { timeout: 30_000 });
  await expect(page.getByTestId("report-counts")).toContainText("1,200", { timeout: 30_000 });
  await expect(page.getByTestId("upload-row").filter({ hasText: "accounts.jsonl" }).getByTestId("upload-format-read")).toContainText("imshift canonical JSON Lines (detected)");
});

test("the audit log names targets, links them, reads details and shows seconds", async ({ page }) => {
  await signIn(page);
  await page.goto("/audit");
  await hydrated(page);
  const table = page.getByTestId("audit-table");
  const name = `Words ${RUN}`;

  // A migration by its name, linked; an upload by its migration and short id, linked.
  const created = table.getByTestId("audit-row").filter({ hasText: "migration.created" }).filter({ hasText: name }).first();
  const link = created.getByTestId("audit-target").getByRole("link", { name });
  await expect(link).toHaveAttribute("href", /^\/migrations\/[0-9a-f-]{36}$/);
  await expect(created.getByTestId("audit-target")).not.toContainText("migration:");
  const uploaded = table.getByTestId("audit-row").filter({ hasText: "dump.uploaded" }).filter({ hasText: name }).filter({ hasText: "history-2024031508.jsonl" }).first();
  const upload = uploaded.getByTestId("audit-target").getByRole("link", { name: /^upload [0-9a-f]{8}$/ });
  await expect(upload).toHaveAttribute("href", /^\/migrations\/[0-9a-f-]{36}\/dumps$/);

  // Details as lines, the JSON on demand; times to the second, in full on hover.
  await expect(uploaded.locator(".detail-lines")).toContainText("file: history-2024031508.jsonl");
  // Counts in the details grouped by thousands (the accounts file is 37,290 bytes).
  const accounts = table.getByTestId("audit-row").filter({ hasText: "dump.uploaded" }).filter({ hasText: name }).filter({ hasText: "accounts.jsonl" }).first();
  await expect(accounts.locator(".detail-lines")).toContainText("bytes: 37,290");
  const json = uploaded.locator("details.detail-json");
  await expect(json.locator("pre")).toBeHidden();
  await json.locator("summary").click();
  await expect(json.locator("pre")).toContainText('"file": "history-2024031508.jsonl"');
  const when = uploaded.locator("td").first();
  await expect(when).toHaveText(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  await expect(when).toHaveAttribute("title", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z \(UTC\)$/);

  const invited = table.getByTestId("audit-row").filter({ hasText: "team.invite_created" }).filter({ hasText: `words-${RUN}@example.com` }).first();
  await expect(invited.locator(".detail-lines")).toContainText("role: operator");
  await expect(invited.getByTestId("audit-target").getByRole("link", { name: `words-${RUN}@example.com` })).toHaveAttribute("href", "/team");

  // The CSV keeps the raw values.
  const csv = await (await page.request.get("/api/v1/audit/export.csv?action=migration.created")).text();
  expect(csv).toMatch(/migration:[0-9a-f-]{36}/);
});
