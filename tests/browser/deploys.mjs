// Browser test of deploys. Parametrised so the lead can run it against the real node:
//   PRESSLUFT_URL, PRESSLUFT_EMAIL, PRESSLUFT_PASSWORD (common.mjs), PRESSLUFT_ENVIRONMENT_ID,
//   PRESSLUFT_SOURCE_TYPE (git|upload, default git), PRESSLUFT_GOOD_SOURCE,
//   PRESSLUFT_BROKEN_SOURCE (a source that deploys but fails its health check),
//   PRESSLUFT_WAIT_HEALTH=1: wait for the health gate's outcome (needs the engine hooks:
//   env_deploy → health_check → automatic release_rollback).
// Flow: log in, deploy the good source from the environment page's Deploy form and land on its
// job; with WAIT_HEALTH, see a new `healthy` current release in the timeline. Then deploy the
// broken source while a second tab watches the environment page: without WAIT_HEALTH, the
// watching tab shows the deploy's failure line live (the stand-in runner fails it); with it,
// it shows a new `unhealthy` release, a rollback event, and the healthy release current again.
import { base, launch, logIn, screenshot, step } from "./common.mjs";

const TIMEOUT = Number(process.env.PRESSLUFT_DEPLOY_TIMEOUT_MS || 10 * 60 * 1000);
const envId = process.env.PRESSLUFT_ENVIRONMENT_ID;
const sourceType = process.env.PRESSLUFT_SOURCE_TYPE || "git";
const good = process.env.PRESSLUFT_GOOD_SOURCE;
const broken = process.env.PRESSLUFT_BROKEN_SOURCE;
const waitHealth = process.env.PRESSLUFT_WAIT_HEALTH === "1";
const envPage = `/environments/${envId}`;
if (!envId || !good || !broken) throw new Error("PRESSLUFT_ENVIRONMENT_ID, PRESSLUFT_GOOD_SOURCE and PRESSLUFT_BROKEN_SOURCE are required");

const releases = (p) => p.$$eval("[data-test=release-row]", (rows) =>
  rows.map((r) => ({ id: r.dataset.release, health: r.dataset.health, current: r.dataset.current === "1" })));
const rollbacks = (p) => p.$$eval("[data-test=rollback-event]", (rows) => rows.length);

/// Submits the Deploy form on `p` (on the environment page) and waits for the job page.
async function deploy(p, source) {
  await p.selectOption("#d-type", sourceType);
  await p.fill("#d-ref", source);
  await p.click("[data-test=deploy]");
  await p.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  const job = p.url().split("/").pop();
  console.log(`JOB ${job}`);
  return job;
}

const { ctx, page } = await launch();
try {
  step("log in; the deploy key is shown");
  await logIn(page, envPage);
  const key = await page.inputValue("[data-test=deploy-key]");
  if (!key.startsWith("ssh-ed25519 ")) throw new Error(`deploy key: ${key}`);
  const before = (await releases(page)).map((r) => r.id);

  step("a bad source is refused on its field");
  await page.fill("#d-ref", "ftp://example.invalid/repo.git");
  await page.click("[data-test=deploy]");
  await page.waitForSelector("[data-test=source-ref-error]");

  step("deploy the good source");
  await deploy(page, good);
  await screenshot(page, "deploy-job");
  let healthy;
  if (waitHealth) {
    step("the timeline shows a new healthy current release");
    await page.goto(`${base}${envPage}`);
    await page.waitForFunction((known) => [...document.querySelectorAll("[data-test=release-row]")]
      .some((r) => !known.includes(r.dataset.release) && r.dataset.health !== "unknown"), before, { timeout: TIMEOUT });
    const fresh = (await releases(page)).find((r) => !before.includes(r.id));
    if (fresh.health !== "healthy" || !fresh.current) throw new Error(`release ${JSON.stringify(fresh)}`);
    healthy = fresh.id;
    await screenshot(page, "deploy-healthy");
  }

  step("deploy the broken source while a second tab watches the environment page");
  const watcher = await ctx.newPage();
  await watcher.goto(`${base}${envPage}`);
  const known = (await releases(watcher)).map((r) => r.id);
  const rollbacksBefore = await rollbacks(watcher);
  await page.goto(`${base}${envPage}`);
  await deploy(page, broken);
  if (waitHealth) {
    step("live: an unhealthy release, a rollback event, the healthy release current again");
    await watcher.waitForFunction(([known, n]) =>
      [...document.querySelectorAll("[data-test=release-row]")].some((r) => !known.includes(r.dataset.release) && r.dataset.health === "unhealthy")
      && document.querySelectorAll("[data-test=rollback-event]").length > n
      && [...document.querySelectorAll("[data-test=rollback-event]")].every((r) => r.dataset.status !== "running" && r.dataset.status !== "queued"),
      [known, rollbacksBefore], { timeout: TIMEOUT });
    const current = (await releases(watcher)).find((r) => r.current);
    if (!current || current.id !== healthy) throw new Error(`current after rollback: ${JSON.stringify(current)}`);
  } else {
    step("live: the failed deploy's one-line error");
    await watcher.waitForSelector("[data-test=last-failure]", { timeout: TIMEOUT });
    const line = (await watcher.textContent("[data-test=last-failure]")).trim();
    if (!line.startsWith("Deploy failed:")) throw new Error(`failure line: ${line}`);
  }
  await screenshot(watcher, "deploy-after-broken");
  console.log("BROWSER_TEST_PASSED");
} finally {
  await ctx.close();
}
