// Browser test of magic login, against the real node:
//   PRESSLUFT_URL, PRESSLUFT_EMAIL, PRESSLUFT_PASSWORD (common.mjs), PRESSLUFT_ENVIRONMENT_ID,
//   PRESSLUFT_LOGIN_URL (a fresh login link of that environment, from the API).
// Flow: the link opened in a fresh browser lands in wp-admin as an administrator (the General
// Settings page, which needs manage_options, opens); the same link in another fresh browser
// shows the login page with the magic-login error and no session; then the dashboard's "Open
// WordPress admin" button on the environment page opens a new tab that lands in wp-admin.
import { base, launch, logIn, screenshot, step } from "./common.mjs";

const envId = process.env.PRESSLUFT_ENVIRONMENT_ID;
const loginUrl = process.env.PRESSLUFT_LOGIN_URL;
if (!envId || !loginUrl) throw new Error("PRESSLUFT_ENVIRONMENT_ID and PRESSLUFT_LOGIN_URL are required");
const site = new URL(loginUrl).origin;
// sslip.io does not resolve here: preview hosts go to this machine, the node.
const args = ["--host-resolver-rules=MAP *.sslip.io 127.0.0.1"];

/// Throws unless `page` is in wp-admin as a user who may manage options (an administrator).
async function inWpAdminAsAdministrator(page) {
  await page.waitForURL(/\/wp-admin\/(index\.php)?$/);
  await page.waitForSelector("#wpadminbar");
  await page.goto(`${site}/wp-admin/options-general.php`);
  if (!/\/wp-admin\/options-general\.php$/.test(page.url())) throw new Error(`not in settings: ${page.url()}`);
  await page.waitForSelector("form[action='options.php'] #blogname");
}

let browser = await launch({ args });
try {
  step("the login link lands in wp-admin as an administrator");
  await browser.page.goto(loginUrl);
  await inWpAdminAsAdministrator(browser.page);
  await screenshot(browser.page, "magic-login-wp-admin");
} finally {
  await browser.ctx.close();
}

browser = await launch({ args });
try {
  step("the same link a second time shows the login page with an error");
  await browser.page.goto(loginUrl);
  await browser.page.waitForSelector("#login_error");
  const error = await browser.page.textContent("#login_error");
  if (!/invalid, has expired or was already used/.test(error)) throw new Error(`login error: ${error}`);
  if (!/\/wp-login\.php/.test(browser.page.url())) throw new Error(`not on the login page: ${browser.page.url()}`);
  await browser.page.goto(`${site}/wp-admin/`);
  await browser.page.waitForURL(/\/wp-login\.php\?redirect_to=/);
  await screenshot(browser.page, "magic-login-used");
} finally {
  await browser.ctx.close();
}

browser = await launch({ args });
try {
  step("the dashboard's Open WordPress admin button opens wp-admin in a new tab");
  await logIn(browser.page, `/environments/${envId}`);
  const button = browser.page.locator("[data-test=open-wp-admin]");
  await button.waitFor();
  if (await button.isDisabled()) throw new Error("the button is disabled on an active environment");
  const [tab] = await Promise.all([browser.ctx.waitForEvent("page"), button.click()]);
  await inWpAdminAsAdministrator(tab);
  await screenshot(tab, "magic-login-button");
  console.log("BROWSER_TEST_PASSED");
} finally {
  await browser.ctx.close();
}
