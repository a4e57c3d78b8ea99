// Browser test of the site flow, run by tests/api/e2e_sites.rs on a provisioned node with the
// WordPress source set: log in, create a site from the dashboard (slug filled in from the name),
// watch its production card turn active without reloading, create a staging clone, watch it
// turn active, then open both preview URLs and find the site's title.
import { envCardSettles, launch, logIn, screenshot, step } from "./common.mjs";

const JOB_TIMEOUT = 10 * 60 * 1000;

// sslip.io does not resolve here: preview hosts go to this machine, the node.
const { ctx, page } = await launch({ args: ["--host-resolver-rules=MAP *.sslip.io 127.0.0.1"] });
try {
  step("log in");
  await logIn(page, "/sites");

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
  await screenshot(page, `site-deploying`);

  step("production turns active without a reload");
  await envCardSettles(page, "production", JOB_TIMEOUT);

  step("create a staging clone");
  await page.click("[data-test=create-environment]");
  await page.waitForURL(/\/environments\/new$/);
  await page.click("[data-test=create-environment-form] button[type=submit]");
  await page.waitForURL(/\/sites\/[0-9a-f-]{36}$/);
  const stagingCard = page.locator(".env-card-staging");
  await stagingCard.waitFor();
  await envCardSettles(page, "staging", JOB_TIMEOUT);
  const stagingUrl = await stagingCard.locator("[data-test=preview-url]").getAttribute("href");
  await screenshot(page, `site-active`);

  step("open both preview URLs");
  for (const [name, url] of [["production", prodUrl], ["staging", stagingUrl]]) {
    const preview = await ctx.newPage();
    const resp = await preview.goto(url);
    if (!resp || resp.status() !== 200) throw new Error(`${name} ${url}: ${resp && resp.status()}`);
    const title = await preview.title();
    if (!title.includes("Browser Shop")) throw new Error(`${name} title: ${title}`);
    const links = await preview.evaluate(() => [...document.querySelectorAll("a[href]")].map((a) => a.href));
    if (!links.some((h) => h.startsWith(url))) throw new Error(`${name} links elsewhere: ${links.slice(0, 5)}`);
    await screenshot(preview, `preview-${name}`, false);
    await preview.close();
  }
  console.log(`SITE ${page.url().split("/").pop()}`);
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
}
