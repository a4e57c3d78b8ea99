// Browser test of backups, run by tests/api/e2e_sites.rs on the e2e flow's live production
// environment (PRESSLUFT_ENVIRONMENT_ID): log in, create a full backup from the environment
// page, land on its job, see the backup turn completed on the environment page without
// reloading, download its database dump (a zstd stream), press Verify, see the verify job
// succeed and the backup marked verified.
import { base, launch, logIn, screenshot, step } from "./common.mjs";

const JOB_TIMEOUT = 10 * 60 * 1000;
const envId = process.env.PRESSLUFT_ENVIRONMENT_ID;
const envPage = `/environments/${envId}`;

/// Waits on a job page until its badge says succeeded (throws on failed/cancelled).
async function jobSucceeds(page) {
  await page.waitForFunction(() => {
    const b = document.querySelector("#job-panel .badge");
    return b && ["succeeded", "failed", "cancelled"].includes(b.textContent.trim().split(" ")[0]);
  }, null, { timeout: JOB_TIMEOUT });
  const status = (await page.textContent("#job-panel .badge")).trim();
  if (status !== "succeeded") throw new Error(`job ${page.url()} ${status}: ${await page.textContent("[data-test=job-error]")}`);
}

const { ctx, page } = await launch();
try {
  step("log in");
  await logIn(page, envPage);
  const ids = () => page.$$eval("[data-test=backup-row]", (rows) => rows.map((r) => r.dataset.backupId));
  const before = await ids();

  step("create a full backup and land on its job");
  await page.selectOption("#b-scope", "full");
  await page.click("[data-test=create-backup]");
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  console.log(`JOB ${page.url().split("/").pop()}`);
  await screenshot(page, "backup-job");

  step("the backup turns completed on the environment page without a reload");
  await page.goto(`${base}${envPage}`);
  // The newest row that was not there before (the scheduler may add its own full backup).
  const backupId = (await ids()).find((id) => !before.includes(id));
  if (!backupId) throw new Error("no new backup row");
  await page.waitForFunction((id) => {
    const r = document.querySelector(`[data-backup-id="${id}"]`);
    return r && ["completed", "failed"].includes(r.dataset.status);
  }, backupId, { timeout: JOB_TIMEOUT });
  const current = page.locator(`[data-backup-id="${backupId}"]`);
  const status = await current.getAttribute("data-status");
  if (status !== "completed") throw new Error(`backup ${status}: ${await current.textContent()}`);
  const checksum = await current.locator("[data-test=backup-checksum]").getAttribute("title");
  if (!/^sha256:[0-9a-f]{64}$/.test(checksum)) throw new Error(`checksum ${checksum}`);
  const storage = (await current.locator("[data-test=backup-storage]").textContent()).trim();
  if (!["off-site", "not off-site"].includes(storage)) throw new Error(`storage label ${storage}`);
  if (!(await current.locator("[data-test=backup-expires]").textContent()).includes("expires in")) throw new Error("no retention");
  await screenshot(page, "backup-completed");

  step("download the database dump: a zstd stream");
  const href = await current.locator('[data-test=backup-download][href$="db.sql.zst"]').getAttribute("href");
  const resp = await page.request.get(`${base}${href}`);
  if (resp.status() !== 200) throw new Error(`download ${resp.status()}`);
  const body = await resp.body();
  if (body.length < 100 || body.readUInt32LE(0) !== 0xfd2fb528) throw new Error(`not zstd (${body.length} bytes)`);
  if (!(resp.headers()["content-disposition"] || "").includes("-db.sql.zst")) throw new Error("file name");

  step("verify it");
  await current.locator("[data-test=backup-verify-button]").click();
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  await jobSucceeds(page);
  await page.goto(`${base}${envPage}`);
  const verified = (await page.locator(`[data-backup-id="${backupId}"] [data-test=backup-verify]`).textContent()).trim();
  if (!verified.startsWith("ok")) throw new Error(`verify status: ${verified}`);
  await screenshot(page, "backup-verified");
  console.log(`BACKUP ${backupId}`);
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
}
