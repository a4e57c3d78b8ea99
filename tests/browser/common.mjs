// What every browser test shares, so each test file holds only its own flow: the environment
// the Rust harness passes (server URL, admin credentials, screenshot folder), Debian's Chromium
// launched headless in a throw-away profile, the log-in form, named screenshots and the wait for
// an environment card to settle.
import { chromium } from "playwright-core";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const base = process.env.PRESSLUFT_URL;
export const email = process.env.PRESSLUFT_EMAIL;
export const password = process.env.PRESSLUFT_PASSWORD;
const shots = process.env.PRESSLUFT_SCREENSHOTS;
const executablePath = process.env.CHROMIUM || "/usr/lib/chromium/chromium";

export function step(msg) { console.log(`step: ${msg}`); }

/// Launches Chromium (viewport 1280 x `height`, `timeout` ms per action, `args` added to the
/// command line) and returns its context and first page.
export async function launch({ height = 900, timeout = 30000, args = [] } = {}) {
  const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "pl-chromium-")), {
    executablePath,
    headless: true,
    viewport: { width: 1280, height },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync", ...args],
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(timeout);
  return { ctx, page };
}

/// Logs in as the admin through the form and waits to land on `next`.
export async function logIn(page, next) {
  await page.goto(`${base}/login?next=${next}`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}${next}`);
}

/// Saves a screenshot named `name` when the harness asked for screenshots.
export async function screenshot(page, name, fullPage = true) {
  if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage });
}

/// Waits (up to `timeout` ms) until the `env` card (production, staging) shows active or failed
/// without a reload, and throws unless it is active.
export async function envCardSettles(page, env, timeout) {
  await page.waitForFunction((selector) => {
    const b = document.querySelector(selector);
    return b && ["active", "failed"].includes(b.textContent.trim());
  }, `.env-card-${env} [data-test=env-status]`, { timeout });
  const status = (await page.locator(`.env-card-${env} [data-test=env-status]`).textContent()).trim();
  if (status !== "active") throw new Error(`${env} ${status}`);
}
