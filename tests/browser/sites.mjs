// Browser test of the site flow, run by tests/api/e2e_sites.rs on a provisioned node with the
// WordPress source set: log in, create a site from the dashboard (slug filled in from the name),
// watch its production card turn active without reloading, create a staging clone, watch it
// turn active, then open both preview URLs and find the site's title.
import { chromium } from "playwright-core";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const base = process.env.PRESSLUFT_URL;
const shots = process.env.PRESSLUFT_SCREENSHOTS;
const executablePath = process.env.CHROMIUM || "/usr/lib/chromium/chromium";
const JOB_TIMEOUT = 10 * 60 * 1000;
function step(msg) { console.log(`step: ${msg}`); }

const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "pl-chromium-")), {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    // sslip.io does not resolve here: preview hosts go to this machine, the node.
    "--host-resolver-rules=MAP *.sslip.io 127.0.0.1"],
});
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(30000);

  step("log in");
  await page.goto(`${base}/login?next=/sites`);
  await page.fill("#email", process.env.PRESSLUFT_EMAIL);
  await page.fill("#password", process.env.PRESSLUFT_PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/sites`);

  step("create a site; the slug follows the name");
  await page.click("[data-test=create-site]");
  await page.fill("#s-name", "Browser Shop");
  const slug = await page.inputValue("#s-slug");
  if (slug !== "browser-shop") throw new Error(`slug prefill: ${slug}`);
  await page.click("[data-test=create-site-form] button[type=submit]");
  await page.waitForURL(/\/sites\/[0-9a-f-]{36}$/);
  const prodCard = page.locator(".env-card-production");
  await prodCard.waitFor();
  const prodUrl = await prodCard.locator("[data-test=preview-url]").getAttribute("href");
  if (!/^http:\/\/[0-9a-f]{8}\.[0-9-]+\.sslip\.io$/.test(prodUrl)) throw new Error(`preview URL ${prodUrl}`);
  if (shots) await page.screenshot({ path: `${shots}/site-deploying.png`, fullPage: true });

  step("production turns active without a reload");
  await page.waitForFunction(() => {
    const b = document.querySelector(".env-card-production [data-test=env-status]");
    return b && ["active", "failed"].includes(b.textContent.trim());
  }, null, { timeout: JOB_TIMEOUT });
  const prodStatus = (await prodCard.locator("[data-test=env-status]").textContent()).trim();
  if (prodStatus !== "active") throw new Error(`production ${prodStatus}`);

  step("create a staging clone");
  await page.click("[data-test=create-environment]");
  await page.waitForURL(/\/environments\/new$/);
  await page.click("[data-test=create-environment-form] button[type=submit]");
  await page.waitForURL(/\/sites\/[0-9a-f-]{36}$/);
  const stagingCard = page.locator(".env-card-staging");
  await stagingCard.waitFor();
  await page.waitForFunction(() => {
    const b = document.querySelector(".env-card-staging [data-test=env-status]");
    return b && ["active", "failed"].includes(b.textContent.trim());
  }, null, { timeout: JOB_TIMEOUT });
  const stagingStatus = (await stagingCard.locator("[data-test=env-status]").textContent()).trim();
  if (stagingStatus !== "active") throw new Error(`staging ${stagingStatus}`);
  const stagingUrl = await stagingCard.locator("[data-test=preview-url]").getAttribute("href");
  if (shots) await page.screenshot({ path: `${shots}/site-active.png`, fullPage: true });

  step("open both preview URLs");
  for (const [name, url] of [["production", prodUrl], ["staging", stagingUrl]]) {
    const preview = await ctx.newPage();
    const resp = await preview.goto(url);
    if (!resp || resp.status() !== 200) throw new Error(`${name} ${url}: ${resp && resp.status()}`);
    const title = await preview.title();
    if (!title.includes("Browser Shop")) throw new Error(`${name} title: ${title}`);
    const links = await preview.evaluate(() => [...document.querySelectorAll("a[href]")].map((a) => a.href));
    if (!links.some((h) => h.startsWith(url))) throw new Error(`${name} links elsewhere: ${links.slice(0, 5)}`);
    if (shots) await preview.screenshot({ path: `${shots}/preview-${name}.png`, fullPage: false });
    await preview.close();
  }
  console.log(`SITE ${page.url().split("/").pop()}`);
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
}
