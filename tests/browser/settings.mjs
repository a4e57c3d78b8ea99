// Browser test of the Settings page's domain configuration:
//   PRESSLUFT_URL, PRESSLUFT_EMAIL, PRESSLUFT_PASSWORD (common.mjs);
//   PRESSLUFT_DOMAIN_FORM: JSON {control_plane_domain, preview_domain, dns01_provider,
//     dns01_credentials (the textarea's text)} to save;
//   PRESSLUFT_SECRET: a credential value that must never show on a page;
//   PRESSLUFT_HANDSHAKE=1: print RUN_QUEUE once the started jobs are listed and the live
//     stream is open, for a harness that runs the queue itself (the stand-in test);
//   PRESSLUFT_SETTINGS_TIMEOUT_MS: how long each job may take.
// Flow: log in on /settings; an invalid preview domain is refused inline and nothing is
// echoed back; the valid form saves, the page lists the node_provision jobs it started, and
// each job's row in the live table reaches succeeded without a reload. Prints "JOB <id>" per
// job and BROWSER_TEST_PASSED.
import { launch, logIn, screenshot, step } from "./common.mjs";

const TIMEOUT = Number(process.env.PRESSLUFT_SETTINGS_TIMEOUT_MS || 10 * 60 * 1000);
const form = JSON.parse(process.env.PRESSLUFT_DOMAIN_FORM || "{}");
const secret = process.env.PRESSLUFT_SECRET || "";
const handshake = process.env.PRESSLUFT_HANDSHAKE === "1";

async function fill(p, values) {
  await p.fill("#d-control", values.control_plane_domain || "");
  await p.fill("#d-preview", values.preview_domain || "");
  await p.selectOption("#d-provider", values.dns01_provider || "");
  await p.fill("#d-credentials", values.dns01_credentials || "");
}

async function noSecret(p, where) {
  if (secret && (await p.content()).includes(secret)) throw new Error(`${where}: the page shows the secret`);
}

const { ctx, page } = await launch();
// The live stream's open event, so the harness runs the queue only once the page listens.
await page.addInitScript(() => {
  document.addEventListener("htmx:sseOpen", () => { window.__sseOpen = true; });
});
try {
  step("log in on the Settings page");
  await logIn(page, "/settings");
  await page.waitForSelector("[data-test=domain-settings]");
  await page.waitForSelector("[data-test=acme-settings]");
  const keys = await page.locator("[data-test=provider-keys]").textContent();
  if (!keys.includes("rfc2136") || !keys.includes("key_secret")) throw new Error(`provider help: ${keys}`);

  step("an uppercase preview domain is refused inline");
  await fill(page, { ...form, preview_domain: "Preview.Example.Test", dns01_provider: "rfc2136" });
  await page.click("[data-test=domain-settings] button[type=submit]");
  await page.waitForSelector("#d-preview.invalid");
  const error = await page.locator("#d-preview ~ .field-error").textContent();
  if (!error.includes("lowercase")) throw new Error(`error shown: ${error}`);
  if (await page.inputValue("#d-credentials") !== "") throw new Error("credentials echoed");
  await noSecret(page, "refused form");
  await screenshot(page, "settings-refused");

  step("save the domain configuration");
  await fill(page, form);
  await page.click("[data-test=domain-settings] button[type=submit]");
  await page.waitForSelector("[data-test=started-jobs]");
  const ids = await page.$$eval("[data-test=started-jobs] a[data-job-id]", (as) => as.map((a) => a.dataset.jobId));
  if (ids.length === 0) throw new Error(`no job started: ${await page.locator("[data-test=started-jobs]").textContent()}`);
  for (const id of ids) {
    await page.waitForSelector(`[data-test=provision-jobs] tr[data-job-id="${id}"]`);
  }
  const state = (await page.locator("[data-test=dns01-credentials-state]").textContent()).trim();
  if (form.dns01_credentials && state !== "set") throw new Error(`credentials state: ${state}`);
  if (await page.inputValue("#d-credentials") !== "") throw new Error("credentials echoed after save");
  await noSecret(page, "saved page");
  await page.waitForFunction(() => window.__sseOpen === true, null, { timeout: 30000 });
  await screenshot(page, "settings-saved");
  if (handshake) console.log("RUN_QUEUE");

  step(`watch ${ids.length} node_provision job(s) live`);
  for (const id of ids) {
    const badge = `[data-test=provision-jobs] tr[data-job-id="${id}"] .badge`;
    await page.waitForFunction((sel) => {
      const b = document.querySelector(sel);
      return b && ["succeeded", "failed", "cancelled"].includes(b.textContent.trim());
    }, badge, { timeout: TIMEOUT });
    const status = (await page.locator(badge).textContent()).trim();
    if (status !== "succeeded") throw new Error(`job ${id}: ${status}`);
    console.log(`JOB ${id}`);
  }
  await noSecret(page, "after the jobs");
  await screenshot(page, "settings-jobs-done");
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
}
