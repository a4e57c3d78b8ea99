// Browser test of safe updates (issue 16), run by tests/api/safe_updates_browser.rs against a
// site (PRESSLUFT_SITE_ID) with a held run (PRESSLUFT_RUN_ID) whose before / after / diff images
// exist: the overview lists the site as pending review; the site page links to its Safe updates
// page; the history shows the held run; the run's page shows the three images side by side
// (each loaded: naturalWidth > 0) with the reason; Approve asks for confirmation, then starts the
// production update and the page shows the confirmation and the started job, which the
// harness then runs: its panel turns succeeded live.
import { base, launch, logIn, screenshot, step } from "./common.mjs";

const JOB_TIMEOUT = Number(process.env.PRESSLUFT_JOB_TIMEOUT_MS || 60000);
const siteId = process.env.PRESSLUFT_SITE_ID;
const runId = process.env.PRESSLUFT_RUN_ID;
if (!siteId || !runId) throw new Error("PRESSLUFT_SITE_ID and PRESSLUFT_RUN_ID are required");

const { ctx, page } = await launch({ height: 800 });
try {
  step("log in; the overview lists the site's held run");
  await logIn(page, "/");
  await page.waitForSelector(`[data-test=safe-updates-pending-site][data-run-id="${runId}"]`);

  step("the site page links to its Safe updates page");
  await page.goto(`${base}/sites/${siteId}`);
  await page.click("[data-test=safe-updates-link]");
  await page.waitForURL(`${base}/sites/${siteId}/safe-updates`);

  step("the history shows the held run");
  const row = `[data-test=safe-update-run][data-run-id="${runId}"]`;
  await page.waitForSelector(`${row}[data-outcome=held]`);
  await screenshot(page, "safe-updates-page");
  await page.click(`${row} [data-test=safe-update-run-link]`);
  await page.waitForURL(`${base}/safe-updates/${runId}`);

  step("the run's page shows before, after and diff, each loaded");
  const shots = page.locator("[data-test=safe-update-page] img[data-test=safe-update-shot]");
  const count = await shots.count();
  if (count !== 3) throw new Error(`${count} images, expected 3`);
  for (let i = 0; i < count; i++) {
    const img = shots.nth(i);
    if ((await img.getAttribute("loading")) !== "lazy") throw new Error("images load lazily");
    await img.scrollIntoViewIfNeeded();
    await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
  }
  const reasons = await page.textContent("[data-test=safe-update-reasons]");
  if (!reasons.includes("changed")) throw new Error(`reasons: ${reasons}`);
  await screenshot(page, "safe-updates-held-run");

  step("Approve asks for confirmation, then starts the production update");
  await page.click("[data-test=approve-safe-update]");
  await page.waitForSelector("[data-test=approve-confirm]");
  await page.click("[data-test=approve-submit]");
  await page.waitForURL(`${base}/safe-updates/${runId}?approved=1`);
  await page.waitForSelector("[data-test=safe-update-approved]");
  await page.waitForSelector("[data-test=safe-update-status][data-outcome=approved]");
  const job = await page.getAttribute("[data-test=safe-update-apply-job]", "data-job-id");
  if (!/^[0-9a-f-]{36}$/.test(job || "")) throw new Error(`apply job: ${job}`);
  const link = await page.getAttribute("[data-test=approved-job-link]", "href");
  if (link !== `/jobs/${job}`) throw new Error(`job link ${link}`);
  console.log(`JOB ${job}`);
  if (await page.locator("[data-test=approve-safe-update]").count()) throw new Error("still offers Approve");

  step("the production update's job ends, live (no reload)");
  await page.evaluate(() => { window.__notReloaded = true; });
  await page.waitForSelector(`[data-test=safe-update-apply-job][data-job-id="${job}"][data-job-status=succeeded]`,
    { timeout: JOB_TIMEOUT });
  if (!(await page.evaluate(() => window.__notReloaded))) throw new Error("the page reloaded");
  await screenshot(page, "safe-updates-approved");

  step("the overview no longer lists the run");
  await page.goto(`${base}/`);
  await page.waitForSelector("[data-test=safe-updates-pending-count]", { state: "attached" });
  if (await page.locator(`[data-test=safe-updates-pending-site][data-run-id="${runId}"]`).count()) {
    throw new Error("the approved run is still pending");
  }
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
}
