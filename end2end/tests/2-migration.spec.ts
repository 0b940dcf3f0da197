import { test, expect, Page } from "@playwright/test";

// Runs after 1-team.spec.ts on the same console (files run in name order with one worker):
// the owner exists already.
const OWNER = "owner@example.com";
const PASSWORD = "correct horse battery";

async function hydrated(page: Page) {
  await page.locator("body[data-hydrated]").waitFor({ state: "attached" });
}

test("a migration's keys: rehearse in a sandbox, test connection with right and wrong keys", async ({ page }) => {
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Email").fill(OWNER);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("signed-in-user")).toContainText(OWNER);

  // Create a migration; the console opens it.
  await hydrated(page);
  await page.getByLabel("Name").fill("Chat app → Tencent IM");
  await page.getByLabel("Strategy").selectOption("coexistence");
  await page.getByLabel("Source").selectOption("netease");
  await page.getByLabel("Target").selectOption("tencent");
  await page.getByRole("button", { name: "Create migration" }).click();
  await expect(page.getByRole("heading", { name: "Chat app → Tencent IM" })).toBeVisible();
  await expect(page.getByRole("navigation", { name: "Migration" })).toContainText("Connections");

  // Connections: one card per side; the target is rehearsed in a sandbox started inside the
  // console, then its connection tested. The NetEase source has nothing to connect yet.
  await page.getByRole("navigation", { name: "Migration" }).getByRole("link", { name: "Connections" }).click();
  await expect(page.getByTestId("connection-source")).toContainText("NetEase Yunxin");
  const target = page.getByTestId("connection-target");
  const secretHint = target.locator("[data-testid=secret-hint][data-field=secret_key]");
  await expect(secretHint).toHaveText("not set");
  await hydrated(page);
  await page.getByTestId("connection-target").getByRole("button", { name: "Rehearse in sandbox" }).click();
  await expect(target).toContainText("local sandbox");
  await expect(secretHint).toContainText("ends in");
  await target.getByRole("button", { name: "Test connection" }).click();
  await expect(target.getByTestId("connection-result")).toContainText("OK");

  // A wrong secret key: the same sandbox says so, in words.
  const baseUrl = (await target.locator("[data-field=base_url] code").textContent())!.trim();
  expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  await target.getByLabel("Data center").selectOption("custom");
  await target.getByLabel("Custom base URL").fill(baseUrl);
  await target.getByLabel("Secret key").fill("this-is-not-the-key");
  await target.getByRole("button", { name: "Save keys" }).click();
  await expect(secretHint).toContainText("ends in …-key");
  await target.getByRole("button", { name: "Test connection" }).click();
  await expect(target.getByTestId("connection-result")).toContainText("70009");
  await expect(target.getByTestId("connection-result")).toContainText(/secret key/i);

  // The secret never comes back to the browser.
  const html = await page.content();
  expect(html).not.toContain("this-is-not-the-key");

  // The audit log has the whole story.
  await page.getByRole("navigation").first().getByRole("link", { name: "Audit log" }).click();
  const table = page.getByTestId("audit-table");
  await expect(table).toContainText("migration.created");
  await expect(table).toContainText("migration.sandbox_started");
  await expect(table).toContainText("migration.keys_set");
  await expect(table).toContainText("migration.keys_tested");
});
