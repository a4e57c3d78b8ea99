// Browser test of deleting (issue 13): PRESSLUFT_URL, PRESSLUFT_EMAIL, PRESSLUFT_PASSWORD
// (common.mjs), PRESSLUFT_SITE_ID, PRESSLUFT_SITE_SLUG, PRESSLUFT_ENVIRONMENT_ID (a staging
// environment of that site), PRESSLUFT_DELETE_TIMEOUT_MS.
// Flow: on the environment page, the Danger zone refuses a wrong slug with a field error; the
// right slug lands on the env_delete job, which succeeds live; the site page shows the
// environment deleted and has no delete control for it. Then the site is deleted from its page
// the same way; the sites list hides it until "Show deleted" is on.
import { base, launch, logIn, screenshot, step } from "./common.mjs";

const TIMEOUT = Number(process.env.PRESSLUFT_DELETE_TIMEOUT_MS || 10 * 60 * 1000);
const siteId = process.env.PRESSLUFT_SITE_ID;
const slug = process.env.PRESSLUFT_SITE_SLUG;
const envId = process.env.PRESSLUFT_ENVIRONMENT_ID;
if (!siteId || !slug || !envId) throw new Error("PRESSLUFT_SITE_ID, PRESSLUFT_SITE_SLUG and PRESSLUFT_ENVIRONMENT_ID are required");

/// Waits on the job page until the job has ended; throws unless it succeeded.
async function jobSucceeds(p) {
  await p.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  console.log(`JOB ${p.url().split("/").pop()}`);
  const badge = ".kv .badge";
  await p.waitForFunction((s) => {
    const b = document.querySelector(s);
    return b && ["succeeded", "failed", "cancelled"].includes(b.textContent.trim());
  }, badge, { timeout: TIMEOUT });
  const status = (await p.locator(badge).first().textContent()).trim();
  if (status !== "succeeded") throw new Error(`the delete job ${status}: ${await p.locator("[data-test=job-error]").textContent()}`);
}

/// Types `typed` into the danger zone's confirmation and submits it.
async function confirm(p, typed, button) {
  await p.fill("[data-test=delete-confirm]", typed);
  await p.click(`[data-test=${button}]`);
}

const { ctx, page } = await launch();
try {
  step("a wrong slug is refused on its field");
  await logIn(page, `/environments/${envId}`);
  await page.waitForSelector("[data-test=env-danger-zone]");
  await confirm(page, `${slug}-typo`, "delete-environment");
  await page.waitForSelector("[data-test=delete-confirm-error]");
  await screenshot(page, "delete-env-mismatch");

  step("the right slug deletes the environment");
  await confirm(page, slug, "delete-environment");
  await jobSucceeds(page);
  await screenshot(page, "delete-env-job");

  step("the site page shows it deleted");
  await page.goto(`${base}/sites/${siteId}`);
  const card = page.locator(`[data-env-id="${envId}"] [data-test=env-status]`);
  if ((await card.textContent()).trim() !== "deleted") throw new Error(`environment card: ${await card.textContent()}`);
  await page.goto(`${base}/environments/${envId}`);
  if (await page.locator("[data-test=env-danger-zone]").count() !== 0) throw new Error("a deleted environment offers its delete again");

  step("the site is deleted from its page");
  await page.goto(`${base}/sites/${siteId}`);
  await confirm(page, "not-the-slug", "delete-site");
  await page.waitForSelector("[data-test=delete-confirm-error]");
  await confirm(page, slug, "delete-site");
  await jobSucceeds(page);

  step("the sites list hides it until Show deleted");
  await page.goto(`${base}/sites`);
  if (await page.locator(`tr[data-site-id="${siteId}"]`).count() !== 0) throw new Error("a deleted site is listed");
  await page.click("[data-test=toggle-deleted]");
  await page.waitForURL(/show_deleted=true/);
  const row = page.locator(`tr[data-site-id="${siteId}"] [data-test=site-status]`);
  if ((await row.textContent()).trim() !== "deleted") throw new Error(`site row: ${await row.textContent()}`);
  await screenshot(page, "delete-sites-list");
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
}
