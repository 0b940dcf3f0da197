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
  await expect(page.getByRole("navigation", { name: "Migration" })).toContainText("Keys");

  // Keys: rehearse in a sandbox started inside the console, then test the connection.
  await page.getByRole("navigation", { name: "Migration" }).getByRole("link", { name: "Keys" }).click();
  await expect(page.getByTestId("secret-hint")).toHaveText("not set");
  await hydrated(page);
  await page.getByRole("button", { name: "Rehearse in sandbox" }).click();
  await expect(page.getByTestId("keys-summary")).toContainText("local sandbox");
  await expect(page.getByTestId("secret-hint")).toContainText("ends in");
  await page.getByRole("button", { name: "Test connection" }).click();
  await expect(page.getByTestId("connection-result")).toContainText("OK");

  // A wrong secret key: the same sandbox says so, in words.
  const baseUrl = (await page.getByTestId("keys-summary").locator("code").textContent())!.trim();
  expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  await page.getByLabel("Data center").selectOption("custom");
  await page.getByLabel("Custom base URL").fill(baseUrl);
  await page.getByLabel("Secret key").fill("this-is-not-the-key");
  await page.getByRole("button", { name: "Save keys" }).click();
  await expect(page.getByTestId("secret-hint")).toContainText("ends in …-key");
  await page.getByRole("button", { name: "Test connection" }).click();
  await expect(page.getByTestId("connection-result")).toContainText("70009");
  await expect(page.getByTestId("connection-result")).toContainText(/secret key/i);

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
