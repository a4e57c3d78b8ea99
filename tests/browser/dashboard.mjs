// Browser test of the dashboard, driven by tests/api/browser.rs, which starts the server and
// answers on stdin. Steps: log in through the form, see the metric cards and the jobs table,
// ask the harness to insert a job into the database, see it appear without a reload, save the
// backup settings (a field error, then S3), log out.
import { createInterface } from "node:readline";
import { base, email, launch, password, screenshot, step } from "./common.mjs";

const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();
async function ask(question) {
  console.log(question);
  const { value } = await lines.next();
  return value.trim();
}

// Runs in the page: every data table must lie inside its card and the viewport, and either fit
// its scroll container or have that container scroll sideways (no column cut off unreachable).
// With `mustFit` (a desktop width) every column must show without scrolling.
function tableProblems(mustFit) {
  const out = [];
  const vw = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > vw) {
    out.push(`page scrolls sideways: ${document.documentElement.scrollWidth}px > ${vw}px`);
  }
  for (const t of document.querySelectorAll("table.data")) {
    const wrap = t.closest(".table-wrap");
    if (!wrap) { out.push(`${t.id}: not inside a .table-wrap`); continue; }
    const card = wrap.closest(".card") || wrap;
    const ox = getComputedStyle(wrap).overflowX;
    const fits = t.getBoundingClientRect().width <= wrap.clientWidth + 0.5 &&
      wrap.scrollWidth <= wrap.clientWidth;
    const scrolls = !mustFit && (ox === "auto" || ox === "scroll");
    const w = wrap.getBoundingClientRect();
    const c = card.getBoundingClientRect();
    const inside = w.left >= c.left - 0.5 && w.right <= c.right + 0.5 && c.right <= vw + 0.5;
    if (!(fits || scrolls) || !inside) {
      const cols = [...t.querySelectorAll("thead th")].map(th => `${th.textContent}=${Math.round(th.getBoundingClientRect().width)}`);
      out.push(`${t.id}: table ${t.getBoundingClientRect().width}px in ${wrap.clientWidth}px (overflow-x ${ox}, ${cols.join(" ")}), ` +
        `wrap ${w.left}..${w.right}, card ${c.left}..${c.right}, viewport ${vw}`);
    }
  }
  return out;
}

const { ctx, page } = await launch({ height: 860, timeout: 15000 });
try {

  step("unauthenticated visit redirects to the login page");
  await page.goto(`${base}/jobs`);
  if (!page.url().includes("/login?next=%2Fjobs")) throw new Error(`expected login redirect, got ${page.url()}`);

  step("wrong password shows the sentence");
  await page.fill("#email", email);
  await page.fill("#password", "definitely wrong");
  await page.click("button[type=submit]");
  await page.waitForSelector("[data-test=login-error]");
  const err = await page.textContent("[data-test=login-error]");
  if (!err.includes("Invalid email or password")) throw new Error(`login error text: ${err}`);

  step("log in through the form and land on the requested page");
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/jobs`);
  await page.goto(`${base}/`);
  const labels = await page.locator(".metric .metric-label").allTextContents();
  for (const l of ["Running jobs", "Queued jobs", "Active nodes", "Sites"]) {
    if (!labels.includes(l)) throw new Error(`metric card ${l} missing: ${labels}`);
  }
  await page.waitForSelector("#jobs-table");
  await screenshot(page, `overview-empty`);
  const queuedBefore = await page.locator('[data-metric="Queued jobs"] .metric-value').textContent();
  if (queuedBefore.trim() !== "0") throw new Error(`queued before: ${queuedBefore}`);

  // Give the SSE connection a moment to open before the change happens.
  await page.waitForTimeout(500);
  const jobId = await ask("INSERT_JOB");
  step(`job ${jobId} inserted; waiting for it without reloading`);
  await page.waitForSelector(`tr[data-job-id="${jobId}"]`);
  await page.waitForFunction(() =>
    document.querySelector('[data-metric="Queued jobs"] .metric-value').textContent.trim() === "1");
  const row = await page.textContent(`tr[data-job-id="${jobId}"]`);
  if (!row.includes("node_provision") || !row.includes("queued")) throw new Error(`row: ${row}`);
  await screenshot(page, `overview-live-job`);

  step("jobs page shows it too, and a phone-sized viewport still works");
  await page.click('nav a[href="/jobs"]');
  await page.waitForSelector(`tr[data-job-id="${jobId}"]`);
  await page.setViewportSize({ width: 390, height: 844 });
  await screenshot(page, `jobs-phone`);
  await page.setViewportSize({ width: 1280, height: 860 });

  step("the jobs and releases tables fit or scroll inside their card at 1280 and 390 px");
  const siteId = await ask("INSERT_SITE");
  for (const [path, name] of [["/", "overview"], [`/sites/${siteId}`, "site"]]) {
    for (const [width, height] of [[1280, 860], [390, 844]]) {
      await page.setViewportSize({ width, height });
      await page.goto(`${base}${path}`);
      await page.waitForSelector("#jobs-table tr[data-job-id]");
      const problems = await page.evaluate(tableProblems, width >= 1280);
      await screenshot(page, `tables-${name}-${width}`);
      if (problems.length) throw new Error(`${path} at ${width} px: ${problems.join("; ")}`);
    }
  }
  await page.setViewportSize({ width: 1280, height: 860 });

  step("backup settings: a field error next to its field, then saved with S3 (off-site)");
  await page.goto(`${base}/settings`);
  const storage = async () => (await page.textContent("[data-test=backup-storage]")).trim();
  if (!(await storage()).includes("not off-site")) throw new Error(`storage: ${await storage()}`);
  const form = page.locator("[data-test=backup-settings]");
  await form.locator("[name=backup_retention_days]").fill("0");
  await form.locator("[name=backup_s3_bucket]").fill("pl-backups");
  await form.locator("button[type=submit]").click();
  await page.waitForSelector("[data-test=backup-settings] #b-retention.invalid ~ .field-error");
  await screenshot(page, `settings-backups-error`);
  const refused = page.locator("[data-test=backup-settings]");
  await refused.locator("[name=backup_retention_days]").fill("14");
  await refused.locator("[name=access_key_id]").fill("AKIDBROWSER");
  await refused.locator("[name=secret_access_key]").fill("browser-secret-key");
  await refused.locator("button[type=submit]").click();
  await page.waitForSelector("[data-test=settings-saved]");
  if (!(await storage()).includes("S3 (off-site)")) throw new Error(`storage: ${await storage()}`);
  const secretShown = await page.locator("[data-test=backup-settings] [name=secret_access_key]").inputValue();
  if (secretShown !== "" || (await page.content()).includes("browser-secret-key")) throw new Error("the secret is shown");
  await screenshot(page, `settings-backups-saved`);

  step("log out");
  await page.click("[data-test=logout]");
  await page.waitForURL(/\/login$/);
  await page.goto(`${base}/`);
  if (!page.url().includes("/login")) throw new Error(`still logged in: ${page.url()}`);
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
  stdin.close();
}
