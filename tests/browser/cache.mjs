// Browser test of the Caching panel on the environment page, against the real node:
//   PRESSLUFT_URL, PRESSLUFT_EMAIL, PRESSLUFT_PASSWORD (common.mjs), PRESSLUFT_ENVIRONMENT_ID.
// Flow: log in on the environment page; the panel loads with both caches on. Turn the page
// cache off: the panel shows it off at once and the toggle job's progress live until it
// succeeded; turn it on again the same way; then "Purge cache" and watch the purge succeed.
import { base, launch, logIn, screenshot, step } from "./common.mjs";

const TIMEOUT = Number(process.env.PRESSLUFT_CACHE_TIMEOUT_MS || 5 * 60 * 1000);
const envId = process.env.PRESSLUFT_ENVIRONMENT_ID;
if (!envId) throw new Error("PRESSLUFT_ENVIRONMENT_ID is required");
const envPage = `/environments/${envId}`;

const text = async (p, sel) => (await p.locator(sel).textContent()).trim();

/// Clicks `button` in the panel and waits until the panel shows a NEW cache job that
/// succeeded (seen live, without a reload) and `check` holds.
async function runAndWait(p, button, label) {
  const before = await p.getAttribute("[data-test=cache-job]", "data-job");
  await p.click(`[data-test=${button}]`);
  await p.waitForFunction(({ before }) => {
    const j = document.querySelector("[data-test=cache-job]");
    return j && j.dataset.job && j.dataset.job !== before;
  }, { before }, { timeout: TIMEOUT });
  await p.waitForFunction(() => {
    const j = document.querySelector("[data-test=cache-job]");
    return j && ["succeeded", "failed", "cancelled"].includes(j.dataset.status);
  }, null, { timeout: TIMEOUT });
  const status = await p.getAttribute("[data-test=cache-job]", "data-status");
  const what = await text(p, "[data-test=cache-job]");
  if (status !== "succeeded") throw new Error(`${label}: ${status}: ${what}`);
  console.log(`JOB ${await p.getAttribute("[data-test=cache-job]", "data-job")} ${label}`);
}

const { ctx, page } = await launch();
try {
  step("log in; the Caching panel loads with both caches on");
  await logIn(page, envPage);
  await page.waitForSelector("[data-test=fastcgi-state]");
  if (await text(page, "[data-test=fastcgi-state]") !== "on") throw new Error("page cache not on");
  if (await text(page, "[data-test=redis-state]") !== "on") throw new Error("object cache not on");
  await screenshot(page, "cache-panel");

  step("turn the page cache off and watch the job succeed");
  await runAndWait(page, "fastcgi-toggle", "fastcgi off");
  if (await text(page, "[data-test=fastcgi-state]") !== "off") throw new Error("page cache still on");
  await screenshot(page, "cache-off");

  step("turn the page cache on again");
  await runAndWait(page, "fastcgi-toggle", "fastcgi on");
  if (await text(page, "[data-test=fastcgi-state]") !== "on") throw new Error("page cache still off");

  step("purge the cache");
  await runAndWait(page, "cache-purge", "purge");
  if (!(await text(page, "[data-test=cache-job]")).startsWith("Purge")) throw new Error("not a purge");
  await screenshot(page, "cache-purged");

  step("after a reload the panel shows the same state");
  await page.goto(`${base}${envPage}`);
  await page.waitForSelector("[data-test=fastcgi-state]");
  if (await text(page, "[data-test=fastcgi-state]") !== "on") throw new Error("page cache not on after reload");
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
}
