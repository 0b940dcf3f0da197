import { test, expect, Page } from "@playwright/test";

const OWNER = "owner@example.com";
const VIEWER = "viewer@example.com";
const PASSWORD = "correct horse battery";

// Server-rendered pages work before the WASM arrives; wait for it so clicks run in the app.
async function hydrated(page: Page) {
  await page.locator("body[data-hydrated]").waitFor({ state: "attached" });
}

async function signOut(page: Page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);
}

test("owner sets up, invites a viewer who sees no admin controls, audit log records it all", async ({ page, browser }) => {
  // First run: every page leads to the one-time setup.
  await page.goto("/");
  await expect(page).toHaveURL(/\/setup$/);
  await hydrated(page);
  await page.getByLabel("Email").fill(OWNER);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Repeat password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create owner account" }).click();
  await expect(page.getByRole("heading", { name: "Migrations", exact: true })).toBeVisible();
  await expect(page.getByTestId("signed-in-user")).toContainText(OWNER);
  await expect(page.getByTestId("signed-in-user")).toContainText("Owner");

  // Setup is closed now.
  await page.goto("/setup");
  await expect(page).not.toHaveURL(/\/setup$/);

  // Invite a viewer; the one-time link is shown to copy.
  await page.goto("/team");
  await hydrated(page);
  await page.getByLabel("Email").fill(VIEWER);
  await page.getByLabel("Role").selectOption("viewer");
  await page.getByRole("button", { name: "Create invite link" }).click();
  const linkBox = page.getByTestId("invite-link");
  await expect(linkBox).toBeVisible();
  const link = await linkBox.inputValue();
  expect(link).toContain("/invite/inv_");
  await expect(page.getByTestId("invites")).toContainText(VIEWER);
  await expect(page.getByTestId("invites")).toContainText("Pending");

  // The viewer joins in a browser of their own.
  const viewerContext = await browser.newContext();
  const viewer = await viewerContext.newPage();
  await viewer.goto(new URL(link).pathname);
  await expect(viewer.getByTestId("invite-email")).toHaveText(VIEWER);
  await hydrated(viewer);
  await viewer.getByLabel("Choose a password").fill(PASSWORD);
  await viewer.getByLabel("Repeat password").fill(PASSWORD);
  await viewer.getByRole("button", { name: "Join" }).click();
  await expect(viewer.getByTestId("signed-in-user")).toContainText("Viewer");

  // The link worked once.
  await signOut(viewer);
  await viewer.goto(new URL(link).pathname);
  await expect(viewer.getByRole("alert")).toContainText("already used");

  // The viewer signs in through the sign-in page.
  await viewer.goto("/login");
  await hydrated(viewer);
  await viewer.getByLabel("Email").fill(VIEWER);
  await viewer.getByLabel("Password").fill("not the password");
  await viewer.getByRole("button", { name: "Sign in" }).click();
  await expect(viewer.getByRole("alert")).toContainText("email or password is not right");
  await viewer.getByLabel("Password").fill(PASSWORD);
  await viewer.getByRole("button", { name: "Sign in" }).click();
  await expect(viewer.getByTestId("signed-in-user")).toContainText(VIEWER);

  // No admin controls for a viewer.
  await viewer.getByRole("navigation").getByRole("link", { name: "Team" }).click();
  await expect(viewer.getByTestId("members")).toContainText(OWNER);
  await expect(viewer.getByTestId("invite-form")).toHaveCount(0);
  await expect(viewer.getByRole("button", { name: "Create invite link" })).toHaveCount(0);
  await expect(viewer.getByRole("button", { name: "Remove" })).toHaveCount(0);
  await expect(viewer.getByRole("button", { name: "Revoke" })).toHaveCount(0);
  await expect(viewer.getByTestId("members").locator("select")).toHaveCount(0);

  // The audit log shows the invite and the sign-ins, and its filters work.
  await viewer.getByRole("navigation").getByRole("link", { name: "Audit log" }).click();
  const table = viewer.getByTestId("audit-table");
  await expect(table).toContainText("team.invite_created");
  await expect(table).toContainText("auth.login_failed");
  await expect(table).toContainText("auth.login");
  await hydrated(viewer);

  await viewer.getByLabel("Action").selectOption("auth.login");
  await viewer.getByRole("button", { name: "Filter" }).click();
  await expect(viewer).toHaveURL(/action=auth.login/);
  const actions = table.locator("tbody tr td:nth-child(3)");
  await expect(actions.first()).toHaveText("auth.login");
  for (const text of await actions.allTextContents()) expect(text).toBe("auth.login");
  await expect(table.locator("tbody tr")).toHaveCount(1); // only the viewer's own sign-in

  await viewer.getByRole("link", { name: "Clear" }).click();
  await viewer.getByLabel("Who").selectOption(OWNER);
  await viewer.getByRole("button", { name: "Filter" }).click();
  await expect(viewer).toHaveURL(/actor=owner/);
  const whos = table.locator("tbody tr td:nth-child(2)");
  await expect(whos.first()).toHaveText(OWNER);
  for (const text of await whos.allTextContents()) expect(text).toBe(OWNER);
  await expect(table).toContainText("team.invite_created");

  // The export link carries the same filter.
  await expect(viewer.getByTestId("audit-export")).toHaveAttribute("href", /actor=owner%40example\.com/);
  await viewerContext.close();
});
