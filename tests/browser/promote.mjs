// Browser test of the promotion page, run by tests/api/e2e_promote.rs on the live site:
// - PRESSLUFT_BLOCKED_ENV: a staging environment whose production drifted (its last drift check
//   is `drifted`): the page shows the reason in words and the differing table, Promote stays
//   disabled even with the acknowledgement ticked.
// - PRESSLUFT_PASSING_ENV: a fresh clean clone while production has no fresh full backup: the
//   drift gate passes after "Run drift check", the backup gate blocks until "Create production
//   backup now" has completed, then the acknowledgement and Promote run the promotion, whose
//   outcome (succeeded, health check passed) shows live on the page. Prints `PROMOTED`.
import { launch, logIn, screenshot, step } from "./common.mjs";

const JOB_TIMEOUT = 10 * 60 * 1000;
const blocked = process.env.PRESSLUFT_BLOCKED_ENV;
const passing = process.env.PRESSLUFT_PASSING_ENV;
if (!blocked || !passing) throw new Error("PRESSLUFT_BLOCKED_ENV and PRESSLUFT_PASSING_ENV are required");

const { ctx, page } = await launch();
try {
  step("log in; the blocked environment's page links to its promotion");
  await logIn(page, `/environments/${blocked}`);
  await page.click("[data-test=promote-link]");
  await page.waitForSelector("[data-test=promote-status]");

  step("drifted: the reason in words, the differing table, Promote disabled");
  const reason = await page.textContent("[data-test=drift-blocking]");
  if (!reason.includes("Production has changed")) throw new Error(`drift reason: ${reason}`);
  await page.waitForSelector("[data-test=drift-differences]");
  const diffs = await page.textContent("[data-test=drift-differences]");
  if (!diffs.includes("posts")) throw new Error(`differences: ${diffs}`);
  await page.check("[data-test=promote-acknowledge]");
  if (!(await page.isDisabled("[data-test=promote-submit]"))) throw new Error("Promote is enabled while drifted");
  await screenshot(page, "promote-blocked");

  step("passing: run the drift check in the drift panel, watch the gate pass");
  await page.goto(`${process.env.PRESSLUFT_URL}/environments/${passing}/promote`);
  await page.waitForSelector("[data-test=drift-run]");
  const checks = await page.getAttribute("[data-test=drift-job]", "data-job");
  await page.click("[data-test=drift-run]");
  await page.waitForFunction((before) => {
    const j = document.querySelector("[data-test=drift-job]");
    return j && j.dataset.job && j.dataset.job !== before && j.dataset.status === "succeeded";
  }, checks, { timeout: JOB_TIMEOUT });
  await page.waitForSelector("[data-test=drift-passes]", { timeout: 60000 });
  if (!(await page.isDisabled("[data-test=promote-submit]"))) throw new Error("Promote enabled without a fresh backup");
  const backupReason = await page.textContent("[data-test=backup-blocking]");
  if (!backupReason.includes("min")) throw new Error(`backup reason: ${backupReason}`);

  step("create the production backup now; the backup gate passes live");
  await page.click("[data-test=create-production-backup]");
  await page.waitForSelector("[data-test=backup-passes]", { timeout: JOB_TIMEOUT });
  await page.waitForSelector("[data-test=promote-submit]:not([disabled])", { timeout: 30000 });

  step("acknowledge and promote; the outcome shows live");
  await page.check("[data-test=promote-acknowledge]");
  await page.click("[data-test=promote-submit]");
  await page.waitForSelector("[data-test=promote-outcome]", { timeout: 30000 });
  await page.waitForFunction(() => {
    const o = document.querySelector("[data-test=promote-outcome]");
    return o && ["succeeded", "failed"].includes(o.dataset.outcome);
  }, null, { timeout: JOB_TIMEOUT });
  const outcome = await page.getAttribute("[data-test=promote-outcome]", "data-outcome");
  await screenshot(page, "promote-outcome");
  if (outcome !== "succeeded") throw new Error(`promotion: ${await page.textContent("[data-test=promote-outcome]")}`);
  console.log("PROMOTED");
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
}
