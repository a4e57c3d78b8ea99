// Browser test of the restore, run by tests/api/e2e_restore.rs on a live environment
// (PRESSLUFT_ENVIRONMENT_ID) with a completed backup of its site (PRESSLUFT_BACKUP_ID): log in,
// open "Restore a backup…" from the environment page, choose the backup, read the confirmation
// (the backup, what is replaced, the pre-restore backup), confirm, land on the restore's job
// page and watch it succeed live; back on the environment page the releases timeline shows the
// release from the backup. Prints `JOB <id>`.
import { launch, logIn, screenshot, step } from "./common.mjs";

const JOB_TIMEOUT = 10 * 60 * 1000;
const envId = process.env.PRESSLUFT_ENVIRONMENT_ID;
const backupId = process.env.PRESSLUFT_BACKUP_ID;
if (!envId || !backupId) throw new Error("PRESSLUFT_ENVIRONMENT_ID and PRESSLUFT_BACKUP_ID are required");

const { ctx, page } = await launch();
try {
  step("log in; the environment page offers the restore");
  await logIn(page, `/environments/${envId}`);
  await page.click("[data-test=restore-open]");
  await page.waitForSelector("[data-test=restore-backups]");

  step("choose the backup; the confirmation names it and what is replaced");
  await page.click(`[data-test=restore-backup-row][data-backup-id="${backupId}"] [data-test=restore-choose]`);
  await page.waitForSelector("[data-test=restore-confirm]");
  const confirm = await page.textContent("[data-test=restore-confirm]");
  for (const words of [backupId, "the database (every table)", "the uploads", "full pre-restore backup", "come back automatically"]) {
    if (!confirm.includes(words)) throw new Error(`the confirmation does not say ${JSON.stringify(words)}: ${confirm}`);
  }
  await screenshot(page, "restore-confirm");

  step("confirm and land on the restore's job");
  await page.click("[data-test=restore-submit]");
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  const job = page.url().split("/").pop();
  console.log(`JOB ${job}`);

  step("the job succeeds, live");
  await page.waitForFunction(() => {
    const b = document.querySelector("#job-panel .badge");
    return b && ["succeeded", "failed", "cancelled"].includes(b.textContent.trim().split(" ")[0]);
  }, null, { timeout: JOB_TIMEOUT });
  const status = (await page.textContent("#job-panel .badge")).trim();
  await screenshot(page, "restore-job");
  if (status !== "succeeded") throw new Error(`restore job ${status}: ${await page.textContent("[data-test=job-error]")}`);

  step("the releases timeline shows the release from the backup");
  await page.goto(`${process.env.PRESSLUFT_URL}/environments/${envId}`);
  await page.waitForFunction((ref) => {
    const t = document.querySelector("[data-test=release-timeline]");
    return t && t.textContent.includes(ref);
  }, `backup:${backupId}`, { timeout: 60000 });
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
}
