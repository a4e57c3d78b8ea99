// Browser test of the Domains panel on the environment page, against the real node and Pebble:
//   PRESSLUFT_URL, PRESSLUFT_EMAIL, PRESSLUFT_PASSWORD (common.mjs), PRESSLUFT_ENVIRONMENT_ID,
//   PRESSLUFT_DOMAIN_1, PRESSLUFT_DOMAIN_2 (host names whose DNS — /etc/hosts — points to the node).
// Flow: add the first domain and watch it become active and primary live (no reload); add the
// second, watch it become active, not primary; remove the primary (confirming the dialog) and
// watch the second take over as primary; remove the second too; the panel is empty again.
import { base, launch, logIn, screenshot, step } from "./common.mjs";

const TIMEOUT = Number(process.env.PRESSLUFT_DOMAINS_TIMEOUT_MS || 5 * 60 * 1000);
const envId = process.env.PRESSLUFT_ENVIRONMENT_ID;
const first = process.env.PRESSLUFT_DOMAIN_1;
const second = process.env.PRESSLUFT_DOMAIN_2;
if (!envId || !first || !second) {
  throw new Error("PRESSLUFT_ENVIRONMENT_ID, PRESSLUFT_DOMAIN_1 and PRESSLUFT_DOMAIN_2 are required");
}
const envPage = `/environments/${envId}`;
const row = (host) => `[data-test=domain-row][data-hostname="${host}"]`;

/// Waits until the row of `host` shows `status` (and `primary` when given), live.
async function waitRow(p, host, status, primary) {
  await p.waitForFunction(({ sel, status, primary }) => {
    const r = document.querySelector(sel);
    const err = document.querySelector("[data-test=domain-error]");
    if (err) throw new Error(`domain job failed: ${err.textContent}`);
    return r && r.dataset.status === status && (primary === undefined || r.dataset.primary === String(primary));
  }, { sel: row(host), status, primary }, { timeout: TIMEOUT, polling: 250 });
}

async function add(p, host) {
  await p.fill("[data-test=domain-hostname]", host);
  await p.click("[data-test=domain-add]");
  await p.waitForSelector(row(host));
  console.log(`added ${host}: ${await p.getAttribute(row(host), "data-status")}`);
}

const { ctx, page } = await launch();
page.on("dialog", (d) => {
  console.log(`confirm: ${d.message()}`);
  d.accept();
});
try {
  step("log in; the Domains panel loads empty with the node's IP");
  await logIn(page, envPage);
  await page.waitForSelector("[data-test=domains-empty]");
  await page.waitForSelector("[data-test=domain-ip]");

  step(`add ${first}; watch it become active and primary`);
  await add(page, first);
  const record = (await page.textContent(`${row(first)} [data-test=domain-record]`)).trim();
  if (!record.startsWith(`${first} →`)) throw new Error(`A record shown: ${record}`);
  await waitRow(page, first, "active", true);
  await screenshot(page, "domains-first-active");

  step(`add ${second}; watch it become active, not primary`);
  await add(page, second);
  await waitRow(page, second, "active", false);
  if ((await page.getAttribute(row(first), "data-primary")) !== "true") throw new Error("the first lost primary");
  await screenshot(page, "domains-two-active");

  step(`remove the primary ${first}; the second takes over`);
  await page.click(`${row(first)} [data-test=domain-remove]`);
  await page.waitForFunction((sel) => !document.querySelector(sel), row(first), { timeout: TIMEOUT, polling: 250 });
  await waitRow(page, second, "active", true);
  await screenshot(page, "domains-second-primary");

  step(`remove ${second}; back to the preview URL`);
  await page.click(`${row(second)} [data-test=domain-remove]`);
  await page.waitForSelector("[data-test=domains-empty]", { timeout: TIMEOUT });

  step("after a reload the panel is still empty");
  await page.goto(`${base}${envPage}`);
  await page.waitForSelector("[data-test=domains-empty]");
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
}
