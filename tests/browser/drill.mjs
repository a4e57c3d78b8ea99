// Browser test of restore drills, run by tests/api/e2e_drill.rs on a live site
// (PRESSLUFT_SITE_ID) whose last drill failed (a corrupted backup): the overview and the site
// page show the failed drill in red with its reason; "Run drill" on the site page leads to the
// drill's job page, the job succeeds live, and back on the site page the last drill is passed.
import { launch, logIn, screenshot, step } from "./common.mjs";

const JOB_TIMEOUT = 10 * 60 * 1000;
const siteId = process.env.PRESSLUFT_SITE_ID;
if (!siteId) throw new Error("PRESSLUFT_SITE_ID is required");

const { ctx, page } = await launch();
try {
  step("log in; the overview shows the failed drill as an alert");
  await logIn(page, "/");
  await page.waitForSelector(`[data-test=drill-failed-alert][data-site-id="${siteId}"]`);

  step("the site page shows the failed drill with its reason");
  await page.goto(`${new URL(page.url()).origin}/sites/${siteId}`);
  await page.waitForSelector("[data-test=last-drill][data-drill-status=failed]");
  const reason = await page.textContent("[data-test=last-drill-reason]");
  if (!reason.includes("checksum mismatch")) throw new Error(`reason: ${reason}`);
  await screenshot(page, "drill-failed");

  step("Run drill leads to the drill's job");
  await page.click("[data-test=run-drill]");
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  const job = page.url().split("/").pop();
  console.log(`JOB ${job}`);

  step("the job succeeds, live");
  await page.waitForFunction(() => {
    const b = document.querySelector("#job-panel .badge");
    return b && ["succeeded", "failed", "cancelled"].includes(b.textContent.trim().split(" ")[0]);
  }, null, { timeout: JOB_TIMEOUT });
  const status = (await page.textContent("#job-panel .badge")).trim();
  if (status !== "succeeded") throw new Error(`drill job ${status}: ${await page.textContent("[data-test=job-error]")}`);

  step("back on the site page the last drill passed");
  await page.goto(`${new URL(page.url()).origin}/sites/${siteId}`);
  await page.waitForSelector("[data-test=last-drill][data-drill-status=passed]");
  await page.waitForSelector("[data-test=drill-history]");
  await screenshot(page, "drill-passed");
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
}
