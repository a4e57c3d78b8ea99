// Browser test of the Drift panel on a non-production environment's page, against the real
// node: PRESSLUFT_URL, PRESSLUFT_EMAIL, PRESSLUFT_PASSWORD (common.mjs),
// PRESSLUFT_ENVIRONMENT_ID (a staging environment whose production has drifted) and
// PRESSLUFT_DRIFT_NAMES (comma-separated table/path names the differences must list).
// Flow: log in on the environment page; the panel loads. "Run drift check": a new
// drift_check job shows up and succeeds live (no reload); the status is `drifted` with the
// blocking red warning, and the differences list every expected name with its rows. The
// "details" link opens the drift check's page with the same differences.
import { base, launch, logIn, screenshot, step } from "./common.mjs";

const TIMEOUT = Number(process.env.PRESSLUFT_DRIFT_TIMEOUT_MS || 5 * 60 * 1000);
const envId = process.env.PRESSLUFT_ENVIRONMENT_ID;
if (!envId) throw new Error("PRESSLUFT_ENVIRONMENT_ID is required");
const names = (process.env.PRESSLUFT_DRIFT_NAMES || "").split(",").filter(Boolean);
if (!names.length) throw new Error("PRESSLUFT_DRIFT_NAMES is required");
const envPage = `/environments/${envId}`;

const text = async (p, sel) => (await p.locator(sel).first().textContent()).trim();

async function listed(p) {
  return p.$$eval("[data-test=drift-difference]", (rows) =>
    rows.map((r) => ({ name: r.dataset.name, kind: r.dataset.kind, text: r.textContent.replace(/\s+/g, " ").trim() })));
}

const { ctx, page } = await launch();
try {
  step("log in; the Drift panel loads");
  await logIn(page, envPage);
  await page.waitForSelector("[data-test=drift-status]");
  await screenshot(page, "drift-panel");

  step("run a drift check and watch its job succeed live");
  const before = await page.getAttribute("[data-test=drift-job]", "data-job");
  await page.click("[data-test=drift-run]");
  await page.waitForFunction(({ before }) => {
    const j = document.querySelector("[data-test=drift-job]");
    return j && j.dataset.job && j.dataset.job !== before;
  }, { before }, { timeout: TIMEOUT });
  await page.waitForFunction(() => {
    const j = document.querySelector("[data-test=drift-job]");
    return j && ["succeeded", "failed", "cancelled"].includes(j.dataset.status);
  }, null, { timeout: TIMEOUT });
  const status = await page.getAttribute("[data-test=drift-job]", "data-status");
  if (status !== "succeeded") throw new Error(`drift check ${status}: ${await text(page, "[data-test=drift-job]")}`);
  console.log(`JOB ${await page.getAttribute("[data-test=drift-job]", "data-job")} drift check`);
  // The panel reloads on the environment's event once the row is recorded.
  await page.waitForFunction(() => {
    const s = document.querySelector("[data-test=drift-status]");
    return s && s.textContent.trim() === "drifted" && document.querySelector("[data-test=drift-difference]");
  }, null, { timeout: TIMEOUT });

  step("drifted: the blocking warning and every difference, exactly");
  const warning = await text(page, "[data-test=drift-warning]");
  if (!warning.includes("create a fresh clone")) throw new Error(`no blocking warning: ${warning}`);
  const rows = await listed(page);
  console.log(`DIFFERENCES ${JSON.stringify(rows)}`);
  for (const name of names) {
    const row = rows.find((r) => r.name === name);
    if (!row) throw new Error(`${name} is not listed: ${JSON.stringify(rows)}`);
    if (row.kind === "table" && !/(absent|\d+ rows?) → \d+ rows?/.test(row.text)) throw new Error(`no rows for ${name}: ${row.text}`);
    if (row.kind === "path" && !row.text.includes("digest changed")) throw new Error(`no digest change for ${name}: ${row.text}`);
  }
  await screenshot(page, "drift-drifted");

  step("the drift check's page lists the same differences");
  await page.click("[data-test=drift-check-link]");
  await page.waitForSelector("[data-test=drift-differences]");
  const again = await listed(page);
  if (JSON.stringify(again.map((r) => r.name)) !== JSON.stringify(rows.map((r) => r.name))) {
    throw new Error(`the page differs from the panel: ${JSON.stringify(again)}`);
  }
  if (await text(page, "[data-test=drift-status]") !== "drifted") throw new Error("the page is not drifted");
  await screenshot(page, "drift-check-page");
  await page.goto(`${base}${envPage}`);
  await page.waitForSelector("[data-test=drift-status]");
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
}
