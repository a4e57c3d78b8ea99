// Browser test of the site import, run by tests/api/e2e_import.rs on a live site
// (PRESSLUFT_SITE_ID) with an archive file on disk (PRESSLUFT_IMPORT_ARCHIVE): log in, follow
// "Import a site" from the site page, see an empty form refused on its field, upload the
// archive, land on the import's job page and watch it succeed live. Prints `JOB <id>`.
import { launch, logIn, screenshot, step } from "./common.mjs";

const JOB_TIMEOUT = 10 * 60 * 1000;
const siteId = process.env.PRESSLUFT_SITE_ID;
const archive = process.env.PRESSLUFT_IMPORT_ARCHIVE;
if (!siteId || !archive) throw new Error("PRESSLUFT_SITE_ID and PRESSLUFT_IMPORT_ARCHIVE are required");

const { ctx, page } = await launch();
try {
  step("log in; the site page offers the import");
  await logIn(page, `/sites/${siteId}`);
  await page.click("[data-test=import-site]");
  await page.waitForSelector("[data-test=import-form]");

  step("an empty form is refused on its field");
  await page.click("[data-test=import-submit]");
  await page.waitForSelector("[data-test=archive-url-error]");

  step("upload the archive and land on the import's job");
  await page.setInputFiles("[data-test=import-archive-file]", archive);
  await page.click("[data-test=import-submit]");
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  const job = page.url().split("/").pop();
  console.log(`JOB ${job}`);

  step("the job succeeds, live");
  await page.waitForFunction(() => {
    const b = document.querySelector("#job-panel .badge");
    return b && ["succeeded", "failed", "cancelled"].includes(b.textContent.trim().split(" ")[0]);
  }, null, { timeout: JOB_TIMEOUT });
  const status = (await page.textContent("#job-panel .badge")).trim();
  await screenshot(page, "import-job");
  if (status !== "succeeded") throw new Error(`import job ${status}: ${await page.textContent("[data-test=job-error]")}`);
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
}
